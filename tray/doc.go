// Package tray is the desktop face of the agent: the tray icon's state and
// menu, the main window (shares by state, contacts, status), the
// invite-accept dialog and desktop notifications. It speaks only to the
// daemon's control API and holds no secrets of its own. It imports fyne
// but not fyne's app driver, so its widget tests run on fyne's test
// driver; cmd/ocm-agent-tray supplies the real app and tray host.
package tray
