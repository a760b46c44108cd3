package ocm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*jsonFrame
	first := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadJSON, err)
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return fmt.Errorf("%w: the body must be a JSON object", ErrBadJSON)
			}
			first = false
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				markValueDone(stack)
				continue
			}
			key, _ := tok.(string)
			if _, dup := top.keys[key]; dup {
				return fmt.Errorf("%w: duplicate key %q", ErrBadJSON, key)
			}
			top.keys[key] = struct{}{}
			top.expect = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			if len(stack) >= MaxJSONDepth {
				return fmt.Errorf("%w: nested deeper than %d levels", ErrBadJSON, MaxJSONDepth)
			}
			stack = append(stack, &jsonFrame{object: true, keys: map[string]struct{}{}, expect: true})
		case json.Delim('['):
			if len(stack) >= MaxJSONDepth {
				return fmt.Errorf("%w: nested deeper than %d levels", ErrBadJSON, MaxJSONDepth)
			}
			stack = append(stack, &jsonFrame{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			markValueDone(stack)
		default:
			markValueDone(stack)
		}
		if len(stack) == 0 && !first {
			if dec.More() {
				return fmt.Errorf("%w: trailing data after the object", ErrBadJSON)
			}
			if _, err := dec.Token(); err != io.EOF {
				return fmt.Errorf("%w: trailing data after the object", ErrBadJSON)
			}
			return nil
		}
	}
	if first {
		return fmt.Errorf("%w: empty body", ErrBadJSON)
	}
	if len(stack) != 0 {
		return fmt.Errorf("%w: unexpected end of input", ErrBadJSON)
	}
	return nil
}

type jsonFrame struct {
	object bool
	keys   map[string]struct{}
	expect bool // the next token in this object is a key
}

// markValueDone records that a value ended, so the enclosing object (if
// any) expects a key next.
func markValueDone(stack []*jsonFrame) {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].expect = true
	}
}
