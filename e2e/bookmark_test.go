package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bookmark files as a person has them before the agent's first start.
const (
	gtkBookmarks = "file:///home/bob/Documents\nfile:///home/bob/My%20Music Music\nsftp://bob@files.example.org/srv files\n"
	kdePlaces    = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xbel>
<xbel xmlns:bookmark="http://www.freedesktop.org/standards/desktop-bookmarks" xmlns:kdepriv="http://www.kde.org/kdepriv" xmlns:mime="http://www.freedesktop.org/standards/shared-mime-info">
 <info>
  <metadata owner="http://www.kde.org">
   <kde_places_version>4</kde_places_version>
  </metadata>
 </info>
 <bookmark href="file:///home/bob">
  <title>Home</title>
  <info>
   <metadata owner="http://freedesktop.org">
    <bookmark:icon name="user-home"/>
   </metadata>
   <metadata owner="http://www.kde.org">
    <ID>1700000000/0</ID>
    <isSystemItem>true</isSystemItem>
   </metadata>
  </info>
 </bookmark>
</xbel>
`
)

// bookmarkedAgent prepares an agent whose mount has a space in its name,
// with the person's GTK bookmarks and KDE places in its private XDG
// directories; it returns the two files and the mount's file URI.
func bookmarkedAgent(t *testing.T, extra ...string) (a *agentProc, gtk, kde, uri string) {
	t.Helper()
	a = newAgent(t, extra...)
	a.args = append(a.args, "--mount", filepath.Join(a.dir, "Shared with me"))
	gtk = filepath.Join(a.dir, "config", "gtk-3.0", "bookmarks")
	kde = filepath.Join(a.dir, "data", "user-places.xbel")
	for path, content := range map[string]string{gtk: gtkBookmarks, kde: kdePlaces} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return a, gtk, kde, "file://" + filepath.ToSlash(strings.ReplaceAll(a.dir, " ", "%20")) + "/Shared%20with%20me"
}

// startRunning starts the agent and waits until it has logged that it
// runs, which it does after it has set up the bookmarks.
func (a *agentProc) startRunning() {
	a.t.Helper()
	a.start()
	if !eventually(30*time.Second, func() bool { return strings.Contains(a.log.String(), "ocm-agent running") }) {
		a.t.Fatalf("the agent did not say it runs; log:\n%s", a.log)
	}
}

// stop ends the agent as the service manager does, and waits for it.
func (a *agentProc) stop() {
	a.cmd.Process.Signal(interruptSignal)
	a.cmd.Wait()
}

func fileText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBookmarkAddedOnlyAtFirstStart: the first start puts the mount in the
// GTK bookmarks and the KDE places, keeping the other entries; a bookmark
// the person then removes is not put back by the next start.
func TestBookmarkAddedOnlyAtFirstStart(t *testing.T) {
	a, gtk, kde, uri := bookmarkedAgent(t)
	a.startRunning()
	if got, want := fileText(t, gtk), gtkBookmarks+uri+" OCM shares\n"; got != want {
		t.Fatalf("GTK bookmarks after the first start:\n%s\nwant:\n%s\nlog:\n%s", got, want, a.log)
	}
	places := fileText(t, kde)
	if !strings.HasPrefix(places, kdePlaces[:strings.Index(kdePlaces, "</xbel>")]) || !strings.HasSuffix(places, "</xbel>\n") ||
		!strings.Contains(places, ` <bookmark href="`+uri+`">`+"\n  <title>OCM shares</title>") {
		t.Fatalf("KDE places after the first start:\n%s", places)
	}
	a.stop()

	// The person removes both by hand.
	os.WriteFile(gtk, []byte(gtkBookmarks), 0o644)
	os.WriteFile(kde, []byte(kdePlaces), 0o644)
	a.startRunning()
	if got := fileText(t, gtk); got != gtkBookmarks {
		t.Errorf("GTK bookmark back after the second start:\n%s", got)
	}
	if got := fileText(t, kde); got != kdePlaces {
		t.Errorf("KDE place back after the second start:\n%s", got)
	}
	if strings.Contains(a.log.String(), "added the shares folder") {
		t.Errorf("the second start says it added a bookmark:\n%s", a.log)
	}
}

// TestUninstallDesktopWithoutDaemon: with the agent stopped,
// uninstall-desktop takes the bookmarks out, says so, and the next start
// does not add them again.
func TestUninstallDesktopWithoutDaemon(t *testing.T) {
	a, gtk, kde, _ := bookmarkedAgent(t)
	a.startRunning()
	a.stop()
	out := a.mustCLI("uninstall-desktop", "--state-dir", filepath.Join(a.dir, "state"), "--mount", filepath.Join(a.dir, "Shared with me"))
	for _, f := range []string{gtk, kde} {
		if !strings.Contains(out, "removed the bookmark of "+filepath.Join(a.dir, "Shared with me")+" from "+f+"\n") {
			t.Errorf("uninstall-desktop does not say it removed the bookmark from %s:\n%s", f, out)
		}
	}
	if got := fileText(t, gtk); got != gtkBookmarks {
		t.Errorf("GTK bookmarks after uninstall-desktop:\n%s", got)
	}
	if got := fileText(t, kde); got != kdePlaces {
		t.Errorf("KDE places after uninstall-desktop:\n%s", got)
	}
	if out := a.mustCLI("uninstall-desktop", "--state-dir", filepath.Join(a.dir, "state"), "--mount", filepath.Join(a.dir, "Shared with me")); !strings.Contains(out, "no file manager had a bookmark") {
		t.Errorf("second uninstall-desktop:\n%s", out)
	}
	a.startRunning()
	if got := fileText(t, gtk); got != gtkBookmarks {
		t.Errorf("GTK bookmark back after uninstall-desktop and a start:\n%s", got)
	}
}

// TestBookmarkSettingOff: file-manager-bookmark = false takes out the
// bookmark the agent added, and adds none.
func TestBookmarkSettingOff(t *testing.T) {
	a, gtk, kde, _ := bookmarkedAgent(t)
	a.startRunning()
	a.stop()
	a.args = append(a.args, "--file-manager-bookmark=false")
	a.startRunning()
	if got := fileText(t, gtk); got != gtkBookmarks {
		t.Errorf("GTK bookmarks with the setting off:\n%s\nlog:\n%s", got, a.log)
	}
	if got := fileText(t, kde); got != kdePlaces {
		t.Errorf("KDE places with the setting off:\n%s", got)
	}
}
