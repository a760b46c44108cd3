package ocmfs

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// A folder read soon after its parent starts the listings of its sibling
// folders in the background (a walk's read-ahead); a folder read alone does
// not.
func TestWalkAhead(t *testing.T) {
	e := newEnv(t)
	for i := range 6 {
		e.srv.write(fmt.Sprintf("/shares/tree/d%d/f.txt", i), []byte("x"))
	}
	e.srv.write("/shares/other/solo/f.txt", []byte("x"))
	e.srv.write("/shares/other/sibling/f.txt", []byte("x"))
	e.fs.SetEntries([]Entry{e.folder("s1", "Tree", "/shares/tree", false), e.folder("s2", "Other", "/shares/other", false)})

	if _, err := os.Stat(e.path("Other", "solo")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadDir(e.path("Other", "solo")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadDir(e.path("Tree")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadDir(e.path("Tree", "d0")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "sibling folders listed ahead", func() bool {
		for i := 1; i < 6; i++ {
			if n, _ := e.srv.count("PROPFIND", fmt.Sprintf("/shares/tree/d%d/", i)); n != 1 {
				return false
			}
		}
		return true
	})
	// Read now, they come from the cache.
	for i := 1; i < 6; i++ {
		if ents, err := os.ReadDir(e.path("Tree", fmt.Sprintf("d%d", i))); err != nil || len(ents) != 1 {
			t.Fatalf("d%d: %v %v", i, ents, err)
		}
		if n, _ := e.srv.count("PROPFIND", fmt.Sprintf("/shares/tree/d%d/", i)); n != 1 {
			t.Errorf("d%d listed %d times", i, n)
		}
	}
	if n, _ := e.srv.count("PROPFIND", "/shares/other/sibling/"); n != 0 {
		t.Errorf("a folder read without its parent listed its sibling (%d)", n)
	}
}
