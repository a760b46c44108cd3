package ocmfs

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/webdav"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// rootHooks records what OnShareRoot and OnShareKind heard.
type rootHooks struct {
	mu     sync.Mutex
	root   []int
	kind   []bool
	failOn func(r *http.Request) bool // answered 500
}

func (h *rootHooks) roots() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.root...)
}

func (h *rootHooks) kinds() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bool(nil), h.kind...)
}

// TestShareRootHooks: a folder the entry calls a file is reported as a
// folder once; server errors for the share root are reported (not those
// below it), fresh credentials are asked for once per run of errors, and
// the first success after them is reported.
func TestShareRootHooks(t *testing.T) {
	testenv.FUSE(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "team"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.txt", "b.txt"} {
		if err := os.WriteFile(filepath.Join(dir, "team", n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := &rootHooks{}
	dav := &webdav.Handler{FileSystem: webdav.Dir(dir), LockSystem: webdav.NewMemLS()}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		fail := h.failOn != nil && h.failOn(r)
		h.mu.Unlock()
		if fail {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		dav.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	auth := &testAuth{token: "t"}
	mnt := filepath.Join(t.TempDir(), "OCM")
	f, err := Mount(context.Background(), Options{
		Dir: mnt, SpoolDir: t.TempDir(), Timeout: 2 * time.Second, MetadataTTL: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		OnShareRoot: func(id string, status int) {
			h.mu.Lock()
			h.root = append(h.root, status)
			h.mu.Unlock()
		},
		OnShareKind: func(id string, dir bool) {
			h.mu.Lock()
			h.kind = append(h.kind, dir)
			h.mu.Unlock()
		},
	}, auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Unmount() })
	// Nextcloud's word: a "file".
	f.SetEntries([]Entry{{ID: "s1", Name: "team", Origin: "alice@cloud.example", URL: srv.URL + "/team"}})

	if b, err := os.ReadFile(filepath.Join(mnt, "team", "a.txt")); err != nil || string(b) != "a.txt" {
		t.Fatalf("read through a folder sent as a file: %q, %v", b, err)
	}
	eventually(t, 5*time.Second, "the folder reported", func() bool { return len(h.kinds()) > 0 })
	if k := h.kinds(); len(k) != 1 || !k[0] {
		t.Fatalf("kind reports %v, want one folder", k)
	}

	// A failing file below the root is the file's problem.
	h.mu.Lock()
	h.failOn = func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/b.txt") }
	h.mu.Unlock()
	os.ReadFile(filepath.Join(mnt, "team", "b.txt"))
	if r := h.roots(); len(r) != 0 {
		t.Fatalf("an error below the root was reported for the root: %v", r)
	}

	h.mu.Lock()
	h.failOn = func(r *http.Request) bool { return true }
	h.mu.Unlock()
	before := auth.invalidations()
	eventually(t, 10*time.Second, "three root errors", func() bool {
		os.ReadDir(filepath.Join(mnt, "team"))
		return len(h.roots()) >= 3
	})
	for _, st := range h.roots() {
		if st != http.StatusInternalServerError {
			t.Fatalf("root reports %v", h.roots())
		}
	}
	if n := auth.invalidations() - before; n != 1 {
		t.Fatalf("%d credential renewals for one run of server errors, want 1", n)
	}

	h.mu.Lock()
	h.failOn = nil
	h.mu.Unlock()
	successes := func() int {
		c := 0
		for _, st := range h.roots() {
			if st < 300 {
				c++
			}
		}
		return c
	}
	eventually(t, 10*time.Second, "the root answers again", func() bool {
		_, err := os.ReadDir(filepath.Join(mnt, "team"))
		return err == nil && successes() > 0
	})
	os.ReadDir(filepath.Join(mnt, "team"))
	if successes() != 1 {
		t.Fatalf("successes reported after the first: %v", h.roots())
	}
}
