package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// mountedAgent prepares (does not start) an agent whose shares are
// mounted in a temp dir, and returns the mount point.
func mountedAgent(t *testing.T, extra ...string) (*agentProc, string) {
	t.Helper()
	testenv.FUSE(t)
	a := newAgent(t, extra...)
	mnt := filepath.Join(a.dir, "OCM")
	a.args = append(a.args, "--mount", mnt)
	return a, mnt
}

// eventually polls cond for up to d; it reports whether cond held.
func eventually(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) { // polling, bounded by d
		if cond() {
			return true
		}
	}
	return cond()
}

func ls(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// TestAcceptedShareInMount walks a share from the peer to the mount and
// out again: accept makes it usable within a second, SHARE_UNSHARED
// removes it.
func TestAcceptedShareInMount(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "Project/readme.txt", []byte("hello from alice"))
	writeFile(t, p, "Project/sub/data.csv", []byte("a,b\n1,2\n"))
	writeFile(t, p, "notes.txt", []byte("a file share"))
	folder := a.share(t, p, ocmtest.ShareRequest{Path: "Project"})
	file := a.share(t, p, ocmtest.ShareRequest{Path: "notes.txt", Dialect: ocmtest.DialectNextcloud})

	if got := ls(mnt); len(got) != 0 {
		t.Fatalf("pending shares are visible in the mount: %v", got)
	}
	for _, s := range a.shares(false) {
		a.mustCLI("shares", "accept", s.ID)
	}
	if !eventually(time.Second, func() bool { return strings.Join(ls(mnt), "|") == "Project|notes.txt" }) {
		t.Fatalf("accepted shares not in the mount within a second: %v\n%s", ls(mnt), a.log)
	}
	b, err := os.ReadFile(filepath.Join(mnt, "Project", "readme.txt"))
	if err != nil || string(b) != "hello from alice" {
		t.Fatalf("read through the mount: %q %v\n%s", b, err, a.log)
	}
	b, err = os.ReadFile(filepath.Join(mnt, "Project", "sub", "data.csv"))
	if err != nil || string(b) != "a,b\n1,2\n" {
		t.Fatalf("read a nested file: %q %v", b, err)
	}
	b, err = os.ReadFile(filepath.Join(mnt, "notes.txt"))
	if err != nil || string(b) != "a file share" {
		t.Fatalf("read a Nextcloud-style file share (Basic auth): %q %v\n%s", b, err, a.log)
	}
	if err := os.WriteFile(filepath.Join(mnt, "Project", "new.txt"), []byte("x"), 0o644); err == nil {
		t.Fatal("wrote into a read-only share")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Unshare(ctx, folder.ID); err != nil {
		t.Fatal(err)
	}
	if !eventually(2*time.Second, func() bool { return strings.Join(ls(mnt), "|") == "notes.txt" }) {
		t.Fatalf("unshared folder still in the mount: %v", ls(mnt))
	}
	_ = file
}
