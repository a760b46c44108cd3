// Command ocm-agent-tray is the desktop face of ocm-agent: a tray icon
// (status notifier item) with the pending shares, a window with every
// share, the contacts and the status, an invite-accept dialog, and
// desktop notifications. It is a client of the daemon's control socket
// only. Without a tray on the session bus it shows its window instead.
//
//	ocm-agent-tray [--socket PATH] [--no-tray] [--accept-invite INVITE|-]
//
// --accept-invite opens the invite dialog prefilled (invite links and
// ocm:// URLs opened from the desktop arrive this way; "-" reads the
// invite from standard input, which keeps it off the process list). When
// a tray already runs, the request is handed to it over the session bus
// and this process exits. The tray also answers org.freedesktop.Application
// on its bus name (io.github.ocm_agent.Tray), so a desktop entry with
// DBusActivatable=true delivers clicked ocm:// links without a command line.
package main
