package vfs

import (
	"time"
	"unique"
)

// Packed is an Info in less memory, for what is kept per entry (a cached
// listing's children, the mount's nodes): 48 bytes instead of 72. The
// mtime is kept as seconds and nanoseconds (no location: it comes back in
// UTC) and the permissions interned, as most entries share a few.
type Packed struct {
	etag  string
	perms unique.Handle[string] // zero for ""
	size  int64
	sec   int64 // mtime, when hasMtime
	nsec  int32
	dir   bool
	// hasMtime is false for the zero time.
	hasMtime bool
}

// Pack returns in packed.
func Pack(in Info) Packed {
	p := Packed{etag: in.ETag, size: in.Size, dir: in.Dir}
	if in.Perms != "" {
		p.perms = unique.Make(in.Perms)
	}
	if !in.Mtime.IsZero() {
		p.sec, p.nsec, p.hasMtime = in.Mtime.Unix(), int32(in.Mtime.Nanosecond()), true
	}
	return p
}

// Info returns the Info p holds.
func (p Packed) Info() Info {
	in := Info{Dir: p.dir, Size: p.size, ETag: p.etag}
	if p.perms != (unique.Handle[string]{}) {
		in.Perms = p.perms.Value()
	}
	if p.hasMtime {
		in.Mtime = time.Unix(p.sec, int64(p.nsec)).UTC()
	}
	return in
}

// IsDir reports whether p is a directory, without unpacking it.
func (p Packed) IsDir() bool { return p.dir }
