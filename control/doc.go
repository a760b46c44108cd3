// Package control is the agent's local API: JSON over HTTP on a unix
// socket (mode 0600) in $XDG_RUNTIME_DIR. Its routes are the table in
// routes.go (described for scripts in docs/local-api.md); the daemon runs
// the Server over a Backend the agent implements; the CLI and the tray use
// the Client. It owns the API's types, so that its clients need nothing
// else of the agent.
package control
