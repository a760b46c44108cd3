package bookmarks

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func changes(cs ...Change) []Change { return cs }

func TestInstallOnlyOnce(t *testing.T) {
	gtk3, gtk4, kde := home(t)
	files := []File{gtk3, gtk4, kde}
	rec := filepath.Join(t.TempDir(), "state", "bookmarks.json")
	dir := "/home/alice/OCM"
	kdeOrig := put(t, kde.Path, "user-places.xbel", 0o600)

	added, err := Install(files, dir, Label, rec)
	if err != nil || !reflect.DeepEqual(added, changes(Change{gtk3.Path, dir}, Change{kde.Path, dir})) {
		t.Fatalf("first Install = %v, %v", added, err)
	}
	if st, err := os.Stat(rec); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("record: %v %v", st, err)
	}

	// The person takes both entries out by hand.
	for _, f := range []File{gtk3, kde} {
		if had, err := Remove(f, dir); !had || err != nil {
			t.Fatalf("Remove(%s) = %v, %v", f.Path, had, err)
		}
	}
	added, err = Install(files, dir, Label, rec)
	if err != nil || len(added) != 0 {
		t.Fatalf("second Install = %v, %v", added, err)
	}
	if got := read(t, gtk3.Path); len(got) != 0 {
		t.Fatalf("gtk bookmark back: %q", got)
	}
	if got := read(t, kde.Path); !bytes.Equal(got, kdeOrig) {
		t.Fatalf("kde place back:\n%s", got)
	}

	// A file manager used for the first time later gets the entry then.
	put(t, gtk4.Path, "bookmarks-gtk", 0o644)
	added, err = Install(files, dir, Label, rec)
	if err != nil || !reflect.DeepEqual(added, changes(Change{gtk4.Path, dir})) {
		t.Fatalf("Install after gtk-4.0 appeared = %v, %v", added, err)
	}
}

func TestInstallFollowsAMovedMount(t *testing.T) {
	gtk3, gtk4, kde := home(t)
	files := []File{gtk3, gtk4, kde}
	rec := filepath.Join(t.TempDir(), "bookmarks.json")
	put(t, kde.Path, "user-places.xbel", 0o600)
	if _, err := Install(files, "/home/alice/OCM", Label, rec); err != nil {
		t.Fatal(err)
	}
	// Removed by hand from KDE, still in GTK: only GTK's moves.
	Remove(kde, "/home/alice/OCM")
	added, err := Install(files, "/home/alice/Shared with me", Label, rec)
	if err != nil || !reflect.DeepEqual(added, changes(Change{gtk3.Path, "/home/alice/Shared with me"})) {
		t.Fatalf("Install = %v, %v", added, err)
	}
	if got := string(read(t, gtk3.Path)); got != "file:///home/alice/Shared%20with%20me OCM shares\n" {
		t.Fatalf("gtk: %q", got)
	}
	if bytes.Contains(read(t, kde.Path), []byte("alice/Shared")) {
		t.Fatal("kde place added again")
	}
}

func TestWithdrawRemovesOnlyItsOwn(t *testing.T) {
	gtk3, gtk4, kde := home(t)
	files := []File{gtk3, gtk4, kde}
	rec := filepath.Join(t.TempDir(), "bookmarks.json")
	orig := put(t, gtk4.Path, "bookmarks-gtk", 0o644)
	// The person bookmarked the folder in gtk-4.0 themselves.
	os.WriteFile(gtk4.Path, append(orig, "file:///home/alice/OCM\n"...), 0o644)
	if _, err := Install(files, "/home/alice/OCM", Label, rec); err != nil {
		t.Fatal(err)
	}
	removed, err := Withdraw(files, rec)
	if err != nil || !reflect.DeepEqual(removed, changes(Change{gtk3.Path, "/home/alice/OCM"})) {
		t.Fatalf("Withdraw = %v, %v", removed, err)
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Fatalf("record left: %v", err)
	}
	if got := string(read(t, gtk4.Path)); got != string(orig)+"file:///home/alice/OCM\n" {
		t.Fatalf("the person's own entry was touched:\n%s", got)
	}
	// The setting turned back on adds it again.
	if added, err := Install(files, "/home/alice/OCM", Label, rec); err != nil || len(added) != 1 {
		t.Fatalf("Install after Withdraw = %v, %v", added, err)
	}
}

func TestUninstallKeepsItRemoved(t *testing.T) {
	gtk3, gtk4, kde := home(t)
	files := []File{gtk3, gtk4, kde}
	rec := filepath.Join(t.TempDir(), "bookmarks.json")
	kdeOrig := put(t, kde.Path, "user-places.xbel", 0o600)
	if _, err := Install(files, "/home/alice/Old", Label, rec); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, gtk3, "/home/alice/OCM", Added) // a second entry, as if added by hand
	removed, err := Uninstall(files, "/home/alice/OCM", rec)
	want := changes(Change{gtk3.Path, "/home/alice/OCM"}, Change{gtk3.Path, "/home/alice/Old"}, Change{kde.Path, "/home/alice/Old"})
	if err != nil || !reflect.DeepEqual(removed, want) {
		t.Fatalf("Uninstall = %v, %v; want %v", removed, err, want)
	}
	if got := read(t, gtk3.Path); len(got) != 0 {
		t.Fatalf("gtk: %q", got)
	}
	if got := read(t, kde.Path); !bytes.Equal(got, kdeOrig) {
		t.Fatalf("kde:\n%s", got)
	}
	// The next start of the agent adds nothing, even for a file that
	// appears only now.
	put(t, gtk4.Path, "bookmarks-gtk", 0o644)
	if added, err := Install(files, "/home/alice/OCM", Label, rec); err != nil || len(added) != 0 {
		t.Fatalf("Install after Uninstall = %v, %v", added, err)
	}
	// Nothing left to remove: nothing said.
	if removed, err := Uninstall(files, "/home/alice/OCM", rec); err != nil || len(removed) != 0 {
		t.Fatalf("second Uninstall = %v, %v", removed, err)
	}
}

func TestInstallRefusesAnUnreadableRecord(t *testing.T) {
	gtk3, gtk4, kde := home(t)
	rec := filepath.Join(t.TempDir(), "bookmarks.json")
	os.WriteFile(rec, []byte("{not json"), 0o600)
	if _, err := Install([]File{gtk3, gtk4, kde}, "/home/alice/OCM", Label, rec); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(gtk3.Path); !os.IsNotExist(err) {
		t.Fatalf("added without a record: %v", err)
	}
}
