package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ocm-agent/ocm-agent/agent"
	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

func init() { extraCommands = append(extraCommands, newGendocs) }

// manualName is the title every page of the manual carries.
const manualName = "OCM Agent Manual"

func newGendocs() *cobra.Command {
	var manDir, complDir, example string
	cmd := &cobra.Command{
		Use:    "gendocs",
		Short:  "Write the man pages and shell completions (for packaging)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manDir == "" && complDir == "" && example == "" {
				return errors.New("nothing to do: give --man DIR, --completions DIR or --config-example FILE")
			}
			date, err := docDate()
			if err != nil {
				return err
			}
			// Defaults that come from the environment (home, user, XDG
			// directories) are written symbolically, so the pages say the
			// same on every machine that builds them.
			symbolicEnv()
			root := docRoot()
			if manDir != "" {
				if err := writeManPages(root, manDir, date); err != nil {
					return err
				}
			}
			if complDir != "" {
				if err := writeCompletions(root, complDir); err != nil {
					return err
				}
			}
			if example != "" {
				if err := os.WriteFile(example, configExample(), 0o644); err != nil {
					return fmt.Errorf("config example: %w", err)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&example, "config-example", "", "file to write an annotated example config.toml to")
	cmd.Flags().StringVar(&manDir, "man", "", "directory for ocm-agent(1) and its subcommands, ocm-agent.toml(5) and ocm-agent-tray(1)")
	cmd.Flags().StringVar(&complDir, "completions", "", "directory for ocm-agent.bash, ocm-agent.zsh and ocm-agent.fish")
	return cmd
}

// symbolicEnv points the variables config.Default reads at symbolic
// values. Only the documentation generator calls it.
func symbolicEnv() {
	os.Setenv("HOME", "~")
	os.Setenv("USER", "$USER")
	os.Setenv("XDG_RUNTIME_DIR", "$XDG_RUNTIME_DIR")
	os.Unsetenv("XDG_STATE_HOME")
	os.Unsetenv("XDG_CONFIG_HOME")
	os.Unsetenv(control.SocketEnv)
}

// docDate is $SOURCE_DATE_EPOCH (reproducible builds) or now.
func docDate() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Now().UTC(), nil
}

// docRoot is a fresh command tree as users see it, without the help and
// completion commands (they have no pages of their own; packages ship the
// completion scripts instead).
func docRoot() *cobra.Command {
	root := newRoot()
	root.Long += "\n\nThe configuration file is described in ocm-agent.toml(5), the tray in ocm-agent-tray(1).\nocm-agent doctor checks an installation; ocm-agent init writes a first configuration."
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			c.Hidden = true
		}
	}
	var prepare func(*cobra.Command)
	prepare = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		// The man page generator reads texts as Markdown, where <user>
		// would be an HTML tag and vanish.
		c.Short, c.Long = mdEscape(c.Short), mdEscape(c.Long)
		c.LocalFlags().VisitAll(func(f *pflag.Flag) { f.Usage = mdEscape(f.Usage) })
		for _, s := range c.Commands() {
			prepare(s)
		}
	}
	prepare(root)
	return root
}

var mdEscaper = strings.NewReplacer("<", `\<`, ">", `\>`)

func mdEscape(s string) string { return mdEscaper.Replace(s) }

func writeManPages(root *cobra.Command, dir string, date time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man directory: %w", err)
	}
	hdr := &doc.GenManHeader{Section: "1", Date: &date, Source: "ocm-agent " + agent.Version, Manual: manualName}
	if err := doc.GenManTree(root, hdr, dir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ocm-agent.toml.5"), configManPage(date), 0o644); err != nil {
		return fmt.Errorf("ocm-agent.toml(5): %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ocm-agent-tray.1"), trayManPage(date), 0o644); err != nil {
		return fmt.Errorf("ocm-agent-tray(1): %w", err)
	}
	return nil
}

func writeCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("completions directory: %w", err)
	}
	gens := []struct {
		name string
		gen  func(*bytes.Buffer) error
	}{
		{"ocm-agent.bash", func(b *bytes.Buffer) error { return root.GenBashCompletionV2(b, true) }},
		{"ocm-agent.zsh", func(b *bytes.Buffer) error { return root.GenZshCompletion(b) }},
		{"ocm-agent.fish", func(b *bytes.Buffer) error { return root.GenFishCompletion(b, true) }},
	}
	for _, g := range gens {
		var b bytes.Buffer
		if err := g.gen(&b); err != nil {
			return fmt.Errorf("completion %s: %w", g.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, g.name), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("completion %s: %w", g.name, err)
		}
	}
	return nil
}

// roff escapes text for a roff line: backslashes, and a leading dot or
// quote that would start a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func th(w *bytes.Buffer, title, section string, date time.Time) {
	fmt.Fprintf(w, ".TH %q %q %q %q %q\n", title, section, date.Format("Jan 2006"), "ocm-agent "+agent.Version, manualName)
}

// configManPage renders ocm-agent.toml(5) from config.Keys, so every key
// the program knows is documented with its type, default and help.
func configManPage(date time.Time) []byte {
	var w bytes.Buffer
	th(&w, "OCM-AGENT.TOML", "5", date)
	w.WriteString(`.SH NAME
ocm\-agent.toml \- configuration file of ocm\-agent
.SH SYNOPSIS
.I $XDG_CONFIG_HOME/ocm\-agent/config.toml
(by default
.IR ~/.config/ocm\-agent/config.toml )
.SH DESCRIPTION
The configuration of
.BR ocm\-agent (1)
is one TOML file.
Every key is also a flag of
.B ocm\-agent serve
with the same name; a flag given on the command line wins over the file, and
the file wins over the built\-in default.
A missing file is not an error: the agent then runs with its defaults.
A key the agent does not know is an error, so a typo is reported instead of ignored.
.PP
.B ocm\-agent init
writes a first file interactively;
.B ocm\-agent doctor
checks that the settings work on this machine.
.PP
Types: a
.I string
is written in double quotes; a
.I bool
is
.B true
or
.BR false ;
a
.I list
is an array of strings such as ["a.example", "b.example"]; a
.I duration
is a string such as "30s", "5m" or "1h"; an
.I int
or a
.I float
is a bare number.
.SH KEYS
`)
	for _, k := range config.Keys() {
		fmt.Fprintf(&w, ".TP\n\\fB%s\\fR = \\fI%s\\fR\n", roff(k.Name), k.Type)
		help := k.Help
		w.WriteString(roff(upperFirst(help)) + ".\n")
		if !strings.Contains(help, "(default") {
			def := k.Default
			switch {
			case def == "":
				w.WriteString("Default: none.\n")
			default:
				fmt.Fprintf(&w, "Default: %s.\n", roff(def))
			}
		}
	}
	w.WriteString(`.SH EXAMPLE
.EX
public\-url = "https://ocm.example.org"
user = "alice"
display\-name = "Alice Example"
mount = "/home/alice/OCM"
secrets = "auto"
accept\-from = "anyone"
.EE
.SH FILES
.TP
.I $XDG_CONFIG_HOME/ocm\-agent/config.toml
this file (mode 0600 when written by
.BR "ocm\-agent init" ).
.TP
.I $XDG_STATE_HOME/ocm\-agent/
the database and spooled uploads (key
.BR state\-dir ).
.TP
.I $XDG_RUNTIME_DIR/ocm\-agent.sock
the control socket (key
.BR socket ).
.TP
.I /usr/share/doc/ocm\-agent/config.toml.example
an annotated example.
.SH SEE ALSO
.BR ocm\-agent (1),
.BR ocm\-agent\-serve (1),
.BR ocm\-agent\-init (1),
.BR ocm\-agent\-doctor (1),
.BR ocm\-agent\-tray (1)
`)
	return w.Bytes()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// trayManPage is the page of the tray program, which lives in its own
// package; it is short and points at the daemon's pages.
func trayManPage(date time.Time) []byte {
	var w bytes.Buffer
	th(&w, "OCM-AGENT-TRAY", "1", date)
	w.WriteString(`.SH NAME
ocm\-agent\-tray \- tray icon and windows for ocm\-agent
.SH SYNOPSIS
.B ocm\-agent\-tray
.RI [ options ]
.RI [ INVITE ]
.SH DESCRIPTION
.B ocm\-agent\-tray
shows the state of the
.BR ocm\-agent (1)
daemon in the desktop's tray: idle, pending shares and invites, or an error
(daemon not running, keyring locked, mount failed).
From its menu you accept or decline incoming shares, accept an invite, open
the folder where accepted shares appear, and see the agent's status.
Desktop notifications announce new shares and invites.
.PP
It is only a client of the daemon's control socket; the daemon runs without
it, and
.BR ocm\-agent (1)
offers the same actions on the command line.
Without a tray host on the session bus it opens a normal window instead.
.PP
The desktop session starts it through the XDG autostart entry.
It is also the handler of
.B ocm:
invite links, so clicking one in a browser or mail program opens the
invite dialog.
.SH OPTIONS
.TP
.BI \-\-accept\-invite " INVITE"
open the invite dialog with
.IR INVITE :
an invite link, an
.B ocm://
URL, a code, or token@server;
.B \-
reads it from standard input.
A single argument without the option means the same (as a desktop entry's
.B %u
passes it).
.TP
.B \-\-no\-tray
show a window instead of a tray icon even when the desktop has a tray.
.TP
.BI \-\-socket " PATH"
the daemon's control socket.
.TP
.BI \-\-log\-level " LEVEL"
debug, info, warn or error (default info).
.SH ENVIRONMENT
.TP
.B OCM_AGENT_SOCKET
the daemon's control socket (default
.IR $XDG_RUNTIME_DIR/ocm\-agent.sock ).
.SH FILES
.TP
.I /etc/xdg/autostart/ocm\-agent\-tray.desktop
starts the tray when a desktop session begins; copy it to
.I ~/.config/autostart/
with the line
.B Hidden=true
to turn it off for one user.
.SH SEE ALSO
.BR ocm\-agent (1),
.BR ocm\-agent\-doctor (1),
.BR ocm\-agent.toml (5)
`)
	return w.Bytes()
}

// exampleValues replace the symbolic defaults in the example file, which
// must stay valid TOML when a line is uncommented.
var exampleValues = strings.NewReplacer("~", "/home/alice", "$USER", "alice", "$XDG_RUNTIME_DIR", "/run/user/1000")

// configExample renders an annotated config.toml with every key commented
// out at its default (or at an example value where there is none).
func configExample() []byte {
	var w bytes.Buffer
	w.WriteString(`# Example configuration of ocm-agent. Copy it to ~/.config/ocm-agent/config.toml
# (or run 'ocm-agent init') and uncomment what you need. Every key is also a
# flag of 'ocm-agent serve'; ocm-agent.toml(5) explains the format.
`)
	examples := map[string]string{"public-url": `"https://ocm.example.org"`, "display-name": `"Alice Example"`, "email": `"alice@example.org"`}
	for _, k := range config.Keys() {
		fmt.Fprintf(&w, "\n# %s\n", upperFirst(k.Help))
		val, ok := examples[k.Name]
		if !ok {
			def := exampleValues.Replace(k.Default)
			switch k.Type {
			case "string", "duration":
				val = strconv.Quote(def)
			case "list":
				var items []string
				for _, it := range strings.Split(def, ",") {
					if it != "" {
						items = append(items, strconv.Quote(it))
					}
				}
				val = "[" + strings.Join(items, ", ") + "]"
			default:
				val = def
			}
		}
		fmt.Fprintf(&w, "#%s = %s\n", k.Name, val)
	}
	return w.Bytes()
}
