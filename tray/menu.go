package tray

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
)

// maxMenuShares bounds the pending shares listed in the tray menu; the
// window lists the rest.
const maxMenuShares = 8

// Menu labels. A leading underscore marks the access key (dbusmenu
// mnemonics), so the menu works from the keyboard.
const (
	LabelAccept     = "_Accept"
	LabelDecline    = "_Decline"
	LabelDetails    = "D_etails…"
	LabelShowShares = "_Show shares…"
	LabelInvite     = "Accept an _invite…"
	LabelOpenFolder = "_Open shares folder"
	LabelStatus     = "S_tatus…"
	LabelStartAgent = "Start the a_gent"
	LabelQuit       = "_Quit tray"
	LabelKeep       = "_Keep on this device"
)

// menuText escapes underscores in user-supplied text, which dbusmenu
// would otherwise take for access keys.
func menuText(s string) string { return strings.ReplaceAll(s, "_", "__") }

// Menu builds the tray menu for the current snapshot: a summary line, the
// pending shares (each with Accept / Decline), then the tray's actions.
func (t *Tray) Menu() *fyne.Menu {
	s := t.snap
	var items []*fyne.MenuItem
	items = append(items, fyne.NewMenuItem(menuText(s.Summary()), t.ShowMain))
	pending := s.Pending()
	for i, sh := range pending {
		if i == maxMenuShares {
			items = append(items, fyne.NewMenuItem(fmt.Sprintf("%d more… (open the window)", len(pending)-i), t.ShowMain))
			break
		}
		id := sh.ID
		it := fyne.NewMenuItem(menuText(MenuLabel(sh)), nil)
		it.ChildMenu = fyne.NewMenu("",
			fyne.NewMenuItem(LabelAccept, func() { t.Accept(id) }),
			fyne.NewMenuItem(LabelDecline, func() { t.Decline(id) }),
			fyne.NewMenuItem(LabelDetails, func() { t.ShowShare(id) }),
		)
		items = append(items, it)
	}
	items = append(items, fyne.NewMenuItemSeparator())
	if keep := t.keepMenu(); keep != nil {
		items = append(items, keep)
	}
	items = append(items,
		fyne.NewMenuItem(LabelShowShares, t.ShowMain),
		fyne.NewMenuItem(LabelInvite, func() { t.ShowInvite("") }))
	open := fyne.NewMenuItem(LabelOpenFolder, t.OpenSharesFolder)
	open.Disabled = t.MountPath() == ""
	items = append(items, open, fyne.NewMenuItem(LabelStatus, t.ShowStatus))
	if s.Conn == Disconnected {
		items = append(items, fyne.NewMenuItem(LabelStartAgent, t.StartAgent))
	}
	quit := fyne.NewMenuItem(LabelQuit, t.Quit)
	quit.IsQuit = true
	items = append(items, fyne.NewMenuItemSeparator(), quit)
	return fyne.NewMenu("OCM", items...)
}

// keepMenu is "Keep on this device" with a check item per accepted
// share (nil when the daemon keeps nothing: no mount, older agent).
func (t *Tray) keepMenu() *fyne.MenuItem {
	s := t.snap
	accepted := s.InState(StateAccepted)
	if !s.PinsSupported || len(accepted) == 0 {
		return nil
	}
	var sub []*fyne.MenuItem
	for i, sh := range accepted {
		if i == maxMenuShares {
			sub = append(sub, fyne.NewMenuItem(fmt.Sprintf("%d more… (ocm-agent shares pin)", len(accepted)-i), t.ShowMain))
			break
		}
		id := sh.ID
		it := fyne.NewMenuItem(menuText(ShareName(sh)), func() { t.TogglePin(id) })
		it.Checked = s.Pinned(id)
		sub = append(sub, it)
	}
	it := fyne.NewMenuItem(LabelKeep, nil)
	it.ChildMenu = fyne.NewMenu("", sub...)
	return it
}

// menuSignature is what the tray host shows of a menu, to skip redundant
// updates (each one rebuilds the host's menu).
func menuSignature(items []*fyne.MenuItem, indent string) string {
	var b strings.Builder
	for _, it := range items {
		switch {
		case it.IsSeparator:
			b.WriteString(indent + "---\n")
		default:
			fmt.Fprintf(&b, "%s%s|%v|%v\n", indent, it.Label, it.Disabled, it.Checked)
		}
		if it.ChildMenu != nil {
			b.WriteString(menuSignature(it.ChildMenu.Items, indent+"  "))
		}
	}
	return b.String()
}
