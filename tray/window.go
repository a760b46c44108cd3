package tray

import (
	"fmt"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/ocm-agent/ocm-agent/control"
)

// MainWindowSize is the main window's initial size.
var MainWindowSize = fyne.NewSize(820, 560)

const timeLayout = "2 Jan 2006 15:04"

// The main window's tabs.
const (
	TabShares   = 0
	TabContacts = 1
	TabStatus   = 2
)

// mainWindow lists the shares by state with their details and actions,
// the contacts and the agent's status, under a banner for problems and
// the outcome of the last action.
type mainWindow struct {
	t    *Tray
	w    fyne.Window
	tabs *container.AppTabs

	banner *fyne.Container

	tree      *widget.Tree
	noShares  *widget.Label
	groups    map[string][]string // branch uid -> share ids
	roots     []string
	detail    *fyne.Container
	detailSig string
	selected  string

	contacts    *fyne.Container
	contactsSig string
	status      *fyne.Container
	statusSig   string

	// buttons in the details pane, for keyboard shortcuts and tests
	acceptBtn, declineBtn, removeBtn *widget.Button
}

const branchPrefix = "state:"

func (t *Tray) mainWin() *mainWindow {
	if t.main != nil {
		return t.main
	}
	m := &mainWindow{t: t, groups: map[string][]string{}}
	m.w = t.o.App.NewWindow("OCM shares")
	m.w.SetIcon(AppIcon)
	m.banner = container.NewVBox()
	m.tree = widget.NewTree(m.childUIDs, m.isBranch, m.createNode, m.updateNode)
	m.tree.OnSelected = func(uid widget.TreeNodeID) {
		if m.isBranch(uid) {
			return
		}
		m.selected = uid
		m.updateDetail()
	}
	m.noShares = widget.NewLabel("")
	m.noShares.Wrapping = fyne.TextWrapWord
	m.detail = container.NewVBox()
	split := container.NewHSplit(container.NewStack(m.tree, m.noShares), container.NewVScroll(container.NewPadded(m.detail)))
	split.Offset = 0.4
	m.contacts = container.NewVBox()
	m.status = container.NewVBox()
	m.tabs = container.NewAppTabs(
		container.NewTabItemWithIcon("Shares", theme.FolderIcon(), split),
		container.NewTabItemWithIcon("Contacts", theme.AccountIcon(), container.NewVScroll(container.NewPadded(m.contacts))),
		container.NewTabItemWithIcon("Status", theme.InfoIcon(), container.NewVScroll(container.NewPadded(m.status))),
	)
	m.w.SetContent(container.NewBorder(m.banner, nil, nil, nil, m.tabs))
	m.w.Resize(MainWindowSize)
	m.w.SetCloseIntercept(t.closeMain)
	for _, sc := range t.Shortcuts() {
		t.bind(m.w.Canvas(), sc)
	}
	t.main = m
	m.update()
	return m
}

// closeMain closes the main window: it hides while a tray icon remains,
// and ends the tray when the window stands in for the icon.
func (t *Tray) closeMain() {
	if t.main == nil {
		return
	}
	if t.o.Host == nil {
		t.Quit()
		return
	}
	t.main.w.Hide()
}

// ShowMain shows the main window on the shares tab.
func (t *Tray) ShowMain() { t.showTab(TabShares) }

// ShowContacts shows the main window on the contacts tab.
func (t *Tray) ShowContacts() { t.showTab(TabContacts) }

// ShowStatus shows the main window on the status tab.
func (t *Tray) ShowStatus() { t.showTab(TabStatus) }

// ShowShare shows one share's details.
func (t *Tray) ShowShare(id string) {
	m := t.mainWin()
	m.selected = id
	m.update()
	m.tree.Select(id)
	t.showTab(TabShares)
}

func (t *Tray) showTab(i int) {
	m := t.mainWin()
	m.tabs.SelectIndex(i)
	m.w.Show()
	m.w.RequestFocus()
	if i == TabShares {
		m.w.Canvas().Focus(m.tree)
	}
}

// MainWindow is the main window (created on first use).
func (t *Tray) MainWindow() fyne.Window { return t.mainWin().w }

func (m *mainWindow) isBranch(uid widget.TreeNodeID) bool {
	return uid == "" || strings.HasPrefix(uid, branchPrefix)
}

