package bookmarks

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The freedesktop.org namespace of bookmark:icon, and the owners of the
// metadata blocks KDE writes in each place.
const (
	nsDesktopBookmarks = "http://www.freedesktop.org/standards/desktop-bookmarks"
	ownerFreedesktop   = "http://freedesktop.org"
	ownerKDE           = "http://www.kde.org"
)

// xbelDoc is what the edits need to know of an XBEL document: where its
// closing tag starts, and the byte ranges of its places for a folder.
// The edits splice bytes at these offsets, so that everything else, in
// whatever namespace, stays as it was.
type xbelDoc struct {
	end     int      // offset of </xbel>
	matches [][2]int // [start, end) of each top-level <bookmark> for the folder
	// iconPrefix is the prefix the root binds to the freedesktop bookmarks
	// namespace, "" when it binds none.
	iconPrefix string
}

// scanXBEL parses data fully (a document that does not parse is not
// edited) and finds the top-level bookmarks whose href is dir.
func scanXBEL(data []byte, dir string) (xbelDoc, error) {
	doc := xbelDoc{end: -1}
	if len(bytes.TrimSpace(data)) == 0 {
		return doc, errEmpty
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	depth, start, match := 0, -1, false
	rootOpened := -1 // offset just past the root's start tag
	for {
		off := int(dec.InputOffset())
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return doc, fmt.Errorf("not a valid XBEL document: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if t.Name.Local != "xbel" {
					return doc, fmt.Errorf("not an XBEL document: the root is <%s>", t.Name.Local)
				}
				rootOpened = int(dec.InputOffset())
				for _, a := range t.Attr {
					if a.Name.Space == "xmlns" && a.Value == nsDesktopBookmarks {
						doc.iconPrefix = a.Name.Local
					}
				}
			case depth == 2 && t.Name.Local == "bookmark":
				start, match = off, false
				for _, a := range t.Attr {
					if a.Name.Space == "" && a.Name.Local == "href" && isDir(a.Value, dir) {
						match = true
					}
				}
			}
		case xml.EndElement:
			if depth == 2 && start >= 0 {
				if match {
					doc.matches = append(doc.matches, [2]int{start, int(dec.InputOffset())})
				}
				start = -1
			}
			if depth == 1 {
				if off == rootOpened && bytes.HasSuffix(data[:off], []byte("/>")) {
					// <xbel/>: no closing tag to put a place before, and
					// rewriting the root would change the user's bytes.
					return doc, errors.New("not edited: the XBEL document is an empty, self-closed <xbel/>")
				}
				doc.end = off
			}
			depth--
		}
	}
	if doc.end < 0 {
		return doc, errors.New("not an XBEL document: no <xbel> element")
	}
	return doc, nil
}

// xbelAdd returns data with a place for dir before </xbel>, or nil when
// there is one already.
func xbelAdd(data []byte, dir, label string) ([]byte, error) {
	doc, err := scanXBEL(data, dir)
	if err != nil || len(doc.matches) > 0 {
		return nil, err
	}
	var b strings.Builder
	lineStart := data[doc.end-1] == '\n'
	if !lineStart {
		b.WriteByte('\n')
	}
	// The layout KDE writes, one space per level.
	fmt.Fprintf(&b, " <bookmark href=\"%s\">\n  <title>%s</title>\n  <info>\n", escape(URI(dir)), escape(label))
	if doc.iconPrefix != "" {
		fmt.Fprintf(&b, "   <metadata owner=\"%s\">\n    <%s:icon name=\"folder-cloud\"/>\n   </metadata>\n", ownerFreedesktop, doc.iconPrefix)
	}
	// KDE tells its places apart by this ID; it makes them "<seconds>/<n>".
	fmt.Fprintf(&b, "   <metadata owner=\"%s\">\n    <ID>%d/ocm-agent</ID>\n   </metadata>\n  </info>\n </bookmark>", ownerKDE, time.Now().Unix())
	if lineStart {
		b.WriteByte('\n')
	}
	out := make([]byte, 0, len(data)+b.Len())
	out = append(out, data[:doc.end]...)
	out = append(out, b.String()...)
	return append(out, data[doc.end:]...), nil
}

// xbelRemove returns data without the places for dir, with the lines they
// stood on, or nil when it has none.
func xbelRemove(data []byte, dir string) ([]byte, error) {
	doc, err := scanXBEL(data, dir)
	if err != nil || len(doc.matches) == 0 {
		return nil, err
	}
	out := make([]byte, 0, len(data))
	prev := 0
	for _, m := range doc.matches {
		start, end := m[0], m[1]
		for start > prev && (data[start-1] == ' ' || data[start-1] == '\t') {
			start--
		}
		// A place alone on its lines goes with its line break; one that
		// ends a line of its own goes with the break before it (as
		// xbelAdd writes it where the closing tag is not on a new line).
		if start == 0 || data[start-1] == '\n' {
			switch {
			case bytes.HasPrefix(data[end:], []byte("\r\n")):
				end += 2
			case end < len(data) && data[end] == '\n':
				end++
			case start > prev:
				start-- // the "\n" alone: xbelAdd never writes "\r\n"
			}
		}
		out = append(out, data[prev:start]...)
		prev = end
	}
	return append(out, data[prev:]...), nil
}

func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
