// Package tray is the end-to-end test of ocm-agent-tray: the real daemon
// with a share from the reference peer, the real tray binary on a private
// X server (Xvfb) and a private D-Bus session bus, a StatusNotifierWatcher
// and a notification server played by the test, and the tray's menu
// driven over com.canonical.dbusmenu as a panel would drive it.
package tray
