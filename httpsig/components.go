package httpsig

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// message is what RFC 9421 components are read from: a request (method and
// target) or a response (status), and the header fields.
type message struct {
	method    string      // request method; "" for a response
	targetURI string      // absolute target URI, verbatim
	target    *url.URL    // targetURI parsed
	status    int         // response status; 0 for a request
	header    http.Header // field lines
}

// newRequestMessage builds a message for a request whose absolute target
// URI is targetURI.
func newRequestMessage(method, targetURI string, h http.Header) (*message, error) {
	u, err := url.Parse(targetURI)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("%w: target URI %q is not absolute", ErrMalformed, targetURI)
	}
	return &message{method: method, targetURI: targetURI, target: u, header: h}, nil
}

// absoluteURI renders scheme://authority/path?query for u with host as
// authority.
func absoluteURI(scheme, host string, u *url.URL) string {
	return scheme + "://" + host + u.RequestURI()
}

const maxComponents = 32

// signatureBase builds the signature base of RFC 9421 section 2.5 for the
// covered components and signature parameters.
func signatureBase(m *message, covered []sfItem, params sfParams) (string, error) {
	if len(covered) > maxComponents {
		return "", fmt.Errorf("%w: more than %d covered components", ErrMalformed, maxComponents)
	}
	var b strings.Builder
	seen := make(map[string]bool, len(covered))
	for _, c := range covered {
		if c.bare.kind != sfString {
			return "", fmt.Errorf("%w: component identifier is not a string", ErrMalformed)
		}
		id := c.String()
		if seen[id] {
			return "", fmt.Errorf("%w: component %s covered twice", ErrMalformed, id)
		}
		seen[id] = true
		v, err := componentValue(m, c)
		if err != nil {
			return "", err
		}
		b.WriteString(id)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(sfMember{isList: true, list: covered, params: params}.String())
	return b.String(), nil
}

// componentValue derives the value of one covered component.
func componentValue(m *message, c sfItem) (string, error) {
	name := c.bare.str
	if name == "" || strings.ToLower(name) != name {
		return "", fmt.Errorf("%w: component name %q must be lower case", ErrMalformed, name)
	}
	if strings.HasPrefix(name, "@") {
		return derivedValue(m, name, c.params)
	}
	return fieldValue(m, name, c.params)
}

func missing(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMissingComponent, fmt.Sprintf(format, args...))
}

func derivedValue(m *message, name string, params sfParams) (string, error) {
	if name == "@query-param" {
		if len(params) != 1 || params[0].key != "name" || params[0].val.kind != sfString {
			return "", fmt.Errorf("%w: @query-param needs exactly a name parameter", ErrMalformed)
		}
	} else if len(params) > 0 {
		return "", fmt.Errorf("%w: unsupported parameter %q on %s", ErrMalformed, params[0].key, name)
	}
	if name == "@status" {
		if m.status == 0 {
			return "", missing("@status on a request")
		}
		return strconv.Itoa(m.status), nil
	}
	if m.target == nil {
		return "", missing("%s on a response", name)
	}
	u := m.target
	switch name {
	case "@method":
		return m.method, nil
	case "@target-uri":
		return m.targetURI, nil
	case "@authority":
		return authority(u), nil
	case "@scheme":
		return strings.ToLower(u.Scheme), nil
	case "@request-target":
		return u.RequestURI(), nil
	case "@path":
		if p := u.EscapedPath(); p != "" {
			return p, nil
		}
		return "/", nil
	case "@query":
		return "?" + u.RawQuery, nil
	case "@query-param":
		return queryParam(u, params[0].val.str)
	}
	return "", fmt.Errorf("%w: unsupported derived component %s", ErrMalformed, name)
}

// authority is the normalised authority of RFC 9421 section 2.2.3: lower
// case, default port removed.
func authority(u *url.URL) string {
	h := strings.ToLower(u.Host)
	switch strings.ToLower(u.Scheme) {
	case "https":
		h = strings.TrimSuffix(h, ":443")
	case "http":
		h = strings.TrimSuffix(h, ":80")
	}
	return h
}

// queryParam returns the value of the query parameter whose re-encoded name
// is name (RFC 9421 section 2.2.8). A parameter that is absent or repeated
// cannot be covered.
func queryParam(u *url.URL, name string) (string, error) {
	var found []string
	for pair := range strings.SplitSeq(u.RawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return "", fmt.Errorf("%w: bad escape in query", ErrMalformed)
		}
		if formEncode(dk) == name {
			found = append(found, formEncode(dv))
		}
	}
	switch len(found) {
	case 0:
		return "", missing("query parameter %q", name)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%w: query parameter %q repeated", ErrMalformed, name)
}

// formEncode percent-encodes s with the application/x-www-form-urlencoded
// percent-encode set, spaces included.
func formEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || c == '*' || c == '-' || c == '.' || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// fieldValue derives the value of a header field component (RFC 9421
// section 2.1), honouring the sf, key and bs parameters.
func fieldValue(m *message, name string, params sfParams) (string, error) {
	var sf, bs bool
	key := ""
	for _, p := range params {
		switch {
		case p.key == "sf" && p.val.kind == sfBoolean:
			sf = p.val.boolean
		case p.key == "bs" && p.val.kind == sfBoolean:
			bs = p.val.boolean
		case p.key == "key" && p.val.kind == sfString:
			key = p.val.str
		default:
			return "", fmt.Errorf("%w: unsupported parameter %q on field %s", ErrMalformed, p.key, name)
		}
	}
	if bs && (sf || key != "") {
		return "", fmt.Errorf("%w: bs cannot be combined with sf or key", ErrMalformed)
	}
	lines := m.header.Values(name)
	if len(lines) == 0 {
		return "", missing("header field %s", name)
	}
	vals := make([]string, len(lines))
	for i, l := range lines {
		vals[i] = strings.Trim(l, " \t")
		if bs {
			vals[i] = ":" + base64.StdEncoding.EncodeToString([]byte(vals[i])) + ":"
		}
	}
	combined := strings.Join(vals, ", ")
	switch {
	case key != "":
		d, err := parseSFDictionary(combined)
		if err != nil {
			return "", fmt.Errorf("field %s: %w", name, err)
		}
		mem, ok := d.get(key)
		if !ok {
			return "", missing("member %q of field %s", key, name)
		}
		return mem.String(), nil
	case sf:
		return strictSF(combined)
	}
	return combined, nil
}

// strictSF re-serialises a structured field value whose type is not known
// in advance, trying Dictionary, then List, then Item.
func strictSF(v string) (string, error) {
	if d, err := parseSFDictionary(v); err == nil {
		return d.String(), nil
	}
	if l, err := parseSFList(v); err == nil {
		return sfListString(l), nil
	}
	it, err := parseSFItem(v)
	if err != nil {
		return "", err
	}
	return it.String(), nil
}
