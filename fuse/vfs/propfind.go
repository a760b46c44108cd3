package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Info is what the mount knows about one remote file or directory.
type Info struct {
	Dir   bool
	Size  int64
	Mtime time.Time
	ETag  string
	Perms string // oc:permissions (ownCloud/Nextcloud), e.g. "RGDNVCK"; "" when not sent
}

// ErrNoResponse means a multistatus held nothing usable.
var ErrNoResponse = errors.New("multistatus without a usable response")

// ErrTooManyEntries means a listing has more entries than the mount takes.
var ErrTooManyEntries = errors.New("multistatus with more entries than the limit")

// Limits of one multistatus document, so that its memory is bounded by the
// number of entries, whatever a server sends. Real documents are far below.
const (
	// DefaultMaxEntries is the default cap on the entries of one listing.
	DefaultMaxEntries = 100_000
	maxPropfindBody   = 128 << 20 // a multistatus for ~300k entries
	maxToken          = 1 << 20   // an incomplete tag, comment or text kept while more arrives
	maxText           = 16 << 10
	maxETag           = 256
	maxNesting        = 64
)

// davResponse is one response of a multistatus, reduced to what a listing
// needs: its name and how its href relates to the requested URL.
type davResponse struct {
	name  string // last segment of href; "/" for one too long to be a name
	rel   uint8
	empty bool // href without segments
	in    Info
	ok    bool // had a 200 propstat
	id    bool
}

const (
	relOther uint8 = iota
	relSelf        // href is the requested URL
	relChild       // one segment below it
)

// ParseMultistatus reads a whole PROPFIND answer for reqURL; see ParseStream.
func ParseMultistatus(body []byte, reqURL string) (*Listing, error) {
	return ParseStream(bytes.NewReader(body), reqURL, nil)
}

// ParseStream reads a PROPFIND answer of at most DefaultMaxEntries entries;
// see parseStreamMax.
func ParseStream(r io.Reader, reqURL string, onChild func(name string, in Info)) (*Listing, error) {
	return ParseStreamMax(r, reqURL, DefaultMaxEntries, onChild)
}

// ParseStreamMax reads a PROPFIND answer for reqURL (at most maxPropfindBody
// bytes and maxEntries responses besides the resource itself; more is
// errTooManyEntries) as it arrives, calling onChild (if set) for each child entry as soon
// as its response element is complete, in the server's order. The entry
// whose href names reqURL is the resource itself (matched by decoded path,
// not by position); children are the entries one segment below it. If no
// href matches reqURL (a server rewriting paths), the first entry is taken as
// the resource and the last segment of every other href as a child name
// (onChild then hears of none: the caller uses the listing). Names that
// cannot be local file names are dropped, and so are repeated names.
func ParseStreamMax(r io.Reader, reqURL string, maxEntries int, onChild func(name string, in Info)) (*Listing, error) {
	reqSegs, err := URLSegments(reqURL)
	if err != nil {
		return nil, err
	}
	b := msBuilder{resps: make([]davResponse, 0, 64), req: reqSegs, max: maxEntries}
	if onChild != nil {
		// Children are told once the resource itself has been seen (servers
		// send it first): without it the listing falls back to other rules.
		// The children told are the listing's (the same rules pick them),
		// gathered here rather than once more at the end.
		told := &toldChildren{}
		var early []davResponse
		tell := func(rsp *davResponse) {
			if !rsp.ok || rsp.rel != relChild {
				return
			}
			told.accepted++
			name := rsp.name
			if !ValidRemoteName(name) {
				return
			}
			in := rsp.in
			if in.Dir {
				in.Size = 0
			}
			if told.add(name, in) {
				onChild(name, in)
			}
		}
		b.onResponse = func(rsp *davResponse) {
			switch {
			case b.told != nil:
				tell(rsp)
			case rsp.rel == relSelf:
				b.told = told
				for i := range early {
					tell(&early[i])
				}
				early = nil
			default:
				early = append(early, *rsp)
			}
		}
	}
	sc := xmlScanner{h: &b}
	pooled := readBufs.Get().(*[]byte)
	defer readBufs.Put(pooled) // nothing parsed keeps a part of it
	buf := (*pooled)[:0]
	var total int64
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		total += int64(n)
		if total > maxPropfindBody {
			return nil, errors.New("multistatus larger than the limit")
		}
		eof := rerr == io.EOF
		if rerr != nil && !eof {
			return nil, rerr
		}
		used, err := sc.feed(buf, eof)
		if err != nil {
			return nil, fmt.Errorf("parse multistatus: %w", err)
		}
		buf = buf[:copy(buf, buf[used:])]
		if len(buf) > maxToken {
			return nil, errors.New("parse multistatus: a token larger than the limit")
		}
		if eof {
			break
		}
	}
	return b.listing(reqSegs)
}

