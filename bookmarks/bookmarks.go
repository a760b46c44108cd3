package bookmarks

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
)

// Label is the name the entry has in the sidebar.
const Label = "OCM shares"

// Format is the syntax of a bookmarks file.
type Format int

const (
	// GTK is one "URI[ label]" per line.
	GTK Format = iota
	// XBEL is the XML Bookmark Exchange Language of the KDE places.
	XBEL
)

// File is one list of places read by some file managers.
type File struct {
	Path   string
	Format Format
	// Create: a missing file is created (with its directory), rather than
	// left missing.
	Create bool
}

// Files are the bookmark files of the GTK and KDE file managers under the
// given XDG configuration and data directories. GTK 4 programs read the
// gtk-3.0 file; a gtk-4.0 file is kept in step only where it exists.
func Files(configHome, dataHome string) []File {
	return []File{
		{Path: filepath.Join(configHome, "gtk-3.0", "bookmarks"), Format: GTK, Create: true},
		{Path: filepath.Join(configHome, "gtk-4.0", "bookmarks"), Format: GTK},
		{Path: filepath.Join(dataHome, "user-places.xbel"), Format: XBEL},
	}
}

// UserFiles are Files of this user's XDG directories ($XDG_CONFIG_HOME,
// $XDG_DATA_HOME, or their defaults under the home directory).
func UserFiles() []File {
	return Files(xdgDir("XDG_CONFIG_HOME", ".config"), xdgDir("XDG_DATA_HOME", filepath.Join(".local", "share")))
}

func xdgDir(env, fallback string) string {
	if d := os.Getenv(env); d != "" && filepath.IsAbs(d) {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/"
	}
	return filepath.Join(home, fallback)
}

// Result says what Add found.
type Result int

const (
	// Missing: the file does not exist, and is not one to create.
	Missing Result = iota
	// Present: the file already had an entry for the folder.
	Present
	// Added: the entry was added.
	Added
)

// Add puts an entry for dir, named label, at the end of the file's places,
// unless one for dir is there already.
func Add(f File, dir, label string) (Result, error) {
	dir = filepath.Clean(dir)
	res := Present
	missing, err := edit(f.Path, f.Create, func(old []byte) ([]byte, error) {
		var (
			out []byte
			err error
		)
		if f.Format == XBEL {
			out, err = xbelAdd(old, dir, label)
		} else {
			out = gtkAdd(old, dir, label)
		}
		if err == nil && out != nil {
			res = Added
		}
		return out, err
	})
	if missing || errors.Is(err, errEmpty) {
		return Missing, nil // an empty places file is one KDE has yet to fill
	}
	return res, err
}

// Remove takes every entry for dir out of the file, and reports whether
// there was one. A missing file has none.
func Remove(f File, dir string) (bool, error) {
	dir = filepath.Clean(dir)
	removed := false
	_, err := edit(f.Path, false, func(old []byte) ([]byte, error) {
		var (
			out []byte
			err error
		)
		if f.Format == XBEL {
			out, err = xbelRemove(old, dir)
		} else {
			out = gtkRemove(old, dir)
		}
		removed = err == nil && out != nil
		return out, err
	})
	if errors.Is(err, errEmpty) {
		return false, nil
	}
	return removed, err
}

// URI is the file:// URI of dir, percent-encoded as file managers write it.
func URI(dir string) string {
	return (&url.URL{Scheme: "file", Path: filepath.Clean(dir)}).String()
}

// isDir reports whether uri is a local file URI naming dir, whatever its
// percent-encoding.
func isDir(uri, dir string) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
		return false
	}
	return filepath.Clean(u.Path) == dir
}

// errEmpty: the file has nothing in it to edit.
var errEmpty = errors.New("empty file")
