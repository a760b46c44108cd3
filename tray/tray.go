package tray

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/ocm-agent/ocm-agent/control"
)

// Host is the desktop's system tray; fyne's desktop.App is one. Without a
// host (no StatusNotifierWatcher on the session bus) the tray shows its
// main window instead.
type Host interface {
	SetSystemTrayMenu(menu *fyne.Menu)
	SetSystemTrayIcon(icon fyne.Resource)
}

// Tooltipper is a Host that can also set the icon's tooltip.
type Tooltipper interface {
	SetTooltip(text string)
}

// Options configure a Tray. App and Client are required; the rest have
// defaults that act on the real desktop.
type Options struct {
	App    fyne.App
	Client *control.Client
	// Host is the system tray, nil when there is none.
	Host Host
	// Notified remembers shown notifications (default: DefaultNotifiedPath).
	Notified *Notified
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OpenFolder opens a directory in the file manager (default xdg-open).
	OpenFolder func(path string) error
	// StartAgent starts the daemon (default systemctl --user start ocm-agent).
	StartAgent func(ctx context.Context) error
	// Quit ends the tray (default App.Quit).
	Quit func()
	// Notify shows a desktop notification (default App.SendNotification).
	Notify func(*fyne.Notification)
	// Go runs slow work (control requests, commands) off the UI thread
	// (default: a goroutine). Results come back through fyne.Do.
	Go  func(func())
	Log *slog.Logger
	// NewShortcut makes a keyboard shortcut the driver recognises (on the
	// desktop: &desktop.CustomShortcut{KeyName: key, Modifier: mod}).
	NewShortcut func(key fyne.KeyName, mod fyne.KeyModifier) fyne.KeyboardShortcut
	// Watcher tuning; zero values take the watcher's defaults.
	MinBackoff, MaxBackoff time.Duration
}

// Tray is the running tray: icon, menu, windows and notifications over a
// snapshot of the daemon kept current by a Watcher. Its methods other
// than Run must be called on fyne's UI goroutine (inside fyne.Do).
type Tray struct {
	o       Options
	rec     *Notified
	watcher *Watcher

	snap     Snapshot
	message  Message
	main     *mainWindow
	invite   *inviteWindow
	menuSig  string
	trayMenu *fyne.Menu
	iconRes  fyne.Resource
	tooltip  string
	quitting bool
}

// Message is the outcome of the user's last action, shown in the window.
type Message struct {
	Text  string
	Error bool
}

// New builds a tray; nothing is shown until Run or a Show method.
func New(o Options) *Tray {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Go == nil {
		o.Go = func(f func()) { go f() }
	}
	if o.Quit == nil {
		o.Quit = o.App.Quit
	}
	if o.Notify == nil {
		o.Notify = o.App.SendNotification
	}
	if o.OpenFolder == nil {
		o.OpenFolder = func(path string) error { return openFolder(o.App, path) }
	}
	if o.StartAgent == nil {
		o.StartAgent = StartAgentService
	}
	t := &Tray{o: o, rec: o.Notified}
	if t.rec == nil {
		rec, err := OpenNotified(DefaultNotifiedPath())
		if err != nil {
			o.Log.Warn("notification record", "err", err)
		}
		t.rec = rec
	}
	t.watcher = &Watcher{
		Client: o.Client, Log: o.Log, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff,
		Publish: func(s Snapshot) { fyne.Do(func() { t.Apply(s) }) },
		OnEvent: func(ev control.Event) {
			if n, ok := EventNote(ev, t.rec, t.o.Now()); ok {
				fyne.Do(func() { t.send(n) })
				t.saveRecord()
			}
		},
	}
	o.App.Settings().AddListener(func(fyne.Settings) { fyne.Do(t.refreshTray) })
	return t
}

// Run follows the daemon until ctx ends; call it on its own goroutine.
func (t *Tray) Run(ctx context.Context) error { return t.watcher.Run(ctx) }

// Refresh asks for a fresh snapshot now.
func (t *Tray) Refresh() { t.watcher.Poke() }

// Snapshot is the state the tray currently shows.
func (t *Tray) Snapshot() Snapshot { return t.snap }

// Message is the outcome of the last action.
func (t *Tray) Message() Message { return t.message }