func (m *mainWindow) childUIDs(uid widget.TreeNodeID) []widget.TreeNodeID {
	if uid == "" {
		return m.roots
	}
	return m.groups[uid]
}

func (m *mainWindow) createNode(bool) fyne.CanvasObject {
	return container.NewHBox(widget.NewIcon(theme.FolderIcon()), widget.NewLabel("template share name"))
}

func stateIcon(state string) fyne.Resource {
	switch state {
	case StatePending:
		return theme.QuestionIcon()
	case StateAccepted:
		return theme.ConfirmIcon()
	case StateDeclined:
		return theme.CancelIcon()
	case StateRemoved:
		return theme.DeleteIcon()
	}
	return theme.ErrorIcon()
}

func (m *mainWindow) updateNode(uid widget.TreeNodeID, branch bool, o fyne.CanvasObject) {
	box := o.(*fyne.Container)
	icon, label := box.Objects[0].(*widget.Icon), box.Objects[1].(*widget.Label)
	if branch {
		state := strings.TrimPrefix(uid, branchPrefix)
		icon.SetResource(stateIcon(state))
		label.TextStyle = fyne.TextStyle{Bold: true}
		label.SetText(StateTitle(state, len(m.groups[uid])))
		return
	}
	sh, _ := m.t.snap.Find(uid)
	if KindOf(sh) == "folder" {
		icon.SetResource(theme.FolderIcon())
	} else {
		icon.SetResource(theme.FileIcon())
	}
	label.TextStyle = fyne.TextStyle{}
	label.SetText(ShareName(sh) + " — " + m.t.snap.SenderName(sh))
}

// update shows the tray's current snapshot and message.
func (m *mainWindow) update() {
	m.updateBanner()
	m.updateTree()
	m.updateDetail()
	m.updateContacts()
	m.updateStatus()
	// The banner's height changes with its content; the window's layout
	// must follow.
	m.w.Content().Refresh()
}

func (m *mainWindow) updateBanner() {
	s, t := m.t.snap, m.t
	var objs []fyne.CanvasObject
	switch s.Conn {
	case Connecting:
		objs = append(objs, widget.NewLabel("Connecting to the agent…"))
	case Disconnected:
		p := s.Problems()[0]
		detail := widget.NewLabel(p.Detail + "\n" + sentence(s.Err))
		detail.Wrapping = fyne.TextWrapWord
		start := widget.NewButtonWithIcon("Start the agent", theme.MediaPlayIcon(), t.StartAgent)
		start.Importance = widget.HighImportance
		objs = append(objs,
			heading(theme.ErrorIcon(), "The OCM agent is not running"), detail,
			container.NewHBox(start, widget.NewButtonWithIcon("Try again now", theme.ViewRefreshIcon(), t.Refresh)))
	default:
		for _, p := range s.Problems() {
			icon := theme.WarningIcon()
			if p.Severe {
				icon = theme.ErrorIcon()
			}
			d := widget.NewLabel(p.Detail)
			d.Wrapping = fyne.TextWrapWord
			objs = append(objs, heading(icon, p.Title), d)
		}
	}
	if msg := t.message; msg.Text != "" {
		l := widget.NewLabel(msg.Text)
		l.Wrapping = fyne.TextWrapWord
		if msg.Error {
			l.Importance = widget.DangerImportance
		} else {
			l.Importance = widget.SuccessImportance
		}
		objs = append(objs, l)
	}
	if len(objs) > 0 {
		objs = append(objs, widget.NewSeparator())
	}
	m.banner.Objects = objs
	m.banner.Refresh()
}

