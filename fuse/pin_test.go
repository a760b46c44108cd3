package ocmfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
)

// openCache opens a content cache for a test.
func openCache(t *testing.T) *contentcache.Cache {
	t.Helper()
	c, err := contentcache.Open(contentcache.Options{Dir: filepath.Join(t.TempDir(), "content"), MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// cachedCopy returns the whole cached copy of share/p, or fails.
func cachedCopy(t *testing.T, c *contentcache.Cache, share, p string) []byte {
	t.Helper()
	f, _, size, ok := c.Stored(contentcache.Key{Share: share, Path: p})
	if !ok {
		t.Fatalf("%s/%s is not in the cache", share, p)
	}
	defer f.Release()
	buf := make([]byte, size)
	if n, ok := f.ReadAt(buf, 0); !ok || int64(n) != size {
		t.Fatalf("%s/%s: %d of %d bytes cached (ok=%v)", share, p, n, size, ok)
	}
	return buf
}

// TestPinOverTheMount: pinning a folder share of the mount downloads every
// file of it (progress reaching the totals), a file changed on the server
// is replaced by the refresh, a single-file share pins too, and unpinning
// leaves the content as ordinary cache.
func TestPinOverTheMount(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{}
	var total int64
	for i := range 12 {
		p := fmt.Sprintf("d%d/f%d.bin", i%4, i)
		files[p] = pattern(3000*i+1, byte(i))
		total += int64(len(files[p]))
		e.srv.write("/shares/docs/"+p, files[p])
	}
	e.srv.write("/shares/one.txt", []byte("single"))
	e.fs.SetEntries([]Entry{e.folder("s1", "Docs", "/shares/docs", false), e.file("s2", "one.txt", "/shares/one.txt", false)})
	cache := openCache(t)
	pn := e.fs.NewPinner(cache, t.TempDir())

	j, err := pn.Start(context.Background(), "s1", "")
	if err != nil {
		t.Fatal(err)
	}
	<-j.Done()
	st := j.State()
	if st.Err != nil || !st.Listed || st.Files != len(files) || st.FilesDone != len(files) || st.Bytes != total || st.BytesDone != total {
		t.Fatalf("job %+v (%v); want %d files and %d bytes done", st.Progress, st.Err, len(files), total)
	}
	for p, b := range files {
		if !bytes.Equal(cachedCopy(t, cache, "s1", p), b) {
			t.Errorf("%s: cached copy differs", p)
		}
	}

	// A new version on the server: the refresh replaces the kept copy.
	newer := pattern(5000, 99)
	e.srv.write("/shares/docs/d1/f1.bin", newer)
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(e.srv.dir, "shares/docs/d1/f1.bin"), later, later)
	pn.Refresh(context.Background())
	if !bytes.Equal(cachedCopy(t, cache, "s1", "d1/f1.bin"), newer) {
		t.Fatal("the refresh did not replace the changed file")
	}
	if ps, ok := pn.StateOf("s1", ""); !ok || ps.Err != "" || ps.Complete != len(files) {
		t.Errorf("pin state %+v", ps)
	}

	if _, err := pn.Pin(context.Background(), "s2", ""); err != nil {
		t.Fatalf("pin a file share: %v", err)
	}
	if got := cachedCopy(t, cache, "s2", ""); string(got) != "single" {
		t.Errorf("file share cached %q", got)
	}
	if _, err := pn.Pin(context.Background(), "s2", "x"); err == nil {
		t.Error("a path inside a file share was accepted")
	}

	if err := pn.Unpin("s1", ""); err != nil {
		t.Fatal(err)
	}
	if cache.Pinned(contentcache.Key{Share: "s1", Path: "d0/f0.bin"}) {
		t.Error("still pinned after unpin")
	}
	cachedCopy(t, cache, "s1", "d0/f0.bin") // kept as ordinary cache
	if _, err := pn.Start(context.Background(), "nope", ""); err == nil {
		t.Error("an unknown share was pinned")
	}
}
