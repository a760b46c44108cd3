// Package bookmarks puts the shares folder in the sidebar of the file
// managers: the GTK bookmarks file read by Nautilus, Thunar, PCManFM and
// the GTK file chooser ($XDG_CONFIG_HOME/gtk-3.0/bookmarks, and
// gtk-4.0/bookmarks where it exists), and the KDE places file read by
// Dolphin and the KDE file dialogs ($XDG_DATA_HOME/user-places.xbel).
//
// Every edit is small and safe: the entry is added once (a second add
// changes nothing), every other line or bookmark stays byte for byte, and
// the file is replaced atomically (temporary file and rename, same mode,
// through a symbolic link to its target). A file that cannot be parsed is
// left alone with an error.
//
// The KDE places file is only edited when it exists: created with one
// entry, it would make Dolphin skip its default places (Home, Trash...).
//
// Install remembers, in a record file in the agent's state directory,
// which files it has put the entry in, so that an entry the person removed
// by hand is not put back at the next start.
package bookmarks