func heading(icon fyne.Resource, text string) fyne.CanvasObject {
	return container.NewHBox(widget.NewIcon(icon), widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
}

func (m *mainWindow) updateTree() {
	s := m.t.snap
	m.roots = m.roots[:0]
	m.groups = map[string][]string{}
	for _, state := range StateOrder {
		shares := s.InState(state)
		if len(shares) == 0 {
			continue
		}
		uid := branchPrefix + state
		m.roots = append(m.roots, uid)
		for _, sh := range shares {
			m.groups[uid] = append(m.groups[uid], sh.ID)
		}
	}
	switch {
	case s.Conn != Connected:
		m.noShares.SetText("The shares appear here once the agent runs.")
	case len(m.roots) == 0:
		m.noShares.SetText("No shares yet. When someone shares a file or folder with " +
			firstNonEmpty(s.Status.Address, "your OCM address") + ", it appears here.")
	default:
		m.noShares.SetText("")
	}
	m.noShares.Hidden = len(m.roots) > 0
	m.tree.OpenAllBranches()
	m.tree.Refresh()
	if _, ok := s.Find(m.selected); !ok || m.selected == "" {
		m.selected = ""
		m.tree.UnselectAll()
		for _, root := range m.roots {
			if ids := m.groups[root]; len(ids) > 0 {
				m.selected = ids[0]
				break
			}
		}
	}
	if m.selected != "" {
		m.tree.Select(m.selected)
	}
}

func (m *mainWindow) updateDetail() {
	s := m.t.snap
	sh, ok := s.Find(m.selected)
	sig := fmt.Sprintf("%v|%+v|%v|%s", ok, sh, s.IsContact(sh.Sender), m.t.MountPath())
	if sig == m.detailSig {
		return
	}
	m.detailSig = sig
	m.acceptBtn, m.declineBtn, m.removeBtn = nil, nil, nil
	if !ok {
		m.detail.Objects = []fyne.CanvasObject{widget.NewLabel("Select a share to see its details.")}
		m.detail.Refresh()
		return
	}
	now := m.t.o.Now()
	title := widget.NewLabelWithStyle(ShareName(sh), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameSubHeadingText
	title.Wrapping = fyne.TextWrapWord
	from := s.SenderLine(sh)
	if s.ContactsSupported {
		if s.IsContact(sh.Sender) {
			from += " · in your contacts"
		} else {
			from += " · not in your contacts"
		}
	}
	rows := [][2]string{{"From", from}}
	if OpaqueSender(sh) {
		rows = append(rows, [2]string{"Sender ID", sh.Sender})
	}
	if sh.Owner != "" && sh.Owner != sh.Sender {
		rows = append(rows, [2]string{"Owner", firstNonEmpty(sh.OwnerDisplayName, sh.Owner) + " (" + sh.Owner + ")"})
	}
	rows = append(rows,
		[2]string{"Type", Kind(sh)},
		[2]string{"Permissions", Permissions(sh)},
		[2]string{"Expires", Expiry(sh, now)},
		[2]string{"Size", Size(sh)},
		[2]string{"Received", sh.CreatedAt.In(now.Location()).Format(timeLayout)},
		[2]string{"Server", firstNonEmpty(sh.Peer, "unknown")},
		[2]string{"Signature", firstNonEmpty(sh.SignedBy, "none (the server did not sign)")},
		[2]string{"State", stateLine(sh, m.t.MountPath() != "")},
	)
	if len(sh.NotUploaded) > 0 {
		rows = append(rows, [2]string{"Not uploaded", KeptLine(sh)})
	}
	if sh.Description != "" {
		rows = append(rows, [2]string{"Note", sh.Description})
	}
	var buttons []fyne.CanvasObject
	id := sh.ID
	switch sh.State {
	case StatePending:
		m.acceptBtn = widget.NewButtonWithIcon("Accept", theme.ConfirmIcon(), func() { m.t.Accept(id) })
		m.acceptBtn.Importance = widget.HighImportance
		m.declineBtn = widget.NewButtonWithIcon("Decline", theme.CancelIcon(), func() { m.t.Decline(id) })
		buttons = append(buttons, m.acceptBtn, m.declineBtn)
	case StateError, StateRevoked:
		m.acceptBtn = widget.NewButtonWithIcon("Try again", theme.ViewRefreshIcon(), func() { m.t.Accept(id) })
		m.removeBtn = widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), func() { m.confirmRemove(sh) })
		buttons = append(buttons, m.acceptBtn, m.removeBtn)
	case StateAccepted:
		open := widget.NewButtonWithIcon("Open shares folder", theme.FolderOpenIcon(), m.t.OpenSharesFolder)
		if m.t.MountPath() == "" {
			open.Disable()
		}
		m.removeBtn = widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), func() { m.confirmRemove(sh) })
		m.removeBtn.Importance = widget.DangerImportance
		buttons = append(buttons, open, m.removeBtn)
	}
	objs := []fyne.CanvasObject{title, form(rows)}
	if len(buttons) > 0 {
		objs = append(objs, container.NewHBox(buttons...))
	}
	m.detail.Objects = objs
	m.detail.Refresh()
}

