package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// docEnvVars are the variables gendocs changes; t.Setenv restores them.
var docEnvVars = []string{"HOME", "USER", "XDG_RUNTIME_DIR", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "OCM_AGENT_SOCKET", "SOURCE_DATE_EPOCH"}

// genDocs runs 'ocm-agent gendocs' in this process with the given
// environment and returns the man, completions and example paths.
func genDocs(t *testing.T, env map[string]string) (man, compl, example string) {
	t.Helper()
	for _, k := range docEnvVars {
		t.Setenv(k, env[k])
	}
	dir := t.TempDir()
	man, compl, example = filepath.Join(dir, "man"), filepath.Join(dir, "completions"), filepath.Join(dir, "config.toml.example")
	root := newRoot()
	root.SetArgs([]string{"gendocs", "--man", man, "--completions", compl, "--config-example", example})
	root.SetOut(io.Discard)
	if err := root.Execute(); err != nil {
		t.Fatalf("gendocs: %v", err)
	}
	return man, compl, example
}

var someEnv = map[string]string{
	"HOME": "/home/builder", "USER": "builder", "XDG_RUNTIME_DIR": "/run/user/1234",
	"XDG_STATE_HOME": "/home/builder/.st", "XDG_CONFIG_HOME": "/home/builder/.cf", "SOURCE_DATE_EPOCH": "1700000000",
}

// documentedCommands lists every command a user can run, with its page.
func documentedCommands(root *cobra.Command) map[string]*cobra.Command {
	out := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root {
			return
		}
		out[strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"] = c
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return out
}

// TestGendocsCoversEveryCommandAndKey catches drift: each command has its
// page naming each of its flags, no page is left for a command that is
// gone, and ocm-agent.toml(5) and the example name every key.
func TestGendocsCoversEveryCommandAndKey(t *testing.T) {
	man, compl, example := genDocs(t, someEnv)
	cmds := documentedCommands(docRoot())
	for _, name := range []string{"ocm-agent.1", "ocm-agent-serve.1", "ocm-agent-doctor.1", "ocm-agent-init.1", "ocm-agent-shares-accept.1"} {
		if cmds[name] == nil {
			t.Errorf("command of %s is missing from the tree", name)
		}
	}
	for name, c := range cmds {
		b, err := os.ReadFile(filepath.Join(man, name))
		if err != nil {
			t.Errorf("no man page for %q: %v", c.CommandPath(), err)
			continue
		}
		page := string(b)
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && !strings.Contains(page, "--"+f.Name) {
				t.Errorf("%s does not document --%s", name, f.Name)
			}
		})
		if !strings.Contains(page, `"OCM Agent Manual"`) {
			t.Errorf("%s lacks the manual's name in its header", name)
		}
	}
	entries, err := os.ReadDir(man)
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	for _, e := range entries {
		pages = append(pages, e.Name())
		switch {
		case e.Name() == "ocm-agent.toml.5", e.Name() == "ocm-agent-tray.1":
		case cmds[e.Name()] == nil:
			t.Errorf("page %s belongs to no command (hidden commands such as gendocs have none)", e.Name())
		}
	}
	sort.Strings(pages)
	t.Logf("pages: %s", strings.Join(pages, " "))

	toml5, err := os.ReadFile(filepath.Join(man, "ocm-agent.toml.5"))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.Keys() {
		entry := `\fB` + strings.ReplaceAll(k.Name, "-", `\-`) + `\fR = \fI` + k.Type + `\fR`
		if !bytes.Contains(toml5, []byte(entry)) {
			t.Errorf("ocm-agent.toml(5) lacks the key %s (%s)", k.Name, entry)
		}
		if !bytes.Contains(ex, []byte("\n#"+k.Name+" = ")) {
			t.Errorf("the example config lacks the key %s", k.Name)
		}
	}

	for _, f := range []string{"ocm-agent.bash", "ocm-agent.zsh", "ocm-agent.fish"} {
		b, err := os.ReadFile(filepath.Join(compl, f))
		if err != nil || !bytes.Contains(b, []byte("__complete")) {
			t.Errorf("completion %s missing or not a cobra completion script: %v", f, err)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		if out, err := exec.Command(bash, "-n", filepath.Join(compl, "ocm-agent.bash")).CombinedOutput(); err != nil {
			t.Errorf("bash -n on the completion: %v\n%s", err, out)
		}
	}
}

