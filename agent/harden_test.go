//go:build linux

package agent

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestHardenProcess runs HardenProcess in a child (it changes the whole
// process) and checks there: umask 077, no core dumps, not dumpable.
func TestHardenProcess(t *testing.T) {
	if os.Getenv("OCM_AGENT_HARDEN_CHILD") == "1" {
		if err := HardenProcess(); err != nil {
			t.Fatal(err)
		}
		if m := syscall.Umask(0o077); m != 0o077 {
			t.Fatalf("umask %o", m)
		}
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &rl); err != nil || rl.Cur != 0 || rl.Max != 0 {
			t.Fatalf("RLIMIT_CORE %+v %v", rl, err)
		}
		d, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_GET_DUMPABLE, 0, 0)
		if e != 0 || d != 0 {
			t.Fatalf("dumpable %d %v", d, e)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHardenProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "OCM_AGENT_HARDEN_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestTightenStateDir: an existing state directory open to others is
// restricted to the owner, with what is in it, and the change is logged.
func TestTightenStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(filepath.Join(dir, "spool"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Join(dir, "spool"), 0o775)
	if err := os.WriteFile(filepath.Join(dir, "agent.db-wal"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "agent.db-wal"), 0o644)
	var logs bytes.Buffer
	if err := tightenStateDir(dir, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "spool"), filepath.Join(dir, "agent.db-wal")} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v %v", p, fi.Mode(), err)
		}
	}
	if !bytes.Contains(logs.Bytes(), []byte("restricted it to you")) {
		t.Errorf("not logged: %s", logs.String())
	}
}
