package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/agent"
	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// runCLIAt runs one command line against the daemon at socket.
func runCLIAt(t *testing.T, socket string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	t.Setenv("OCM_AGENT_SOCKET", socket)
	socketFlag = ""
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// mountedAgent runs a daemon with a mount and a content cache, in this
// process, and a peer that shares the folder Docs with it; it returns the
// socket, the id of the share, accepted and in the mount, the daemon and
// the peer.
func mountedAgent(t *testing.T) (socket, shareID string, d *agent.Daemon, peer *ocmtest.Server) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("FUSE missing (CI=true): %v", err)
		}
		t.Skipf("FUSE missing: %v", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("fusermount3 missing (CI=true): %v", err)
		}
		t.Skipf("fusermount3 missing: %v", err)
	}
	peer = ocmtest.StartForTest(t, ocmtest.Options{})
	for p, b := range map[string]string{"Docs/a.txt": strings.Repeat("kept ", 5000), "Docs/sub/b.txt": "b"} {
		full := filepath.Join(peer.Dir(), p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	cfg := config.Default()
	cfg.Listen = testenv.FreeAddr(t)
	cfg.User = "bob"
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Socket = filepath.Join(dir, "run", "ocm-agent.sock")
	cfg.Secrets = "file"
	cfg.Mount = filepath.Join(dir, "OCM")
	cfg.AllowInsecurePeers = true
	cfg.DNSServer = "127.0.0.1:9"
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	d, err = agent.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	d.Agent.SetTrust(nil)
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("the daemon did not stop within 15 s")
		}
	})
	if _, err := peer.CreateShare(ctx, ocmtest.ShareRequest{To: "bob@" + cfg.PublicHost(), Path: "Docs"}); err != nil {
		t.Fatal(err)
	}
	c := control.NewClient(cfg.Socket)
	shares, err := c.Shares(ctx, false)
	if err != nil || len(shares) != 1 {
		t.Fatalf("shares %+v %v", shares, err)
	}
	if _, _, code := runCLIAt(t, cfg.Socket, "shares", "accept", shares[0].ID); code != 0 {
		t.Fatal("accept failed")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(cfg.Mount, "Docs", "a.txt")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the share did not show in the mount within 15 s")
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded
	}
	return cfg.Socket, shares[0].ID, d, peer
}

