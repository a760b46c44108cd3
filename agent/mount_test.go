package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
)

// needFUSE stops a test that needs a real mount: fatal under CI=true.
func needFUSE(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/dev/fuse")
	if err == nil {
		_, err = exec.LookPath("fusermount3")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("FUSE missing on this machine (CI=true): %v", err)
		}
		t.Skipf("FUSE missing on this machine: %v", err)
	}
}

// Data a crash left in the spool without its record is kept in the state
// directory's lost+found and shown by status.
func TestStatusReportsLostFound(t *testing.T) {
	needFUSE(t)
	var lostDir string
	td := startDaemon(t, func(c *config.Config) {
		c.Mount = filepath.Join(t.TempDir(), "OCM")
		spool := filepath.Join(c.StateDir, "spool")
		lostDir = filepath.Join(c.StateDir, "lost+found")
		if err := os.MkdirAll(spool, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(spool, "0123abcd.data"), []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	ctx := waitCtx(t)
	var lost []string
	eventually(t, 15*time.Second, "the mount reporting lost+found", func() bool {
		st, err := td.client.Status(ctx)
		lost = st.LostFound
		return err == nil && st.MountState == "mounted" && len(lost) > 0
	})
	if len(lost) != 1 || !strings.HasPrefix(lost[0], lostDir+string(filepath.Separator)) || !strings.Contains(lost[0], "(8 bytes)") {
		t.Fatalf("status lostFound = %q", lost)
	}
	p := strings.Fields(lost[0])[0]
	if b, err := os.ReadFile(p); err != nil || string(b) != "precious" {
		t.Fatalf("kept data = %q, %v", b, err)
	}
}
