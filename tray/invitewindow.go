package tray

import (
	"context"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// InviteWindowSize is the invite dialog's size.
var InviteWindowSize = fyne.NewSize(540, 300)

// inviteWindow is the invite-accept dialog: a paste field, Accept and
// Cancel, and the outcome in words.
type inviteWindow struct {
	t     *Tray
	w     fyne.Window
	entry *widget.Entry

	acceptBtn, closeBtn *widget.Button
	// resultBox holds the outcome, built afresh for each one.
	resultBox *fyne.Container

	busy   bool
	result *InviteResult
}

func (t *Tray) inviteWin() *inviteWindow {
	if t.invite != nil {
		return t.invite
	}
	iw := &inviteWindow{t: t}
	iw.w = t.o.App.NewWindow("Accept an invite")
	iw.w.SetIcon(AppIcon)
	intro := widget.NewLabel("Paste the invite you were sent: a code, token@server, or a link. " +
		"Accepting it makes you and the sender contacts, so that shares between you are expected.")
	intro.Wrapping = fyne.TextWrapWord
	iw.entry = widget.NewEntry()
	iw.entry.SetPlaceHolder("Invite code, token@server or link")
	iw.entry.OnSubmitted = func(string) { iw.submit() }
	iw.resultBox = container.NewStack()
	iw.acceptBtn = widget.NewButtonWithIcon("Accept", theme.ConfirmIcon(), iw.submit)
	iw.acceptBtn.Importance = widget.HighImportance
	iw.closeBtn = widget.NewButton("Cancel", iw.close)
	iw.w.SetContent(container.NewPadded(container.NewBorder(
		container.NewVBox(heading(AppIcon, "Accept an invite"), intro, iw.entry),
		container.NewHBox(layout.NewSpacer(), iw.closeBtn, iw.acceptBtn),
		nil, nil, iw.resultBox)))
	iw.w.Resize(InviteWindowSize)
	iw.w.SetCloseIntercept(iw.close)
	iw.w.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) {
		if ev.Name == fyne.KeyEscape {
			iw.close()
		}
	})
	t.invite = iw
	return iw
}

// ShowInvite opens the invite dialog, with prefill (a pasted or clicked
// invite) in its field when not empty.
func (t *Tray) ShowInvite(prefill string) {
	iw := t.inviteWin()
	if prefill != "" && !iw.busy {
		iw.reset()
		iw.entry.SetText(prefill)
	}
	iw.w.Show()
	iw.w.RequestFocus()
	if iw.result != nil && iw.result.OK() {
		iw.w.Canvas().Focus(iw.closeBtn)
	} else {
		iw.w.Canvas().Focus(iw.entry)
	}
}

// InviteWindow is the invite dialog (created on first use).
func (t *Tray) InviteWindow() fyne.Window { return t.inviteWin().w }

// InviteResult is the dialog's last outcome, if any.
func (t *Tray) InviteResult() (InviteResult, bool) {
	if t.invite == nil || t.invite.result == nil {
		return InviteResult{}, false
	}
	return *t.invite.result, true
}

// SubmitInvite accepts the invite in the dialog's field, as its Accept
// button does.
func (t *Tray) SubmitInvite() { t.inviteWin().submit() }

func (iw *inviteWindow) submit() {
	if iw.busy {
		return
	}
	if iw.result != nil && iw.result.OK() {
		iw.close()
		return
	}
	text := iw.entry.Text
	iw.busy = true
	iw.entry.Disable()
	iw.acceptBtn.Disable()
	iw.show(theme.ViewRefreshIcon(), "Accepting the invite…", "Asking the inviting server; this can take a few seconds.")
	iw.t.o.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		r := AcceptInvite(ctx, iw.t.o.Client, text)
		fyne.Do(func() { iw.done(r) })
	})
}

func (iw *inviteWindow) done(r InviteResult) {
	iw.busy = false
	iw.result = &r
	iw.entry.Enable()
	if r.OK() {
		iw.show(theme.ConfirmIcon(), r.Title, r.Detail)
		iw.entry.SetText("") // the invite is spent; do not keep it around
		iw.acceptBtn.Hide()
		iw.closeBtn.SetText("Close")
		iw.w.Canvas().Focus(iw.closeBtn)
		iw.t.Refresh()
		return
	}
	icon := theme.ErrorIcon()
	if r.Outcome == InviteEmpty {
		icon = theme.InfoIcon()
	}
	iw.show(icon, r.Title, r.Detail)
	iw.acceptBtn.Enable()
	iw.w.Canvas().Focus(iw.entry)
}

func (iw *inviteWindow) show(icon fyne.Resource, title, detail string) {
	d := widget.NewLabel(detail)
	d.Wrapping = fyne.TextWrapWord
	iw.resultBox.Objects = []fyne.CanvasObject{container.NewBorder(nil, nil,
		container.NewVBox(widget.NewIcon(icon)), nil,
		container.NewVBox(widget.NewLabelWithStyle(title, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), d))}
	iw.w.Content().Refresh() // lay the result out
}

// reset empties the dialog for a new invite.
func (iw *inviteWindow) reset() {
	iw.result = nil
	iw.entry.SetText("")
	iw.entry.Enable()
	iw.resultBox.Objects = nil
	iw.acceptBtn.Show()
	iw.acceptBtn.Enable()
	iw.closeBtn.SetText("Cancel")
	iw.w.Content().Refresh()
}

func (iw *inviteWindow) close() {
	iw.w.Hide()
	if !iw.busy {
		iw.reset()
	}
}
