package tray

import (
	"context"
	"image/color"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/ocm-agent/ocm-agent/control"
)

// fakeHost records what the tray shows in the system tray.
type fakeHost struct {
	menus    []*fyne.Menu
	icons    []fyne.Resource
	tooltips []string
}

func (h *fakeHost) SetSystemTrayMenu(m *fyne.Menu)    { h.menus = append(h.menus, m) }
func (h *fakeHost) SetSystemTrayIcon(r fyne.Resource) { h.icons = append(h.icons, r) }
func (h *fakeHost) SetTooltip(s string)               { h.tooltips = append(h.tooltips, s) }
func (h *fakeHost) menu() *fyne.Menu                  { return h.menus[len(h.menus)-1] }
func (h *fakeHost) icon() fyne.Resource               { return h.icons[len(h.icons)-1] }
func (h *fakeHost) tooltip() string                   { return h.tooltips[len(h.tooltips)-1] }
func (h *fakeHost) item(label string) *fyne.MenuItem  { return findItem(h.menu().Items, label) }
func findItem(items []*fyne.MenuItem, label string) *fyne.MenuItem {
	for _, it := range items {
		if it.Label == label {
			return it
		}
	}
	return nil
}

// ui is a tray on fyne's test driver, over a fake daemon. Slow work runs
// synchronously, so every action has completed when its call returns.
type ui struct {
	t       *testing.T
	app     fyne.App
	b       *fakeBackend
	d       *fakeDaemon
	tr      *Tray
	host    *fakeHost
	notes   []*fyne.Notification
	opened  []string
	started int
	quits   int
}

