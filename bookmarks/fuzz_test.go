package bookmarks

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"
)

// FuzzXBEL: on any document, an add either refuses or yields a document
// that still parses, has the place once, and from which a remove gives
// back the input byte for byte.
func FuzzXBEL(f *testing.F) {
	sample, err := os.ReadFile(filepath.Join("testdata", "user-places.xbel"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample, "/home/alice/OCM")
	f.Add([]byte(`<xbel><bookmark href="file:///a%20b"/></xbel>`), "/a b")
	f.Add([]byte("<xbel>\r\n <separator/></xbel>"), "/x")
	f.Fuzz(func(t *testing.T, data []byte, dir string) {
		if len(dir) == 0 || dir[0] != '/' || len(data) > 1<<16 {
			return
		}
		dir = filepath.Clean(dir)
		doc, err := scanXBEL(data, dir)
		if err != nil || len(doc.matches) > 0 {
			return
		}
		added, err := xbelAdd(data, dir, Label)
		if err != nil || added == nil {
			t.Fatalf("xbelAdd on a document scanXBEL accepts: %v", err)
		}
		again, err := scanXBEL(added, dir)
		if err != nil || len(again.matches) != 1 {
			t.Fatalf("after add: %v, %d places for the folder\n%q", err, len(again.matches), added)
		}
		if more, err := xbelAdd(added, dir, Label); more != nil || err != nil {
			t.Fatalf("second add: %q, %v", more, err)
		}
		d := xml.NewDecoder(bytes.NewReader(added))
		for {
			if _, err := d.Token(); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("the result does not parse: %v\n%q", err, added)
				}
				break
			}
		}
		back, err := xbelRemove(added, dir)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("remove after add: %v\n%q\nwant\n%q", err, back, data)
		}
	})
}

// FuzzGTK: the same for the GTK bookmarks file.
func FuzzGTK(f *testing.F) {
	sample, err := os.ReadFile(filepath.Join("testdata", "bookmarks-gtk"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample, "/home/alice/My OCM")
	f.Add([]byte("file:///x"), "/x y")
	f.Fuzz(func(t *testing.T, data []byte, dir string) {
		if len(dir) == 0 || dir[0] != '/' {
			return
		}
		dir = filepath.Clean(dir)
		added := gtkAdd(data, dir, Label)
		if added == nil {
			return // already there
		}
		if gtkAdd(added, dir, Label) != nil {
			t.Fatalf("second add changed %q", added)
		}
		back := gtkRemove(added, dir)
		want := data
		if len(data) > 0 && data[len(data)-1] != '\n' {
			want = append(bytes.Clone(data), '\n')
		}
		if !bytes.Equal(back, want) {
			t.Fatalf("remove after add: %q, want %q", back, want)
		}
	})
}
