package tray

import (
	"context"
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// The StatusNotifierWatcher: the session-bus service through which tray
// icons (status notifier items) reach the panel that shows them.
const (
	WatcherName      = "org.kde.StatusNotifierWatcher"
	WatcherPath      = dbus.ObjectPath("/StatusNotifierWatcher")
	WatcherInterface = "org.kde.StatusNotifierWatcher"
)

// The tray's own name on the session bus: a second ocm-agent-tray (an
// invite link clicked while the tray runs) hands its request to the first
// through it and exits. The name is also the application id (the desktop
// file should be named InstanceName + ".desktop" for D-Bus activation).
const (
	InstanceName      = "io.github.ocm_agent.Tray"
	InstancePath      = dbus.ObjectPath("/io/github/ocm_agent/Tray")
	InstanceInterface = "io.github.ocm_agent.Tray"
)

// TrayHostAvailable says whether the session bus has a tray to show the
// icon: a StatusNotifierWatcher owns its name and, when it says so, a
// host is registered with it. Plain GNOME without the AppIndicator
// extension, i3 or a bare X server have none; reason says what is missing.
func TrayHostAvailable(ctx context.Context, conn *dbus.Conn) (ok bool, reason string, err error) {
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, WatcherName).Store(&has); err != nil {
		return false, "", fmt.Errorf("asking the session bus for a tray: %w", err)
	}
	if !has {
		return false, "no StatusNotifierWatcher (" + WatcherName + ") on the session bus", nil
	}
	var v dbus.Variant
	err = conn.Object(WatcherName, WatcherPath).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0,
		WatcherInterface, "IsStatusNotifierHostRegistered").Store(&v)
	if err == nil {
		if registered, isBool := v.Value().(bool); isBool && !registered {
			return false, "the StatusNotifierWatcher has no tray host registered", nil
		}
	}
	// A watcher that cannot answer the property is given the benefit of the doubt.
	return true, "", nil
}

// InstanceHandler is what a running tray does for a second invocation.
// Its methods are called on the bus's goroutine.
type InstanceHandler interface {
	// AcceptInvite opens the invite dialog prefilled with invite.
	AcceptInvite(invite string)
	// Show brings the main window up.
	Show()
}

// instanceObject is exported on the bus; its methods are the D-Bus API.
// It also implements org.freedesktop.Application, so that a desktop entry
// with DBusActivatable=true hands invite links (ocm:// URLs) over the bus
// instead of on a command line that every local user can read.
type instanceObject struct{ h InstanceHandler }

// applicationObject is the org.freedesktop.Application face.
type applicationObject struct{ h InstanceHandler }

func (o applicationObject) Activate(map[string]dbus.Variant) *dbus.Error {
	o.h.Show()
	return nil
}

func (o applicationObject) Open(uris []string, _ map[string]dbus.Variant) *dbus.Error {
	if len(uris) == 0 {
		o.h.Show()
	}
	for _, u := range uris {
		o.h.AcceptInvite(u)
	}
	return nil
}

func (o applicationObject) ActivateAction(action string, _ []dbus.Variant, _ map[string]dbus.Variant) *dbus.Error {
	switch action {
	case "show", "":
		o.h.Show()
		return nil
	case "accept-invite":
		o.h.AcceptInvite("")
		return nil
	}
	return dbus.MakeFailedError(errors.New("no such action: " + action))
}

func (o instanceObject) AcceptInvite(invite string) *dbus.Error {
	o.h.AcceptInvite(invite)
	return nil
}

func (o instanceObject) Show() *dbus.Error {
	o.h.Show()
	return nil
}

// ErrOtherInstance means another tray already owns InstanceName.
var ErrOtherInstance = errors.New("another ocm-agent-tray is running")

// ClaimInstance exports h and takes InstanceName on conn. It returns
// ErrOtherInstance when another tray holds the name.
func ClaimInstance(conn *dbus.Conn, h InstanceHandler) error {
	if err := conn.Export(instanceObject{h}, InstancePath, InstanceInterface); err != nil {
		return fmt.Errorf("exporting the tray on the session bus: %w", err)
	}
	if err := conn.Export(applicationObject{h}, InstancePath, "org.freedesktop.Application"); err != nil {
		return fmt.Errorf("exporting the tray on the session bus: %w", err)
	}
	reply, err := conn.RequestName(InstanceName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fmt.Errorf("claiming %s on the session bus: %w", InstanceName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner && reply != dbus.RequestNameReplyAlreadyOwner {
		_ = conn.Export(nil, InstancePath, InstanceInterface) // unexporting cannot fail
		_ = conn.Export(nil, InstancePath, "org.freedesktop.Application")
		return ErrOtherInstance
	}
	return nil
}

// ForwardInvite asks the running tray to open its invite dialog with
// invite; an empty invite just shows its window. The invite travels in
// the message body on the user's own session bus.
func ForwardInvite(ctx context.Context, conn *dbus.Conn, invite string) error {
	obj := conn.Object(InstanceName, InstancePath)
	var call *dbus.Call
	if invite == "" {
		call = obj.CallWithContext(ctx, InstanceInterface+".Show", 0)
	} else {
		call = obj.CallWithContext(ctx, InstanceInterface+".AcceptInvite", 0, invite)
	}
	if call.Err != nil {
		return fmt.Errorf("handing over to the running tray: %w", call.Err)
	}
	return nil
}
