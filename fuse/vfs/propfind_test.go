package vfs

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
)

// parseWithEncodingXML is the reference for the hand-written scanner: the same
// builder fed by encoding/xml.
func parseWithEncodingXML(doc, reqURL string) (*Listing, error) {
	reqSegs, err := URLSegments(reqURL)
	if err != nil {
		return nil, err
	}
	dec := xml.NewDecoder(strings.NewReader(doc))
	b := msBuilder{req: reqSegs, max: DefaultMaxEntries}
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := b.start(t.Name.Local); err != nil {
				return nil, err
			}
			text.Reset()
		case xml.EndElement:
			if err := b.end([]byte(text.String())); err != nil {
				return nil, err
			}
			text.Reset()
		case xml.CharData:
			if b.wantText() {
				text.Write(t)
			}
		}
	}
	return b.listing(reqSegs)
}

func TestParseMultistatus(t *testing.T) {
	// The self entry is not first, hrefs mix absolute URLs and paths, one
	// name is percent-encoded, one would be a path traversal, one holds an
	// encoded slash, and a 404 propstat must not override the 200 one.
	doc := `<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
 <d:response><d:href>/dav/share/My%20File.txt</d:href>
  <d:propstat><d:prop><d:getcontentlength>42</d:getcontentlength><d:getetag>"e1"</d:getetag>
   <d:getlastmodified>Mon, 02 Jan 2006 15:04:05 GMT</d:getlastmodified><d:resourcetype/></d:prop>
   <d:status>HTTP/1.1 200 OK</d:status></d:propstat>
  <d:propstat><d:prop><oc:fileid/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>
 </d:response>
 <d:response><d:href>http://peer.example/dav/share/</d:href>
  <d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype><d:getetag>"dir"</d:getetag></d:prop>
   <d:status>HTTP/1.1 200 OK</d:status></d:propstat>
 </d:response>
 <d:response><d:href>/dav/share/sub/</d:href>
  <d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
 </d:response>
 <d:response><d:href>/dav/share/a%2Fb</d:href>
  <d:propstat><d:prop><d:getcontentlength>1</d:getcontentlength></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
 </d:response>
 <d:response><d:href>/dav/share/..</d:href>
  <d:propstat><d:prop><d:getcontentlength>1</d:getcontentlength></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
 </d:response>
 <d:response><d:href>/dav/elsewhere/x</d:href>
  <d:propstat><d:prop><d:getcontentlength>1</d:getcontentlength></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>
 </d:response>
</d:multistatus>`
	l, err := ParseMultistatus([]byte(doc), "http://peer.example/dav/share")
	if err != nil {
		t.Fatal(err)
	}
	if !l.Self.Dir || l.Self.ETag != `"dir"` {
		t.Errorf("self = %+v", l.Self)
	}
	if strings.Join(l.Names(), "|") != "My File.txt|sub" {
		t.Errorf("names = %q", l.Names())
	}
	f, _ := l.Lookup("My File.txt")
	if f.Dir || f.Size != 42 || f.ETag != `"e1"` || f.Mtime.Year() != 2006 {
		t.Errorf("file = %+v", f)
	}
	if !l.IsDir("sub") {
		t.Errorf("sub not a dir")
	}
	if l.FileID {
		t.Errorf("fileid seen in a 404 propstat")
	}

	if _, err := ParseMultistatus([]byte(`<d:multistatus xmlns:d="DAV:"><d:response><d:href>/x`), "http://h/x"); err == nil {
		t.Errorf("truncated document accepted")
	}
}

