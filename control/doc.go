// Package control is the agent's local API: JSON over HTTP on a unix
// socket (mode 0600) in $XDG_RUNTIME_DIR. The daemon runs the Server; the
// CLI and the tray use the Client. It owns the API's types, so that its
// clients need nothing else of the agent.
package control
