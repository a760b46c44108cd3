package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
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

// entry returns the mount entry of a share, if shown.
func (m *recordingMounter) entry(id string) (MountEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if e.ID == id {
			return e, true
		}
	}
	return MountEntry{}, false
}

// restartDaemon stops td and starts a new daemon on the same configuration
// and state.
func restartDaemon(t *testing.T, td *testDaemon) *testDaemon {
	t.Helper()
	td.cancel()
	select {
	case err := <-td.done:
		td.done <- err // for the first daemon's cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop within 15 s")
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	d, err := Start(ctx, td.cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	d.Agent.SetTrust(nil)
	nd := &testDaemon{Daemon: d, cfg: td.cfg, base: td.base, client: control.NewClient(td.cfg.Socket), logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { nd.done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-nd.done:
		case <-time.After(15 * time.Second):
			t.Error("daemon did not stop within 15 s")
		}
	})
	return nd
}

// The agent starts while a share's server is down: the share is in the
// mount all along (its reads fail with a clear error) and status says
// since when it is unreachable; once the server is back, the share is read
// without any other event. The old agent left the share out until some
// unrelated share event or a restart.
func TestOfflineStartShareComesBack(t *testing.T) {
	needFUSE(t)
	var down atomic.Bool
	peer := startPeer(t, ocmtest.Options{DiscoveryHook: func(map[string]any) {
		if down.Load() {
			panic(http.ErrAbortHandler) // the connection drops: as good as down
		}
	}})
	mnt := filepath.Join(t.TempDir(), "OCM")
	td := startDaemon(t, insecurePeers(func(c *config.Config) { c.Mount = mnt }))
	ctx := waitCtx(t)
	_, sh := td.share(t, peer, ocmtest.ShareRequest{})
	if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(mnt, "doc.txt")
	eventually(t, 15*time.Second, "the share readable in the mount", func() bool {
		b, err := os.ReadFile(p)
		return err == nil && string(b) == "hello"
	})

	down.Store(true)
	td = restartDaemon(t, td)
	eventually(t, 15*time.Second, "the mount after the restart", func() bool {
		st, err := td.client.Status(ctx)
		return err == nil && st.MountState == "mounted"
	})
	// (The mount is up a moment before it is told the shares.) A file
	// share is listed; its size is not known, so it cannot be opened yet.
	eventually(t, 5*time.Second, "the share listed in the mount while its server is down", func() bool {
		ents, err := os.ReadDir(mnt)
		return err == nil && len(ents) == 1 && ents[0].Name() == "doc.txt"
	})
	if _, err := os.ReadFile(p); err == nil {
		t.Fatal("read the share while its server is down")
	} else if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("read while down: %v, want EHOSTUNREACH", err)
	}
	st, err := td.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Unreachable) != 1 || st.Unreachable[0].ID != sh.ID || st.Unreachable[0].Since.IsZero() || st.Unreachable[0].Error == "" {
		t.Fatalf("status unreachable = %+v", st.Unreachable)
	}

	down.Store(false)
	eventually(t, 30*time.Second, "the share readable once its server is back", func() bool {
		b, err := os.ReadFile(p)
		return err == nil && string(b) == "hello"
	})
	if st, err := td.client.Status(ctx); err != nil || len(st.Unreachable) != 0 {
		t.Errorf("status unreachable after recovery = %+v, %v", st.Unreachable, err)
	}
}

