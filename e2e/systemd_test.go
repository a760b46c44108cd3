package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify plays systemd's side of Type=notify: the agent says
// READY=1 once its endpoint answers, and STOPPING=1 when told to stop.
func TestSystemdNotify(t *testing.T) {
	a := newAgent(t)
	sock := filepath.Join(a.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	a.extraEnv = []string{"NOTIFY_SOCKET=" + sock}
	a.start()
	read := func() string {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("no message from the agent on NOTIFY_SOCKET: %v", err)
		}
		return string(buf[:n])
	}
	if msg := read(); !strings.Contains(msg, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", msg)
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	if msg := read(); !strings.Contains(msg, "STOPPING=1") {
		t.Fatalf("notification on SIGTERM %q, want STOPPING=1", msg)
	}
	a.cmd.Wait()
}
