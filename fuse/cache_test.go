package ocmfs

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
)

const testBlock = 64 << 10

// cacheEnv is a mount with a content cache of max bytes in blocks of 64 KiB.
// Metadata is trusted for a nanosecond, so that every open asks the server
// (or finds it gone), and every file is read with direct I/O, so that each
// read reaches the mount instead of the kernel's page cache.
type cacheEnv struct {
	*env
	cache *contentcache.Cache
	dir   string

	mu      sync.Mutex
	offline map[string]bool // last OnShareOffline by share
}

func newCacheEnv(t *testing.T, max int64, tweak ...func(*Options)) *cacheEnv {
	t.Helper()
	ce := &cacheEnv{dir: filepath.Join(t.TempDir(), "content"), offline: map[string]bool{}}
	c, err := contentcache.Open(contentcache.Options{Dir: ce.dir, MaxBytes: max, BlockSize: testBlock})
	if err != nil {
		t.Fatal(err)
	}
	ce.cache = c
	t.Cleanup(func() { c.Close() })
	ce.env = newEnv(t, append([]func(*Options){func(o *Options) {
		o.Cache = c
		o.MetadataTTL = time.Nanosecond
		o.DirectReadMin = 1
		o.OnShareOffline = func(id string, offline bool) {
			ce.mu.Lock()
			ce.offline[id] = offline
			ce.mu.Unlock()
		}
	}}, tweak...)...)
	return ce
}

func (ce *cacheEnv) isOffline(id string) (offline, told bool) {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	offline, told = ce.offline[id]
	return offline, told
}

// readBack reads a file of the mount and fails the test unless it holds want.
func (ce *cacheEnv) readBack(want []byte, parts ...string) {
	ce.t.Helper()
	got, err := os.ReadFile(ce.path(parts...))
	if err != nil {
		ce.t.Fatalf("read %v: %v", parts, err)
	}
	if !bytes.Equal(got, want) {
		ce.t.Fatalf("read %v: %d bytes, not the file's %d", parts, len(got), len(want))
	}
}

// settle waits until the file at path of share s1 is complete in the cache
// and released by the mount (a read returns before what it fetched is
// stored; a close is told to the mount after the fact).
func (ce *cacheEnv) settle(path string) {
	ce.t.Helper()
	eventually(ce.t, 10*time.Second, "the file "+path+" stored and released", func() bool {
		if _, complete, _ := ce.cache.PinUsage("s1", path); complete != 1 {
			return false
		}
		for _, p := range cachedDataFiles(ce.t, ce.dir) {
			if openHere(ce.t, p) {
				return false
			}
		}
		return true
	})
}

// gets counts the GETs of a server path since the last resetLog, and their bytes.
func (ce *cacheEnv) gets(p string) (int, int64) { return ce.srv.count("GET", p) }

