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
	"github.com/ocm-agent/ocm-agent/fuse/pinner"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// newPinCache opens a content cache for a test.
func newPinCache(t *testing.T) *contentcache.Cache {
	t.Helper()
	c, err := contentcache.Open(contentcache.Options{Dir: filepath.Join(t.TempDir(), "content"), MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// keptCopy returns the whole cached copy of share/p, or fails.
func keptCopy(t *testing.T, c *contentcache.Cache, share, p string) []byte {
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
	cache := newPinCache(t)
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
		if !bytes.Equal(keptCopy(t, cache, "s1", p), b) {
			t.Errorf("%s: cached copy differs", p)
		}
	}

	// A new version on the server: the refresh replaces the kept copy.
	newer := pattern(5000, 99)
	e.srv.write("/shares/docs/d1/f1.bin", newer)
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(e.srv.dir, "shares/docs/d1/f1.bin"), later, later)
	pn.Refresh(context.Background())
	if !bytes.Equal(keptCopy(t, cache, "s1", "d1/f1.bin"), newer) {
		t.Fatal("the refresh did not replace the changed file")
	}
	if ps, ok := pn.StateOf("s1", ""); !ok || ps.Err != "" || ps.Complete != len(files) {
		t.Errorf("pin state %+v", ps)
	}

	if _, err := pn.Pin(context.Background(), "s2", ""); err != nil {
		t.Fatalf("pin a file share: %v", err)
	}
	if got := keptCopy(t, cache, "s2", ""); string(got) != "single" {
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
	keptCopy(t, cache, "s1", "d0/f0.bin") // kept as ordinary cache
	if _, err := pn.Start(context.Background(), "nope", ""); err == nil {
		t.Error("an unknown share was pinned")
	}
}

// TestPinnedReadableOffline: a pinned folder stays readable through the
// mount, byte-exact, with its listings, once its server is stopped; a
// file outside the pin that was never read fails within the timeout
// instead.
func TestPinnedReadableOffline(t *testing.T) {
	cache := newPinCache(t)
	e := newEnv(t, func(o *Options) { o.Cache = cache })
	want := map[string][]byte{
		"Keep/a.bin":     pattern(3<<20+17, 1),
		"Keep/sub/b.txt": []byte("pinned and offline"),
		"Keep/empty":     {},
	}
	for p, b := range want {
		e.srv.write("/shares/proj/"+p, b)
	}
	e.srv.write("/shares/proj/Other/c.txt", []byte("never read"))
	e.fs.SetEntries([]Entry{e.folder("s1", "Project", "/shares/proj", false)})
	pn := e.fs.NewPinner(cache, t.TempDir())
	p, err := pn.Pin(context.Background(), "s1", "Keep")
	if err != nil || p.FilesDone != len(want) {
		t.Fatalf("pin: %+v %v", p, err)
	}
	// The mount has seen the root, so that it is known offline.
	if got := joined(listNames(t, e.path("Project"))); got != "Keep|Other" {
		t.Fatalf("root listing %q", got)
	}

	e.srv.stop()
	for p, b := range want {
		var got []byte
		err := within(t, 30*time.Second, "offline read of "+p, func() error {
			var err error
			got, err = os.ReadFile(e.path("Project", filepath.FromSlash(p)))
			return err
		})
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s offline: %d bytes, %v; want %d bytes byte-exact", p, len(got), err, len(b))
		}
	}
	if got := joined(listNames(t, e.path("Project", "Keep"))); got != "a.bin|empty|sub" {
		t.Errorf("offline listing of the pinned folder %q", got)
	}
	err = within(t, 30*time.Second, "offline read of an uncached file", func() error {
		_, err := os.ReadFile(e.path("Project", "Other", "c.txt"))
		return err
	})
	if err == nil {
		t.Error("a file never read nor pinned was read with its server stopped")
	}
}

// noChange is the mount as a pinner sees it, except that the mount does
// not hear of the versions stored: as when a listing under way when a new
// version was stored lands after it, or a listing is kept from an earlier
// run.
type noChange struct{ pinRemote }

func (noChange) Changed(string, string, vfs.Info) {}

// TestNewerCopyThanTheListingIsKept: the cache holds a complete copy of a
// newer version than the mount's listing names (within the metadata TTL).
// An open asks the server and reads the copy, without a GET; with the
// server stopped, it reads the copy too; neither drops it.
func TestNewerCopyThanTheListingIsKept(t *testing.T) {
	for _, c := range []struct{ offline, direct bool }{{false, true}, {true, true}, {false, false}} {
		offline := c.offline
		t.Run(fmt.Sprintf("offline=%v,direct=%v", c.offline, c.direct), func(t *testing.T) {
			cache := newPinCache(t)
			e := newEnv(t, func(o *Options) {
				o.Cache = cache
				o.MetadataTTL = time.Hour
				if c.direct {
					o.DirectReadMin = 1
				}
			})
			v1, v2 := pattern(70<<10, 1), pattern(90<<10, 2)
			e.srv.write("/shares/p/f.bin", v1)
			e.fs.SetEntries([]Entry{e.folder("s1", "P", "/shares/p", false)})
			if got := joined(listNames(t, e.path("P"))); got != "f.bin" {
				t.Fatalf("listing %q", got)
			}
			if _, err := os.Stat(e.path("P", "f.bin")); err != nil {
				t.Fatal(err)
			}
			e.srv.write("/shares/p/f.bin", v2)
			later := time.Now().Add(time.Hour)
			os.Chtimes(filepath.Join(e.srv.dir, "shares/p/f.bin"), later, later)
			pn := pinner.New(pinner.Options{Cache: cache, Client: e.fs.dav, Remote: noChange{pinRemote{e.fs}}, TempDir: t.TempDir()})
			if _, err := pn.Pin(context.Background(), "s1", "f.bin"); err != nil {
				t.Fatal(err)
			}
			if offline {
				e.srv.stop()
			}
			e.srv.resetLog()
			got, err := os.ReadFile(e.path("P", "f.bin"))
			if err != nil || !bytes.Equal(got, v2) {
				t.Fatalf("read %d bytes, %v; want the newer copy's %d", len(got), err, len(v2))
			}
			if n, _ := e.srv.count("GET", "/shares/p/f.bin"); n != 0 {
				t.Errorf("%d GETs: the copy was not read", n)
			}
			if !bytes.Equal(keptCopy(t, cache, "s1", "f.bin"), v2) {
				t.Error("the newer copy was dropped")
			}
		})
	}
}
