package packaging

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeNotifiesSystemd plays the part of systemd for the Type=notify
// unit: it gives 'ocm-agent serve' a NOTIFY_SOCKET and expects READY=1 once
// the agent serves, and STOPPING=1 when SIGTERM stops it. Without READY=1
// systemd would kill the service when its start timeout runs out.
func TestServeNotifiesSystemd(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "ocm-agent")
	if out, err := run(t, filepath.Join(root, "cmd", "ocm-agent"), []string{"CGO_ENABLED=0"}, "go", "build", "-o", bin, "."); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sockPath := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	home := filepath.Join(dir, "home")
	runtime := filepath.Join(dir, "run")
	for _, d := range []string{home, runtime} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "serve", "--listen", listen, "--mount", "", "--secrets", "file")
	cmd.Env = []string{"HOME=" + home, "USER=alice", "PATH=/usr/bin:/bin", "XDG_RUNTIME_DIR=" + runtime,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_STATE_HOME=" + filepath.Join(home, ".local/state"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:", "NOTIFY_SOCKET=" + sockPath}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	}()

	await := func(state string) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed before %s", state)
				}
				for _, line := range strings.Split(m, "\n") {
					if line == state {
						return
					}
				}
			case err := <-done:
				done <- err
				t.Fatalf("serve exited (%v) before sending %s\n%s", err, state, stderr.String())
			case <-timeout:
				t.Fatalf("no %s on NOTIFY_SOCKET within 20s: the daemon must call daemon.SdNotify (github.com/coreos/go-systemd/v22/daemon) for the Type=notify unit\n%s", state, stderr.String())
			}
		}
	}
	await("READY=1")
	// Ready means serving: the endpoint answers now.
	c, err := net.DialTimeout("tcp", listen, 2*time.Second)
	if err != nil {
		t.Fatalf("READY=1 was sent but %s does not accept connections: %v", listen, err)
	}
	c.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	await("STOPPING=1")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within 20s of SIGTERM")
	}
}