func newUI(t *testing.T, b *fakeBackend, withHost bool) *ui {
	t.Helper()
	u := &ui{t: t, app: test.NewTempApp(t), b: b}
	u.app.Settings().SetTheme(test.Theme())
	if b != nil {
		u.d = serveFake(t, b, "")
	}
	socket := filepath.Join(t.TempDir(), "none.sock")
	if u.d != nil {
		socket = u.d.socket
	}
	var host Host
	if withHost {
		u.host = &fakeHost{}
		host = u.host
	}
	u.tr = New(Options{
		App: u.app, Client: control.NewClient(socket), Host: host,
		Notified:   openRecord(t, filepath.Join(t.TempDir(), NotifiedFile)),
		Now:        func() time.Time { return t0 },
		OpenFolder: func(p string) error { u.opened = append(u.opened, p); return nil },
		StartAgent: func(context.Context) error { u.started++; return nil },
		Quit:       func() { u.quits++ },
		Notify:     func(n *fyne.Notification) { u.notes = append(u.notes, n) },
		Go:         func(f func()) { f() },
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	u.refresh()
	return u
}

// refresh fetches and applies a snapshot, as the watcher does on an event.
func (u *ui) refresh() {
	u.t.Helper()
	s, err := Fetch(context.Background(), u.tr.o.Client)
	if err != nil {
		s = Snapshot{Conn: Disconnected, Err: "the ocm-agent daemon is not running (no socket)"}
	}
	u.tr.Apply(s)
}

func (u *ui) mainWindow() fyne.Window {
	u.tr.ShowMain()
	return u.tr.MainWindow()
}

// button finds a button by its text among what is laid out on c,
// overlays (modal pop-ups) first.
func button(t *testing.T, c fyne.Canvas, text string) *widget.Button {
	t.Helper()
	roots := slices.Clone(c.Overlays().List())
	slices.Reverse(roots)
	roots = append(roots, c.Content())
	for _, root := range roots {
		for _, o := range test.LaidOutObjects(root) {
			if b, ok := o.(*widget.Button); ok && b.Text == text && b.Visible() {
				return b
			}
		}
	}
	t.Fatalf("no button %q", text)
	return nil
}

func labels(c fyne.CanvasObject) []string {
	var out []string
	for _, o := range test.LaidOutObjects(c) {
		if l, ok := o.(*widget.Label); ok && l.Visible() {
			out = append(out, l.Text)
		}
	}
	return out
}

// scenario is a daemon with a share in every state and a contact.
func scenario() *fakeBackend {
	b := newFakeBackend()
	p := share("p1", "Holiday photos", StatePending)
	p2 := share("p2", "Q1_report.xlsx", StatePending)
	p2.SenderDisplayName, p2.Sender, p2.Owner, p2.Peer = "Erin", "erin@other.example", "erin@other.example", "other.example"
	p2.Permissions, p2.Expiration, p2.Size, p2.SignedBy = []string{"read"}, time.Time{}, 0, ""
	p2.CreatedAt = t0.Add(-30 * time.Minute)
	a := share("a1", "Budget 2026", StateAccepted)
	d := share("d1", "Spam", StateDeclined)
	r := share("r1", "Old slides", StateRemoved)
	r.Error = "unshared by the sender"
	e := share("e1", "Broken link", StateError)
	e.Error = "the peer refused the token exchange"
	b.shares = []control.Share{p, p2, a, d, r, e}
	b.contacts = []Contact{{ID: "c1", Address: "bob@cloud.example", Name: "Bob Builder", Email: "bob@cloud.example",
		Source: "accepted-their-invite", State: "active", CreatedAt: t0.Add(-48 * time.Hour)}}
	return b
}

func TestMainWindowListsSharesByState(t *testing.T) {
	u := newUI(t, scenario(), true)
	w := u.mainWindow()
	m := u.tr.main
	wantRoots := []string{"state:pending", "state:error", "state:accepted", "state:declined", "state:removed"}
	if !slices.Equal(m.roots, wantRoots) {
		t.Errorf("groups %v, want %v", m.roots, wantRoots)
	}
	if got := m.groups["state:pending"]; !slices.Equal(got, []string{"p1", "p2"}) {
		t.Errorf("pending group %v", got)
	}
	if m.selected != "p1" {
		t.Errorf("selected %q, want the oldest pending share", m.selected)
	}
	detail := labels(m.detail)
	for _, want := range []string{"Holiday photos", "Bob Builder (bob@cloud.example) · in your contacts", "read, write",
		"4 Mar 2026 12:00 (in 3 days)", "5.0 MiB", "rfc9421 https://cloud.example/ocm#key1", "waiting for your decision"} {
		if !slices.Contains(detail, want) {
			t.Errorf("details lack %q: %q", want, detail)
		}
	}
	test.AssertRendersToMarkup(t, "main_pending.xml", w.Canvas())

	m.tree.Select("p2")
	detail = labels(m.detail)
	for _, want := range []string{"Erin (erin@other.example) · not in your contacts", "read only", "never", "unknown", "none (the server did not sign)"} {
		if !slices.Contains(detail, want) {
			t.Errorf("details of p2 lack %q: %q", want, detail)
		}
	}
	m.tree.Select("e1")
	if d := labels(m.detail); !slices.Contains(d, "failed (the peer refused the token exchange)") {
		t.Errorf("error share details %q", d)
	}
	test.AssertRendersToMarkup(t, "main_error_share.xml", w.Canvas())
}

func TestMainWindowAcceptAndDecline(t *testing.T) {
	u := newUI(t, scenario(), true)
	w := u.mainWindow()
	test.Tap(button(t, w.Canvas(), "Accept"))
	if got := u.b.actionLog(); !slices.Equal(got, []string{"accepted:p1"}) {
		t.Fatalf("daemon saw %v", got)
	}
	if msg := u.tr.Message(); msg.Error || !strings.Contains(msg.Text, "Accepted “Holiday photos”") {
		t.Errorf("message %+v", msg)
	}
	u.refresh()
	if u.tr.main.selected != "p1" {
		t.Errorf("selection moved to %q", u.tr.main.selected)
	}
	test.AssertRendersToMarkup(t, "main_accepted.xml", w.Canvas())

	u.tr.main.tree.Select("p2")
	test.Tap(button(t, w.Canvas(), "Decline"))
	if got := u.b.actionLog(); !slices.Equal(got, []string{"accepted:p1", "declined:p2"}) {
		t.Fatalf("daemon saw %v", got)
	}
	// A failed share can be tried again.
	u.tr.main.tree.Select("e1")
	test.Tap(button(t, w.Canvas(), "Try again"))
	if got := u.b.actionLog(); !slices.Equal(got, []string{"accepted:p1", "declined:p2", "accepted:e1"}) {
		t.Fatalf("daemon saw %v", got)
	}
	// A second decline of the same share is refused by the daemon and said so.
	u.tr.Decline("p2")
	if msg := u.tr.Message(); !msg.Error || !strings.Contains(msg.Text, "Could not decline") {
		t.Errorf("message after a refused action %+v", msg)
	}
}

func TestMainWindowRemoveAsksFirst(t *testing.T) {
	u := newUI(t, scenario(), true)
	w := u.mainWindow()
	u.tr.main.tree.Select("a1")
	test.Tap(button(t, w.Canvas(), "Remove"))
	if len(u.b.actionLog()) != 0 {
		t.Fatal("removed without asking")
	}
	test.AssertRendersToMarkup(t, "confirm_remove.xml", w.Canvas())
	test.Tap(button(t, w.Canvas(), "Cancel"))
	if w.Canvas().Overlays().Top() != nil || len(u.b.actionLog()) != 0 {
		t.Fatal("Cancel did not just close the question")
	}
	test.Tap(button(t, w.Canvas(), "Remove"))
	test.Tap(button(t, w.Canvas(), "Remove")) // the question's button: overlays come first
	if got := u.b.actionLog(); !slices.Equal(got, []string{"removed:a1"}) {
		t.Errorf("daemon saw %v", got)
	}
	test.Tap(button(t, w.Canvas(), "Open shares folder"))
	if !slices.Equal(u.opened, []string{"/home/alice/OCM"}) {
		t.Errorf("opened %v", u.opened)
	}
}

func TestMainWindowAgentNotRunning(t *testing.T) {
	u := newUI(t, nil, true)
	w := u.mainWindow()
	if u.tr.Snapshot().Conn != Disconnected {
		t.Fatal("no daemon, yet connected")
	}
	test.AssertRendersToMarkup(t, "main_disconnected.xml", w.Canvas())
	test.Tap(button(t, w.Canvas(), "Try again now"))
	if len(u.tr.watcher.poke) != 1 {
		t.Error("Try again now does not wake the watcher")
	}
	test.Tap(button(t, w.Canvas(), "Start the agent"))
	if u.started != 1 || !strings.Contains(u.tr.Message().Text, "Asked systemd to start the agent") {
		t.Errorf("start: %d calls, message %+v", u.started, u.tr.Message())
	}
	if it := u.host.item(LabelStartAgent); it == nil {
		t.Error("the tray menu has no way to start the agent")
	}
	if it := u.host.item(LabelOpenFolder); it == nil || !it.Disabled {
		t.Error("opening the shares folder is offered without a daemon")
	}
	if u.host.icon() != TrayIcon(IconError, true) && u.host.icon() != TrayIcon(IconError, false) {
		t.Errorf("icon %s, want an error icon", u.host.icon().Name())
	}
	if u.host.tooltip() != "OCM: Agent not running" {
		t.Errorf("tooltip %q", u.host.tooltip())
	}
}

func TestMainWindowShowsProblems(t *testing.T) {
	b := newFakeBackend()
	b.status.KeyringUnlocked = false
	b.status.MountState = "error: /home/alice/OCM: fusermount3: permission denied"
	b.status.Errors = []string{"SHARE_ACCEPTED to cloud.example: connection refused (retrying)"}
	u := newUI(t, b, true)
	w := u.mainWindow()
	test.AssertRendersToMarkup(t, "main_problems.xml", w.Canvas())
	if got := titles(notesOf(u)); !slices.Equal(got, []string{"The keyring is locked", "The shares folder could not be mounted", "The agent reported an error"}) {
		t.Errorf("notifications %v", got)
	}
}

func notesOf(u *ui) []Note {
	var out []Note
	for _, n := range u.notes {
		out = append(out, Note{Title: n.Title, Body: n.Content})
	}
	return out
}

func TestContactsTab(t *testing.T) {
	b := scenario()
	b.contacts = append(b.contacts, Contact{ID: "c2", Address: "zoe@far.example", DisplayName: "Zoë",
		Source: "accepted-our-invite", State: "removed-by-peer"})
	u := newUI(t, b, true)
	u.tr.ShowContacts()
	w := u.tr.MainWindow()
	if u.tr.main.tabs.SelectedIndex() != TabContacts {
		t.Fatal("contacts tab not shown")
	}
	got := labels(u.tr.main.contacts)
	if i, j := slices.Index(got, "Bob Builder"), slices.Index(got, "Zoë"); i < 0 || j < 0 || i > j {
		t.Errorf("contacts not listed by name: %q", got)
	}
	for _, want := range []string{"bob@cloud.example · added 27 Feb 2026 · you accepted their invite",
		"zoe@far.example · they accepted your invite; they removed you from their contacts"} {
		if !slices.Contains(got, want) {
			t.Errorf("contact details %q missing: %q", want, got)
		}
	}
	test.AssertRendersToMarkup(t, "contacts.xml", w.Canvas())

	u.tr.main.confirmRemoveContact(b.contacts[1])
	test.Tap(button(t, w.Canvas(), "Remove")) // the question's button: overlays come first
	if got := u.b.actionLog(); !slices.Equal(got, []string{"delete-contact:c2"}) {
		t.Errorf("daemon saw %v", got)
	}
	u.refresh()
	if slices.Contains(labels(u.tr.main.contacts), "Zoë") {
		t.Error("a removed contact is still listed")
	}

	test.Tap(button(t, w.Canvas(), "Accept an invite…"))
	if u.tr.invite == nil {
		t.Error("the contacts tab does not open the invite dialog")
	}
}

func TestContactsTabOnAnOldAgent(t *testing.T) {
	b := newFakeBackend()
	b.noContactsAPI = true
	u := newUI(t, b, true)
	u.tr.ShowContacts()
	if got := labels(u.tr.main.contacts); !slices.Contains(got, "This agent version has no address book.") {
		t.Errorf("contacts tab of an old agent: %q", got)
	}
}

func TestStatusTab(t *testing.T) {
	u := newUI(t, scenario(), true)
	u.tr.ShowStatus()
	w := u.tr.MainWindow()
	got := labels(u.tr.main.status)
	for _, want := range []string{"alice@agent.example", "https://agent.example/ocm", "/home/alice/OCM (mounted)",
		"system keyring (unlocked)", "2 shares, 0 invites", "1.0.0", "1 Mar 2026 09:00", "none"} {
		if !slices.Contains(got, want) {
			t.Errorf("status lacks %q: %q", want, got)
		}
	}
	test.AssertRendersToMarkup(t, "status.xml", w.Canvas())
	test.Tap(button(t, w.Canvas(), "Copy address"))
	if c := u.app.Clipboard().Content(); c != "alice@agent.example" {
		t.Errorf("clipboard %q", c)
	}
}

func TestInviteDialogOutcomes(t *testing.T) {
	cases := []struct {
		golden string
		setup  func(*fakeBackend)
		want   InviteOutcome
	}{
		{"invite_accepted.xml", func(*fakeBackend) {}, InviteAccepted},
		{"invite_invalid.xml", func(b *fakeBackend) { b.inviteStatus, b.inviteMsg = 400, "unknown invite token" }, InviteInvalid},
		{"invite_already_used.xml", func(b *fakeBackend) { b.inviteStatus, b.inviteMsg = 409, "invite already accepted" }, InviteAlreadyUsed},
		{"invite_not_trusted.xml", func(b *fakeBackend) { b.inviteStatus, b.inviteMsg = 403, "cloud.example refuses agent.example" }, InviteNotTrusted},
		{"invite_unreachable.xml", func(b *fakeBackend) { b.inviteStatus, b.inviteMsg = 504, "cloud.example did not answer in 30s" }, InviteUnreachable},
		{"invite_unsupported.xml", func(b *fakeBackend) { b.noInviteAPI = true }, InviteUnsupported},
	}
	for _, c := range cases {
		t.Run(c.want.String(), func(t *testing.T) {
			b := newFakeBackend()
			c.setup(b)
			u := newUI(t, b, true)
			u.tr.ShowInvite("")
			w := u.tr.InviteWindow()
			iw := u.tr.invite
			test.Type(iw.entry, testInvite)
			test.Tap(button(t, w.Canvas(), "Accept"))
			r, ok := u.tr.InviteResult()
			if !ok || r.Outcome != c.want {
				t.Fatalf("result %+v, want %v", r, c.want)
			}
			test.AssertRendersToMarkup(t, c.golden, w.Canvas())
			if c.want == InviteAccepted {
				if iw.entry.Text != "" || iw.acceptBtn.Visible() || iw.closeBtn.Text != "Close" {
					t.Error("after success the dialog still offers to accept")
				}
				test.Tap(button(t, w.Canvas(), "Close"))
				if _, ok := u.tr.InviteResult(); ok {
					t.Error("closing did not reset the dialog")
				}
			} else if iw.entry.Text != testInvite || iw.acceptBtn.Disabled() {
				t.Error("after a failure the invite cannot be corrected and retried")
			}
		})
	}
}

func TestInviteDialogPrefilledAndEmpty(t *testing.T) {
	u := newUI(t, newFakeBackend(), true)
	link := "https://cloud.example/index.php/apps/contacts/ocm-invite?token=abc&providerDomain=cloud.example"
	u.tr.ShowInvite(link)
	w := u.tr.InviteWindow()
	if u.tr.invite.entry.Text != link {
		t.Errorf("entry %q, want the link", u.tr.invite.entry.Text)
	}
	if w.Canvas().Focused() != u.tr.invite.entry {
		t.Error("the invite field does not have the focus")
	}
	test.AssertRendersToMarkup(t, "invite_prefilled.xml", w.Canvas())
	u.tr.invite.entry.SetText("   ")
	u.tr.SubmitInvite()
	if r, _ := u.tr.InviteResult(); r.Outcome != InviteEmpty || len(u.b.invites) != 0 {
		t.Errorf("empty invite: %+v, daemon got %d", r, len(u.b.invites))
	}
	// Escape closes the dialog and forgets what it held.
	w.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyEscape})
	if _, ok := u.tr.InviteResult(); ok || u.tr.invite.entry.Text != "" {
		t.Error("Escape left the dialog's content behind")
	}
	// Enter in the field submits.
	u.tr.invite.entry.SetText(testInvite)
	u.tr.invite.entry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if r, _ := u.tr.InviteResult(); r.Outcome != InviteAccepted {
		t.Errorf("Enter gave %+v", r)
	}
}