// A peer that takes 10 s to answer discovery does not slow down accepting
// a share of another peer (nor its own acceptance): the mount is told
// without waiting on any network. The old agent resolved every share's
// URL under one lock at each accept.
func TestSlowPeerDoesNotSlowAccept(t *testing.T) {
	var slow atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slowPeer := startPeer(t, ocmtest.Options{DiscoveryHook: func(map[string]any) {
		if !slow.Load() {
			return
		}
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}})
	fastPeer := startPeer(t, ocmtest.Options{})
	td := startDaemon(t, insecurePeers())
	m := &recordingMounter{}
	td.Agent.SetMounter(m, td.Agent)
	ctx := waitCtx(t)
	_, s1 := td.share(t, slowPeer, ocmtest.ShareRequest{})
	_, s2 := td.share(t, fastPeer, ocmtest.ShareRequest{})
	slow.Store(true)
	// As after a restart or once the cached document expired: the next
	// look-up asks the slow peer.
	td.Agent.Discovery().Forget(slowPeer.Host())

	slowDone := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		_, err := td.client.ShareAction(ctx, s1.ID, "accept")
		if err != nil {
			t.Error(err)
		}
		slowDone <- time.Since(start)
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("nobody asked the slow peer")
	}
	start := time.Now()
	if _, err := td.client.ShareAction(ctx, s2.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("accept of the other peer's share took %v", took)
	if took > time.Second {
		t.Errorf("accept took %v while a peer was slow, want well under 1 s", took)
	}
	select {
	case d := <-slowDone:
		t.Logf("accept of the slow peer's share took %v", d)
		if d > time.Second {
			t.Errorf("accept of the slow peer's share took %v", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("accept of the slow peer's share did not return")
	}
	// Both are in the mount; the slow one without a URL while unresolved.
	if e, ok := m.entry(s1.ID); !ok || e.URL != "" {
		t.Errorf("slow peer's share in the mount: %+v, %v", e, ok)
	}
	eventually(t, 10*time.Second, "the other share's URL in the mount", func() bool {
		e, ok := m.entry(s2.ID)
		return ok && e.URL != ""
	})
}

// blockingMounter is a mount whose SetEntries blocks until released, as a
// kernel notification does while the kernel waits on the very filesystem
// operation that reported the error.
type blockingMounter struct {
	recordingMounter
	release chan struct{}
	calls   atomic.Int32
}

func (m *blockingMounter) SetEntries(e []MountEntry) {
	m.calls.Add(1)
	<-m.release
	m.recordingMounter.SetEntries(e)
}

// The mount's credentials for a share are refused for good (its code was
// revoked) inside a filesystem operation: Authorize returns at once, and the
// state change and the mount refresh happen on a worker. The old wiring ran
// them inside the operation, which then waited on its own kernel
// notification (here: a SetEntries that blocks).
func TestShareErrorFromMountHandedToWorker(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	peer := startPeer(t, ocmtest.Options{})
	ctx := waitCtx(t)
	ps, sh := td.share(t, peer, ocmtest.ShareRequest{MustExchangeToken: true})
	if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	if !peer.RevokeShare(ps.ID) {
		t.Fatal("revoke at the peer")
	}
	m := &blockingMounter{release: make(chan struct{})}
	released := false
	defer func() {
		if !released {
			close(m.release)
		}
	}()
	td.Agent.SetMounter(m, nil)

	// What the mount does before a WebDAV request.
	returned := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9/x", nil)
		returned <- td.Tokens.Authorize(ctx, sh.ID, req)
	}()
	select {
	case err := <-returned:
		if !errors.Is(err, tokens.ErrCodeRejected) {
			t.Fatalf("Authorize: %v, want ErrCodeRejected", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Authorize waited for the mount refresh")
	}
	eventually(t, 10*time.Second, "the worker refreshing the mount", func() bool { return m.calls.Load() > 0 })
	close(m.release)
	released = true
	eventually(t, 10*time.Second, "the share in error and out of the mount", func() bool {
		s, err := td.client.Share(ctx, sh.ID)
		_, shown := m.entry(sh.ID)
		return err == nil && s.State == store.StateError && !shown
	})
}

// The daemon tells systemd it is ready without waiting on any peer: here
// three whose discovery does not answer while the agent starts. The old
// start resolved every accepted share's WebDAV URL first, one after the
// other (5 to 10 s each for these peers, so 15 s or more): the bound below
// is far from both, so that a loaded machine does not fail the test.
func TestReadyDoesNotWaitForSlowPeer(t *testing.T) {
	needFUSE(t)
	var slow atomic.Bool
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var peers []*ocmtest.Server
	for range 3 {
		peers = append(peers, startPeer(t, ocmtest.Options{DiscoveryHook: func(map[string]any) {
			if slow.Load() {
				select {
				case <-release:
				case <-time.After(60 * time.Second):
				}
			}
		}}))
	}
	mnt := filepath.Join(t.TempDir(), "OCM")
	td := startDaemon(t, insecurePeers(func(c *config.Config) { c.Mount = mnt }))
	ctx := waitCtx(t)
	for _, peer := range peers {
		_, sh := td.share(t, peer, ocmtest.ShareRequest{})
		if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
			t.Fatal(err)
		}
	}

	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	slow.Store(true)
	start := time.Now()
	restartDaemon(t, td)
	buf := make([]byte, 4096)
	for {
		if err := conn.SetReadDeadline(start.Add(60 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no READY=1 from the daemon: %v", err)
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			break
		}
	}
	took := time.Since(start)
	t.Logf("ready %v after the start, the slow peers still silent", took)
	if took > 12*time.Second {
		t.Errorf("ready only after %v: the start waited on the slow peer", took)
	}
	if _, err := os.ReadDir(mnt); err != nil {
		t.Errorf("mount at ready: %v", err)
	}
}
