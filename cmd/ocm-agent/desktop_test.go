package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUninstallDesktopWithABrokenConfig: a configuration file that does
// not load does not stop uninstall-desktop; it warns and removes the
// bookmark of the default mount, keeping the other bookmarks.
func TestUninstallDesktopWithABrokenConfig(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "cf"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(home, "st"))
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(home, "cf", "ocm-agent", "config.toml"), "mount = [not toml\n")
	gtk := filepath.Join(home, "cf", "gtk-3.0", "bookmarks")
	others := "file:///srv/music Music\n"
	write(gtk, others+"file://"+home+"/OCM OCM shares\n")

	stdout, stderr, code := runCLI(t, "uninstall-desktop")
	if code != 0 || !strings.Contains(stderr, "warning: config") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if want := "removed the bookmark of " + filepath.Join(home, "OCM") + " from " + gtk + "\n"; stdout != want {
		t.Fatalf("stdout %q, want %q", stdout, want)
	}
	if b, _ := os.ReadFile(gtk); string(b) != others {
		t.Fatalf("bookmarks left: %q", b)
	}
	if _, err := os.Stat(filepath.Join(home, "st", "ocm-agent", "bookmarks.json")); err != nil {
		t.Fatalf("the removal is not remembered: %v", err)
	}
}