// HasHost says whether a system tray shows the icon.
func (t *Tray) HasHost() bool { return t.o.Host != nil }

// Apply shows a new snapshot: icon, menu, windows, notifications.
func (t *Tray) Apply(s Snapshot) {
	prev := t.snap
	t.snap = s
	notes, changed := Notes(prev, s, t.rec, t.o.Now())
	for _, n := range notes {
		t.send(n)
	}
	if changed {
		t.saveRecord()
	}
	t.refreshTray()
	if t.main != nil {
		t.main.update()
	}
}

func (t *Tray) send(n Note) {
	t.o.Notify(&fyne.Notification{Title: n.Title, Content: n.Body})
}

func (t *Tray) saveRecord() {
	if err := t.rec.Save(); err != nil {
		t.o.Log.Warn("could not save the notification record", "err", err)
	}
}

// dark says whether the desktop currently uses a dark theme, judged by
// the background of the theme in use, which follows the system's choice.
func (t *Tray) dark() bool {
	st := t.o.App.Settings()
	r, g, b, _ := st.Theme().Color(theme.ColorNameBackground, st.ThemeVariant()).RGBA()
	return 299*r+587*g+114*b < 1000*0x8000
}

// refreshTray updates the tray icon, tooltip and menu when they changed.
func (t *Tray) refreshTray() {
	if t.o.Host == nil || t.quitting {
		return
	}
	if icon := TrayIcon(t.snap.Icon(), t.dark()); icon != t.iconRes {
		t.iconRes = icon
		t.o.Host.SetSystemTrayIcon(icon)
	}
	if tt, ok := t.o.Host.(Tooltipper); ok {
		if tip := "OCM: " + t.snap.Summary(); tip != t.tooltip {
			t.tooltip = tip
			tt.SetTooltip(tip)
		}
	}
	m := t.Menu()
	sig := menuSignature(m.Items, "")
	for _, sh := range t.snap.Pending() {
		sig += sh.ID + "\n" // the items' actions name shares by id
	}
	if sig != t.menuSig {
		t.menuSig = sig
		// One menu object, updated in place: fyne's tray keeps the
		// first menu it was given and shows it again once the tray
		// becomes ready, which must not bring back a stale one.
		if t.trayMenu == nil {
			t.trayMenu = m
		} else {
			t.trayMenu.Label, t.trayMenu.Items = m.Label, m.Items
		}
		t.o.Host.SetSystemTrayMenu(t.trayMenu)
	}
}

// Accept accepts a pending share (or retries a failed one).
func (t *Tray) Accept(id string) { t.shareAction(id, "accept") }

// Decline declines a pending share.
func (t *Tray) Decline(id string) { t.shareAction(id, "decline") }

// Remove removes a share from the shares folder.
func (t *Tray) Remove(id string) { t.shareAction(id, "remove") }

var (
	actionDone  = map[string]string{"accept": "Accepted", "decline": "Declined", "remove": "Removed"}
	actionDoing = map[string]string{"accept": "Accepting", "decline": "Declining", "remove": "Removing"}
)

func (t *Tray) shareAction(id, action string) {
	name := id
	if sh, ok := t.snap.Find(id); ok {
		name = ShareName(sh)
	}
	t.setMessage(Message{Text: actionDoing[action] + " “" + name + "”…"})
	mounted := t.MountPath() != ""
	t.o.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sh, err := t.o.Client.ShareAction(ctx, id, action)
		var m Message
		switch {
		case err != nil:
			t.o.Log.Warn("share action failed", "share", id, "action", action, "err", err)
			m = Message{Text: "Could not " + action + " “" + name + "”: " + err.Error(), Error: true}
		case action == "accept" && sh.State == StateAccepted && mounted:
			m = Message{Text: "Accepted “" + ShareName(sh) + "”. It is in your shares folder and " + SenderName(sh) + " was told."}
		case action == "accept" && sh.State == StateAccepted:
			m = Message{Text: "Accepted “" + ShareName(sh) + "”; " + SenderName(sh) + " was told. (The shares folder is not mounted.)"}
		default:
			m = Message{Text: actionDone[action] + " “" + ShareName(sh) + "”."}
		}
		fyne.Do(func() { t.setMessage(m) })
		t.watcher.Poke()
	})
}

