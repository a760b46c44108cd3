package httpsig

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Structured Field Values (RFC 8941): the parsing and serialisation that
// Signature-Input, Signature and Content-Digest need. Dictionaries, lists,
// inner lists, parameters and every bare item type are supported; the
// parser is bounded so that hostile input costs little.

// The caps are the least that RFC 8941 section 3 says parsers must
// support (the input cap leaves room for its 16384-byte byte sequence).
// Parsing is linear in the input, so they bound its cost.
const (
	maxSFInput   = 32 << 10 // bytes in one combined field value
	maxSFMembers = 1024     // dictionary or list members
	maxSFItems   = 256      // items in one inner list
	maxSFParams  = 256      // parameters on one item or inner list
)

type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
)

// sfBare is a bare item. A decimal is held in thousandths in num.
type sfBare struct {
	kind    sfKind
	num     int64
	str     string // string or token
	bytes   []byte
	boolean bool
}

func sfStr(s string) sfBare     { return sfBare{kind: sfString, str: s} }
func sfInt(n int64) sfBare      { return sfBare{kind: sfInteger, num: n} }
func sfTrue() sfBare            { return sfBare{kind: sfBoolean, boolean: true} }
func sfByteSeq(b []byte) sfBare { return sfBare{kind: sfBytes, bytes: b} }

type sfParam struct {
	key string
	val sfBare
}

// sfParams is an ordered map of parameters.
type sfParams []sfParam

func (ps sfParams) get(key string) (sfBare, bool) {
	for _, p := range ps {
		if p.key == key {
			return p.val, true
		}
	}
	return sfBare{}, false
}

func (ps sfParams) set(key string, v sfBare) sfParams {
	for i := range ps {
		if ps[i].key == key {
			ps[i].val = v
			return ps
		}
	}
	return append(ps, sfParam{key, v})
}

type sfItem struct {
	bare   sfBare
	params sfParams
}

// sfMember is a dictionary or list member: an item, or an inner list with
// its own parameters.
type sfMember struct {
	item   sfItem
	isList bool
	list   []sfItem
	params sfParams // parameters of the inner list
}

type sfDictEntry struct {
	key string
	val sfMember
}

// sfDict is an ordered map; a repeated key overwrites the earlier value in
// place, as RFC 8941 says.
type sfDict []sfDictEntry

func (d sfDict) get(key string) (sfMember, bool) {
	for _, e := range d {
		if e.key == key {
			return e.val, true
		}
	}
	return sfMember{}, false
}

func (d sfDict) set(key string, v sfMember) sfDict {
	for i := range d {
		if d[i].key == key {
			d[i].val = v
			return d
		}
	}
	return append(d, sfDictEntry{key, v})
}

