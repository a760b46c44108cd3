package bookmarks

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// home lays out a private XDG configuration and data directory and
// returns the bookmark files under them.
func home(t *testing.T) (gtk3, gtk4, kde File) {
	t.Helper()
	dir := t.TempDir()
	fs := Files(filepath.Join(dir, "config"), filepath.Join(dir, "data"))
	return fs[0], fs[1], fs[2]
}

func put(t *testing.T, path, sample string, mode os.FileMode) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", sample))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return b
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAdd(t *testing.T, f File, dir string, want Result) {
	t.Helper()
	got, err := Add(f, dir, Label)
	if err != nil || got != want {
		t.Fatalf("Add(%s, %s) = %v, %v; want %v", f.Path, dir, got, err, want)
	}
}

func TestURIPercentEncodes(t *testing.T) {
	for dir, want := range map[string]string{
		"/home/alice/OCM":              "file:///home/alice/OCM",
		"/home/alice/My Shares/":       "file:///home/alice/My%20Shares",
		"/home/al ice/50% #1?/Ünïcode": "file:///home/al%20ice/50%25%20%231%3F/%C3%9Cn%C3%AFcode",
	} {
		if got := URI(dir); got != want {
			t.Errorf("URI(%q) = %q, want %q", dir, got, want)
		}
		if !isDir(want, filepath.Clean(dir)) {
			t.Errorf("isDir(%q, %q) is false", want, dir)
		}
	}
	// The same folder written as other programs write it.
	for _, uri := range []string{"file:///home/alice/My%20Shares/", "file://localhost/home/alice/My%20Shares", "file:///home/alice/My%20%53hares"} {
		if !isDir(uri, "/home/alice/My Shares") {
			t.Errorf("%q is not taken for /home/alice/My Shares", uri)
		}
	}
	for _, uri := range []string{"sftp://host/home/alice/My%20Shares", "file://other/home/alice/My%20Shares", "file:///home/alice/My%20Shares/sub", "%zz"} {
		if isDir(uri, "/home/alice/My Shares") {
			t.Errorf("%q is taken for /home/alice/My Shares", uri)
		}
	}
}

