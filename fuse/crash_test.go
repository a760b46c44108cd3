package ocmfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// TestMain lets the test binary act as a mounting agent in a child process
// (OCMFS_HELPER=mount), so that a test can SIGKILL it.
func TestMain(m *testing.M) {
	if os.Getenv("OCMFS_HELPER") == "mount" {
		os.Exit(helperMount())
	}
	os.Exit(m.Run())
}

func helperMount() int {
	auth := &testAuth{token: os.Getenv("OCMFS_TOKEN")}
	f, err := Mount(context.Background(), Options{
		Dir:      os.Getenv("OCMFS_DIR"),
		SpoolDir: os.Getenv("OCMFS_SPOOL"),
		Timeout:  time.Minute,
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}, auth)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mount:", err)
		return 1
	}
	f.SetEntries([]Entry{{ID: "s1", Name: "RW", IsDir: true, URL: os.Getenv("OCMFS_URL"), Writable: true}})
	fmt.Println("ready")
	select {}
}

// The agent is killed (SIGKILL) while close(2) waits for an upload: the mount
// is left dead, the spooled data is not. The next start clears the stale
// mount and uploads the data.
func TestCrashDuringUpload(t *testing.T) {
	testenv.FUSE(t)
	srv := newDAVServer(t)
	srv.write("/shares/rw/.keep", nil)
	block, started := make(chan struct{}), make(chan struct{})
	srv.set(func(s *davServer) { s.putBlock, s.putStarted = block, started })
	defer func() {
		select {
		case <-block:
		default:
			close(block)
		}
	}()
	mnt := filepath.Join(t.TempDir(), "OCM")
	spool := t.TempDir()

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "OCMFS_HELPER=mount", "OCMFS_DIR="+mnt, "OCMFS_SPOOL="+spool,
		"OCMFS_URL="+srv.url("/shares/rw"), "OCMFS_TOKEN=test-token")
	var stderr bytes.Buffer
	child.Stderr = &stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
		_ = lazyUnmount(mnt)
		if t.Failed() {
			t.Logf("agent stderr:\n%s", stderr.String())
		}
	}()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("agent: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not mount")
	}

	data := pattern(1<<20+3, 11)
	wrote := make(chan error, 1)
	go func() { wrote <- os.WriteFile(filepath.Join(mnt, "RW", "crash.bin"), data, 0o644) }()
	select {
	case <-started:
	case err := <-wrote:
		t.Fatalf("write returned before the upload started: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("upload did not start")
	}
	// A file this large is uploaded while it is written: the agent dies
	// once every write is in the spool (close waits on the upload).
	eventually(t, 30*time.Second, "every write in the spool", func() bool {
		d, _ := spoolFiles(t, spool)
		st, err := os.Stat(firstOr(d))
		return len(d) == 1 && err == nil && st.Size() == int64(len(data))
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	killed = true
	select {
	case err := <-wrote:
		if err == nil {
			t.Errorf("close succeeded although the agent died during the upload")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("close did not return after the agent died")
	}
	close(block)
	if _, err := os.Stat(mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Logf("stale mount stat: %v", err)
	}

	// Next start: the stale mount is cleared, the spool found.
	srv.set(func(s *davServer) { s.putBlock, s.putStarted = nil, nil })
	logs := &testenv.Buffer{}
	f, err := Mount(context.Background(), Options{Dir: mnt, SpoolDir: spool, Timeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, &testAuth{token: "test-token"})
	if err != nil {
		t.Fatalf("mount over the stale mount: %v", err)
	}
	defer func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
	}()
	if p := f.PendingUploads(); len(p) != 1 || !strings.Contains(p[0], "RW/crash.bin") {
		t.Fatalf("pending after restart = %q", p)
	}
	f.SetEntries([]Entry{{ID: "s1", Name: "RW", IsDir: true, URL: srv.url("/shares/rw"), Writable: true}})
	eventually(t, 20*time.Second, "spooled upload after restart", func() bool {
		got, err := srv.read("/shares/rw/crash.bin")
		return err == nil && bytes.Equal(got, data)
	})
	eventually(t, 5*time.Second, "spool empty", func() bool {
		d, m := spoolFiles(t, spool)
		return len(d) == 0 && len(m) == 0 && len(f.PendingUploads()) == 0
	})
	if got, err := os.ReadFile(filepath.Join(mnt, "RW", "crash.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("file in the new mount: %d bytes, %v", len(got), err)
	}
}

func TestClearStaleNoMount(t *testing.T) {
	dir := t.TempDir()
	if err := ClearStale(dir); err != nil {
		t.Fatalf("plain directory: %v", err)
	}
	if err := ClearStale(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("missing directory: %v", err)
	}
}

func TestClearStaleLiveMount(t *testing.T) {
	e := newEnv(t)
	if err := ClearStale(e.mnt); !errors.Is(err, ErrBusy) {
		t.Fatalf("live mount: %v, want ErrBusy", err)
	}
	if _, err := Mount(context.Background(), Options{Dir: e.mnt, SpoolDir: t.TempDir()}, e.auth); !errors.Is(err, ErrBusy) {
		t.Fatalf("second mount: %v, want ErrBusy", err)
	}
}

// firstOr is the first of ss, or "".
func firstOr(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}