func TestTrayMenu(t *testing.T) {
	b := scenario()
	u := newUI(t, b, true)
	m := u.host.menu()
	var got []string
	for _, it := range m.Items {
		got = append(got, it.Label)
	}
	want := []string{"2 shares waiting", "Holiday photos — from Bob Builder (file)", "Q1__report.xlsx — from Erin (file)", "",
		LabelShowShares, LabelInvite, LabelOpenFolder, LabelStatus, "", LabelQuit}
	if !slices.Equal(got, want) {
		t.Fatalf("menu %q\nwant %q", got, want)
	}
	if q := m.Items[len(m.Items)-1]; !q.IsQuit {
		t.Error("Quit tray is not the quit item")
	}
	share := m.Items[2]
	if share.ChildMenu == nil || findItem(share.ChildMenu.Items, LabelAccept) == nil || findItem(share.ChildMenu.Items, LabelDecline) == nil {
		t.Fatal("a pending share has no Accept/Decline submenu")
	}
	findItem(share.ChildMenu.Items, LabelAccept).Action()
	u.refresh()
	findItem(u.host.menu().Items[1].ChildMenu.Items, LabelDecline).Action()
	if got := u.b.actionLog(); !slices.Equal(got, []string{"accepted:p2", "declined:p1"}) {
		t.Errorf("daemon saw %v", got)
	}
	u.refresh()
	if got := u.host.menu().Items[0].Label; got != "No shares waiting" {
		t.Errorf("summary after deciding %q", got)
	}
	if u.host.icon() != TrayIcon(IconIdle, u.tr.dark()) {
		t.Errorf("icon %s after deciding", u.host.icon().Name())
	}
	n := len(u.host.menus)
	u.refresh()
	if len(u.host.menus) != n {
		t.Error("an unchanged menu was sent to the tray again")
	}
	u.host.item(LabelOpenFolder).Action()
	u.host.item(LabelStatus).Action()
	if u.tr.main.tabs.SelectedIndex() != TabStatus || !slices.Equal(u.opened, []string{"/home/alice/OCM"}) {
		t.Error("Status… or Open shares folder did nothing")
	}
	u.host.item(LabelInvite).Action()
	if u.tr.invite == nil {
		t.Error("Accept an invite… did nothing")
	}
	u.host.item(LabelQuit).Action()
	if u.quits != 1 {
		t.Error("Quit tray did not quit")
	}
}

