package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/systray"
	"github.com/godbus/dbus/v5"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/tray"
)

// AppID is the application id (desktop file name, notification sender).
const AppID = "io.github.ocm_agent.Tray"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stderr))
}

// options are the command line's.
type options struct {
	socket, invite, logLevel string
	noTray                   bool
}

// parseArgs reads the command line; "-" as the invite reads it from stdin.
func parseArgs(args []string, stdin io.Reader, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("ocm-agent-tray", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.socket, "socket", "", "control socket of the daemon (default $"+control.SocketEnv+" or "+config.DefaultSocket()+")")
	fs.StringVar(&o.invite, "accept-invite", "", "open the invite dialog with this invite (a link, ocm:// URL, code or token@server; - reads it from standard input)")
	fs.BoolVar(&o.noTray, "no-tray", false, "show a window instead of a tray icon even when the desktop has a tray")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.invite == "" && fs.NArg() == 1:
		o.invite = fs.Arg(0) // a desktop entry's %u
	case fs.NArg() > 0:
		return o, errors.New("unexpected arguments; see --help")
	}
	if o.invite == "-" {
		line, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return o, fmt.Errorf("reading the invite: %w", err)
		}
		o.invite = strings.TrimSpace(line)
	}
	if o.socket == "" {
		o.socket = os.Getenv(control.SocketEnv)
	}
	if o.socket == "" {
		o.socket = config.DefaultSocket()
	}
	return o, nil
}

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	o, err := parseArgs(args, stdin, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "ocm-agent-tray:", err)
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(o.logLevel)); err != nil {
		lv = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	// The session bus: one instance per user, and is there a tray?
	handler := &pending{}
	hasHost, reason := false, "no session bus"
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		log.Warn("no D-Bus session bus: no tray icon, notifications may not show", "err", err)
	} else {
		defer conn.Close()
		switch err := tray.ClaimInstance(conn, handler); {
		case errors.Is(err, tray.ErrOtherInstance):
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tray.ForwardInvite(ctx, conn, o.invite); err != nil {
				log.Error("another tray runs but did not answer", "err", err)
				return 1
			}
			log.Info("handed over to the running tray")
			return 0
		case err != nil:
			log.Warn("could not claim the tray's bus name; a second tray may start", "err", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hasHost, reason, err = tray.TrayHostAvailable(ctx, conn)
		cancel()
		if err != nil {
			log.Warn("could not tell whether the desktop has a tray", "err", err)
			hasHost, reason = false, err.Error()
		}
	}

	a := app.NewWithID(AppID)
	a.SetIcon(tray.AppIcon)
	var host tray.Host
	if hasHost && !o.noTray {
		if d, ok := a.(desktop.App); ok {
			host = trayHost{d}
		}
	}
	if host == nil {
		if o.noTray {
			reason = "--no-tray"
		}
		log.Info("no tray icon: showing the window instead", "reason", reason)
	}
	t := tray.New(tray.Options{
		App: a, Client: control.NewClient(o.socket), Host: host, Log: log,
		Quit: func() { boundedQuit(a, log) },
		NewShortcut: func(key fyne.KeyName, mod fyne.KeyModifier) fyne.KeyboardShortcut {
			return &desktop.CustomShortcut{KeyName: key, Modifier: mod}
		},
	})
	handler.ready = t
	t.Apply(tray.Snapshot{}) // the icon and menu, before the first answer
	if host == nil {
		t.ShowMain()
	}
	if o.invite != "" {
		t.ShowInvite(o.invite)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.Lifecycle().SetOnStarted(func() {
		go func() { _ = t.Run(ctx) }() // ends with ctx
	})
	log.Info("ocm-agent-tray running", "socket", o.socket, "tray", host != nil)
	a.Run()
	return 0
}

// quitGrace is how long fyne gets to stop once asked to.
const quitGrace = 3 * time.Second

// boundedQuit asks fyne to quit and exits after quitGrace if it has not:
// stopping the status notifier item while its D-Bus connection closes can
// leave fyne's Run waiting for good. The tray keeps nothing unsaved (the
// record of notifications is written as it changes), so exiting is safe.
func boundedQuit(a fyne.App, log *slog.Logger) {
	time.AfterFunc(quitGrace, func() {
		log.Warn("the tray did not stop within the grace period; exiting", "grace", quitGrace)
		os.Exit(0)
	})
	a.Quit()
}

// trayHost is fyne's desktop tray plus the tooltip fyne does not expose.
type trayHost struct{ desktop.App }

func (h trayHost) SetTooltip(text string) { systray.SetTooltip(text) }

// pending answers the session bus for the tray. Requests arrive on the
// bus's goroutine and run on fyne's, where ready is set.
type pending struct {
	ready *tray.Tray
}

func (p *pending) AcceptInvite(invite string) {
	fyne.Do(func() {
		if p.ready != nil {
			p.ready.ShowInvite(invite)
		}
	})
}

func (p *pending) Show() {
	fyne.Do(func() {
		if p.ready != nil {
			p.ready.ShowMain()
		}
	})
}
