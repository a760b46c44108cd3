package ocmfs

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// TestNodeSize pins the memory of a file node, of which the mount keeps
// one for every entry the kernel looked up (ls -l looks up all of a
// folder's): 208 bytes, of which go-fuse's Inode takes 128, where it was
// 344 with the open state and the whole Info in every node.
func TestNodeSize(t *testing.T) {
	if s := unsafe.Sizeof(fileNode{}); s > 208 {
		t.Errorf("fileNode is %d bytes, want <= 208", s)
	}
}

// TestLargeListingFreesItsGarbage: once a readdir of a large folder has
// handed out its last entry, the garbage the listing made is collected and
// its memory returned (a forced collection), not left resident until the
// heap doubles.
func TestLargeListingFreesItsGarbage(t *testing.T) {
	old := largeListing
	largeListing = 50 // a large folder, made small for the test
	t.Cleanup(func() { largeListing = old })
	e := newEnv(t)
	for i := range 60 {
		e.srv.write(fmt.Sprintf("/shares/big/f%02d", i), []byte("x"))
	}
	e.fs.SetEntries([]Entry{e.folder("s1", "Big", "/shares/big", false)})
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	forced := ms.NumForcedGC
	if ents, err := os.ReadDir(e.path("Big")); err != nil || len(ents) != 60 {
		t.Fatalf("readdir: %d entries, %v", len(ents), err)
	}
	eventually(t, 10*time.Second, "a collection after the large listing", func() bool {
		runtime.ReadMemStats(&ms)
		return ms.NumForcedGC > forced
	})
}