// TestPinCommands: 'shares pin' with --json (progress lines, the last the
// summary) and without (plain lines, not a terminal), 'shares list/show'
// and 'cache status' showing the pin, 'shares unpin', 'cache clear';
// bad input exits 1 with a clear message and changes nothing.
func TestPinCommands(t *testing.T) {
	sock, id, d, peer := mountedAgent(t)

	out, errOut, code := runCLIAt(t, sock, "shares", "pin", id, "--json")
	if code != 0 {
		t.Fatalf("pin --json: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var last control.PinJob
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("a line of --json is not a JSON object: %q", l)
		}
	}
	if last.State != control.PinDone || last.Files != 2 || last.FilesDone != 2 || last.BytesDone != last.Bytes || last.Bytes != 25001 {
		t.Fatalf("summary %+v", last)
	}

	out, errOut, code = runCLIAt(t, sock, "shares", "pin", id, "sub")
	if code != 0 || !strings.Contains(out, "Kept on this device: "+id+":sub, 1 files") || strings.Contains(out, "\r") {
		t.Fatalf("pin sub: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = runCLIAt(t, sock, "shares", "list")
	if code != 0 || !strings.Contains(out, "ON THIS DEVICE") || !strings.Contains(out, "2 pinned, ") || !strings.Contains(out, "up to date") {
		t.Errorf("shares list:\n%s", out)
	}
	out, _, code = runCLIAt(t, sock, "shares", "show", id)
	if code != 0 || !strings.Contains(out, "Kept on this device:  Docs: 2 files, 24.4 KiB, up to date") {
		t.Errorf("shares show:\n%s", out)
	}
	out, _, code = runCLIAt(t, sock, "cache", "status")
	if code != 0 || !strings.Contains(out, "Pinned:") || !strings.Contains(out, "Docs ("+id+")") {
		t.Errorf("cache status:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"shares", "pin", id, "nothere"}, `"nothere" is not in share`},
		{[]string{"shares", "pin", "unknown-id"}, `no share with id "unknown-id"`},
		{[]string{"shares", "pin", id, "a/../../x"}, "not a path in a share"},
		{[]string{"shares", "unpin", id, "nothere"}, "not pinned"},
	} {
		out, errOut, code := runCLIAt(t, sock, c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 1 and %q", c.args, code, out, errOut, c.want)
		}
	}

	// The server goes away: the refresh finds it offline; status and
	// shares list say so.
	peer.Close()
	d.Agent.RefreshPins(context.Background())
	out, _, _ = runCLIAt(t, sock, "status")
	if !strings.Contains(out, "Offline:") || !strings.Contains(out, "Docs ("+id+") since") {
		t.Errorf("status while offline:\n%s", out)
	}
	if out, _, _ = runCLIAt(t, sock, "shares", "list"); !strings.Contains(out, "accepted (offline since") {
		t.Errorf("shares list while offline:\n%s", out)
	}

	out, errOut, code = runCLIAt(t, sock, "shares", "unpin", id, "sub")
	if code != 0 || !strings.Contains(out, "Docs:sub is no longer kept on this device") {
		t.Errorf("unpin: exit %d %q %q", code, out, errOut)
	}
	out, _, code = runCLIAt(t, sock, "cache", "clear")
	if code != 0 || !strings.Contains(out, "Freed 0 B.") { // all pinned: the whole share still is
		t.Errorf("cache clear: %q", out)
	}
	out, _, code = runCLIAt(t, sock, "cache", "clear", "--pinned")
	if code != 0 || !strings.Contains(out, "Freed 24.4 KiB.") {
		t.Errorf("cache clear --pinned: %q", out)
	}
	out, _, _ = runCLIAt(t, sock, "cache", "status", "--json")
	var st control.CacheStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Bytes != 0 || len(st.Pins) != 1 {
		t.Errorf("cache status after clearing: %+v %v", st, err)
	}
}

// TestPinProgressLines: on a terminal the bar is redrawn in place (files,
// bytes, rate, time left), then the summary; elsewhere plain lines.
func TestPinProgressLines(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	running := control.PinJob{ID: "j", Share: "s1", State: control.PinRunning, Listed: true, Files: 10, FilesDone: 4,
		Bytes: 100 << 20, BytesDone: 50 << 20, Fetched: 50 << 20, Rate: 5 << 20, Remaining: 10, StartedAt: t0}
	done := running
	done.State, done.FilesDone, done.BytesDone, done.EndedAt = control.PinDone, 10, 100<<20, t0.Add(20*time.Second)

	var tty bytes.Buffer
	p := newProgress(&tty, false, true)
	p.show(running)
	p.end(done)
	want := "\r\x1b[K[############------------] 4/10 files, 50.0 MiB of 100.0 MiB, 5.0 MiB/s, 10s left" +
		"\r\x1b[KKept on this device: s1, 10 files, 100.0 MiB (50.0 MiB downloaded in 20s).\n"
	if tty.String() != want {
		t.Errorf("terminal output\n%q\nwant\n%q", tty.String(), want)
	}

	var plain bytes.Buffer
	p = newProgress(&plain, false, false)
	p.show(running)
	p.end(done)
	if got := plain.String(); strings.Contains(got, "\r") || !strings.HasPrefix(got, "4/10 files, 50.0 MiB of 100.0 MiB") {
		t.Errorf("plain output %q", got)
	}

	listing := running
	listing.Listed = false
	if got := progressLine(listing); !strings.Contains(got, "4/10+ files") || strings.Contains(got, "left") {
		t.Errorf("while listing: %q", got)
	}
}