func sfErr(format string, args ...any) error {
	return fmt.Errorf("%w: structured field: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) skipSP() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// parseSFDictionary parses a Dictionary field value (RFC 8941 4.2.2).
func parseSFDictionary(s string) (sfDict, error) {
	if len(s) > maxSFInput {
		return nil, sfErr("field value of %d bytes is too long", len(s))
	}
	p := &sfParser{s: s}
	p.skipSP()
	var d sfDict
	for !p.eof() {
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		var m sfMember
		if p.peek() == '=' {
			p.i++
			if m, err = p.parseItemOrInnerList(); err != nil {
				return nil, err
			}
		} else {
			params, err := p.parseParams()
			if err != nil {
				return nil, err
			}
			m = sfMember{item: sfItem{bare: sfTrue(), params: params}}
		}
		d = d.set(key, m)
		if len(d) > maxSFMembers {
			return nil, sfErr("more than %d dictionary members", maxSFMembers)
		}
		if err := p.nextMember(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// parseSFList parses a List field value (RFC 8941 4.2.1).
func parseSFList(s string) ([]sfMember, error) {
	if len(s) > maxSFInput {
		return nil, sfErr("field value of %d bytes is too long", len(s))
	}
	p := &sfParser{s: s}
	p.skipSP()
	var l []sfMember
	for !p.eof() {
		m, err := p.parseItemOrInnerList()
		if err != nil {
			return nil, err
		}
		l = append(l, m)
		if len(l) > maxSFMembers {
			return nil, sfErr("more than %d list members", maxSFMembers)
		}
		if err := p.nextMember(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// parseSFItem parses an Item field value (RFC 8941 4.2.3).
func parseSFItem(s string) (sfItem, error) {
	if len(s) > maxSFInput {
		return sfItem{}, sfErr("field value of %d bytes is too long", len(s))
	}
	p := &sfParser{s: s}
	p.skipSP()
	it, err := p.parseItem()
	if err != nil {
		return sfItem{}, err
	}
	p.skipSP()
	if !p.eof() {
		return sfItem{}, sfErr("unexpected %q after item", p.peek())
	}
	return it, nil
}

// nextMember consumes the separator after a dictionary or list member.
func (p *sfParser) nextMember() error {
	p.skipOWS()
	if p.eof() {
		return nil
	}
	if p.peek() != ',' {
		return sfErr("expected ',' at offset %d, found %q", p.i, p.peek())
	}
	p.i++
	p.skipOWS()
	if p.eof() {
		return sfErr("trailing comma")
	}
	return nil
}

func (p *sfParser) parseItemOrInnerList() (sfMember, error) {
	if p.peek() != '(' {
		it, err := p.parseItem()
		return sfMember{item: it}, err
	}
	p.i++
	var items []sfItem
	for !p.eof() {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			params, err := p.parseParams()
			if err != nil {
				return sfMember{}, err
			}
			return sfMember{isList: true, list: items, params: params}, nil
		}
		it, err := p.parseItem()
		if err != nil {
			return sfMember{}, err
		}
		items = append(items, it)
		if len(items) > maxSFItems {
			return sfMember{}, sfErr("more than %d items in an inner list", maxSFItems)
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return sfMember{}, sfErr("unexpected %q in inner list", c)
		}
	}
	return sfMember{}, sfErr("unterminated inner list")
}

func (p *sfParser) parseItem() (sfItem, error) {
	b, err := p.parseBare()
	if err != nil {
		return sfItem{}, err
	}
	params, err := p.parseParams()
	if err != nil {
		return sfItem{}, err
	}
	return sfItem{bare: b, params: params}, nil
}

func (p *sfParser) parseParams() (sfParams, error) {
	var ps sfParams
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		v := sfTrue()
		if p.peek() == '=' {
			p.i++
			if v, err = p.parseBare(); err != nil {
				return nil, err
			}
		}
		ps = ps.set(key, v)
		if len(ps) > maxSFParams {
			return nil, sfErr("more than %d parameters", maxSFParams)
		}
	}
	return ps, nil
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

func isTChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isKeyChar(c byte) bool {
	return isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*'
}

// validSFString reports whether s can be serialised as an sf-string.
func validSFString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (p *sfParser) parseKey() (string, error) {
	c := p.peek()
	if !(isLCAlpha(c) || c == '*') {
		return "", sfErr("expected a key at offset %d, found %q", p.i, c)
	}
	start := p.i
	for !p.eof() && isKeyChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) parseBare() (sfBare, error) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.parseNumber()
	case c == '"':
		return p.parseString()
	case c == ':':
		return p.parseBytes()
	case c == '?':
		return p.parseBoolean()
	case isAlpha(c) || c == '*':
		return p.parseToken(), nil
	}
	return sfBare{}, sfErr("unexpected %q at offset %d", c, p.i)
}

func (p *sfParser) parseNumber() (sfBare, error) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	if !isDigit(p.peek()) {
		return sfBare{}, sfErr("expected a digit at offset %d", p.i)
	}
	start := p.i
	dot := -1
scan:
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case isDigit(c):
		case c == '.' && dot < 0:
			if p.i-start > 12 {
				return sfBare{}, sfErr("decimal with more than 12 integer digits")
			}
			dot = p.i
		default:
			break scan
		}
		p.i++
		if dot < 0 && p.i-start > 15 {
			return sfBare{}, sfErr("integer with more than 15 digits")
		}
		if dot >= 0 && p.i-start > 16 {
			return sfBare{}, sfErr("decimal too long")
		}
	}
	num := p.s[start:p.i]
	if dot < 0 {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return sfBare{}, sfErr("bad integer")
		}
		if neg {
			n = -n
		}
		return sfInt(n), nil
	}
	intPart, frac := num[:dot-start], num[dot-start+1:]
	if frac == "" || len(frac) > 3 {
		return sfBare{}, sfErr("decimal needs 1 to 3 fraction digits")
	}
	ip, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return sfBare{}, sfErr("bad decimal")
	}
	fp, err := strconv.ParseInt((frac + "00")[:3], 10, 64)
	if err != nil {
		return sfBare{}, sfErr("bad decimal")
	}
	n := ip*1000 + fp
	if neg {
		n = -n
	}
	return sfBare{kind: sfDecimal, num: n}, nil
}

func (p *sfParser) parseString() (sfBare, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.eof() {
				return sfBare{}, sfErr("unterminated string")
			}
			c = p.s[p.i]
			p.i++
			if c != '"' && c != '\\' {
				return sfBare{}, sfErr("bad escape in string")
			}
			b.WriteByte(c)
		case c == '"':
			return sfStr(b.String()), nil
		case c < 0x20 || c > 0x7e:
			return sfBare{}, sfErr("non-printable character in string")
		default:
			b.WriteByte(c)
		}
	}
	return sfBare{}, sfErr("unterminated string")
}