// A file read once is read again from the cache; with its server down it
// is still read, byte for byte, and so are the listings seen before; a
// file never read fails with EHOSTUNREACH (or ETIMEDOUT) within the
// timeout, and the share is told offline, then online when the server is
// back.
func TestCacheServesRereadsAndOffline(t *testing.T) {
	ce := newCacheEnv(t, 64<<20)
	a := pattern(1<<20+12345, 1)
	doc := pattern(300<<10, 2)
	ce.srv.write("/shares/p/a.bin", a)
	ce.srv.write("/shares/p/sub/b.txt", []byte("b"))
	ce.srv.write("/shares/p/unread.bin", pattern(200<<10, 3))
	ce.srv.write("/shares/p/other/c.txt", []byte("c"))
	ce.srv.write("/shares/doc.pdf", doc)
	ce.fs.SetEntries([]Entry{ce.folder("s1", "P", "/shares/p", false), ce.file("s2", "doc.pdf", "/shares/doc.pdf", false)})

	ce.readBack(a, "P", "a.bin")
	ce.readBack(doc, "doc.pdf")
	ce.settle("a.bin")
	if got := joined(listNames(t, ce.path("P", "sub"))); got != "b.txt" {
		t.Fatalf("sub lists %q", got)
	}
	ce.srv.resetLog()
	ce.readBack(a, "P", "a.bin")
	if n, _ := ce.gets("/shares/p/a.bin"); n != 0 {
		t.Errorf("a re-read sent %d GETs, want 0 (from the cache)", n)
	}

	ce.srv.stop()
	bound := ce.opts.Timeout + 10*time.Second
	if err := within(t, bound, "cached read with the server down", func() error {
		got, err := os.ReadFile(ce.path("P", "a.bin"))
		if err == nil && !bytes.Equal(got, a) {
			t.Errorf("offline read: %d bytes differ from the file", len(got))
		}
		return err
	}); err != nil {
		t.Fatalf("offline read of a cached file: %v", err)
	}
	if err := within(t, bound, "cached file share with the server down", func() error {
		got, err := os.ReadFile(ce.path("doc.pdf"))
		if err == nil && !bytes.Equal(got, doc) {
			t.Errorf("offline read of the file share: %d bytes differ", len(got))
		}
		return err
	}); err != nil {
		t.Fatalf("offline read of a cached file share: %v", err)
	}
	if got := joined(listNames(t, ce.path("P", "sub"))); got != "b.txt" {
		t.Errorf("offline, sub lists %q", got)
	}
	if got := listNames(t, ce.path("P")); !slices.Equal(got, []string{"a.bin", "other", "sub", "unread.bin"}) {
		t.Errorf("offline, P lists %q", got)
	}
	err := within(t, bound, "uncached read with the server down", func() error {
		_, err := os.ReadFile(ce.path("P", "unread.bin"))
		return err
	})
	if !isErrno(err, syscall.EHOSTUNREACH) && !isErrno(err, syscall.ETIMEDOUT) {
		t.Errorf("offline read of an uncached file: %v, want EHOSTUNREACH or ETIMEDOUT", err)
	}
	err = within(t, bound, "unvisited listing with the server down", func() error {
		_, err := os.ReadDir(ce.path("P", "other"))
		return err
	})
	if err == nil {
		t.Errorf("a folder never listed was listed with the server down")
	}
	if off, told := ce.isOffline("s1"); !off || !told {
		t.Errorf("share not told offline (told %v)", told)
	}

	ce.srv.start()
	eventually(t, 10*time.Second, "the uncached file is read once the server is back", func() bool {
		_, err := os.ReadFile(ce.path("P", "unread.bin"))
		return err == nil
	})
	eventually(t, 10*time.Second, "the share is told online", func() bool {
		off, told := ce.isOffline("s1")
		return told && !off
	})
}

// A new version on the server (its ETag changed) is read at the next
// open, and replaces the cached one.
func TestCacheReadsNewVersion(t *testing.T) {
	ce := newCacheEnv(t, 64<<20)
	v1, v2 := pattern(200<<10, 4), pattern(200<<10, 5)
	ce.srv.write("/shares/p/f.bin", v1)
	ce.fs.SetEntries([]Entry{ce.folder("s1", "P", "/shares/p", false)})
	ce.readBack(v1, "P", "f.bin")
	ce.settle("f.bin")
	ce.srv.resetLog()
	ce.readBack(v1, "P", "f.bin")
	if n, _ := ce.gets("/shares/p/f.bin"); n != 0 {
		t.Fatalf("re-read sent %d GETs, want 0", n)
	}
	ce.srv.write("/shares/p/f.bin", v2)
	// a new mtime, so a new ETag, even within the clock's granularity
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(ce.srv.dir, "shares/p/f.bin"), later, later); err != nil {
		t.Fatal(err)
	}
	ce.readBack(v2, "P", "f.bin")
	if n, _ := ce.gets("/shares/p/f.bin"); n == 0 {
		t.Fatalf("the new version was not fetched")
	}
	ce.settle("f.bin")
	ce.srv.resetLog()
	ce.readBack(v2, "P", "f.bin")
	if n, _ := ce.gets("/shares/p/f.bin"); n != 0 {
		t.Errorf("re-read of the new version sent %d GETs, want 0", n)
	}
	if u := ce.cache.Usage(); u.Files != 1 || u.Bytes != int64(len(v2)) {
		t.Errorf("cache holds %d files, %d bytes; want the new version only", u.Files, u.Bytes)
	}
}

