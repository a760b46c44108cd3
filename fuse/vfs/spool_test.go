package vfs

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fileServer is a WebDAV server of plain files for GET and conditional PUT,
// with ETags that change with every write.
type fileServer struct {
	mu    sync.Mutex
	files map[string]string // path -> content
	etags map[string]string
	n     int
}

func newFileServer(t *testing.T) (*fileServer, *httptest.Server) {
	fs := &fileServer{files: map[string]string{}, etags: map[string]string{}}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return fs, srv
}

func (s *fileServer) put(p, content string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.files[p], s.etags[p] = content, `"e`+strconv.Itoa(s.n)+`"`
}

func (s *fileServer) get(p string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.files[p]
	return c, ok
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch r.Method {
	case http.MethodGet:
		s.mu.Lock()
		c, ok := s.files[p]
		etag := s.etags[p]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", etag)
		_, _ = io.WriteString(w, c)
	case http.MethodPut:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		s.mu.Lock()
		_, exists := s.files[p]
		ok := true
		if m := r.Header.Get("If-Match"); m != "" && (!exists || m != s.etags[p]) {
			ok = false
		}
		if r.Header.Get("If-None-Match") == "*" && exists {
			ok = false
		}
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusPreconditionFailed)
			return
		}
		s.put(p, string(body))
		s.mu.Lock()
		w.Header().Set("ETag", s.etags[p])
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

type testShare struct{ url string }

func (s testShare) ID() string   { return "s1" }
func (s testShare) Name() string { return "Docs" }
func (s testShare) Gone() bool   { return false }
func (s testShare) FileURL(segs []string) string {
	return s.url + "/" + strings.Join(segs, "/")
}

type bearer struct{}

func (bearer) Authorize(_ context.Context, _ string, r *http.Request) error {
	r.Header.Set("Authorization", "Bearer t")
	return nil
}
func (bearer) Invalidate(string) {}

// A file changed on the server while it was written here is kept twice: the
// server's version stays, the local one goes beside it under a name from
// the spool's clock. No kernel, no waiting on real time.
func TestSpoolConflictedCopyNamedByClock(t *testing.T) {
	files, srv := newFileServer(t)
	files.put("/dav/report.txt", "v1")
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sh := testShare{url: srv.URL + "/dav"}
	sp, err := OpenSpool(SpoolOptions{
		Dir:          t.TempDir(),
		LostFoundDir: t.TempDir(),
		Client:       NewClient(nil, bearer{}, 5*time.Second, DefaultMaxEntries, nil),
		Now:          func() time.Time { return clock },
		Share:        func(string) Share { return sh },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ctx := context.Background()
	segs := []string{"report.txt"}
	ws, err := sp.Acquire(ctx, sh, segs, true, false, Info{Size: 2, ETag: `"e1"`})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Release(ws)
	if _, err := ws.WriteAt([]byte("local"), 0); err != nil {
		t.Fatal(err)
	}
	if got := ws.Stat().Mtime; !got.Equal(clock) {
		t.Errorf("mtime of the local copy %v, want the clock's %v", got, clock)
	}
	files.put("/dav/report.txt", "remote") // someone else, meanwhile

	_, moved, err := ws.FlushAt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := "report (conflicted copy 2026-01-02 030405).txt"
	if len(moved) != 1 || moved[0] != want {
		t.Fatalf("local version went to %q, want %q", moved, want)
	}
	if c, _ := files.get("/dav/report.txt"); c != "remote" {
		t.Errorf("the server's version became %q", c)
	}
	if c, ok := files.get("/dav/" + want); !ok || c != "local" {
		t.Errorf("conflicted copy on the server: %q, %v", c, ok)
	}
	conf := sp.Conflicts()
	if len(conf) != 1 || !strings.HasPrefix(conf[0], "2026-01-02T03:04:05Z Docs/report.txt: ") {
		t.Errorf("conflicts reported: %q", conf)
	}
}

// Without a conflict the upload replaces exactly the version it started from.
func TestSpoolUploadIfMatch(t *testing.T) {
	files, srv := newFileServer(t)
	files.put("/dav/a.txt", "v1")
	sh := testShare{url: srv.URL + "/dav"}
	sp, err := OpenSpool(SpoolOptions{Dir: t.TempDir(), LostFoundDir: t.TempDir(),
		Client: NewClient(nil, bearer{}, 5*time.Second, DefaultMaxEntries, nil),
		Share:  func(string) Share { return sh }})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ctx := context.Background()
	ws, err := sp.Acquire(ctx, sh, []string{"a.txt"}, false, false, Info{Size: 2, ETag: `"e1"`})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Release(ws)
	if _, err := ws.WriteAt([]byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	in, moved, err := ws.FlushAt(ctx)
	if err != nil || moved != nil {
		t.Fatalf("flush: %v, moved to %q", err, moved)
	}
	if c, _ := files.get("/dav/a.txt"); c != "v2" || in.ETag != `"e2"` {
		t.Errorf("server has %q, etag %s", c, in.ETag)
	}
	// The server's file changed again: the next upload must not replace it.
	files.put("/dav/a.txt", "theirs")
	if _, err := ws.WriteAt([]byte("v3"), 0); err != nil {
		t.Fatal(err)
	}
	if _, moved, err := ws.FlushAt(ctx); err != nil || len(moved) != 1 {
		t.Fatalf("second flush: %v, moved to %q", err, moved)
	}
	if c, _ := files.get("/dav/a.txt"); c != "theirs" {
		t.Errorf("server's newer version overwritten: %q", c)
	}
}
