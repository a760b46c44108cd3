package vfs

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestListingMemory pins the memory a cached listing keeps per child: a
// listing of 20,000 children (names of 15 bytes) parsed as the mount does,
// streamed, keeps at most 120 bytes a child (about 80: a packed entry and
// its name), where a map of Info and a slice of names kept about 180.
func TestListingMemory(t *testing.T) {
	const n = 20000
	doc := nginxListing(n)
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	l, err := ParseStream(strings.NewReader(doc), "http://127.0.0.1/wide/", func(string, Info) {})
	if err != nil || l.Len() != n {
		t.Fatalf("parse: %v, %d children", err, l.Len())
	}
	after := heap()
	runtime.KeepAlive(l)
	runtime.KeepAlive(doc)
	per := (int64(after) - int64(before)) / n
	t.Logf("%d bytes per child", per)
	if per > 120 {
		t.Errorf("a listing keeps %d bytes per child, want <= 120", per)
	}
}

// TestListingGarbage pins what parsing a large listing allocates per
// child, beyond what it keeps: the children gathered in chunks, not in a
// slice and a map grown by copying (which left 400 bytes of garbage a
// child, in the resident memory until the next collection).
func TestListingGarbage(t *testing.T) {
	const n = 20000
	doc := nginxListing(n)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	l, err := ParseStream(strings.NewReader(doc), "http://127.0.0.1/wide/", func(string, Info) {})
	if err != nil || l.Len() != n {
		t.Fatalf("parse: %v, %d children", err, l.Len())
	}
	runtime.ReadMemStats(&ms)
	per := (ms.TotalAlloc - before) / n
	t.Logf("%d bytes allocated per child", per)
	if per > 400 {
		t.Errorf("parsing allocates %d bytes per child, want <= 400", per)
	}
}

// TestListingEdits: children set, replaced and removed stay in name order,
// each found by name.
func TestListingEdits(t *testing.T) {
	l := &Listing{}
	l.SetChildren(map[string]Info{"b": {Size: 2}, "d": {Dir: true}, "a": {Size: 1}})
	l.Set("c", Info{Size: 3})
	l.Set("a", Info{Size: 10})
	if !l.Remove("d") || l.Remove("zz") {
		t.Fatal("Remove reports wrongly")
	}
	if got := l.Names(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("names %q", got)
	}
	if in, ok := l.Lookup("a"); !ok || in.Size != 10 {
		t.Errorf("a = %+v, %v", in, ok)
	}
	if _, ok := l.Lookup("d"); ok || l.IsDir("d") {
		t.Error("d still there")
	}
	if e := l.At(1); e.Name != "b" || e.Info.Size != 2 {
		t.Errorf("At(1) = %+v", e)
	}
	if m := l.Children(); len(m) != 3 || m["c"].Size != 3 {
		t.Errorf("Children = %+v", m)
	}
}