// TogglePin keeps a whole share on this device, or stops keeping it.
func (t *Tray) TogglePin(id string) {
	name := id
	if sh, ok := t.snap.Find(id); ok {
		name = ShareName(sh)
	}
	pinned := t.snap.Pinned(id)
	if pinned {
		t.setMessage(Message{Text: "No longer keeping “" + name + "” on this device…"})
	} else {
		t.setMessage(Message{Text: "Keeping “" + name + "” on this device: downloading it…"})
	}
	t.o.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var m Message
		if pinned {
			if _, err := t.o.Client.Unpin(ctx, id, ""); err != nil {
				m = Message{Text: "Could not stop keeping “" + name + "”: " + err.Error(), Error: true}
			} else {
				m = Message{Text: "“" + name + "” is no longer kept on this device; what was downloaded stays in the cache until it is needed."}
			}
		} else {
			if j, err := t.o.Client.Pin(ctx, id, ""); err != nil {
				m = Message{Text: "Could not keep “" + name + "” on this device: " + err.Error(), Error: true}
			} else {
				m = Message{Text: fmt.Sprintf("Keeping “%s” on this device: %d files found so far, downloading.", name, j.Files)}
			}
		}
		if m.Error {
			t.o.Log.Warn("pin action failed", "share", id, "unpin", pinned, "err", m.Text)
		}
		fyne.Do(func() { t.setMessage(m) })
		t.watcher.Poke()
	})
}

func (t *Tray) setMessage(m Message) {
	t.message = m
	if t.main != nil {
		t.main.update()
	}
}

// RemoveContact removes a contact from the address book.
func (t *Tray) RemoveContact(c Contact) {
	t.setMessage(Message{Text: "Removing " + c.Label() + " from your contacts…"})
	t.o.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := t.o.Client.Do(ctx, http.MethodDelete, "/v1/contacts/"+url.PathEscape(c.ID), nil, nil)
		m := Message{Text: "Removed " + c.Label() + " from your contacts."}
		if err != nil {
			m = Message{Text: "Could not remove " + c.Label() + ": " + err.Error(), Error: true}
		}
		fyne.Do(func() { t.setMessage(m) })
		t.watcher.Poke()
	})
}

// MountPath is the shares folder when it is mounted, else "".
func (t *Tray) MountPath() string {
	if t.snap.Conn != Connected || t.snap.Status.MountState != "mounted" {
		return ""
	}
	return t.snap.Status.Mount
}

// OpenSharesFolder opens the shares folder in the file manager.
func (t *Tray) OpenSharesFolder() {
	path := t.MountPath()
	if path == "" {
		t.setMessage(Message{Text: "The shares folder is not mounted.", Error: true})
		return
	}
	t.o.Go(func() {
		if err := t.o.OpenFolder(path); err != nil {
			fyne.Do(func() { t.setMessage(Message{Text: "Could not open " + path + ": " + err.Error(), Error: true}) })
		}
	})
}

// StartAgent asks the service manager to start the daemon.
func (t *Tray) StartAgent() {
	t.setMessage(Message{Text: "Starting the agent…"})
	t.o.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := t.o.StartAgent(ctx)
		m := Message{Text: "Asked systemd to start the agent; connecting…"}
		if err != nil {
			m = Message{Text: "Could not start the agent: " + err.Error() + ". Start it in a terminal with 'ocm-agent serve'.", Error: true}
		}
		fyne.Do(func() { t.setMessage(m) })
		t.watcher.Poke()
	})
}

// Quit closes the windows and ends the tray.
func (t *Tray) Quit() {
	t.quitting = true
	t.o.Quit()
}

// StartAgentService runs `systemctl --user start ocm-agent`.
func StartAgentService(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "systemctl", "--user", "start", "ocm-agent").CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		if msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

func openFolder(app fyne.App, path string) error {
	cmd := exec.Command("xdg-open", path)
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return app.OpenURL(&url.URL{Scheme: "file", Path: path})
		}
		return err
	}
	go func() { _ = cmd.Wait() }() // xdg-open's exit status says nothing useful
	return nil
}