// toldChildren are the children of a listing handed out as they came.
type toldChildren struct {
	children
	accepted int
}

// readBufs are the read buffers of ParseStreamMax: a walk lists many
// small folders, each a buffer to allocate and clear otherwise. One grown
// for a large token is not kept.
var readBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, readBufSize)
	return &b
}}

const readBufSize = 64 << 10

// msBuilder collects the responses of a multistatus from element events,
// matching elements by local name (namespace prefixes vary by server).
type msBuilder struct {
	onResponse func(*davResponse)
	told       *toldChildren // once the resource itself came, when streaming
	req        []string      // segments of the requested URL
	max        int           // entries besides the resource itself
	count      int           // response elements seen
	resps      []davResponse
	cur        *davResponse
	stack      []string
	ps         Info // props of the current propstat
	psID       bool
	psColl     bool
	psOK       bool
	inProp     bool
	href       bool
}

func (b *msBuilder) start(name string) error {
	if len(b.stack) >= maxNesting {
		return errors.New("elements nested too deep")
	}
	b.stack = append(b.stack, name)
	switch name {
	case "response":
		if b.count++; b.count > b.max+1 {
			return ErrTooManyEntries
		}
		b.resps = append(b.resps, davResponse{})
		b.cur = &b.resps[len(b.resps)-1]
		b.href = false
	case "propstat":
		b.ps, b.psID, b.psColl, b.psOK = Info{}, false, false, false
	case "prop":
		b.inProp = true
	case "collection":
		if b.inProp && len(b.stack) >= 2 && b.stack[len(b.stack)-2] == "resourcetype" {
			b.psColl = true
		}
	}
	return nil
}

// wantText reports whether the text of the innermost element matters.
func (b *msBuilder) wantText() bool {
	if b.cur == nil || len(b.stack) == 0 {
		return false
	}
	switch b.stack[len(b.stack)-1] {
	case "href", "status", "getcontentlength", "getlastmodified", "getetag", "fileid", "permissions":
		return true
	}
	return false
}

func (b *msBuilder) end(text []byte) error {
	if len(b.stack) == 0 {
		return errors.New("unbalanced document")
	}
	name := b.stack[len(b.stack)-1]
	b.stack = b.stack[:len(b.stack)-1]
	cur := b.cur
	if cur == nil {
		return nil
	}
	// Only the text kept is made a string; numbers, dates and statuses are
	// read from the bytes.
	val := bytes.TrimSpace(text)
	switch name {
	case "href":
		if !b.inProp && !b.href {
			b.href = true
			if segs, err := URLSegments(string(val)); err == nil {
				b.setHref(cur, segs)
			}
		}
	case "status":
		if !b.inProp {
			b.psOK = statusOK(val)
		}
	case "prop":
		b.inProp = false
	case "getcontentlength":
		if b.inProp {
			b.ps.Size = parseSize(val)
		}
	case "getlastmodified":
		if b.inProp {
			b.ps.Mtime = parseHTTPTime(val)
		}
	case "getetag":
		if b.inProp {
			if len(val) > maxETag {
				return errors.New("ETag longer than the limit")
			}
			b.ps.ETag = string(val)
		}
	case "fileid":
		if b.inProp && len(val) != 0 {
			b.psID = true
		}
	case "permissions":
		if b.inProp {
			b.ps.Perms = string(val)
		}
	case "propstat":
		if b.psOK {
			cur.ok = true
			if b.ps.Size > 0 {
				cur.in.Size = b.ps.Size
			}
			if !b.ps.Mtime.IsZero() {
				cur.in.Mtime = b.ps.Mtime
			}
			if b.ps.ETag != "" {
				cur.in.ETag = b.ps.ETag
			}
			if b.ps.Perms != "" {
				cur.in.Perms = b.ps.Perms
			}
			if b.psColl {
				cur.in.Dir = true
			}
			if b.psID {
				cur.id = true
			}
		}
	case "response":
		if !b.href {
			// No usable href: drop it.
			b.resps = b.resps[:len(b.resps)-1]
		} else if b.onResponse != nil {
			b.onResponse(cur)
			if b.told != nil && cur.rel != relSelf {
				// Told and in the listing already: its slot is reused.
				b.resps = b.resps[:len(b.resps)-1]
			}
		}
		b.cur = nil
	}
	return nil
}

