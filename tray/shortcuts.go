package tray

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
)

// Shortcut is a keyboard shortcut of the tray's windows.
type Shortcut struct {
	Key  fyne.KeyName
	Mod  fyne.KeyModifier
	Help string
	Do   func()
}

// String spells the shortcut the way menus do, e.g. "Ctrl+I".
func (s Shortcut) String() string {
	var b strings.Builder
	for _, m := range []struct {
		mod  fyne.KeyModifier
		name string
	}{{fyne.KeyModifierControl, "Ctrl+"}, {fyne.KeyModifierAlt, "Alt+"}, {fyne.KeyModifierShift, "Shift+"}, {fyne.KeyModifierSuper, "Super+"}} {
		if s.Mod&m.mod != 0 {
			b.WriteString(m.name)
		}
	}
	b.WriteString(string(s.Key))
	return b.String()
}

// keyShortcut is the shortcut type used when Options.NewShortcut is not
// set (fyne's test driver matches shortcuts by name only).
type keyShortcut struct {
	key fyne.KeyName
	mod fyne.KeyModifier
}

func (k *keyShortcut) Key() fyne.KeyName     { return k.key }
func (k *keyShortcut) Mod() fyne.KeyModifier { return k.mod }
func (k *keyShortcut) ShortcutName() string  { return fmt.Sprintf("tray:%d+%s", k.mod, k.key) }
func newKeyShortcut(key fyne.KeyName, mod fyne.KeyModifier) fyne.KeyboardShortcut {
	return &keyShortcut{key, mod}
}

// Shortcuts lists the main window's keyboard shortcuts.
func (t *Tray) Shortcuts() []Shortcut {
	ctrl, alt := fyne.KeyModifierControl, fyne.KeyModifierAlt
	return []Shortcut{
		{fyne.KeyI, ctrl, "accept an invite", func() { t.ShowInvite("") }},
		{fyne.KeyReturn, ctrl, "accept the selected share", func() { t.actOnSelected(StatePending, t.Accept) }},
		{fyne.KeyD, ctrl, "decline the selected share", func() { t.actOnSelected(StatePending, t.Decline) }},
		{fyne.KeyO, ctrl, "open the shares folder", t.OpenSharesFolder},
		{fyne.KeyR, ctrl, "refresh", t.Refresh},
		{fyne.Key1, alt, "shares", t.ShowMain},
		{fyne.Key2, alt, "contacts", t.ShowContacts},
		{fyne.Key3, alt, "status", t.ShowStatus},
		{fyne.KeyW, ctrl, "close the window", t.closeMain},
		{fyne.KeyQ, ctrl, "quit the tray", t.Quit},
	}
}

func (t *Tray) bind(c fyne.Canvas, s Shortcut) {
	newSC := t.o.NewShortcut
	if newSC == nil {
		newSC = newKeyShortcut
	}
	do := s.Do
	c.AddShortcut(newSC(s.Key, s.Mod), func(fyne.Shortcut) { do() })
}

// actOnSelected runs do on the share selected in the main window when it
// is in state.
func (t *Tray) actOnSelected(state string, do func(id string)) {
	if t.main == nil {
		return
	}
	if sh, ok := t.snap.Find(t.main.selected); ok && sh.State == state {
		do(sh.ID)
	}
}

// ShortcutHelp is the shortcuts in one line, for the status tab.
func (t *Tray) ShortcutHelp() string {
	var parts []string
	for _, s := range t.Shortcuts() {
		parts = append(parts, s.String()+" "+s.Help)
	}
	return strings.Join(parts, " · ")
}