// TestGendocsIsReproducible: pages do not depend on who builds them or
// where (home, user, XDG directories), only on SOURCE_DATE_EPOCH.
func TestGendocsIsReproducible(t *testing.T) {
	man1, compl1, ex1 := genDocs(t, someEnv)
	other := map[string]string{"HOME": "/srv/x", "USER": "zqxuser", "XDG_STATE_HOME": "/var/x", "OCM_AGENT_SOCKET": "/tmp/s", "SOURCE_DATE_EPOCH": "1700000000"}
	man2, compl2, ex2 := genDocs(t, other)
	for _, pair := range [][2]string{{man1, man2}, {compl1, compl2}} {
		entries, err := os.ReadDir(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			a, _ := os.ReadFile(filepath.Join(pair[0], e.Name()))
			b, err := os.ReadFile(filepath.Join(pair[1], e.Name()))
			if err != nil || !bytes.Equal(a, b) {
				t.Errorf("%s differs between two environments", e.Name())
			}
			for _, leak := range []string{"/home/builder", "builder", "/run/user/1234", "/srv/x", "zqxuser"} {
				if bytes.Contains(a, []byte(leak)) {
					t.Errorf("%s contains the builder's %q", e.Name(), leak)
				}
			}
		}
	}
	a, _ := os.ReadFile(ex1)
	b, _ := os.ReadFile(ex2)
	if !bytes.Equal(a, b) {
		t.Error("the example config differs between two environments")
	}
	serve, _ := os.ReadFile(filepath.Join(man1, "ocm-agent-serve.1"))
	for _, want := range []string{`"~/.local/state/ocm\-agent"`, "$XDG_RUNTIME_DIR/ocm-agent.sock", "<user>@<host of public-url>", "Nov 2023"} {
		if !bytes.Contains(serve, []byte(want)) && !bytes.Contains(serve, []byte(strings.ReplaceAll(want, `\-`, "-"))) {
			t.Errorf("ocm-agent-serve(1) lacks %q", want)
		}
	}
}

// TestManPagesFormatCleanly runs groff with every warning on, as lintian
// does, over each page.
func TestManPagesFormatCleanly(t *testing.T) {
	groff, err := exec.LookPath("groff")
	testenv.Need(t, "groff (apt-get install groff-base)", err)
	man, _, _ := genDocs(t, someEnv)
	entries, err := os.ReadDir(man)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", filepath.Join(man, e.Name()))
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff on %s: %v\n%s", e.Name(), err, out)
		}
	}
	// The NAME line is what whatis/apropos index: "name \- summary".
	b, _ := os.ReadFile(filepath.Join(man, "ocm-agent.toml.5"))
	if !regexp.MustCompile(`(?m)^\.SH NAME\nocm\\-agent\.toml \\- `).Match(b) {
		t.Errorf("ocm-agent.toml(5) has no proper NAME section:\n%s", b[:min(len(b), 300)])
	}
}

// TestConfigExampleLoads: uncommenting every line of the example gives a
// file the agent accepts.
func TestConfigExampleLoads(t *testing.T) {
	_, _, example := genDocs(t, someEnv)
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	on := regexp.MustCompile(`(?m)^#([a-z-]+ = )`).ReplaceAll(b, []byte("$1"))
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, on, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.Default(), nil, false)
	if err != nil {
		t.Fatalf("the uncommented example does not load: %v\n%s", err, on)
	}
	if err := cfg.Finish(); err != nil {
		t.Fatalf("the uncommented example is not valid: %v\n%s", err, on)
	}
	if cfg.PublicURL != "https://ocm.example.org" || cfg.User != "alice" {
		t.Fatalf("example values not read: %+v", cfg)
	}
}
