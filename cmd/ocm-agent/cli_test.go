package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runCLI runs one command line in this process; the socket points nowhere
// so that nothing can reach a daemon by accident.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	t.Setenv("OCM_AGENT_SOCKET", t.TempDir()+"/none.sock")
	socketFlag = ""
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

// commandPaths lists the words that call every command a user can see,
// the root first.
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	if !c.IsAvailableCommand() && c.HasParent() {
		return nil
	}
	out := [][]string{prefix}
	for _, sub := range c.Commands() {
		out = append(out, commandPaths(sub, append(append([]string(nil), prefix...), sub.Name()))...)
	}
	return out
}

// typo misspells a command name by dropping its middle letter.
func typo(name string) string {
	i := len(name) / 2
	return name[:i] + name[i+1:]
}

// TestEveryCommandWithATypo misspells each command under its parent: the
// line fails with status 2, names the unknown word and its parent, and
// suggests the right name; nothing is printed on standard output (a script
// reading it gets nothing it could mistake for an answer).
func TestEveryCommandWithATypo(t *testing.T) {
	paths := commandPaths(newRoot(), nil)
	if len(paths) < 15 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	for _, p := range paths {
		if len(p) == 0 {
			continue
		}
		parent, name := p[:len(p)-1], p[len(p)-1]
		bad := typo(name)
		line := append(append([]string(nil), parent...), bad, "ID")
		t.Run(strings.Join(line, " "), func(t *testing.T) {
			stdout, stderr, code := runCLI(t, line...)
			want := `unknown command "` + bad + `" for "` + strings.Join(append([]string{"ocm-agent"}, parent...), " ") + `"`
			if code != exitUsage || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, stderr %q; want %d and %s", code, stderr, exitUsage, want)
			}
			// "unin" suggests pin and unpin: the right name is among them.
			_, suggested, _ := strings.Cut(stderr, "Did you mean this?\n")
			if !strings.Contains(suggested, "\t"+name+"\n") {
				t.Errorf("no suggestion of %q in %q", name, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q; want nothing", stdout)
			}
		})
	}
}

// TestEveryCommandHelps: --help on each command, and each group run bare,
// prints its usage on standard output and succeeds.
func TestEveryCommandHelps(t *testing.T) {
	for _, p := range commandPaths(newRoot(), nil) {
		c, _, err := newRoot().Find(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := [][]string{append(append([]string(nil), p...), "--help")}
		if c.HasAvailableSubCommands() {
			lines = append(lines, p)
		}
		for _, line := range lines {
			t.Run(strings.Join(append([]string{"ocm-agent"}, line...), " "), func(t *testing.T) {
				stdout, stderr, code := runCLI(t, line...)
				if code != 0 || stderr != "" {
					t.Errorf("exit %d, stderr %q; want 0 and nothing", code, stderr)
				}
				if !strings.Contains(stdout, "Usage:\n  "+c.CommandPath()) {
					t.Errorf("no usage of %q in:\n%s", c.CommandPath(), stdout)
				}
			})
		}
	}
}

// TestUsageMistakesExit2: wrong argument counts and unknown flags are
// usage errors too; a daemon that is not running is status 3.
func TestUsageMistakesExit2(t *testing.T) {
	for _, line := range [][]string{
		{"shares", "accept"},
		{"shares", "accept", "a", "b"},
		{"status", "extra"},
		{"shares", "list", "--bogus"},
		{"--bogus"},
		{"invites", "revoke"},
	} {
		_, stderr, code := runCLI(t, line...)
		if code != exitUsage || !strings.Contains(stderr, "Run 'ocm-agent ") {
			t.Errorf("%v: exit %d, stderr %q; want %d and a pointer to --help", line, code, stderr, exitUsage)
		}
	}
	if _, stderr, code := runCLI(t, "shares", "accept", "ID"); code != exitNotRunning {
		t.Errorf("accept with no daemon: exit %d, stderr %q; want %d", code, stderr, exitNotRunning)
	}
}
