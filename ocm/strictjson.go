package ocm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of any document we accept from a peer.
const MaxJSONDepth = 16

// ErrBadJSON is returned (wrapped) when a body is not acceptable JSON.
var ErrBadJSON = errors.New("invalid JSON")

// CheckJSON rejects what encoding/json would silently accept: duplicate
// object keys (the last would win, so a signed body could mean two things),
// nesting deeper than MaxJSONDepth, trailing data, and a top level that is
// not an object.
func CheckJSON(data []byte) error {
	return walkJSON(data, nil)
}

// parseObject is CheckJSON that also splits the top-level object into its
// members, in the same pass: a received share is read once, not once to
// check it and again to decode it.
func parseObject(data []byte) (map[string]json.RawMessage, error) {
	m := make(map[string]json.RawMessage, 16)
	if err := walkJSON(data, m); err != nil {
		return nil, err
	}
	return m, nil
}

// members splits raw, a JSON object that CheckJSON accepted (or part of
// one), into its members.
func members(raw []byte) (map[string]json.RawMessage, bool) {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	m := make(map[string]json.RawMessage, 8)
	return m, walkJSON(raw, m) == nil
}

// walkJSON checks data as CheckJSON says, and puts the members of the
// top-level object into top when it is not nil. The syntax is checked
// first (json.Valid, which does not allocate), so the walk that follows
// sees well-formed JSON and only follows strings and brackets.
func walkJSON(data []byte, top map[string]json.RawMessage) error {
	start := skipSpace(data, 0)
	if start == len(data) {
		return fmt.Errorf("%w: empty body", ErrBadJSON)
	}
	if !json.Valid(data) {
		var v json.RawMessage
		return fmt.Errorf("%w: %v", ErrBadJSON, json.Unmarshal(data, &v)) // says what is wrong, and where
	}
	if data[start] != '{' {
		return fmt.Errorf("%w: the body must be a JSON object", ErrBadJSON)
	}
	// One set of keys per open object; arrays hold nil.
	var stack [MaxJSONDepth]map[string]struct{}
	depth := 0
	expectKey := false // the next string is a key of the innermost object
	var key string     // the top-level member being read
	valueStart := -1
	for i := start; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			if depth == MaxJSONDepth {
				return fmt.Errorf("%w: nested deeper than %d levels", ErrBadJSON, MaxJSONDepth)
			}
			stack[depth] = nil
			if c == '{' {
				stack[depth] = make(map[string]struct{}, 8)
			}
			depth++
			expectKey = c == '{'
		case '}', ']':
			depth--
			if valueStart >= 0 && depth == 1 { // a member's object or array ends
				top[key] = data[valueStart : i+1]
				valueStart = -1
			} else if valueStart >= 0 && depth == 0 { // the last member was a scalar
				top[key] = bytes.TrimRight(data[valueStart:i], " \t\r\n")
			}
			expectKey = false
		case ',':
			if valueStart >= 0 && depth == 1 { // a scalar member ends
				top[key] = bytes.TrimRight(data[valueStart:i], " \t\r\n")
				valueStart = -1
			}
			expectKey = stack[depth-1] != nil
		case ':':
			if depth == 1 && top != nil {
				valueStart = skipSpace(data, i+1)
			}
		case '"':
			end := stringEnd(data, i)
			if expectKey {
				k := decodeKey(data[i:end])
				keys := stack[depth-1]
				if _, dup := keys[k]; dup {
					return fmt.Errorf("%w: duplicate key %q", ErrBadJSON, k)
				}
				keys[k] = struct{}{}
				if depth == 1 {
					key = k
				}
				expectKey = false
			}
			i = end - 1
		}
	}
	return nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// stringEnd is the index after the closing quote of the well-formed
// string starting at data[i].
func stringEnd(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// decodeKey is the key a quoted, well-formed JSON string stands for, as
// encoding/json reads it (escapes resolved, invalid UTF-8 replaced), so
// that two spellings of one key are one key.
func decodeKey(quoted []byte) string {
	if k, ok := plainString(quoted); ok {
		return k
	}
	var k string
	json.Unmarshal(quoted, &k)
	return k
}

// plainString reads a JSON string that needs no decoding (no escapes,
// valid UTF-8) without encoding/json; ok is false for any other value.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}