// setHref records how the href of rsp relates to the requested URL, keeping
// only its last segment.
func (b *msBuilder) setHref(rsp *davResponse, segs []string) {
	switch {
	case equalSegs(segs, b.req):
		rsp.rel = relSelf
	case len(segs) == len(b.req)+1 && equalSegs(segs[:len(b.req)], b.req):
		rsp.rel = relChild
	}
	if len(segs) == 0 {
		rsp.empty = true
		return
	}
	// A copy: the segment would keep the whole href in memory.
	rsp.name = segs[len(segs)-1]
	if len(rsp.name) > MaxNameBytes {
		rsp.name = "/"
	} else {
		rsp.name = strings.Clone(rsp.name)
	}
}

func (b *msBuilder) listing(reqSegs []string) (*Listing, error) {
	if len(b.stack) != 0 {
		return nil, fmt.Errorf("parse multistatus: %w", io.ErrUnexpectedEOF)
	}
	resps := b.resps
	if len(resps) == 0 {
		return nil, ErrNoResponse
	}
	selfIdx := -1
	for i := range resps {
		if resps[i].rel == relSelf {
			selfIdx = i
			break
		}
	}
	strict := selfIdx >= 0
	if !strict {
		selfIdx = 0
	}
	self := resps[selfIdx]
	l := &Listing{Self: self.in, HasSelf: true, FileID: self.id}
	if l.Self.Dir {
		l.Self.Size = 0
	}
	if t := b.told; t != nil {
		// Streamed: the children are those told (the same rules as
		// below, the resource itself being the first relSelf entry).
		l.ents, l.Accepted = t.sorted(), t.accepted
		return l, nil
	}
	var c children
	for i := range resps {
		if i == selfIdx {
			continue
		}
		rsp := &resps[i]
		if !rsp.ok || rsp.empty {
			continue
		}
		if strict && rsp.rel != relChild {
			continue
		}
		name := rsp.name
		l.Accepted++
		if !ValidRemoteName(name) {
			continue
		}
		in := rsp.in
		if in.Dir {
			in.Size = 0
		}
		c.add(name, in)
	}
	l.ents = c.sorted()
	return l, nil
}

// xmlScanner is a small XML tokenizer for multistatus documents, about ten
// times faster than encoding/xml on the listings of large folders (which is
// what a cold ls -l waits for), fed as the body arrives. It reports elements
// by local name, decodes the predefined and numeric character references in
// text, reads CDATA, and skips the declaration, processing instructions,
// comments and a DOCTYPE without an internal subset. Anything else malformed
// is an error.
type xmlScanner struct {
	h    *msBuilder
	text []byte
}

