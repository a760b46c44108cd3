package pinner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"golang.org/x/net/webdav"
)

// server is a real WebDAV server on loopback over a directory; it can be
// stopped, and counts the GETs.
type server struct {
	dir  string
	url  string
	srv  *http.Server
	gets atomic.Int64
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{dir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &webdav.Handler{FileSystem: webdav.Dir(s.dir), LockSystem: webdav.NewMemLS()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet {
			s.gets.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	go s.srv.Serve(ln)
	s.url = "http://" + ln.Addr().String() + "/"
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *server) write(t *testing.T, p string, data []byte) {
	t.Helper()
	full := filepath.Join(s.dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

type auth struct{}

func (auth) Invalidate(string) {}

func (auth) Authorize(_ context.Context, _ string, r *http.Request) error {
	r.Header.Set("Authorization", "Bearer t")
	return nil
}

// remote serves one share, "s1", from the server's root.
type remote struct {
	c   *vfs.Client
	url string
}

func (r remote) Root(ctx context.Context, share string) (string, bool, error) {
	if share != "s1" {
		return "", false, vfs.ErrShareGone
	}
	return r.url, true, nil
}

func (r remote) List(ctx context.Context, share, dir, u string) (*vfs.Listing, error) {
	l, _, err := r.c.Propfind(ctx, share, u, "1", nil)
	return l, err
}

func (r remote) Changed(string, string, vfs.Info) {}

type fixture struct {
	srv   *server
	cache *contentcache.Cache
	pn    *Pinner
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := newServer(t)
	cache, err := contentcache.Open(contentcache.Options{Dir: filepath.Join(t.TempDir(), "cache"), MaxBytes: 1 << 30, BlockSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	c := vfs.NewClient(nil, auth{}, 5*time.Second, 10000, nil)
	pn := New(Options{Cache: cache, Client: c, Remote: remote{c, s.url}, TempDir: t.TempDir()})
	return &fixture{srv: s, cache: cache, pn: pn}
}

func content(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// cached returns the whole cached copy of p, or fails.
func (f *fixture) cached(t *testing.T, p string) []byte {
	t.Helper()
	file, _, size, ok := f.cache.Stored(contentcache.Key{Share: "s1", Path: p})
	if !ok {
		t.Fatalf("%s is not in the cache", p)
	}
	defer file.Release()
	buf := make([]byte, size)
	n, ok := file.ReadAt(buf, 0)
	if !ok || int64(n) != size {
		t.Fatalf("%s: the cache gave %d of %d bytes (ok=%v)", p, n, size, ok)
	}
	return buf
}

// TestPinKeepsEveryFile: pinning a folder downloads every file below it,
// in nested folders, whole and byte-exact; the progress reaches the
// totals; files outside the pin are left alone.
func TestPinKeepsEveryFile(t *testing.T) {
	f := newFixture(t)
	want := map[string][]byte{}
	for i := range 20 {
		p := fmt.Sprintf("Docs/sub%d/f%02d.bin", i%3, i)
		want[p] = content(1000*i+7, byte(i))
		f.srv.write(t, p, want[p])
	}
	f.srv.write(t, "Docs/empty.txt", nil)
	want["Docs/empty.txt"] = []byte{}
	f.srv.write(t, "Other/not-pinned.txt", []byte("x"))
	var total int64
	for _, b := range want {
		total += int64(len(b))
	}

	j, err := f.pn.Start(context.Background(), "s1", "/Docs/")
	if err != nil {
		t.Fatal(err)
	}
	<-j.Done()
	st := j.State()
	if st.Err != nil {
		t.Fatal(st.Err)
	}
	if !st.Listed || st.Files != len(want) || st.FilesDone != len(want) || st.Bytes != total || st.BytesDone != total || st.Fetched != total {
		t.Fatalf("progress %+v; want %d files and %d bytes, all done and fetched", st.Progress, len(want), total)
	}
	for p, b := range want {
		if got := f.cached(t, p); !bytes.Equal(got, b) {
			t.Errorf("%s: the cached copy differs", p)
		}
	}
	if _, _, _, ok := f.cache.Stored(contentcache.Key{Share: "s1", Path: "Other/not-pinned.txt"}); ok {
		t.Error("a file outside the pin was downloaded")
	}
	if !f.cache.Pinned(contentcache.Key{Share: "s1", Path: "Docs/sub1/f01.bin"}) {
		t.Error("the folder is not pinned in the cache")
	}
	// Pinning again fetches nothing.
	gets := f.srv.gets.Load()
	p, err := f.pn.Pin(context.Background(), "s1", "Docs")
	if err != nil || p.Fetched != 0 || p.FilesDone != len(want) || f.srv.gets.Load() != gets {
		t.Fatalf("second pin: %+v, %v, %d GETs; want all done with nothing fetched", p, err, f.srv.gets.Load()-gets)
	}
}

// TestRefreshReplacesChangedFiles: a file changed on the server (new
// ETag) is fetched again by Refresh and replaces the kept copy; the
// others are not fetched again.
func TestRefreshReplacesChangedFiles(t *testing.T) {
	f := newFixture(t)
	f.srv.write(t, "a.txt", content(300<<10, 1))
	f.srv.write(t, "b.txt", content(10, 2))
	if _, err := f.pn.Pin(context.Background(), "s1", ""); err != nil {
		t.Fatal(err)
	}
	newer := content(200<<10, 9)
	f.srv.write(t, "a.txt", newer)
	// The mtime is part of x/net/webdav's ETag: make sure it moved.
	os.Chtimes(filepath.Join(f.srv.dir, "a.txt"), time.Now(), time.Now().Add(time.Hour))
	gets := f.srv.gets.Load()
	f.pn.Refresh(context.Background())
	if got := f.cached(t, "a.txt"); !bytes.Equal(got, newer) {
		t.Fatalf("the refreshed copy is not the new version (%d bytes)", len(got))
	}
	if n := f.srv.gets.Load() - gets; n != 1 {
		t.Errorf("%d GETs for one changed file", n)
	}
	st, ok := f.pn.StateOf("s1", "")
	if !ok || st.Files != 2 || st.Complete != 2 || st.Refreshed.IsZero() || st.Err != "" {
		t.Errorf("state %+v, %v", st, ok)
	}
}

// TestRefreshOfflineKeepsPins: with the server gone, Refresh says the
// pin is offline and keeps its content.
func TestRefreshOfflineKeepsPins(t *testing.T) {
	f := newFixture(t)
	data := content(5000, 3)
	f.srv.write(t, "d/x.bin", data)
	if _, err := f.pn.Pin(context.Background(), "s1", "d/x.bin"); err != nil {
		t.Fatal(err)
	}
	f.srv.srv.Close()
	f.pn.Refresh(context.Background())
	st, _ := f.pn.StateOf("s1", "d/x.bin")
	if !st.Offline || st.Err == "" {
		t.Errorf("state %+v; want offline with the error", st)
	}
	if got := f.cached(t, "d/x.bin"); !bytes.Equal(got, data) {
		t.Error("the kept copy changed")
	}
}

// TestPinBadInput: a path not in the share, a bad path and an unknown
// share fail at once and pin nothing.
func TestPinBadInput(t *testing.T) {
	f := newFixture(t)
	f.srv.write(t, "real/file", []byte("x"))
	for _, c := range []struct{ share, path string }{{"s1", "nope"}, {"s1", "real/nope"}, {"s1", "a/../b"}, {"s2", ""}, {"s1", "nodir/x"}} {
		if _, err := f.pn.Start(context.Background(), c.share, c.path); err == nil {
			t.Errorf("%s %q: no error", c.share, c.path)
		}
	}
	if _, err := f.pn.Start(context.Background(), "s1", "real/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing file: %v; want ErrNotFound", err)
	}
	if pins := f.cache.Pins(); len(pins) != 0 {
		t.Errorf("pins %v after bad input", pins)
	}
	if err := f.pn.Unpin("s1", "real"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unpin of what is not pinned: %v", err)
	}
}

// TestUnpin: the pin goes, the content stays as ordinary cache.
func TestUnpin(t *testing.T) {
	f := newFixture(t)
	f.srv.write(t, "k/a", []byte("hello"))
	if _, err := f.pn.Pin(context.Background(), "s1", "k"); err != nil {
		t.Fatal(err)
	}
	if err := f.pn.Unpin("s1", "/k"); err != nil {
		t.Fatal(err)
	}
	if f.cache.Pinned(contentcache.Key{Share: "s1", Path: "k/a"}) || len(f.cache.Pins()) != 0 {
		t.Error("still pinned")
	}
	if got := f.cached(t, "k/a"); string(got) != "hello" {
		t.Errorf("content %q", got)
	}
	if strings.Contains(fmt.Sprint(f.cache.Pins()), "k") {
		t.Error("pin listed")
	}
}

// TestPinContinuesAPartialCopy: the blocks an interrupted download stored
// are kept; only the rest is fetched, with a range request.
func TestPinContinuesAPartialCopy(t *testing.T) {
	f := newFixture(t)
	data := content(5*(64<<10)+100, 4)
	f.srv.write(t, "big.bin", data)
	fi, err := os.Stat(filepath.Join(f.srv.dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	etag := fmt.Sprintf(`"%x%x"`, fi.ModTime().UnixNano(), fi.Size()) // x/net/webdav's
	cf, err := f.cache.File(contentcache.Key{Share: "s1", Path: "big.bin"}, etag, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.WriteAt(data[:2*(64<<10)], 0); err != nil {
		t.Fatal(err)
	}
	cf.Release()
	p, err := f.pn.Pin(context.Background(), "s1", "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(data) - 2*(64<<10)); p.Fetched != want || p.BytesDone != int64(len(data)) {
		t.Fatalf("fetched %d, done %d; want %d fetched, all done", p.Fetched, p.BytesDone, want)
	}
	if got := f.cached(t, "big.bin"); !bytes.Equal(got, data) {
		t.Fatal("the cached copy differs")
	}
}