func TestTrayMenuBoundsTheList(t *testing.T) {
	b := newFakeBackend()
	for i := range 11 {
		sh := share(string(rune('a'+i)), "Share "+string(rune('A'+i)), StatePending)
		sh.CreatedAt = t0.Add(-time.Hour + time.Duration(i)*time.Second)
		b.shares = append(b.shares, sh)
	}
	u := newUI(t, b, true)
	items := u.host.menu().Items
	if items[0].Label != "11 shares waiting" || items[maxMenuShares+1].Label != "3 more… (open the window)" {
		t.Errorf("menu head %q … %q", items[0].Label, items[maxMenuShares+1].Label)
	}
	findItem(items[3].ChildMenu.Items, LabelDetails).Action()
	if u.tr.main.selected != "c" || u.tr.main.tabs.SelectedIndex() != TabShares {
		t.Errorf("Details… selected %q", u.tr.main.selected)
	}
}

// variantTheme is the default theme held to one variant, as the desktop's
// light or dark preference makes it.
type variantTheme struct {
	fyne.Theme
	v fyne.ThemeVariant
}

func (t variantTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return t.Theme.Color(n, t.v)
}

func TestTrayIconFollowsStateAndTheme(t *testing.T) {
	b := newFakeBackend()
	u := newUI(t, b, true)
	u.app.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantLight})
	if u.host.icon() != TrayIcon(IconIdle, false) {
		t.Errorf("light theme: icon %s", u.host.icon().Name())
	}
	u.app.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantDark})
	if u.host.icon() != TrayIcon(IconIdle, true) {
		t.Errorf("dark theme: icon %s", u.host.icon().Name())
	}
	b.addShare(share("s1", "New", StatePending))
	u.refresh()
	if u.host.icon() != TrayIcon(IconPending, true) || u.host.tooltip() != "OCM: 1 share waiting" {
		t.Errorf("pending: icon %s, tooltip %q", u.host.icon().Name(), u.host.tooltip())
	}
	b.setStatus(func(s *control.Status) { s.MountState = "error: gone" })
	u.refresh()
	if u.host.icon() != TrayIcon(IconError, true) {
		t.Errorf("mount failed: icon %s", u.host.icon().Name())
	}
}