// cachedDataFiles lists the data files of the cache directory.
func cachedDataFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "files", "*.data"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A cached block damaged on disk is not served: it is fetched again (that
// block and what follows it in the read, not the whole file), and the
// bytes read are the file's.
func TestCacheCorruptBlockIsRefetched(t *testing.T) {
	ce := newCacheEnv(t, 64<<20)
	data := pattern(6*testBlock+100, 6)
	ce.srv.write("/shares/p/f.bin", data)
	ce.fs.SetEntries([]Entry{ce.folder("s1", "P", "/shares/p", false)})
	ce.readBack(data, "P", "f.bin")
	// stored, and closed in the mount: a new open checks the blocks again
	ce.settle("f.bin")
	files := cachedDataFiles(t, ce.dir)
	if len(files) != 1 {
		t.Fatalf("%d data files in the cache", len(files))
	}
	fh, err := os.OpenFile(files[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(4*testBlock + 77)
	b := []byte{data[off] ^ 0x20}
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	fh.Close()

	ce.srv.resetLog()
	ce.readBack(data, "P", "f.bin")
	n, sent := ce.gets("/shares/p/f.bin")
	if n == 0 {
		t.Fatalf("the damaged block was not fetched again")
	}
	if sent > 3*testBlock {
		t.Errorf("%d bytes fetched again for one damaged block of %d", sent, testBlock)
	}
	ce.srv.resetLog()
	ce.readBack(data, "P", "f.bin")
	if n, _ := ce.gets("/shares/p/f.bin"); n != 0 {
		t.Errorf("after the refetch, a re-read sent %d GETs", n)
	}
}

// A workload larger than the cache keeps it within its limit, on disk
// too; the latest files stay, the first ones went; everything is private.
func TestCacheLimitAndPrivacy(t *testing.T) {
	const max = 512 << 10
	ce := newCacheEnv(t, max)
	const files, size = 12, 200 << 10
	for i := range files {
		ce.srv.write("/shares/p/f"+string(rune('a'+i)), pattern(size, byte(10+i)))
	}
	ce.fs.SetEntries([]Entry{ce.folder("s1", "P", "/shares/p", false)})
	for i := range files {
		ce.readBack(pattern(size, byte(10+i)), "P", "f"+string(rune('a'+i)))
		ce.settle("f" + string(rune('a'+i)))
		if u := ce.cache.Usage(); u.Bytes > max {
			t.Fatalf("after %d files the cache holds %d bytes > %d", i+1, u.Bytes, max)
		}
		var onDisk int64
		for _, p := range cachedDataFiles(t, ce.dir) {
			var st syscall.Stat_t
			if err := syscall.Stat(p, &st); err == nil {
				onDisk += st.Blocks * 512
			}
		}
		if onDisk > max+files*4096 {
			t.Fatalf("after %d files the cache uses %d bytes on disk > %d", i+1, onDisk, max)
		}
	}
	ce.srv.resetLog()
	last := "f" + string(rune('a'+files-1))
	ce.readBack(pattern(size, byte(10+files-1)), "P", last)
	if n, _ := ce.gets("/shares/p/" + last); n != 0 {
		t.Errorf("the latest file was evicted (%d GETs)", n)
	}
	// The kernel's page cache may still answer a re-read of fa: the
	// content cache is asked directly.
	if cf, _, _, ok := ce.cache.Stored(contentcache.Key{Share: "s1", Path: "fa"}); ok {
		complete := cf.Complete()
		cf.Release()
		if complete {
			t.Errorf("the first file is still cached beyond the limit")
		}
	}

	err := filepath.WalkDir(ce.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// With the server down, a file written in a share goes to the spool (close
// fails), and is uploaded once the server is back.
func TestCacheOfflineWritesStayInSpool(t *testing.T) {
	old := retryInterval
	retryInterval = 200 * time.Millisecond
	t.Cleanup(func() { retryInterval = old })
	ce := newCacheEnv(t, 64<<20)
	ce.srv.write("/shares/rw/.keep", nil)
	ce.fs.SetEntries([]Entry{ce.folder("s1", "RW", "/shares/rw", true)})
	if _, err := os.ReadDir(ce.path("RW")); err != nil {
		t.Fatal(err)
	}
	ce.srv.stop()
	data := pattern(100<<10, 7)
	err := within(t, ce.opts.Timeout+10*time.Second, "write with the server down", func() error {
		return os.WriteFile(ce.path("RW", "new.txt"), data, 0o644)
	})
	if err == nil {
		t.Fatal("the upload succeeded with the server down")
	}
	if p := ce.fs.PendingUploads(); len(p) != 1 {
		t.Fatalf("pending uploads: %q", p)
	}
	ce.srv.start()
	eventually(t, 15*time.Second, "the spooled file reaches the server", func() bool {
		got, err := ce.srv.read("/shares/rw/new.txt")
		return err == nil && bytes.Equal(got, data)
	})
}

// A folder whose listing is not stored for offline use (too large here;
// or not stored yet, as storing runs in the background) still answers from
// the listing the mount holds in memory when its server goes away: a new
// file can be written into it, and waits in the spool.
func TestCacheOfflineUsesTheListingInMemory(t *testing.T) {
	old := maxOfflineEntries
	maxOfflineEntries = 20
	t.Cleanup(func() { maxOfflineEntries = old })
	ce := newCacheEnv(t, 64<<20)
	dir := filepath.Join(ce.srv.dir, "shares/big")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range maxOfflineEntries + 1 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ce.fs.SetEntries([]Entry{ce.folder("s1", "Big", "/shares/big", true)})
	if l, err := os.ReadDir(ce.path("Big")); err != nil || len(l) != maxOfflineEntries+1 {
		t.Fatalf("listing: %d entries, %v", len(l), err)
	}
	ce.srv.stop()
	data := pattern(10<<10, 3)
	err := within(t, ce.opts.Timeout+10*time.Second, "write with the server down", func() error {
		return os.WriteFile(ce.path("Big", "new.txt"), data, 0o644)
	})
	if err == nil {
		t.Fatal("the upload succeeded with the server down")
	}
	if p := ce.fs.PendingUploads(); len(p) != 1 {
		t.Fatalf("pending uploads: %q (the write failed with %v)", p, err)
	}
	if fi, err := os.Stat(ce.path("Big", "f07")); err != nil || fi.IsDir() {
		t.Fatalf("a listed file while offline: %v", err)
	}
}

// openHere reports whether this process has path open.
func openHere(t *testing.T, path string) bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && l == path {
			return true
		}
	}
	return false
}

// What a GET brings is stored only if it is the version the file was
// opened at: an answer with another ETag (the file changed since) is read
// but not kept.
func TestCacheStoresOnlyTheVersionOpened(t *testing.T) {
	ce := newCacheEnv(t, 64<<20)
	data := pattern(300<<10, 8)
	ce.srv.write("/shares/p/f.bin", data)
	ce.fs.SetEntries([]Entry{ce.folder("s1", "P", "/shares/p", false)})
	full := filepath.Join(ce.srv.dir, "shares/p/f.bin")
	ce.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet {
				return false
			}
			fh, err := os.Open(full)
			if err != nil {
				return false
			}
			defer fh.Close()
			w.Header().Set("ETag", `"another-version"`)
			http.ServeContent(w, r, "f.bin", time.Time{}, fh)
			return true
		}
	})
	ce.readBack(data, "P", "f.bin")
	eventually(t, 10*time.Second, "the cached file released", func() bool {
		m := cachedDataFiles(t, ce.dir)
		return len(m) == 0 || !openHere(t, m[0])
	})
	if u := ce.cache.Usage(); u.Bytes != 0 {
		t.Fatalf("%d bytes of another version stored", u.Bytes)
	}
	ce.srv.set(func(s *davServer) { s.intercept = nil })
	ce.readBack(data, "P", "f.bin")
	eventually(t, 10*time.Second, "the version opened stored", func() bool { return ce.cache.Usage().Bytes == int64(len(data)) })
}

