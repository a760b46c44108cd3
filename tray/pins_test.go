package tray

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

// The fake daemon keeps pins when pinsOn is set; otherwise it answers as
// a daemon without a mount (503).

type noMount struct{}

func (noMount) Error() string   { return control.ErrNoCache.Error() }
func (noMount) HTTPStatus() int { return http.StatusServiceUnavailable }

func (b *fakeBackend) pinsOff() error {
	if !b.pinsOn {
		return noMount{}
	}
	return nil
}

func (b *fakeBackend) Pin(_ context.Context, share string, req control.PinRequest) (control.PinJob, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.pinsOff(); err != nil {
		return control.PinJob{}, err
	}
	b.pins = append(b.pins, control.Pin{Share: share, Path: req.Path, Since: t0})
	b.actions = append(b.actions, "pin:"+share)
	return control.PinJob{ID: "j1", Share: share, Path: req.Path, State: control.PinRunning, Files: 3, StartedAt: t0}, nil
}

func (b *fakeBackend) PinJob(context.Context, string) (control.PinJob, error) {
	return control.PinJob{}, fmt.Errorf("no job: %w", control.ErrNotFound)
}

func (b *fakeBackend) Unpin(_ context.Context, share string, req control.PinRequest) (control.Pin, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.pinsOff(); err != nil {
		return control.Pin{}, err
	}
	b.pins = slices.DeleteFunc(b.pins, func(p control.Pin) bool { return p.Share == share && p.Path == req.Path })
	b.actions = append(b.actions, "unpin:"+share)
	return control.Pin{Share: share, Path: req.Path}, nil
}

func (b *fakeBackend) Pins(context.Context) ([]control.Pin, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.pins), b.pinsOff()
}

func (b *fakeBackend) CacheStatus(context.Context) (control.CacheStatus, error) {
	return control.CacheStatus{}, b.pinsOff()
}

func (b *fakeBackend) ClearCache(context.Context, control.CacheClearRequest) (control.CacheCleared, error) {
	return control.CacheCleared{}, b.pinsOff()
}

// TestTrayKeepOnThisDevice: the menu offers "Keep on this device" with a
// check item per accepted share; choosing one pins it (checked after the
// refresh), choosing it again unpins it. Without a mount the entry is
// not there.
func TestTrayKeepOnThisDevice(t *testing.T) {
	b := scenario()
	u := newUI(t, b, true)
	if u.host.item(LabelKeep) != nil {
		t.Fatal("Keep on this device offered by a daemon without a mount")
	}
	b.mu.Lock()
	b.pinsOn = true
	b.mu.Unlock()
	u.refresh()
	keep := u.host.item(LabelKeep)
	if keep == nil || keep.ChildMenu == nil {
		t.Fatal("no Keep on this device submenu")
	}
	var labels []string
	for _, it := range keep.ChildMenu.Items {
		labels = append(labels, it.Label)
	}
	if !slices.Equal(labels, []string{"Budget 2026"}) {
		t.Fatalf("keep submenu %q; want the accepted share", labels)
	}
	item := keep.ChildMenu.Items[0]
	if item.Checked {
		t.Fatal("checked before pinning")
	}
	item.Action()
	if !strings.Contains(u.tr.Message().Text, "Keeping “Budget 2026” on this device") {
		t.Errorf("message %q", u.tr.Message().Text)
	}
	u.refresh()
	item = u.host.item(LabelKeep).ChildMenu.Items[0]
	if !item.Checked {
		t.Fatal("not checked after pinning")
	}
	item.Action()
	u.refresh()
	if u.host.item(LabelKeep).ChildMenu.Items[0].Checked {
		t.Error("still checked after unpinning")
	}
	if got := b.actionLog(); !slices.Equal(got, []string{"pin:a1", "unpin:a1"}) {
		t.Errorf("daemon saw %v", got)
	}
}

// TestOfflineShareIsAProblem: a share the daemon reports offline is
// listed among the problems, without turning the icon to its error state.
func TestOfflineShareIsAProblem(t *testing.T) {
	b := scenario()
	b.setStatus(func(st *control.Status) {
		st.Offline = []control.UnreachableShare{{ID: "a1", Name: "Budget 2026", Since: t0.Add(-time.Minute)}}
	})
	u := newUI(t, b, true)
	var found bool
	for _, p := range u.tr.Snapshot().Problems() {
		found = found || (p.Title == "A share is offline" && strings.Contains(p.Detail, "Budget 2026"))
	}
	if !found {
		t.Errorf("problems %+v", u.tr.Snapshot().Problems())
	}
	if u.tr.Snapshot().Icon() == IconError {
		t.Error("an offline share turned the icon to error")
	}
	if got := u.tr.Snapshot().Summary(); !strings.Contains(got, "1 share offline") {
		t.Errorf("the tray's summary does not say a share is offline: %q", got)
	}
}
