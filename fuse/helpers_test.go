package ocmfs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// env is one mount against one WebDAV server.
type env struct {
	t     *testing.T
	srv   *davServer
	auth  *testAuth
	fs    *FS
	mnt   string
	spool string
	logs  *testenv.Buffer
	opts  Options
}

func newEnv(t *testing.T, tweak ...func(*Options)) *env {
	t.Helper()
	testenv.FUSE(t)
	e := &env{t: t, srv: newDAVServer(t), logs: &testenv.Buffer{}}
	e.auth = &testAuth{token: "test-token"}
	e.mnt = filepath.Join(t.TempDir(), "OCM")
	e.spool = t.TempDir()
	e.opts = Options{
		Dir:         e.mnt,
		SpoolDir:    e.spool,
		Timeout:     2 * time.Second,
		MetadataTTL: 5 * time.Second,
		Logger:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range tweak {
		f(&e.opts)
	}
	e.mount()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mount log:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *env) mount() {
	e.t.Helper()
	f, err := Mount(context.Background(), e.opts, e.auth)
	if err != nil {
		e.t.Fatalf("mount: %v", err)
	}
	e.fs = f
	e.t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			e.t.Errorf("unmount: %v", err)
		}
	})
}

// path is a path inside the mount.
func (e *env) path(parts ...string) string {
	return filepath.Join(append([]string{e.mnt}, parts...)...)
}

// folder returns an entry for a folder share at the server path p.
func (e *env) folder(id, name, p string, writable bool) Entry {
	return Entry{ID: id, Name: name, Origin: "alice@cloud.example", IsDir: true, URL: e.srv.url(p), Writable: writable}
}

func (e *env) file(id, name, p string, writable bool) Entry {
	return Entry{ID: id, Name: name, Origin: "alice@cloud.example", IsDir: false, URL: e.srv.url(p), Writable: writable}
}

// within runs fn and fails the test if it has not returned after d: a hang
// detector for operations that must be bounded, not a speed check.
func within(t *testing.T, d time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		return nil
	}
}

// eventually polls cond (bounded) until it holds.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by d
	}
}

func listNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("readdir %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func isErrno(err error, want syscall.Errno) bool {
	return errors.Is(err, want)
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func joined(s []string) string { return strings.Join(s, "|") }

// infoLogs keeps the mount's log at the default level: a test that measures
// the heap through a listing of 100,000 entries must not count the debug
// trace of their lookups.
func infoLogs(o *Options) {
	o.Logger = slog.New(minLevel{o.Logger.Handler(), slog.LevelInfo})
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
