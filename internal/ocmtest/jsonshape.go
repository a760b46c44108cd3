package ocmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// kv is one member of an ordered JSON object.
type kv struct {
	k string
	v any
}

// object is a JSON object that keeps its members in the order given, so
// that a dialect's body has the exact key order of the real sender.
type object []kv

// MarshalJSON writes the members in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(e.k)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", e.k, err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// goJSON encodes v as Go's encoding/json does (HTML characters escaped).
func goJSON(v any) ([]byte, error) { return json.Marshal(v) }

// phpJSON encodes v as PHP's json_encode does with default flags, which is
// what Nextcloud sends: "/" escaped as "\/", non-ASCII as \uXXXX, HTML
// characters left alone.
func phpJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	in := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(in)+16)
	for len(in) > 0 {
		r, size := utf8.DecodeRune(in)
		switch {
		case r == '/':
			out = append(out, '\\', '/')
		case r >= 0x10000:
			r1, r2 := surrogates(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		case r >= 0x80:
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, in[:size]...)
		}
		in = in[size:]
	}
	return out, nil
}

func surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}