// Once a share is offline, a folder listed before is listed at once from
// the cache, not after the timeout, even when its server hangs; when the
// server answers again the share is told online.
func TestCacheOfflineListingsDoNotWait(t *testing.T) {
	ce := newCacheEnv(t, 64<<20, func(o *Options) { o.Timeout = 5 * time.Second })
	ce.srv.write("/shares/p/sub/b.txt", []byte("b"))
	ce.fs.SetEntries([]Entry{ce.folder("s1", "P", "/shares/p", false)})
	if got := joined(listNames(t, ce.path("P", "sub"))); got != "b.txt" {
		t.Fatalf("sub lists %q", got)
	}
	hang := make(chan struct{})
	ce.srv.set(func(s *davServer) { s.hang = hang })
	unhang := sync.OnceFunc(func() { close(hang) })
	defer unhang()
	// The first listing waits for the server, up to the timeout, then
	// falls back on the cache: the share is offline.
	bound := ce.opts.Timeout + 10*time.Second
	if err := within(t, bound, "the first listing with the server hanging", func() error {
		_, err := os.ReadDir(ce.path("P", "sub"))
		return err
	}); err != nil {
		t.Fatalf("listing a visited folder with the server hanging: %v", err)
	}
	eventually(t, 10*time.Second, "the share told offline", func() bool { off, _ := ce.isOffline("s1"); return off })
	for range 3 {
		start := time.Now()
		if got := joined(listNames(t, ce.path("P", "sub"))); got != "b.txt" {
			t.Fatalf("offline, sub lists %q", got)
		}
		if took := time.Since(start); took >= ce.opts.Timeout {
			t.Fatalf("an offline listing took %v: it waited for the server", took)
		}
	}
	unhang()
	eventually(t, 15*time.Second, "the share told online once its server answers", func() bool {
		listNames(t, ce.path("P", "sub")) // offline listings start the probes
		off, told := ce.isOffline("s1")
		return told && !off
	})
}

