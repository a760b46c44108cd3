package ocmfs

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

func openFDs(t *testing.T) int { return len(fdTargets(t)) }

// fdTargets names what each open file descriptor points at.
func fdTargets(t *testing.T) []string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		out = append(out, e.Name()+"->"+target)
	}
	return out
}

// TestNoLeaksAfterPeerFaults mounts, puts the peer through every fault
// (hanging, resetting uploads, down), brings it back, unmounts, and
// checks that the process is back to the goroutines and file descriptors
// it had before the mount.
func TestNoLeaksAfterPeerFaults(t *testing.T) {
	testenv.FUSE(t)
	srv := newDAVServer(t)
	srv.write("/shares/l/f.bin", pattern(256<<10, 7))
	srv.write("/shares/l/sub/g.txt", []byte("g"))
	logs := &testenv.Buffer{}
	opts := Options{
		Dir: filepath.Join(t.TempDir(), "OCM"), SpoolDir: t.TempDir(),
		Timeout: 500 * time.Millisecond, MetadataTTL: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}
	mountAndRead := func() *env {
		fs, err := Mount(context.Background(), opts, &testAuth{token: "test-token"})
		if err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, srv: srv, fs: fs, mnt: opts.Dir, opts: opts, logs: logs}
		fs.SetEntries([]Entry{e.folder("s1", "L", "/shares/l", true)})
		if _, err := os.ReadFile(e.path("L", "f.bin")); err != nil {
			t.Fatal(err)
		}
		return e
	}
	// A first mount and read create go-fuse's process-wide splice pipe
	// pool (pipes and /dev/null kept for reuse): the baseline includes it.
	if err := mountAndRead().fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	srv.closeIdle()
	runtime.GC()
	g0, fds0 := runtime.NumGoroutine(), fdTargets(t)
	fd0 := len(fds0)

	e := mountAndRead()
	fs := e.fs

	// A peer that hangs: listings and reads time out.
	hang := make(chan struct{})
	srv.set(func(s *davServer) { s.hang = hang })
	time.Sleep(100 * time.Millisecond) // outlive the 50 ms TTL, so that the peer is asked (real time: the kernel's cache has no other clock)
	for i := 0; i < 3; i++ {
		os.ReadDir(e.path("L", "sub"))
		os.ReadFile(e.path("L", "f.bin"))
	}
	close(hang)
	srv.set(func(s *davServer) { s.hang = nil })

	// A peer that resets uploads mid-body.
	srv.set(func(s *davServer) { s.putReset = true })
	os.WriteFile(e.path("L", "up.txt"), pattern(64<<10, 1), 0o644)
	srv.set(func(s *davServer) { s.putReset = false })

	// A peer that is down, then back.
	srv.stop()
	time.Sleep(100 * time.Millisecond) // outlive the 50 ms TTL, so that the peer is asked (real time: the kernel's cache has no other clock)
	os.ReadDir(e.path("L", "sub"))
	os.ReadFile(e.path("L", "f.bin"))
	srv.start()
	eventually(t, 10*time.Second, "the mount works again", func() bool {
		_, err := os.ReadFile(e.path("L", "sub", "g.txt"))
		return err == nil
	})

	if err := fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	var g, fd int
	settled := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) { // polling, at most 15 s
		srv.closeIdle()
		runtime.GC()
		g, fd = runtime.NumGoroutine(), openFDs(t)
		if g <= g0 && fd <= fd0 {
			settled = true
			break
		}
	}
	if !settled {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("after the faults and unmount: %d goroutines (before the mount %d), %d open fds (before %d)\nfds before: %v\nfds after: %v\n%s",
			g, g0, fd, fd0, fds0, fdTargets(t), buf[:n])
	}
}

// closeIdle drops the server side of idle keep-alive connections, so that
// only connections something still uses keep goroutines.
func (s *davServer) closeIdle() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		srv.SetKeepAlivesEnabled(false)
		srv.SetKeepAlivesEnabled(true)
	}
}
