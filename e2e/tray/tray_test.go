package tray

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// repoRoot is the module root (this package is e2e/tray).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s", root)
	}
	return root
}

// build compiles a command of the module into dir.
func build(t *testing.T, root, dir, pkg string, cgo bool) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binaries: %v", err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command(goBin, "build", "-o", out, "./"+pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+map[bool]string{true: "1", false: "0"}[cgo])
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// proc is a started child process.
type proc struct {
	cmd  *exec.Cmd
	log  *testenv.Buffer
	done chan error
}

func start(t *testing.T, name string, env []string, stdin io.Reader, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), log: &testenv.Buffer{}, done: make(chan error, 1)}
	p.cmd.Env, p.cmd.Stdin = env, stdin
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(name), p.log.String())
		}
	})
	return p
}

// exited waits for the process to end and returns how.
func (p *proc) exited(d time.Duration) (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err, true
	case <-time.After(d):
		return nil, false
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// poll retries f every 100 ms until it succeeds or d passes; the bound
// stops a broken run, it is not a performance requirement.
func poll(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond) // polling, bounded by deadline
	}
}

// screenshot captures the whole X screen into path and returns the
// number of distinct colours in it.
func screenshot(t *testing.T, display, path string) (int, error) {
	t.Helper()
	cmd := exec.Command("import", "-display", display, "-window", "root", path)
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, errors.New(err.Error() + ": " + string(b))
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return 0, err
	}
	return colours(img), nil
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// changed counts the pixels that differ between two same-sized images.
func changed(a, b image.Image) int {
	if a.Bounds() != b.Bounds() {
		return a.Bounds().Dx() * a.Bounds().Dy()
	}
	n := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				n++
			}
		}
	}
	return n
}

func colours(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	return len(seen)
}

