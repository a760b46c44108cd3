package ocmfs

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// info is what the mount knows about one remote file or directory.
type info struct {
	dir   bool
	size  int64
	mtime time.Time
	etag  string
}

// listing is the parsed answer to one PROPFIND: the resource itself and, for
// Depth 1, its children by name.
type listing struct {
	self     info
	hasSelf  bool
	names    []string // sorted
	items    map[string]info
	fileID   bool // the server sent oc:fileid: ownCloud-lineage, folder ETags change with their content
	accepted int  // children found in the document (before dropping unusable names)
}

// errNoResponse means a multistatus held nothing usable.
var errNoResponse = errors.New("multistatus without a usable response")

type davResponse struct {
	segs []string // decoded path segments of href
	in   info
	ok   bool // had a 200 propstat
	id   bool
}

// parseMultistatus reads a PROPFIND answer for reqURL. The entry whose href
// names reqURL is the resource itself (matched by decoded path, not by
// position); children are the entries one segment below it. If no href
// matches reqURL (a server rewriting paths), the first entry is taken as the
// resource and the last segment of every other href as a child name. Names
// that cannot be local file names are dropped.
func parseMultistatus(r io.Reader, reqURL string) (*listing, error) {
	reqSegs, err := urlSegments(reqURL)
	if err != nil {
		return nil, err
	}
	dec := xml.NewDecoder(r)
	dec.Strict = false
	var (
		resps   []davResponse
		cur     *davResponse
		stack   []string
		text    bytes.Buffer
		ps      info // props of the current propstat
		psID    bool
		psColl  bool
		psOK    bool
		inProp  bool
		hrefRaw string
	)
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse multistatus: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			stack = append(stack, name)
			text.Reset()
			switch name {
			case "response":
				resps = append(resps, davResponse{})
				cur = &resps[len(resps)-1]
				hrefRaw = ""
			case "propstat":
				ps, psID, psColl, psOK = info{}, false, false, false
			case "prop":
				inProp = true
			case "collection":
				if inProp && len(stack) >= 2 && stack[len(stack)-2] == "resourcetype" {
					psColl = true
				}
			}
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, errors.New("parse multistatus: unbalanced document")
			}
			name := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			val := strings.TrimSpace(text.String())
			text.Reset()
			if cur == nil {
				continue
			}
			switch name {
			case "href":
				if !inProp && hrefRaw == "" {
					hrefRaw = val
					segs, err := urlSegments(val)
					if err == nil {
						cur.segs = segs
					}
				}
			case "status":
				if !inProp {
					psOK = statusOK(val)
				}
			case "prop":
				inProp = false
			case "getcontentlength":
				if inProp {
					ps.size, _ = strconv.ParseInt(val, 10, 64)
				}
			case "getlastmodified":
				if inProp {
					ps.mtime, _ = http.ParseTime(val)
				}
			case "getetag":
				if inProp {
					ps.etag = val
				}
			case "fileid":
				if inProp && val != "" {
					psID = true
				}
			case "propstat":
				if psOK {
					cur.ok = true
					if ps.size > 0 {
						cur.in.size = ps.size
					}
					if !ps.mtime.IsZero() {
						cur.in.mtime = ps.mtime
					}
					if ps.etag != "" {
						cur.in.etag = ps.etag
					}
					if psColl {
						cur.in.dir = true
					}
					if psID {
						cur.id = true
					}
				}
			case "response":
				if cur.segs == nil {
					// No usable href: drop it.
					resps = resps[:len(resps)-1]
				}
				cur = nil
			}
		case xml.CharData:
			if len(stack) > 0 {
				text.Write(t)
			}
		}
	}
	if len(resps) == 0 {
		return nil, errNoResponse
	}
	l := &listing{items: make(map[string]info, len(resps))}
	selfIdx := -1
	for i := range resps {
		if equalSegs(resps[i].segs, reqSegs) {
			selfIdx = i
			break
		}
	}
	strict := selfIdx >= 0
	if !strict {
		selfIdx = 0
	}
	self := resps[selfIdx]
	l.self, l.hasSelf, l.fileID = self.in, true, self.id
	if l.self.dir {
		l.self.size = 0
	}
	for i := range resps {
		if i == selfIdx {
			continue
		}
		rsp := &resps[i]
		if !rsp.ok || len(rsp.segs) == 0 {
			continue
		}
		if strict && (len(rsp.segs) != len(reqSegs)+1 || !equalSegs(rsp.segs[:len(reqSegs)], reqSegs)) {
			continue
		}
		name := rsp.segs[len(rsp.segs)-1]
		l.accepted++
		if !validRemoteName(name) {
			continue
		}
		if _, dup := l.items[name]; dup {
			continue
		}
		in := rsp.in
		if in.dir {
			in.size = 0
		}
		l.items[name] = in
		l.names = append(l.names, name)
	}
	sort.Strings(l.names)
	return l, nil
}

func statusOK(s string) bool {
	// "HTTP/1.1 200 OK"
	f := strings.Fields(s)
	return len(f) >= 2 && f[1] == "200"
}

// urlSegments splits the path of an absolute URL or an absolute path into
// decoded segments, ignoring empty ones. An encoded slash stays inside its
// segment (and makes it an unusable name).
func urlSegments(s string) ([]string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse href: %w", err)
	}
	raw := u.EscapedPath()
	parts := strings.Split(raw, "/")
	segs := make([]string, 0, len(parts))
	for _, p := range parts {
		if p == "" {
			continue
		}
		d, err := url.PathUnescape(p)
		if err != nil {
			return nil, fmt.Errorf("parse href: %w", err)
		}
		segs = append(segs, d)
	}
	return segs, nil
}

func equalSegs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// childURL returns the URL of a path below a directory URL (which ends in '/').
func childURL(dirURL string, rel []string, dir bool) string {
	var b strings.Builder
	b.WriteString(dirURL)
	for i, s := range rel {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(s))
	}
	if dir && len(rel) > 0 {
		b.WriteByte('/')
	}
	return b.String()
}