// feed scans the complete tokens at the start of b and returns how many bytes
// it consumed; an incomplete token at the end waits for more input, unless
// eof.
func (s *xmlScanner) feed(b []byte, eof bool) (int, error) {
	h := s.h
	i := 0
	incomplete := func() (int, error) {
		if eof {
			return i, io.ErrUnexpectedEOF
		}
		return i, nil
	}
	for i < len(b) {
		lt := bytes.IndexByte(b[i:], '<')
		if lt < 0 {
			if !eof {
				if h.wantText() || len(h.stack) == 0 {
					return i, nil // the text may go on
				}
				return len(b), nil // text nobody reads is not kept
			}
			if len(bytes.TrimSpace(b[i:])) > 0 {
				return i, errors.New("text outside the root element")
			}
			return len(b), nil
		}
		if lt > 0 && h.wantText() {
			t, err := unescapeXML(b[i : i+lt])
			if err != nil {
				return i, err
			}
			s.text = append(s.text, t...)
			if len(s.text) > maxText {
				return i, errors.New("element text longer than the limit")
			}
		}
		i += lt
		rest := b[i:]
		var second byte
		if len(rest) > 1 {
			second = rest[1]
		}
		switch {
		case second != '?' && second != '!' && second != '/' && second != 0:
			k, self, err := tagEnd(rest)
			if err == io.ErrUnexpectedEOF {
				return incomplete()
			}
			if err != nil {
				return i, err
			}
			nameEnd := 1
			for nameEnd < k && !isSpace(rest[nameEnd]) && rest[nameEnd] != '/' && rest[nameEnd] != '>' {
				nameEnd++
			}
			if nameEnd == 1 {
				return i, errors.New("element without a name")
			}
			if err := h.start(localName(rest[1:nameEnd])); err != nil {
				return i, err
			}
			s.text = s.text[:0]
			if self {
				if err := h.end(nil); err != nil {
					return i, err
				}
			}
			i += k + 1
		case bytes.HasPrefix(rest, []byte("<?")):
			k := bytes.Index(rest, []byte("?>"))
			if k < 0 {
				return incomplete()
			}
			i += k + 2
		case bytes.HasPrefix(rest, []byte("<!--")):
			k := bytes.Index(rest[4:], []byte("-->"))
			if k < 0 {
				return incomplete()
			}
			i += 4 + k + 3
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			k := bytes.Index(rest[9:], []byte("]]>"))
			if k < 0 {
				return incomplete()
			}
			if h.wantText() {
				s.text = append(s.text, rest[9:9+k]...)
				if len(s.text) > maxText {
					return i, errors.New("element text longer than the limit")
				}
			}
			i += 9 + k + 3
		case bytes.HasPrefix(rest, []byte("<!")):
			if len(rest) < 9 && (bytes.HasPrefix([]byte("<![CDATA["), rest) || bytes.HasPrefix([]byte("<!--"), rest)) {
				return incomplete()
			}
			k := bytes.IndexByte(rest, '>')
			if k < 0 {
				return incomplete()
			}
			if bytes.IndexByte(rest[:k], '[') >= 0 {
				return i, errors.New("DOCTYPE with an internal subset")
			}
			i += k + 1
		case bytes.HasPrefix(rest, []byte("</")):
			k := bytes.IndexByte(rest, '>')
			if k < 0 {
				return incomplete()
			}
			name := bytes.TrimSpace(rest[2:k])
			if c := bytes.LastIndexByte(name, ':'); c >= 0 {
				name = name[c+1:]
			}
			if len(h.stack) == 0 || h.stack[len(h.stack)-1] != string(name) {
				return i, fmt.Errorf("unexpected end element %q", name)
			}
			if err := h.end(s.text); err != nil {
				return i, err
			}
			s.text = s.text[:0]
			i += k + 1
		default: // "<" alone at the end
			return incomplete()
		}
	}
	return i, nil
}

// tagEnd finds the '>' closing a start tag, skipping quoted attribute values.
func tagEnd(b []byte) (int, bool, error) {
	var quote byte
	for k := 1; k < len(b); k++ {
		c := b[k]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '<':
			return 0, false, errors.New("'<' inside a tag")
		case c == '>':
			return k, b[k-1] == '/', nil
		}
	}
	return 0, false, io.ErrUnexpectedEOF
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// localName returns the element name without its prefix; the names of
// multistatus documents come without allocating (a switch on the bytes
// compiles to comparisons, no hashing).
func localName(b []byte) string {
	if k := bytes.LastIndexByte(b, ':'); k >= 0 {
		b = b[k+1:]
	}
	switch string(b) {
	case "multistatus":
		return "multistatus"
	case "response":
		return "response"
	case "href":
		return "href"
	case "propstat":
		return "propstat"
	case "prop":
		return "prop"
	case "status":
		return "status"
	case "resourcetype":
		return "resourcetype"
	case "collection":
		return "collection"
	case "getcontentlength":
		return "getcontentlength"
	case "getlastmodified":
		return "getlastmodified"
	case "getetag":
		return "getetag"
	case "fileid":
		return "fileid"
	case "displayname":
		return "displayname"
	case "getcontenttype":
		return "getcontenttype"
	case "lockdiscovery":
		return "lockdiscovery"
	case "supportedlock":
		return "supportedlock"
	case "lockentry":
		return "lockentry"
	case "lockscope":
		return "lockscope"
	case "locktype":
		return "locktype"
	case "exclusive":
		return "exclusive"
	case "shared":
		return "shared"
	case "write":
		return "write"
	case "creationdate":
		return "creationdate"
	case "quota-used-bytes":
		return "quota-used-bytes"
	case "quota-available-bytes":
		return "quota-available-bytes"
	case "permissions":
		return "permissions"
	case "size":
		return "size"
	case "id":
		return "id"
	case "responsedescription":
		return "responsedescription"
	}
	return string(b)
}