func TestGTKAddKeepsOtherLinesAndMode(t *testing.T) {
	gtk3, _, _ := home(t)
	orig := put(t, gtk3.Path, "bookmarks-gtk", 0o640)
	dir := "/home/alice/My OCM"
	mustAdd(t, gtk3, dir, Added)
	want := string(orig) + "file:///home/alice/My%20OCM OCM shares\n"
	if got := string(read(t, gtk3.Path)); got != want {
		t.Fatalf("after add:\n%s\nwant:\n%s", got, want)
	}
	if st, _ := os.Stat(gtk3.Path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after add, want 0640", st.Mode().Perm())
	}
	mustAdd(t, gtk3, dir, Present)
	mustAdd(t, gtk3, dir+"/", Present)
	if got := string(read(t, gtk3.Path)); got != want {
		t.Fatalf("a second add changed the file:\n%s", got)
	}
	had, err := Remove(gtk3, dir)
	if err != nil || !had {
		t.Fatalf("Remove = %v, %v", had, err)
	}
	if got := read(t, gtk3.Path); !bytes.Equal(got, orig) {
		t.Fatalf("after remove:\n%s\nwant the original:\n%s", got, orig)
	}
	if had, err := Remove(gtk3, dir); err != nil || had {
		t.Fatalf("second Remove = %v, %v", had, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(gtk3.Path), ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestGTKEntryAlreadyThereUnderOtherSpelling(t *testing.T) {
	gtk3, _, _ := home(t)
	os.MkdirAll(filepath.Dir(gtk3.Path), 0o700)
	orig := "file:///home/alice/Music\nfile://localhost/home/alice/My%20OCM/ my own name\n"
	os.WriteFile(gtk3.Path, []byte(orig), 0o600)
	mustAdd(t, gtk3, "/home/alice/My OCM", Present)
	if got := string(read(t, gtk3.Path)); got != orig {
		t.Fatalf("file changed: %q", got)
	}
	if had, _ := Remove(gtk3, "/home/alice/My OCM"); !had {
		t.Fatal("the entry under another spelling was not removed")
	}
	if got := string(read(t, gtk3.Path)); got != "file:///home/alice/Music\n" {
		t.Fatalf("after remove: %q", got)
	}
}

func TestGTKWithoutFinalNewline(t *testing.T) {
	gtk3, _, _ := home(t)
	os.MkdirAll(filepath.Dir(gtk3.Path), 0o700)
	os.WriteFile(gtk3.Path, []byte("file:///home/alice/Music Music"), 0o600)
	mustAdd(t, gtk3, "/home/alice/OCM", Added)
	if got := string(read(t, gtk3.Path)); got != "file:///home/alice/Music Music\nfile:///home/alice/OCM OCM shares\n" {
		t.Fatalf("got %q", got)
	}
}

func TestGTKMissingFiles(t *testing.T) {
	gtk3, gtk4, _ := home(t)
	// gtk-3.0 is the file every GTK file manager reads: created.
	mustAdd(t, gtk3, "/home/alice/OCM", Added)
	if got := string(read(t, gtk3.Path)); got != "file:///home/alice/OCM OCM shares\n" {
		t.Fatalf("new file: %q", got)
	}
	if st, _ := os.Stat(gtk3.Path); st.Mode().Perm() != 0o600 {
		t.Errorf("new file has mode %v", st.Mode().Perm())
	}
	// gtk-4.0 is only kept in step when it exists.
	mustAdd(t, gtk4, "/home/alice/OCM", Missing)
	if _, err := os.Stat(filepath.Dir(gtk4.Path)); !os.IsNotExist(err) {
		t.Fatalf("gtk-4.0 was created: %v", err)
	}
	if had, err := Remove(gtk4, "/home/alice/OCM"); had || err != nil {
		t.Fatalf("Remove of a missing file = %v, %v", had, err)
	}
}

func TestSymbolicLinkStaysALink(t *testing.T) {
	gtk3, _, _ := home(t)
	real := filepath.Join(t.TempDir(), "dotfiles", "bookmarks")
	orig := put(t, real, "bookmarks-gtk", 0o644)
	os.MkdirAll(filepath.Dir(gtk3.Path), 0o700)
	if err := os.Symlink(real, gtk3.Path); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, gtk3, "/home/alice/OCM", Added)
	if st, err := os.Lstat(gtk3.Path); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", st.Mode(), err)
	}
	if got := string(read(t, real)); got != string(orig)+"file:///home/alice/OCM OCM shares\n" {
		t.Fatalf("the link's target: %q", got)
	}
}

// xbelPlaces parses an XBEL document as KDE reads it and returns its
// top-level places as href -> title.
func xbelPlaces(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var doc struct {
		Bookmarks []struct {
			Href  string `xml:"href,attr"`
			Title string `xml:"title"`
			Icon  struct {
				Name string `xml:"name,attr"`
			} `xml:"info>metadata>icon"`
		} `xml:"bookmark"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not valid XML any more: %v\n%s", err, b)
	}
	out := map[string]string{}
	for _, bm := range doc.Bookmarks {
		if _, dup := out[bm.Href]; dup {
			t.Errorf("place %s twice", bm.Href)
		}
		out[bm.Href] = bm.Title + "|" + bm.Icon.Name
	}
	return out
}

func TestXBELAddKeepsKDEPlaces(t *testing.T) {
	_, _, kde := home(t)
	orig := put(t, kde.Path, "user-places.xbel", 0o600)
	dir := "/home/alice/Shares & more/OCM"
	mustAdd(t, kde, dir, Added)
	got := read(t, kde.Path)
	end := bytes.LastIndex(orig, []byte("</xbel>"))
	if !bytes.HasPrefix(got, orig[:end]) || !bytes.HasSuffix(got, orig[end:]) || bytes.Count(got, []byte("<separator>")) != 1 {
		t.Fatalf("the rest of the document changed:\n%s", got)
	}
	places := xbelPlaces(t, got)
	before := xbelPlaces(t, orig)
	if len(places) != len(before)+1 {
		t.Fatalf("places: %v", places)
	}
	for href, title := range before {
		if places[href] != title {
			t.Errorf("place %s became %q, was %q", href, places[href], title)
		}
	}
	if p := places["file:///home/alice/Shares%20&%20more/OCM"]; p != "OCM shares|folder-cloud" {
		t.Fatalf("the new place: %q in %v", p, places)
	}
	mustAdd(t, kde, dir, Present)
	if again := read(t, kde.Path); !bytes.Equal(again, got) {
		t.Fatalf("a second add changed the file:\n%s", again)
	}
	if had, err := Remove(kde, dir); err != nil || !had {
		t.Fatalf("Remove = %v, %v", had, err)
	}
	if after := read(t, kde.Path); !bytes.Equal(after, orig) {
		t.Fatalf("after remove:\n%s\nwant the original", after)
	}
}

func TestXBELRemovesAPlaceKDEWrote(t *testing.T) {
	_, _, kde := home(t)
	orig := string(put(t, kde.Path, "user-places.xbel", 0o644))
	// The person's own place, written by Dolphin, for the folder.
	doc := strings.Replace(orig, "</xbel>", ` <bookmark href="file:///home/alice/OCM/"><title>mine</title></bookmark>
 <bookmark href="file:///home/alice/OCM"/>
</xbel>`, 1)
	os.WriteFile(kde.Path, []byte(doc), 0o644)
	mustAdd(t, kde, "/home/alice/OCM", Present)
	if had, err := Remove(kde, "/home/alice/OCM"); err != nil || !had {
		t.Fatalf("Remove = %v, %v", had, err)
	}
	if got := string(read(t, kde.Path)); got != orig {
		t.Fatalf("after remove:\n%s", got)
	}
}

func TestXBELWithoutFreedesktopNamespaceGetsNoIcon(t *testing.T) {
	_, _, kde := home(t)
	os.MkdirAll(filepath.Dir(kde.Path), 0o700)
	os.WriteFile(kde.Path, []byte(`<?xml version="1.0"?><xbel><bookmark href="file:///x"><title>x</title></bookmark></xbel>`), 0o600)
	mustAdd(t, kde, "/home/alice/OCM", Added)
	got := read(t, kde.Path)
	if bytes.Contains(got, []byte(":icon")) {
		t.Fatalf("icon in an undeclared namespace:\n%s", got)
	}
	if p := xbelPlaces(t, got); p["file:///home/alice/OCM"] != "OCM shares|" {
		t.Fatalf("places: %v", p)
	}
}

func TestXBELMissingIsNotCreated(t *testing.T) {
	_, _, kde := home(t)
	mustAdd(t, kde, "/home/alice/OCM", Missing)
	if _, err := os.Stat(filepath.Dir(kde.Path)); !os.IsNotExist(err) {
		t.Fatalf("created: %v", err)
	}
	os.MkdirAll(filepath.Dir(kde.Path), 0o700)
	os.WriteFile(kde.Path, []byte("\n"), 0o600)
	mustAdd(t, kde, "/home/alice/OCM", Missing)
	if got := string(read(t, kde.Path)); got != "\n" {
		t.Fatalf("empty file changed: %q", got)
	}
}

func TestXBELBrokenIsLeftAlone(t *testing.T) {
	_, _, kde := home(t)
	os.MkdirAll(filepath.Dir(kde.Path), 0o700)
	for _, bad := range []string{
		`<xbel><bookmark href="file:///x"><title>x</bookmark></xbel>`,
		`<xbel><bookmark href="file:///home/alice/OCM">`,
		`<html><body/></html>`,
		`<xbel>&nbsp;</xbel>`,
	} {
		os.WriteFile(kde.Path, []byte(bad), 0o600)
		if _, err := Add(kde, "/home/alice/OCM", Label); err == nil || !strings.Contains(err.Error(), kde.Path) {
			t.Errorf("Add on %q: err %v, want one naming the file", bad, err)
		}
		if _, err := Remove(kde, "/home/alice/OCM"); err == nil {
			t.Errorf("Remove on %q: no error", bad)
		}
		if got := string(read(t, kde.Path)); got != bad {
			t.Errorf("changed to %q", got)
		}
	}
}

func TestXBELWithCRLFAndByteOrderMark(t *testing.T) {
	_, _, kde := home(t)
	sample, err := os.ReadFile(filepath.Join("testdata", "user-places.xbel"))
	if err != nil {
		t.Fatal(err)
	}
	orig := append([]byte("\ufeff"), bytes.ReplaceAll(sample, []byte("\n"), []byte("\r\n"))...)
	os.MkdirAll(filepath.Dir(kde.Path), 0o700)
	os.WriteFile(kde.Path, orig, 0o600)
	mustAdd(t, kde, "/home/alice/OCM", Added)
	got := read(t, kde.Path)
	if !bytes.HasPrefix(got, orig[:bytes.LastIndex(orig, []byte("</xbel>"))]) {
		t.Fatalf("the document before the new place changed:\n%q", got)
	}
	if p := xbelPlaces(t, got[3:]); p["file:///home/alice/OCM"] != "OCM shares|folder-cloud" {
		t.Fatalf("places: %v", p)
	}
	if had, err := Remove(kde, "/home/alice/OCM"); err != nil || !had {
		t.Fatalf("Remove = %v, %v", had, err)
	}
	if after := read(t, kde.Path); !bytes.Equal(after, orig) {
		t.Fatalf("after remove:\n%q", after)
	}
}
