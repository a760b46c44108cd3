package tray

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// startXvfb runs a private X server on a display it picks itself and
// returns the display (":N").
func startXvfb(t *testing.T) string {
	t.Helper()
	xvfb := testenv.Program(t, "Xvfb", "xvfb")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(xvfb, "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(r).ReadString('\n')
		r.Close()
		line <- strings.TrimSpace(l)
	}()
	select {
	case n := <-line:
		if n == "" {
			t.Fatal("Xvfb did not report its display")
		}
		return ":" + n
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb did not start")
	}
	return ""
}

// startBus runs a private D-Bus session bus and returns its address.
func startBus(t *testing.T) string {
	t.Helper()
	daemon := testenv.Program(t, "dbus-daemon", "dbus")
	addr := "unix:path=" + filepath.Join(t.TempDir(), "bus")
	cmd := exec.Command(daemon, "--session", "--nofork", "--nopidfile", "--address="+addr, "--print-address=1")
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
	case <-time.After(30 * time.Second):
		t.Fatal("dbus-daemon did not start")
	}
	return ""
}

// registration is one RegisterStatusNotifierItem call.
type registration struct {
	Sender  string // the caller's unique bus name
	Service string // what it passed: a bus name or an object path
}

// sniWatcher is a minimal org.kde.StatusNotifierWatcher, what a panel
// (KDE Plasma, the GNOME AppIndicator extension, waybar) runs.
type sniWatcher struct {
	regs  chan registration
	mu    sync.Mutex
	props *prop.Properties
	items []string
}

func (w *sniWatcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	w.mu.Lock()
	w.items = append(w.items, string(sender)+service)
	items := append([]string(nil), w.items...)
	w.mu.Unlock()
	w.props.SetMust("org.kde.StatusNotifierWatcher", "RegisteredStatusNotifierItems", items)
	w.regs <- registration{Sender: string(sender), Service: service}
	return nil
}

func (w *sniWatcher) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

func startWatcher(t *testing.T, conn *dbus.Conn) *sniWatcher {
	t.Helper()
	w := &sniWatcher{regs: make(chan registration, 8)}
	const iface = "org.kde.StatusNotifierWatcher"
	if err := conn.Export(w, "/StatusNotifierWatcher", iface); err != nil {
		t.Fatal(err)
	}
	props, err := prop.Export(conn, "/StatusNotifierWatcher", prop.Map{iface: {
		"RegisteredStatusNotifierItems":  {Value: []string{}, Emit: prop.EmitTrue},
		"IsStatusNotifierHostRegistered": {Value: true, Emit: prop.EmitTrue},
		"ProtocolVersion":                {Value: int32(0), Emit: prop.EmitTrue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	w.props = props
	if reply, err := conn.RequestName(iface, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v %v", iface, reply, err)
	}
	return w
}

// notification is one desktop notification received.
type notification struct{ App, Summary, Body string }

// notifyServer is a minimal org.freedesktop.Notifications daemon.
type notifyServer struct {
	mu   sync.Mutex
	seen []notification
	ch   chan notification
}

func (n *notifyServer) Notify(app string, _ uint32, _ string, summary, body string, _ []string, _ map[string]dbus.Variant, _ int32) (uint32, *dbus.Error) {
	n.mu.Lock()
	n.seen = append(n.seen, notification{app, summary, body})
	id := uint32(len(n.seen))
	n.mu.Unlock()
	select {
	case n.ch <- notification{app, summary, body}:
	default:
	}
	return id, nil
}

func (n *notifyServer) GetCapabilities() ([]string, *dbus.Error) { return []string{"body"}, nil }
func (n *notifyServer) CloseNotification(uint32) *dbus.Error     { return nil }
func (n *notifyServer) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "e2e", "ocm-agent", "1", "1.2", nil
}

func (n *notifyServer) all() []notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notification(nil), n.seen...)
}

func startNotifications(t *testing.T, conn *dbus.Conn) *notifyServer {
	t.Helper()
	n := &notifyServer{ch: make(chan notification, 32)}
	const name = "org.freedesktop.Notifications"
	if err := conn.Export(n, "/org/freedesktop/Notifications", name); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v %v", name, reply, err)
	}
	return n
}

// menuItem is one node of a com.canonical.dbusmenu layout.
type menuItem struct {
	ID       int32
	Label    string
	Enabled  bool
	Children []menuItem
}

// layoutNode is the (ia{sv}av) structure of GetLayout.
type layoutNode struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []dbus.Variant
}

func parseNode(v any) (menuItem, error) {
	var id int32
	var props map[string]dbus.Variant
	var children []dbus.Variant
	switch n := v.(type) {
	case layoutNode:
		id, props, children = n.ID, n.Props, n.Children
	case []any:
		if len(n) != 3 {
			return menuItem{}, fmt.Errorf("menu node with %d fields", len(n))
		}
		var ok1, ok2, ok3 bool
		id, ok1 = n[0].(int32)
		props, ok2 = n[1].(map[string]dbus.Variant)
		children, ok3 = n[2].([]dbus.Variant)
		if !ok1 || !ok2 || !ok3 {
			return menuItem{}, fmt.Errorf("menu node of types %T %T %T", n[0], n[1], n[2])
		}
	default:
		return menuItem{}, fmt.Errorf("menu node of type %T", v)
	}
	it := menuItem{ID: id, Enabled: true}
	if l, ok := props["label"]; ok {
		it.Label, _ = l.Value().(string)
	}
	if e, ok := props["enabled"]; ok {
		it.Enabled, _ = e.Value().(bool)
	}
	if vis, ok := props["visible"]; ok {
		if b, _ := vis.Value().(bool); !b {
			return menuItem{}, nil // hidden: as if absent
		}
	}
	for _, c := range children {
		child, err := parseNode(c.Value())
		if err != nil {
			return menuItem{}, err
		}
		if child.ID != 0 || child.Label != "" {
			it.Children = append(it.Children, child)
		}
	}
	return it, nil
}

// readMenu reads the whole menu of a status notifier item.
func readMenu(conn *dbus.Conn, dest string, path dbus.ObjectPath) (menuItem, error) {
	var rev uint32
	var root layoutNode
	err := conn.Object(dest, path).Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root)
	if err != nil {
		return menuItem{}, err
	}
	return parseNode(root)
}

// find returns the first item, depth first, whose label satisfies ok.
func (m menuItem) find(ok func(string) bool) (menuItem, bool) {
	if ok(m.Label) {
		return m, true
	}
	for _, c := range m.Children {
		if it, found := c.find(ok); found {
			return it, true
		}
	}
	return menuItem{}, false
}

func (m menuItem) String() string {
	var b strings.Builder
	var walk func(menuItem, string)
	walk = func(it menuItem, indent string) {
		fmt.Fprintf(&b, "%s%d %q enabled=%v\n", indent, it.ID, it.Label, it.Enabled)
		for _, c := range it.Children {
			walk(c, indent+"  ")
		}
	}
	walk(m, "")
	return b.String()
}

// click sends the "clicked" event a panel sends when the user picks an item.
func click(conn *dbus.Conn, dest string, path dbus.ObjectPath, id int32) error {
	return conn.Object(dest, path).Call("com.canonical.dbusmenu.Event", 0, id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix())).Err
}