// unescapeXML decodes character references in text.
func unescapeXML(b []byte) ([]byte, error) {
	if bytes.IndexByte(b, '&') < 0 {
		return b, nil
	}
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		amp := bytes.IndexByte(b, '&')
		if amp < 0 {
			out = append(out, b...)
			break
		}
		out = append(out, b[:amp]...)
		b = b[amp:]
		semi := bytes.IndexByte(b, ';')
		if semi < 0 || semi > 12 {
			return nil, errors.New("bad character reference")
		}
		ref := string(b[1:semi])
		b = b[semi+1:]
		switch ref {
		case "amp":
			out = append(out, '&')
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "quot":
			out = append(out, '"')
		case "apos":
			out = append(out, '\'')
		default:
			var n uint64
			var err error
			switch {
			case strings.HasPrefix(ref, "#x"):
				n, err = strconv.ParseUint(ref[2:], 16, 32)
			case strings.HasPrefix(ref, "#"):
				n, err = strconv.ParseUint(ref[1:], 10, 32)
			default:
				err = errors.New("unknown entity")
			}
			if err != nil || n == 0 || n > utf8.MaxRune {
				return nil, fmt.Errorf("bad character reference &%s;", ref)
			}
			out = utf8.AppendRune(out, rune(n))
		}
	}
	return out, nil
}

// statusOK reports whether a status line ("HTTP/1.1 200 OK") says 200.
func statusOK(s []byte) bool {
	_, rest, ok := bytes.Cut(s, []byte(" "))
	if !ok {
		return false
	}
	rest = bytes.TrimLeft(rest, " \t")
	code, _, _ := bytes.Cut(rest, []byte(" "))
	return string(code) == "200"
}

// parseSize reads a decimal size as strconv.ParseInt does; 0 when it is
// not a number.
func parseSize(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		n, _ := strconv.ParseInt(string(b), 10, 64)
		return n
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			n, _ = strconv.ParseInt(string(b), 10, 64)
			return n
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// parseHTTPTime reads an HTTP date; the usual form ("Sun, 22 Nov 2026
// 21:35:25 GMT") without time.Parse, the others through http.ParseTime.
// The zero time when it is none.
func parseHTTPTime(b []byte) time.Time {
	if t, ok := parseIMFFixdate(b); ok {
		return t
	}
	t, _ := http.ParseTime(string(b))
	return t
}

var monthAbbrevs = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func parseIMFFixdate(b []byte) (time.Time, bool) {
	// 0         1         2
	// 01234567890123456789012345678
	// Sun, 22 Nov 2026 21:35:25 GMT
	if len(b) != 29 || b[3] != ',' || b[4] != ' ' || b[7] != ' ' || b[11] != ' ' || b[16] != ' ' ||
		b[19] != ':' || b[22] != ':' || string(b[25:]) != " GMT" {
		return time.Time{}, false
	}
	num := func(p []byte) (int, bool) {
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	day, ok1 := num(b[5:7])
	year, ok2 := num(b[12:16])
	hh, ok3 := num(b[17:19])
	mm, ok4 := num(b[20:22])
	ss, ok5 := num(b[23:25])
	month := 0
	for i, m := range monthAbbrevs {
		if string(b[8:11]) == m {
			month = i + 1
			break
		}
	}
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || month == 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hh, mm, ss, 0, time.UTC)
	if t.Day() != day { // 31 Feb and the like
		return time.Time{}, false
	}
	return t, true
}

// URLSegments splits the path of an absolute URL or an absolute path into
// decoded segments, ignoring empty ones. An encoded slash stays inside its
// segment (and makes it an unusable name).
func URLSegments(s string) ([]string, error) {
	raw := s
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "?#") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("parse href: %w", err)
		}
		raw = u.EscapedPath()
	}
	segs := make([]string, 0, strings.Count(raw, "/")+1)
	for p := range strings.SplitSeq(raw, "/") {
		if p == "" {
			continue
		}
		if strings.IndexByte(p, '%') >= 0 {
			d, err := url.PathUnescape(p)
			if err != nil {
				return nil, fmt.Errorf("parse href: %w", err)
			}
			p = d
		}
		segs = append(segs, p)
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

// ChildURL returns the URL of a path below a directory URL (which ends in '/').
func ChildURL(dirURL string, rel []string, dir bool) string {
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