// FuzzParseMultistatus feeds the PROPFIND parser arbitrary documents: it must
// not panic, and whatever it accepts holds only names usable as file names.
func FuzzParseMultistatus(f *testing.F) {
	f.Add(`<d:multistatus xmlns:d="DAV:"><d:response><d:href>/a/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:response><d:href>/a/b%20c</d:href><d:propstat><d:prop><d:getcontentlength>3</d:getcontentlength></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>`, "http://h/a/")
	f.Add(`<multistatus><response><href>http://h/a/..</href></response></multistatus>`, "http://h/a")
	f.Add(`<d:multistatus xmlns:d="DAV:"><d:response><d:href>%zz</d:href></d:response>`, "/")
	f.Add(nginxListing(3), "http://127.0.0.1/wide/")
	f.Add(`<?xml version="1.0"?><!-- c --><a:multistatus xmlns:a="DAV:"><a:response><a:href><![CDATA[/x/]]></a:href></a:response><a:response><a:href>/x/a&amp;b&#x41;</a:href><a:propstat><a:prop a="1>2"/><a:status>HTTP/1.1 200 OK</a:status></a:propstat></a:response></a:multistatus>`, "/x")
	f.Fuzz(func(t *testing.T, doc, req string) {
		l, err := ParseMultistatus([]byte(doc), req)
		// Fed a byte at a time, the scanner must reach the same answer.
		var streamed []string
		ls, serr := ParseStream(iotest.OneByteReader(strings.NewReader(doc)), req, func(name string, _ Info) { streamed = append(streamed, name) })
		if (err == nil) != (serr == nil) || (err == nil && !reflect.DeepEqual(l, ls)) {
			t.Fatalf("whole and byte-at-a-time parses differ: %v / %v", err, serr)
		}
		if err == nil && len(streamed) > 0 {
			sorted := append([]string(nil), streamed...)
			sort.Strings(sorted)
			if !reflect.DeepEqual(sorted, l.Names()) {
				t.Fatalf("streamed %q, listed %q", streamed, l.Names())
			}
		}
		ref, rerr := parseWithEncodingXML(doc, req)
		if rerr == nil && err == nil && !reflect.DeepEqual(l, ref) {
			t.Fatalf("scanner and encoding/xml disagree:\n%+v\n%+v", l, ref)
		}
		if rerr == nil && err != nil && !errors.Is(err, ErrNoResponse) && strings.Contains(doc, "multistatus") && !strings.Contains(doc, "<!") && !strings.Contains(doc, "\x00") {
			t.Logf("scanner refused what encoding/xml took: %v", err)
		}
		if err != nil {
			return
		}
		if len(l.Names()) != len(l.Children()) {
			t.Fatalf("%d names, %d items", len(l.Names()), len(l.Children()))
		}
		for _, n := range l.Names() {
			if !ValidRemoteName(n) {
				t.Fatalf("unusable name %q accepted", n)
			}
			if _, ok := l.Lookup(n); !ok {
				t.Fatalf("name %q without item", n)
			}
		}
	})
}

// nginxListing builds a multistatus like nginx's dav-ext module sends for a
// folder of n files (it answers every property, whatever was asked).
func nginxListing(n int) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8" ?>` + "\n" + `<D:multistatus xmlns:D="DAV:">` + "\n")
	entry := func(href, name, extra string) {
		b.WriteString("<D:response>\n<D:href>" + href + "</D:href>\n<D:propstat>\n<D:prop>\n<D:displayname>" + name +
			"</D:displayname>\n" + extra + "<D:getlastmodified>Sun, 22 Nov 2026 21:35:25 GMT</D:getlastmodified>\n" +
			"<D:lockdiscovery/>\n<D:supportedlock>\n</D:supportedlock>\n</D:prop>\n<D:status>HTTP/1.1 200 OK</D:status>\n</D:propstat>\n</D:response>\n")
	}
	entry("/wide/", "wide", "<D:resourcetype><D:collection/></D:resourcetype>\n")
	for i := range n {
		name := "entry-" + strings.Repeat("0", 5-len(itoa(i))) + itoa(i) + ".txt"
		entry("/wide/"+name, name, "<D:getcontentlength>1024</D:getcontentlength>\n<D:resourcetype></D:resourcetype>\n")
	}
	b.WriteString("</D:multistatus>\n")
	return b.String()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}

func BenchmarkParseMultistatus10k(b *testing.B) {
	doc := []byte(nginxListing(10000))
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		l, err := ParseMultistatus(doc, "http://127.0.0.1/wide/")
		if err != nil || l.Len() != 10000 {
			b.Fatalf("%v %d", err, l.Len())
		}
	}
}

// The fast readers of dates, sizes and statuses agree with the standard ones.
func TestFastFieldReaders(t *testing.T) {
	for _, s := range []string{
		"Sun, 22 Nov 2026 21:35:25 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "Mon, 29 Feb 2016 23:59:59 GMT",
		"Sun, 31 Feb 2026 21:35:25 GMT", "Sun, 22 Xyz 2026 21:35:25 GMT", "Sun, 22 Nov 2026 25:35:25 GMT",
		"Sunday, 22-Nov-26 21:35:25 GMT", "Sun Nov 22 21:35:25 2026", "", "garbage",
	} {
		want, _ := http.ParseTime(s)
		if got := parseHTTPTime([]byte(s)); !got.Equal(want) {
			t.Errorf("parseHTTPTime(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]int64{"0": 0, "1024": 1024, "9223372036854775807": 1<<63 - 1, "-1": -1, "12a": 0, "": 0} {
		if got := parseSize([]byte(s)); got != want {
			t.Errorf("parseSize(%q) = %d, want %d", s, got, want)
		}
	}
	for s, want := range map[string]bool{"HTTP/1.1 200 OK": true, "HTTP/1.1  200": true, "HTTP/1.1 404 Not Found": false, "200": false, "HTTP/1.1 2000 OK": false} {
		if got := statusOK([]byte(s)); got != want {
			t.Errorf("statusOK(%q) = %v", s, got)
		}
	}
}