// A folder listed again the same is not encoded and stored again for
// offline use (only looked at), not even by a new mount over the same
// cache; one that changed is, and its new entry is what an offline listing
// shows.
func TestCacheUnchangedListingNotStoredAgain(t *testing.T) {
	var mu sync.Mutex
	var kept []bool // of folder sub: stored or only looked at
	onKept := func(dir string, stored bool) {
		if dir == "sub" {
			mu.Lock()
			kept = append(kept, stored)
			mu.Unlock()
		}
	}
	hook := func(f *FS) { f.onKept.Store(&onKept) }
	ce := newCacheEnv(t, 64<<20)
	hook(ce.fs)
	ce.srv.write("/shares/p/sub/a.txt", []byte("a"))
	ce.fs.SetEntries([]Entry{ce.folder("s1", "P", "/shares/p", false)})
	// list lists sub and returns whether keepListing stored it.
	list := func(want string) bool {
		t.Helper()
		mu.Lock()
		n := len(kept)
		mu.Unlock()
		if got := joined(listNames(t, ce.path("P", "sub"))); got != want {
			t.Fatalf("sub lists %q, want %q", got, want)
		}
		var stored bool
		eventually(t, 10*time.Second, "the listing of sub looked at for offline use", func() bool {
			mu.Lock()
			defer mu.Unlock()
			if len(kept) > n {
				stored = kept[n]
				return true
			}
			return false
		})
		return stored
	}
	if !list("a.txt") {
		t.Fatal("the first listing of sub was not stored for offline use")
	}
	for range 3 {
		// Metadata is trusted for a nanosecond: listed again.
		if list("a.txt") {
			t.Fatal("the same listing was encoded and stored again")
		}
	}
	ce.srv.write("/shares/p/sub/b.txt", []byte("b"))
	if !list("a.txt|b.txt") {
		t.Fatal("the changed listing was not stored")
	}
	if l := ce.fs.storedListing(ce.fs.shareByID("s1"), []string{"sub"}); l == nil || joined(l.Names()) != "a.txt|b.txt" {
		t.Fatalf("the stored listing is %+v", l)
	}

	// A new mount (as after a restart) finds the listing stored already.
	if err := ce.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	ce.mount()
	hook(ce.fs)
	ce.fs.SetEntries([]Entry{ce.folder("s1", "P", "/shares/p", false)})
	if list("a.txt|b.txt") {
		t.Fatal("a new mount encoded and stored again the listing the cache holds")
	}
}
