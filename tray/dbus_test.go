package tray

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// privateBus starts a dbus-daemon of its own for the test and returns its
// address.
func privateBus(t *testing.T) string {
	t.Helper()
	testenv.Program(t, "dbus-daemon", "dbus")
	dir := t.TempDir()
	addr := "unix:path=" + filepath.Join(dir, "bus")
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--nopidfile", "--address="+addr, "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case l := <-line:
		if l == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("dbus-daemon did not start")
	}
	return ""
}

func busConn(t *testing.T, addr string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestTrayHostAvailable(t *testing.T) {
	addr := privateBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := busConn(t, addr)
	ok, reason, err := TrayHostAvailable(ctx, client)
	if err != nil || ok || !strings.Contains(reason, "no StatusNotifierWatcher") {
		t.Fatalf("bare bus: %v %q %v", ok, reason, err)
	}

	// A watcher that says no host is registered (a panel-less session).
	watcher := busConn(t, addr)
	props, err := prop.Export(watcher, WatcherPath, prop.Map{WatcherInterface: {
		"IsStatusNotifierHostRegistered": {Value: false, Writable: false, Emit: prop.EmitTrue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if reply, err := watcher.RequestName(WatcherName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("claiming the watcher name: %v %v", reply, err)
	}
	ok, reason, err = TrayHostAvailable(ctx, client)
	if err != nil || ok || !strings.Contains(reason, "no tray host") {
		t.Fatalf("watcher without host: %v %q %v", ok, reason, err)
	}
	props.SetMust(WatcherInterface, "IsStatusNotifierHostRegistered", true)
	if ok, _, err := TrayHostAvailable(ctx, client); err != nil || !ok {
		t.Fatalf("watcher with a host: %v %v", ok, err)
	}

	// A minimal watcher that has no such property still counts.
	bare := busConn(t, addr)
	watcher.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		reply, err := bare.RequestName(WatcherName, dbus.NameFlagDoNotQueue)
		if err == nil && reply == dbus.RequestNameReplyPrimaryOwner {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher name was not released: %v %v", reply, err)
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by deadline
	}
	if ok, _, err := TrayHostAvailable(ctx, client); err != nil || !ok {
		t.Fatalf("watcher without the property: %v %v", ok, err)
	}
}

type recordingHandler struct {
	invites chan string
	shows   chan struct{}
}

func (h recordingHandler) AcceptInvite(s string) { h.invites <- s }
func (h recordingHandler) Show()                 { h.shows <- struct{}{} }

func TestSecondInstanceHandsOver(t *testing.T) {
	addr := privateBus(t)
	first := recordingHandler{make(chan string, 1), make(chan struct{}, 1)}
	if err := ClaimInstance(busConn(t, addr), first); err != nil {
		t.Fatal(err)
	}
	second := busConn(t, addr)
	if err := ClaimInstance(second, recordingHandler{}); !errors.Is(err, ErrOtherInstance) {
		t.Fatalf("second claim: %v, want ErrOtherInstance", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ForwardInvite(ctx, second, testInvite); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-first.invites:
		if got != testInvite {
			t.Errorf("first instance got %q", got)
		}
	case <-ctx.Done():
		t.Fatal("the invite did not reach the first instance")
	}
	if err := ForwardInvite(ctx, second, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.shows:
	case <-ctx.Done():
		t.Fatal("Show did not reach the first instance")
	}

	// A desktop entry with DBusActivatable=true opens links this way.
	link := "ocm://accept?token=abc&providerDomain=cloud.example"
	app := second.Object(InstanceName, InstancePath)
	if err := app.CallWithContext(ctx, "org.freedesktop.Application.Open", 0, []string{link}, map[string]dbus.Variant{}).Err; err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-first.invites:
		if got != link {
			t.Errorf("Open gave %q", got)
		}
	case <-ctx.Done():
		t.Fatal("org.freedesktop.Application.Open did not reach the tray")
	}
	if err := app.CallWithContext(ctx, "org.freedesktop.Application.Activate", 0, map[string]dbus.Variant{}).Err; err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.shows:
	case <-ctx.Done():
		t.Fatal("org.freedesktop.Application.Activate did not show the tray")
	}
	if err := app.CallWithContext(ctx, "org.freedesktop.Application.ActivateAction", 0, "nonsense", []dbus.Variant{}, map[string]dbus.Variant{}).Err; err == nil {
		t.Error("an unknown action was accepted")
	}
}
