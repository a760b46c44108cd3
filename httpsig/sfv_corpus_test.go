package httpsig

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sfCorpusTest is one record of the httpwg structured-field-tests corpus
// (testdata/sf-tests, see its README.md).
type sfCorpusTest struct {
	Name       string          `json:"name"`
	Raw        []string        `json:"raw"`
	HeaderType string          `json:"header_type"`
	Expected   json.RawMessage `json:"expected"`
	MustFail   bool            `json:"must_fail"`
	CanFail    bool            `json:"can_fail"`
	Canonical  []string        `json:"canonical"`
}

// sfLaterTypes are corpus files for types that RFC 9651 added after RFC
// 8941 (Date, Display String). RFC 9421 signatures are defined on RFC 8941,
// where these values are malformed, so this parser rejects them.
var sfLaterTypes = map[string]bool{"date.json": true, "display-string.json": true}

// TestSFCorpus runs every parsing test of the official corpus: a value
// that must fail fails, every other one parses to the expected structure
// and serialises to its canonical form. A can_fail test (a SHOULD of the
// RFC) may fail, but must not give a wrong result.
func TestSFCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "sf-tests", "*.json"))
	if err != nil || len(files) < 15 {
		t.Fatalf("corpus missing: %v %v", files, err)
	}
	total := 0
	for _, file := range files {
		if sfLaterTypes[filepath.Base(file)] {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var tests []sfCorpusTest
		if err := json.Unmarshal(b, &tests); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, tc := range tests {
			total++
			t.Run(filepath.Base(file)+"/"+tc.Name, func(t *testing.T) { runSFCorpusTest(t, tc) })
		}
	}
	t.Logf("%d corpus tests", total)
}

func runSFCorpusTest(t *testing.T, tc sfCorpusTest) {
	// Several field lines are combined as HTTP does, with a comma.
	raw := strings.Join(tc.Raw, ", ")
	var (
		got       any
		canonical string
		err       error
	)
	switch tc.HeaderType {
	case "dictionary":
		var d sfDict
		if d, err = parseSFDictionary(raw); err == nil {
			got, canonical = sfDictJSON(d), d.String()
		}
	case "list":
		var l []sfMember
		if l, err = parseSFList(raw); err == nil {
			got, canonical = sfListJSON(l), sfListString(l)
		}
	case "item":
		var it sfItem
		if it, err = parseSFItem(raw); err == nil {
			got, canonical = sfItemJSON(it), it.String()
		}
	default:
		t.Fatalf("unknown header_type %q", tc.HeaderType)
	}
	switch {
	case tc.MustFail:
		if err == nil {
			t.Fatalf("%s parsed to %s; it must fail", sfDump(raw), sfDump(canonical))
		}
		return
	case err != nil && tc.CanFail:
		return
	case err != nil:
		t.Fatalf("%s: %v", sfDump(raw), err)
	}
	want, err := decodeSFExpected(tc.Expected)
	if err != nil {
		t.Fatalf("expected value: %v", err)
	}
	if !sfJSONEqual(got, want) {
		t.Fatalf("%s parsed to\n%s\nwant\n%s", sfDump(raw), sfDump(got), sfDump(want))
	}
	wantCanon := raw
	if tc.Canonical != nil {
		wantCanon = strings.Join(tc.Canonical, ", ")
	}
	if canonical != wantCanon {
		t.Fatalf("%s serialised to %s, want %s", sfDump(raw), sfDump(canonical), sfDump(wantCanon))
	}
}

// The corpus's JSON shapes (README.md): an item is [bare, params], an
// inner list [[items], params], parameters and dictionaries [[key, value]].
// Tokens and byte sequences are {"__type": ..., "value": ...}, a byte
// sequence in base32.

type sfTyped struct{ typ, value string }

func sfBareJSON(b sfBare) any {
	switch b.kind {
	case sfInteger:
		return float64(b.num)
	case sfDecimal:
		return float64(b.num) / 1000
	case sfString:
		return b.str
	case sfToken:
		return sfTyped{"token", b.str}
	case sfBytes:
		return sfTyped{"binary", base32.StdEncoding.EncodeToString(b.bytes)}
	case sfBoolean:
		return b.boolean
	}
	return fmt.Sprintf("unknown kind %d", b.kind)
}

func sfParamsJSON(ps sfParams) []any {
	out := []any{}
	for _, p := range ps {
		out = append(out, []any{p.key, sfBareJSON(p.val)})
	}
	return out
}

func sfItemJSON(it sfItem) []any { return []any{sfBareJSON(it.bare), sfParamsJSON(it.params)} }

func sfMemberJSON(m sfMember) []any {
	if !m.isList {
		return sfItemJSON(m.item)
	}
	items := []any{}
	for _, it := range m.list {
		items = append(items, sfItemJSON(it))
	}
	return []any{items, sfParamsJSON(m.params)}
}

func sfListJSON(l []sfMember) []any {
	out := []any{}
	for _, m := range l {
		out = append(out, sfMemberJSON(m))
	}
	return out
}

func sfDictJSON(d sfDict) []any {
	out := []any{}
	for _, e := range d {
		out = append(out, []any{e.key, sfMemberJSON(e.val)})
	}
	return out
}

// decodeSFExpected reads an expected value into the same shapes.
func decodeSFExpected(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return sfFromJSON(v)
}

func sfFromJSON(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		return strconv.ParseFloat(string(v), 64)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			var err error
			if out[i], err = sfFromJSON(v[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		typ, _ := v["__type"].(string)
		val, _ := v["value"].(string)
		if typ != "token" && typ != "binary" {
			return nil, fmt.Errorf("unknown __type object %v", v)
		}
		if typ == "binary" {
			// Normalise the encoding, as sfBareJSON writes it.
			b, err := base32.StdEncoding.DecodeString(val)
			if err != nil {
				return nil, err
			}
			val = base32.StdEncoding.EncodeToString(b)
		}
		return sfTyped{typ, val}, nil
	}
	return v, nil
}

func sfJSONEqual(a, b any) bool {
	switch a := a.(type) {
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !sfJSONEqual(a[i], bl[i]) {
				return false
			}
		}
		return true
	case float64:
		bf, ok := b.(float64)
		return ok && math.Abs(a-bf) <= 1e-9*math.Max(1, math.Abs(a))
	}
	return a == b
}

// sfDump shows a value or input short enough to read in a failure.
func sfDump(v any) string {
	s := fmt.Sprintf("%q", v)
	if _, ok := v.(string); !ok {
		s = fmt.Sprintf("%v", v)
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