func TestNotificationsGoThroughTheApp(t *testing.T) {
	a := test.NewTempApp(t)
	b := newFakeBackend()
	d := serveFake(t, b, "")
	tr := New(Options{App: a, Client: d.client(), Notified: openRecord(t, filepath.Join(t.TempDir(), NotifiedFile)),
		Now: func() time.Time { return t0 }, Go: func(f func()) { f() }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s, err := Fetch(context.Background(), d.client())
	if err != nil {
		t.Fatal(err)
	}
	tr.Apply(s)
	b.addShare(share("s1", "Holiday photos", StatePending))
	s, err = Fetch(context.Background(), d.client())
	if err != nil {
		t.Fatal(err)
	}
	test.AssertNotificationSent(t, &fyne.Notification{
		Title:   "New share from Bob Builder",
		Content: "“Holiday photos” (file). Accept or decline it from the OCM icon.",
	}, func() { tr.Apply(s) })
	test.AssertNotificationSent(t, nil, func() { tr.Apply(s) })
}

// shortcutable digs the software canvas, which dispatches shortcuts, out
// of the test driver's canvas wrapper (it does not forward them).
func shortcutable(t *testing.T, c fyne.Canvas) fyne.Shortcutable {
	t.Helper()
	if s, ok := c.(fyne.Shortcutable); ok {
		return s
	}
	v := reflect.ValueOf(c)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if f := v.FieldByName("WindowlessCanvas"); f.IsValid() {
		if s, ok := f.Interface().(fyne.Shortcutable); ok {
			return s
		}
	}
	t.Fatalf("canvas %T does not take shortcuts", c)
	return nil
}

func TestKeyboardShortcuts(t *testing.T) {
	u := newUI(t, scenario(), true)
	w := u.mainWindow()
	if w.Canvas().Focused() != u.tr.main.tree {
		t.Error("the share list does not have the focus when the window opens")
	}
	press := func(key fyne.KeyName, mod fyne.KeyModifier) {
		shortcutable(t, w.Canvas()).TypedShortcut(newKeyShortcut(key, mod))
	}
	ctrl, alt := fyne.KeyModifierControl, fyne.KeyModifierAlt
	press(fyne.KeyReturn, ctrl)
	if got := u.b.actionLog(); !slices.Equal(got, []string{"accepted:p1"}) {
		t.Errorf("Ctrl+Enter: daemon saw %v", got)
	}
	u.refresh()
	u.tr.main.tree.Select("p2")
	press(fyne.KeyD, ctrl)
	if got := u.b.actionLog(); !slices.Equal(got, []string{"accepted:p1", "declined:p2"}) {
		t.Errorf("Ctrl+D: daemon saw %v", got)
	}
	press(fyne.Key3, alt)
	if u.tr.main.tabs.SelectedIndex() != TabStatus {
		t.Error("Alt+3 does not show the status")
	}
	press(fyne.Key2, alt)
	if u.tr.main.tabs.SelectedIndex() != TabContacts {
		t.Error("Alt+2 does not show the contacts")
	}
	press(fyne.KeyO, ctrl)
	if len(u.opened) != 1 {
		t.Error("Ctrl+O does not open the shares folder")
	}
	press(fyne.KeyI, ctrl)
	if u.tr.invite == nil {
		t.Error("Ctrl+I does not open the invite dialog")
	}
	press(fyne.KeyQ, ctrl)
	if u.quits != 1 {
		t.Error("Ctrl+Q does not quit")
	}
	// Tab moves the focus through the window's controls.
	w.Canvas().Focus(u.tr.main.tree)
	w.Canvas().FocusNext()
	if w.Canvas().Focused() == nil || w.Canvas().Focused() == u.tr.main.tree {
		t.Error("Tab does not move the focus on")
	}
	if h := u.tr.ShortcutHelp(); !strings.Contains(h, "Ctrl+I accept an invite") || !strings.Contains(h, "Alt+3 status") {
		t.Errorf("shortcut help %q", h)
	}
}

func TestWithoutTrayTheWindowStandsIn(t *testing.T) {
	u := newUI(t, scenario(), false)
	u.tr.ShowMain()
	u.tr.closeMain()
	if u.quits != 1 {
		t.Error("closing the only window did not end the tray")
	}
	if len(u.notes) != 3 { // two pending shares and one failed share
		t.Errorf("notifications without a tray: %v", titles(notesOf(u)))
	}

	v := newUI(t, scenario(), true)
	v.tr.ShowMain()
	v.tr.closeMain()
	if v.quits != 0 {
		t.Error("closing the window with a tray icon ended the tray")
	}
}