func stateLine(sh control.Share, mounted bool) string {
	accepted := "accepted (the shares folder is not mounted)"
	if mounted {
		accepted = "accepted: in your shares folder"
	}
	s := map[string]string{
		StatePending: "waiting for your decision", StateAccepted: accepted,
		StateDeclined: "declined", StateRemoved: "removed", StateError: "failed",
		StateRevoked: "revoked by the sender: it left your shares folder",
	}[sh.State]
	s = firstNonEmpty(s, sh.State)
	if sh.State == StateAccepted && !sh.UnreachableSince.IsZero() {
		s += "; its server does not answer it since " + sh.UnreachableSince.Local().Format(timeLayout) +
			" (" + firstNonEmpty(sh.UnreachableError, "error") + "): reads fail until it does"
	}
	if sh.Error != "" {
		s += " (" + sh.Error + ")"
	}
	return s
}

// form lays out label/value rows; values wrap.
func form(rows [][2]string) fyne.CanvasObject {
	var objs []fyne.CanvasObject
	for _, r := range rows {
		v := widget.NewLabel(r[1])
		v.Wrapping = fyne.TextWrapWord
		objs = append(objs, widget.NewLabelWithStyle(r[0], fyne.TextAlignTrailing, fyne.TextStyle{Bold: true}), v)
	}
	return container.New(layout.NewFormLayout(), objs...)
}

// confirmRemove asks before removing a share: it leaves the shares folder.
func (m *mainWindow) confirmRemove(sh control.Share) {
	id := sh.ID
	confirm(m.w.Canvas(), "Remove “"+ShareName(sh)+"”?",
		"It leaves your shares folder and its sender is told. This cannot be undone.",
		"Remove", func() { m.t.Remove(id) })
}

// confirm shows a modal question with Cancel (focused) and a danger button.
func confirm(c fyne.Canvas, title, detail, action string, do func()) *widget.PopUp {
	var pop *widget.PopUp
	cancel := widget.NewButton("Cancel", func() { pop.Hide() })
	ok := widget.NewButtonWithIcon(action, theme.DeleteIcon(), func() { pop.Hide(); do() })
	ok.Importance = widget.DangerImportance
	d := widget.NewLabel(detail)
	d.Wrapping = fyne.TextWrapWord
	content := container.NewVBox(
		widget.NewLabelWithStyle(title, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		d, container.NewHBox(layout.NewSpacer(), cancel, ok))
	pop = widget.NewModalPopUp(container.NewPadded(content), c)
	pop.Resize(fyne.NewSize(420, content.MinSize().Height+theme.Padding()*4))
	pop.Show()
	c.Focus(cancel)
	return pop
}

func (m *mainWindow) updateContacts() {
	s := m.t.snap
	sig := fmt.Sprintf("%v|%v|%+v", s.Conn, s.ContactsSupported, s.Contacts)
	if sig == m.contactsSig {
		return
	}
	m.contactsSig = sig
	invite := widget.NewButtonWithIcon("Accept an invite…", theme.ContentAddIcon(), func() { m.t.ShowInvite("") })
	invite.Importance = widget.HighImportance
	objs := []fyne.CanvasObject{}
	intro := widget.NewLabel("People you exchanged an invite with. Shares from them are expected; " +
		"an invite from someone adds them here.")
	intro.Wrapping = fyne.TextWrapWord
	switch {
	case s.Conn != Connected:
		objs = append(objs, widget.NewLabel("Contacts appear here once the agent runs."))
	case !s.ContactsSupported:
		objs = append(objs, widget.NewLabel("This agent version has no address book."))
	case len(s.Contacts) == 0:
		objs = append(objs, intro, widget.NewLabel("No contacts yet."))
	default:
		objs = append(objs, intro)
		contacts := slices.Clone(s.Contacts)
		slices.SortFunc(contacts, func(a, b Contact) int { return strings.Compare(strings.ToLower(a.Label()), strings.ToLower(b.Label())) })
		for _, c := range contacts {
			objs = append(objs, m.contactRow(c), widget.NewSeparator())
		}
	}
	objs = append(objs, container.NewHBox(invite))
	m.contacts.Objects = objs
	m.contacts.Refresh()
}

func (m *mainWindow) contactRow(c Contact) fyne.CanvasObject {
	var parts []string
	if c.Address != "" && c.Address != c.Label() {
		parts = append(parts, c.Address)
	}
	if c.Email != "" && c.Email != c.Address {
		parts = append(parts, c.Email)
	}
	if !c.CreatedAt.IsZero() {
		parts = append(parts, "added "+c.CreatedAt.In(m.t.o.Now().Location()).Format("2 Jan 2006"))
	}
	if how := c.How(); how != "" {
		parts = append(parts, how)
	}
	name := widget.NewLabelWithStyle(c.Label(), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	info := widget.NewLabel(strings.Join(parts, " · "))
	info.Truncation = fyne.TextTruncateEllipsis
	remove := widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), func() { m.confirmRemoveContact(c) })
	if c.ID == "" {
		remove.Disable()
	}
	return container.NewBorder(nil, nil, nil, remove, container.NewVBox(name, info))
}