func (p *sfParser) parseToken() sfBare {
	start := p.i
	p.i++ // first character checked by the caller
	for !p.eof() {
		c := p.s[p.i]
		if !isTChar(c) && c != ':' && c != '/' {
			break
		}
		p.i++
	}
	return sfBare{kind: sfToken, str: p.s[start:p.i]}
}

func isB64Char(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '='
}

func (p *sfParser) parseBytes() (sfBare, error) {
	p.i++ // opening colon
	start := p.i
	for !p.eof() && p.s[p.i] != ':' {
		if !isB64Char(p.s[p.i]) {
			return sfBare{}, sfErr("bad character in byte sequence")
		}
		p.i++
	}
	if p.eof() {
		return sfBare{}, sfErr("unterminated byte sequence")
	}
	enc := p.s[start:p.i]
	p.i++ // closing colon
	var (
		b   []byte
		err error
	)
	if len(enc)%4 == 0 {
		b, err = base64.StdEncoding.DecodeString(enc)
	} else {
		// RFC 8941 asks parsers to tolerate missing padding.
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "="))
	}
	if err != nil {
		return sfBare{}, sfErr("bad base64 in byte sequence")
	}
	return sfByteSeq(b), nil
}

func (p *sfParser) parseBoolean() (sfBare, error) {
	p.i++ // '?'
	switch p.peek() {
	case '0':
		p.i++
		return sfBare{kind: sfBoolean}, nil
	case '1':
		p.i++
		return sfTrue(), nil
	}
	return sfBare{}, sfErr("bad boolean")
}

// Serialisation (RFC 8941 section 4.1). Values that came from the parser are
// always serialisable; values built by this package are checked where they
// are built.

func (b sfBare) write(sb *strings.Builder) {
	switch b.kind {
	case sfInteger:
		sb.WriteString(strconv.FormatInt(b.num, 10))
	case sfDecimal:
		n := b.num
		if n < 0 {
			sb.WriteByte('-')
			n = -n
		}
		sb.WriteString(strconv.FormatInt(n/1000, 10))
		sb.WriteByte('.')
		frac := strings.TrimRight(fmt.Sprintf("%03d", n%1000), "0")
		if frac == "" {
			frac = "0"
		}
		sb.WriteString(frac)
	case sfString:
		sb.WriteByte('"')
		for i := 0; i < len(b.str); i++ {
			if c := b.str[i]; c == '"' || c == '\\' {
				sb.WriteByte('\\')
			}
			sb.WriteByte(b.str[i])
		}
		sb.WriteByte('"')
	case sfToken:
		sb.WriteString(b.str)
	case sfBytes:
		sb.WriteByte(':')
		sb.WriteString(base64.StdEncoding.EncodeToString(b.bytes))
		sb.WriteByte(':')
	case sfBoolean:
		if b.boolean {
			sb.WriteString("?1")
		} else {
			sb.WriteString("?0")
		}
	}
}

func (ps sfParams) write(sb *strings.Builder) {
	for _, p := range ps {
		sb.WriteByte(';')
		sb.WriteString(p.key)
		if p.val.kind == sfBoolean && p.val.boolean {
			continue
		}
		sb.WriteByte('=')
		p.val.write(sb)
	}
}

func (it sfItem) write(sb *strings.Builder) {
	it.bare.write(sb)
	it.params.write(sb)
}

func (m sfMember) write(sb *strings.Builder) {
	if !m.isList {
		m.item.write(sb)
		return
	}
	sb.WriteByte('(')
	for i, it := range m.list {
		if i > 0 {
			sb.WriteByte(' ')
		}
		it.write(sb)
	}
	sb.WriteByte(')')
	m.params.write(sb)
}

func (m sfMember) String() string {
	var sb strings.Builder
	m.write(&sb)
	return sb.String()
}

func (it sfItem) String() string {
	var sb strings.Builder
	it.write(&sb)
	return sb.String()
}

func (d sfDict) String() string {
	var sb strings.Builder
	for i, e := range d {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(e.key)
		if !e.val.isList && e.val.item.bare.kind == sfBoolean && e.val.item.bare.boolean {
			e.val.item.params.write(&sb)
			continue
		}
		sb.WriteByte('=')
		e.val.write(&sb)
	}
	return sb.String()
}

func sfListString(l []sfMember) string {
	var sb strings.Builder
	for i, m := range l {
		if i > 0 {
			sb.WriteString(", ")
		}
		m.write(&sb)
	}
	return sb.String()
}
