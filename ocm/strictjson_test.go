package ocm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkByTokens is the strict check done the slow way, token by token with
// encoding/json's Decoder: the reference walkJSON must agree with.
func checkByTokens(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys   map[string]bool // nil for an array
		expect bool            // a key comes next
	}
	var stack []*frame
	done := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expect = true
		}
	}
	for first := true; ; first = false {
		tok, err := dec.Token()
		if err == io.EOF && !first && len(stack) == 0 {
			return nil
		}
		if err != nil {
			return ErrBadJSON
		}
		if first && tok != json.Delim('{') {
			return ErrBadJSON
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].expect && tok != json.Delim('}') {
			k := tok.(string)
			if stack[n-1].keys[k] {
				return ErrBadJSON
			}
			stack[n-1].keys[k], stack[n-1].expect = true, false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == MaxJSONDepth {
				return ErrBadJSON
			}
			f := &frame{}
			if tok == json.Delim('{') {
				f.keys, f.expect = map[string]bool{}, true
			}
			stack = append(stack, f)
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			done()
		default:
			done()
		}
		if len(stack) == 0 {
			if _, err := dec.Token(); err != io.EOF {
				return ErrBadJSON
			}
			return nil
		}
	}
}

func checkAgrees(t *testing.T, data []byte) {
	t.Helper()
	want := checkByTokens(data)
	m, err := parseObject(data)
	if (err == nil) != (want == nil) {
		t.Fatalf("%q: parseObject says %v, the token walk %v", data, err, want)
	}
	if err != nil {
		if !errors.Is(err, ErrBadJSON) {
			t.Fatalf("%q: %v does not wrap ErrBadJSON", data, err)
		}
		return
	}
	var ref map[string]json.RawMessage
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("%q: accepted, yet encoding/json refuses it: %v", data, err)
	}
	if !maps.EqualFunc(m, ref, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
		t.Fatalf("%q: members %q, encoding/json reads %q", data, m, ref)
	}
	if CheckJSON(data) != nil {
		t.Fatalf("%q: CheckJSON refuses what parseObject accepts", data)
	}
}

var strictJSONSeeds = []string{
	``, ` `, `{}`, ` {} `, `{"a":1}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, "{\"a\xff\":1,\"a\xfe\":2}",
	`{"a":{"b":1,"b":2}}`, `{"a":[{"b":1},{"b":2}]}`, `{"a":[1,2],"b":{"c":[]}}`, `{"a":"x,y}","b":"\"}"}`,
	`{"a" : 1 , "b" : [ 1 , {"c" : "d"} ] , "e" : null }`, "{\"a\":\n\ttrue\n}\n", `{"a":1} {}`, `{"a":1}x`,
	`[1,2]`, `"x"`, `1`, `{"a":`, `{"a"}`, `{"a":1,}`, `shareWith=bob`, `{"":1,"":2}`,
	`{"a":` + strings.Repeat(`[`, 15) + strings.Repeat(`]`, 15) + `}`,
	`{"a":` + strings.Repeat(`[`, 16) + strings.Repeat(`]`, 16) + `}`,
	`{"a":` + strings.Repeat(`{"b":`, 15) + `1` + strings.Repeat(`}`, 15) + `}`,
}

// walkJSON refuses and accepts what the token walk does, and splits the
// object as encoding/json does.
func TestStrictJSONAgreesWithTokenWalk(t *testing.T) {
	for _, s := range strictJSONSeeds {
		checkAgrees(t, []byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "shares", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checkAgrees(t, b)
	}
}

func FuzzStrictJSON(f *testing.F) {
	for _, s := range strictJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkAgrees(t, data) })
}