// confirmRemoveContact asks before removing a contact.
func (m *mainWindow) confirmRemoveContact(c Contact) {
	confirm(m.w.Canvas(), "Remove "+c.Label()+" from your contacts?",
		"Shares from them are then treated like shares from anyone else.", "Remove",
		func() { m.t.RemoveContact(c) })
}

func (m *mainWindow) updateStatus() {
	s := m.t.snap
	sig := fmt.Sprintf("%v|%s|%+v|%d|%v", s.Conn, s.Err, s.Status, len(s.Contacts), s.ContactsSupported)
	if sig == m.statusSig {
		return
	}
	m.statusSig = sig
	if s.Conn != Connected {
		m.status.Objects = []fyne.CanvasObject{widget.NewLabel("The agent is not running, so there is no status to show.")}
		m.status.Refresh()
		return
	}
	st := s.Status
	now := m.t.o.Now()
	endpoint := "not published"
	if st.PublicURL != "" {
		endpoint = strings.TrimSuffix(st.PublicURL, "/") + "/ocm"
	}
	secrets := st.SecretsBackend
	switch {
	case st.SecretsBackend == "keyring" && st.KeyringUnlocked:
		secrets = "system keyring (unlocked)"
	case st.SecretsBackend == "keyring":
		secrets = "system keyring (locked)"
	case st.SecretsBackend == "file":
		secrets = "encrypted file"
	}
	if st.SecretsReason != "" {
		secrets += ": " + st.SecretsReason
	}
	contacts := "not supported by this agent version"
	if s.ContactsSupported {
		contacts = fmt.Sprint(len(s.Contacts))
	}
	mount := firstNonEmpty(st.Mount, "none")
	if st.MountState != "" {
		mount += " (" + st.MountState + ")"
	}
	rows := [][2]string{
		{"Your OCM address", firstNonEmpty(st.Address, "unknown")},
		{"OCM endpoint", endpoint},
		{"Listening on", firstNonEmpty(st.Listen, "unknown")},
		{"Shares folder", mount},
		{"Secrets", firstNonEmpty(secrets, "unknown")},
		{"Waiting for you", fmt.Sprintf("%s, %s", plural(len(s.Pending()), "share", "shares"), plural(st.PendingInvites, "invite", "invites"))},
		{"Contacts", contacts},
		{"Agent version", firstNonEmpty(st.Version, "unknown")},
	}
	if !st.StartedAt.IsZero() {
		rows = append(rows, [2]string{"Running since", st.StartedAt.In(now.Location()).Format(timeLayout)})
	}
	errs := "none"
	if len(st.Errors) > 0 {
		errs = strings.Join(st.Errors, "\n")
	}
	rows = append(rows, [2]string{"Recent errors", errs}, [2]string{"Keyboard", m.t.ShortcutHelp()})
	copyAddr := widget.NewButtonWithIcon("Copy address", theme.ContentCopyIcon(), func() {
		m.t.o.App.Clipboard().SetContent(st.Address)
		m.t.setMessage(Message{Text: "Copied " + st.Address + " to the clipboard."})
	})
	open := widget.NewButtonWithIcon("Open shares folder", theme.FolderOpenIcon(), m.t.OpenSharesFolder)
	if m.t.MountPath() == "" {
		open.Disable()
	}
	m.status.Objects = []fyne.CanvasObject{form(rows), container.NewHBox(copyAddr, open)}
	m.status.Refresh()
}
