package bookmarks

import (
	"bytes"
	"strings"
)

// gtkAdd returns data with a line for dir appended, or nil when a line
// for dir is there already.
func gtkAdd(data []byte, dir, label string) []byte {
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if gtkLineIs(line, dir) {
			return nil
		}
	}
	label = strings.Join(strings.Fields(label), " ") // one line, no edge spaces
	out := bytes.Clone(data)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	out = append(out, URI(dir)...)
	if label != "" {
		out = append(out, ' ')
		out = append(out, label...)
	}
	return append(out, '\n')
}

// gtkRemove returns data without the lines for dir, or nil when it has
// none.
func gtkRemove(data []byte, dir string) []byte {
	var out []byte
	found := false
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if gtkLineIs(line, dir) {
			found = true
			continue
		}
		out = append(out, line...)
	}
	if !found {
		return nil
	}
	if out == nil {
		out = []byte{}
	}
	return out
}

// gtkLineIs reports whether a line of a GTK bookmarks file ("URI" or
// "URI label") is an entry for dir.
func gtkLineIs(line []byte, dir string) bool {
	line = bytes.TrimRight(line, "\r\n")
	uri, _, _ := bytes.Cut(line, []byte(" "))
	return isDir(string(uri), dir)
}
