package ocmfs

import (
	"fmt"
	"os"
	"strings"
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
	// The walker goes in the order readdir gives (the server's, here).
	dh, err := os.Open(e.path("Tree"))
	if err != nil {
		t.Fatal(err)
	}
	order, err := dh.Readdirnames(-1)
	dh.Close()
	if err != nil || len(order) != 6 {
		t.Fatalf("readdir: %q %v", order, err)
	}
	if _, err := os.ReadDir(e.path("Tree", order[0])); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "sibling folders listed ahead", func() bool {
		for _, d := range order[1:] {
			if n, _ := e.srv.count("PROPFIND", "/shares/tree/"+d+"/"); n != 1 {
				return false
			}
		}
		return true
	})
	// Read now, they come from the cache.
	for _, d := range order[1:] {
		if ents, err := os.ReadDir(e.path("Tree", d)); err != nil || len(ents) != 1 {
			t.Fatalf("%s: %v %v", d, ents, err)
		}
		if n, _ := e.srv.count("PROPFIND", "/shares/tree/"+d+"/"); n != 1 {
			t.Errorf("%s listed %d times", d, n)
		}
	}
	if n, _ := e.srv.count("PROPFIND", "/shares/other/sibling/"); n != 0 {
		t.Errorf("a folder read without its parent listed its sibling (%d)", n)
	}
}

// A warm readdir is answered by the kernel (it keeps the listing's version
// it was given); a folder that changed on the server shows its new entries
// on every readdir after the TTL, never the kernel's old copy.
func TestKernelKeepsReaddir(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MetadataTTL = 300 * time.Millisecond })
	e.srv.write("/shares/k/a.txt", []byte("a"))
	e.srv.write("/shares/k/b.txt", []byte("b"))
	e.fs.SetEntries([]Entry{e.folder("s1", "K", "/shares/k", false)})
	readdirs := func() int { return strings.Count(e.logs.String(), "op=dirh.Readdirent") }
	list := func(want string) {
		t.Helper()
		if got := joined(listNames(t, e.path("K"))); got != want {
			t.Fatalf("listing = %q, want %q", got, want)
		}
	}
	list("a.txt|b.txt")
	list("a.txt|b.txt")
	before := readdirs()
	list("a.txt|b.txt")
	if n := readdirs() - before; n != 0 {
		t.Errorf("a warm readdir reached the agent (%d log lines)", n)
	}
	// The folder keeps its modification time: the kernel's own check of
	// its copy cannot see the change.
	dir := e.srv.dir + "/shares/k"
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.write("/shares/k/c.txt", []byte("c"))
	if err := os.Remove(dir + "/a.txt"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // outlive the TTL (real time: the kernel's cache has no other clock)
	for range 4 {
		list("b.txt|c.txt")
	}
}
