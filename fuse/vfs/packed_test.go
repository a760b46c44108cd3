package vfs

import (
	"testing"
	"time"
	"unsafe"
)

// TestPackedRoundTrip: what is packed comes back equal, mtimes in UTC.
func TestPackedRoundTrip(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for _, in := range []Info{
		{},
		{Dir: true, Mtime: time.Date(2026, 11, 22, 21, 35, 25, 0, time.UTC), ETag: `"d1"`, Perms: "RGDNVCK"},
		{Size: 1 << 40, Mtime: time.Date(1969, 7, 20, 20, 17, 40, 123456789, paris), ETag: `W/"x"`},
		{Size: 3, Mtime: time.Date(2400, 1, 1, 0, 0, 0, 1, time.UTC), Perms: "G"},
	} {
		got := Pack(in).Info()
		want := in
		if !want.Mtime.IsZero() {
			want.Mtime = want.Mtime.UTC()
		}
		if got != want {
			t.Errorf("Pack(%+v).Info() = %+v", in, got)
		}
		if Pack(in).IsDir() != in.Dir {
			t.Errorf("IsDir of %+v", in)
		}
	}
}

// TestPackedSize pins the memory a packed entry takes (the mount keeps one
// per cached entry, and per node).
func TestPackedSize(t *testing.T) {
	if s := unsafe.Sizeof(Packed{}); s > 48 {
		t.Errorf("Packed is %d bytes, want <= 48", s)
	}
}