func TestTrayAcceptsAShareFromItsMenu(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the daemon and the tray")
	}
	testenv.Program(t, "import", "imagemagick")
	testenv.FUSE(t)
	display := startXvfb(t)
	busAddr := startBus(t)

	root := repoRoot(t)
	bin := t.TempDir()
	agentBin := build(t, root, bin, "cmd/ocm-agent", false)
	trayBin := build(t, root, bin, "cmd/ocm-agent-tray", true)

	// The test plays the panel: a StatusNotifierWatcher and a
	// notification server on the private session bus.
	panel, err := dbus.Connect(busAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer panel.Close()
	watcher := startWatcher(t, panel)
	notes := startNotifications(t, panel)

	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "USER=alice", "LANG=C.UTF-8",
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "XDG_STATE_HOME=" + filepath.Join(home, "state"),
		"XDG_RUNTIME_DIR=" + filepath.Join(home, "run"), "XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"DISPLAY=" + display, "DBUS_SESSION_BUS_ADDRESS=" + busAddr, "LIBGL_ALWAYS_SOFTWARE=1",
	}
	for _, d := range []string{"config", "state", "run", "cache"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	// The daemon, with its public endpoint on a free loopback port.
	port := freePort(t)
	listen := "127.0.0.1:" + strconv.Itoa(port)
	socket := filepath.Join(home, "run", "ocm-agent.sock")
	mnt := filepath.Join(home, "OCM")
	// Registered before the daemon starts, so it runs after the daemon's
	// own clean-up has killed it: a killed daemon leaves its mount behind.
	t.Cleanup(func() { exec.Command("fusermount3", "-uz", mnt).Run() })
	agentArgs := []string{"serve", "--listen", listen, "--user", "alice", "--mount", mnt,
		"--secrets", "file", "--state-dir", filepath.Join(home, "state", "ocm-agent"), "--socket", socket,
		"--allow-insecure-peers"}
	agent := start(t, agentBin, env, nil, agentArgs...)
	ctl := control.NewClient(socket)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	poll(t, 30*time.Second, "the daemon answers on its socket", func() error {
		_, err := ctl.Status(ctx)
		return err
	})

	// A pending share from the reference peer, signed as it signs.
	peer := ocmtest.StartForTest(t, ocmtest.Options{User: "bob", DisplayName: "Bob Builder"})
	if err := os.MkdirAll(filepath.Join(peer.Dir(), "Holiday photos"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(peer.Dir(), "Holiday photos", "beach.txt"), []byte("sand\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.CreateShare(ctx, ocmtest.ShareRequest{
		To: "alice@" + listen, ReceiverBase: "http://" + listen, Path: "Holiday photos",
	}); err != nil {
		t.Fatalf("sharing with the agent: %v", err)
	}
	shares, err := ctl.Shares(ctx, false)
	if err != nil || len(shares) != 1 || shares[0].State != "pending" {
		t.Fatalf("the daemon holds %+v, %v; want one pending share", shares, err)
	}
	shareID := shares[0].ID

	// The tray registers its icon with the watcher.
	tray := start(t, trayBin, env, nil, "--socket", socket)
	var reg registration
	select {
	case reg = <-watcher.regs:
	case <-time.After(90 * time.Second):
		t.Fatal("the tray did not register a status notifier item")
	}
	if reg.Service != "/StatusNotifierItem" && !strings.HasPrefix(reg.Service, "org.kde.StatusNotifierItem-") {
		t.Errorf("registered service %q", reg.Service)
	}
	const menuPath = dbus.ObjectPath("/StatusNotifierItem/menu")
	var menuPathOf dbus.Variant
	if err := panel.Object(reg.Sender, "/StatusNotifierItem").Call("org.freedesktop.DBus.Properties.Get", 0,
		"org.kde.StatusNotifierItem", "Menu").Store(&menuPathOf); err != nil || menuPathOf.Value() != menuPath {
		t.Errorf("the item's Menu property is %v (%v), want %s", menuPathOf, err, menuPath)
	}

	// Its menu lists the pending share with Accept and Decline.
	var menu, shareItem menuItem
	poll(t, 60*time.Second, "the pending share in the tray menu", func() error {
		m, err := readMenu(panel, reg.Sender, menuPath)
		if err != nil {
			return err
		}
		menu = m
		it, ok := m.find(func(l string) bool { return strings.HasPrefix(l, "Holiday photos — from Bob Builder") })
		if !ok || len(it.Children) == 0 {
			// (the first layout after a menu change comes one level
			// deep, for libdbusmenu-gtk3; panels ask again, as this does)
			return errors.New("not there yet; menu:\n" + m.String())
		}
		shareItem = it
		return nil
	})
	accept, ok := shareItem.find(func(l string) bool { return l == "_Accept" })
	if _, okD := shareItem.find(func(l string) bool { return l == "_Decline" }); !ok || !okD {
		t.Fatalf("the share has no Accept/Decline submenu:\n%s", menu)
	}
	if head := menu.Children[0].Label; head != "1 share waiting" {
		t.Errorf("menu header %q", head)
	}
	for _, want := range []string{"Accept an _invite…", "_Open shares folder", "S_tatus…", "_Quit tray"} {
		if _, ok := menu.find(func(l string) bool { return l == want }); !ok {
			t.Errorf("menu lacks %q:\n%s", want, menu)
		}
	}

	// Clicking Accept accepts the share in the daemon.
	if err := click(panel, reg.Sender, menuPath, accept.ID); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "the share accepted in the daemon", func() error {
		sh, err := ctl.Share(ctx, shareID)
		if err != nil {
			return err
		}
		if sh.State != "accepted" {
			return errors.New("state " + sh.State)
		}
		return nil
	})
	// ... and makes it usable in the mount.
	poll(t, 30*time.Second, "the accepted share readable in the mount", func() error {
		b, err := os.ReadFile(filepath.Join(mnt, "Holiday photos", "beach.txt"))
		if err != nil {
			return err
		}
		if string(b) != "sand\n" {
			return fmt.Errorf("read %q", b)
		}
		return nil
	})
	poll(t, 30*time.Second, "the menu without the share", func() error {
		m, err := readMenu(panel, reg.Sender, menuPath)
		if err != nil {
			return err
		}
		if len(m.Children) == 0 || m.Children[0].Label != "No shares waiting" {
			return errors.New("menu:\n" + m.String())
		}
		menu = m
		return nil
	})

	// The share's arrival was notified on the desktop.
	found := false
	for _, n := range notes.all() {
		if n.Summary == "New share from Bob Builder" && strings.Contains(n.Body, "Holiday photos") {
			found = true
		}
	}
	if !found {
		t.Errorf("no arrival notification; got %+v", notes.all())
	}

	// The window, opened from the menu, as a screenshot.
	show, ok := menu.find(func(l string) bool { return l == "_Show shares…" })
	if !ok {
		t.Fatalf("no Show shares item:\n%s", menu)
	}
	if err := click(panel, reg.Sender, menuPath, show.ID); err != nil {
		t.Fatal(err)
	}
	artifacts := filepath.Join(root, "test-artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "tray.png")
	poll(t, 60*time.Second, "a screenshot showing the window", func() error {
		n, err := screenshot(t, display, shot)
		if err != nil {
			return err
		}
		if n < 32 { // the bare X root is one colour
			return errors.New("the screen shows " + strconv.Itoa(n) + " colours: no window yet")
		}
		return nil
	})
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot of the tray window: %s", shot)

	// An invite opened while the tray runs goes to the running tray, which
	// shows its invite dialog. (The invite comes on standard input: it is
	// a secret, and process arguments are visible to every user.)
	invite := peerInvite(t, peer)
	second := start(t, trayBin, env, strings.NewReader(invite+"\n"), "--socket", socket, "--accept-invite", "-")
	if err, ok := second.exited(60 * time.Second); !ok || err != nil {
		t.Fatalf("a second tray did not hand over and exit: exited=%v err=%v", ok, err)
	}
	if !strings.Contains(second.log.String(), "handed over to the running tray") {
		t.Errorf("second tray said:\n%s", second.log.String())
	}

	// The dialog comes up with the invite in its field, which has the
	// keyboard focus: Return accepts it.
	before := readPNG(t, shot)
	scratch := filepath.Join(t.TempDir(), "screen.png") // shows the invite: not an artifact
	poll(t, 30*time.Second, "the invite dialog on the screen", func() error {
		if _, err := screenshot(t, display, scratch); err != nil {
			return err
		}
		if n := changed(before, readPNG(t, scratch)); n < 5000 {
			return errors.New(strconv.Itoa(n) + " pixels changed since the window's screenshot: no dialog yet")
		}
		return nil
	})
	xdotool := testenv.Program(t, "xdotool", "xdotool")
	poll(t, 30*time.Second, "focusing the invite dialog", func() error {
		search := exec.Command(xdotool, "search", "--name", "^Accept an invite$")
		search.Env = append(os.Environ(), "DISPLAY="+display)
		out, err := search.Output()
		ids := strings.Fields(string(out))
		if err != nil || len(ids) == 0 {
			return errors.New("no window named Accept an invite")
		}
		cmd := exec.Command(xdotool, "windowfocus", "--sync", ids[0], "key", "Return")
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		if b, err := cmd.CombinedOutput(); err != nil {
			return errors.New(err.Error() + ": " + string(b))
		}
		return nil
	})
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	acc, err := peer.WaitInviteAcceptance(wctx, nil)
	wcancel()
	if err != nil {
		t.Fatalf("the peer saw no invite acceptance: %v", err)
	}
	if acc.Status != 200 || acc.UserID == "" {
		t.Errorf("invite acceptance at the peer: status %d, user %q", acc.Status, acc.UserID)
	}
	poll(t, 30*time.Second, "the peer among the contacts", func() error {
		var contacts []struct{ Address string }
		if err := ctl.Do(ctx, "GET", "/v1/contacts", nil, &contacts); err != nil {
			return err
		}
		for _, c := range contacts {
			if c.Address == peer.Address() {
				return nil
			}
		}
		return errors.New("contacts: " + strconv.Itoa(len(contacts)))
	})
	inviteShot := filepath.Join(artifacts, "tray-invite.png")
	poll(t, 30*time.Second, "the dialog saying the invite was accepted", func() error {
		if _, err := screenshot(t, display, inviteShot); err != nil {
			return err
		}
		// the field is emptied once the invite is spent
		if changed(readPNG(t, scratch), readPNG(t, inviteShot)) < 500 {
			return errors.New("the dialog has not changed yet")
		}
		return nil
	})
	if strings.Contains(tray.log.String(), invite) || strings.Contains(second.log.String(), invite) {
		t.Error("the invite appears in the tray's log")
	}

	// The daemon stops: the tray says so, offers to start it, and
	// reconnects by itself once it is back.
	if err := agent.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if _, ok := agent.exited(30 * time.Second); !ok {
		t.Fatal("the daemon did not stop")
	}
	poll(t, 30*time.Second, "the menu saying the agent is not running", func() error {
		m, err := readMenu(panel, reg.Sender, menuPath)
		if err != nil {
			return err
		}
		_, canStart := m.find(func(l string) bool { return l == "Start the a_gent" })
		if len(m.Children) == 0 || m.Children[0].Label != "Agent not running" || !canStart {
			return errors.New("menu:\n" + m.String())
		}
		return nil
	})
	start(t, agentBin, env, nil, agentArgs...)
	poll(t, 60*time.Second, "the menu after the daemon came back", func() error {
		m, err := readMenu(panel, reg.Sender, menuPath)
		if err != nil {
			return err
		}
		if len(m.Children) == 0 || m.Children[0].Label != "No shares waiting" {
			return errors.New("menu:\n" + m.String())
		}
		menu = m
		return nil
	})
	stopped := 0
	for _, n := range notes.all() {
		if n.Summary == "The OCM agent stopped" {
			stopped++
		}
		if n.App != "io.github.ocm_agent.Tray" {
			t.Errorf("notification from %q", n.App)
		}
	}
	if stopped != 1 {
		t.Errorf("%d notifications that the agent stopped, want 1: %+v", stopped, notes.all())
	}

	// Quit tray ends the process.
	quit, ok := menu.find(func(l string) bool { return l == "_Quit tray" })
	if !ok {
		t.Fatalf("no Quit tray item:\n%s", menu)
	}
	if err := click(panel, reg.Sender, menuPath, quit.ID); err != nil {
		t.Fatal(err)
	}
	if err, ok := tray.exited(30 * time.Second); !ok || err != nil {
		t.Errorf("the tray did not quit cleanly: exited=%v err=%v", ok, err)
	}
}

// peerInvite is an invite string made by the reference peer.
func peerInvite(t *testing.T, peer *ocmtest.Server) string {
	t.Helper()
	_, invite := peer.CreateInvite(ocmtest.InviteOptions{})
	if invite == "" {
		t.Fatal("the peer made no invite")
	}
	return invite
}
