package httpsig

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestSFDictionaryCanonical(t *testing.T) {
	for in, want := range map[string]string{
		`a=1, b=2;x=1;y=2, c=(a   b   c)`:                  `a=1, b=2;x=1;y=2, c=(a b c)`,
		`  a=1 ,	b=2  `:                                    `a=1, b=2`,
		`a=?1, b=?0, c;x=?1;y`:                             `a, b=?0, c;x;y`,
		`a=1, b=2, a=3`:                                    `a=3, b=2`,
		`n=-42, d=1.50, e=-0.001, f=12.0`:                  `n=-42, d=1.5, e=-0.001, f=12.0`,
		`s="say \"hi\" \\ ok"`:                             `s="say \"hi\" \\ ok"`,
		`b=:cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:`: `b=:cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:`,
		`b=:cHJldGVuZA:`:                                   `b=:cHJldGVuZA==:`, // padding tolerated
		`t=*foo/bar:baz, u=text/html;q=1.0`:                `t=*foo/bar:baz, u=text/html;q=1.0`,
		`l=(), m=("a" 1);p=?0, *k=x`:                       `l=(), m=("a" 1);p=?0, *k=x`,
		`sig1=("@method" "@query-param";name="Pet");created=1;keyid="k"`: `sig1=("@method" "@query-param";name="Pet");created=1;keyid="k"`,
		``: ``,
	} {
		d, err := parseSFDictionary(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := d.String(); got != want {
			t.Errorf("%q\n got %q\nwant %q", in, got, want)
		}
	}
}

func TestSFDictionaryRejects(t *testing.T) {
	for _, in := range []string{
		`a=1,`, `a=1,,b=2`, `A=1`, `1a=1`, `a=1 b=2`, `a="unterminated`, `a="bad \n escape"`,
		`a="tab	inside"`, `a=1.2345`, `a=1234567890123456`, `a=1234567890123.1`, `a=1.`, `a=-`,
		`a=:not base64!:`, `a=:AAAA`, `a=?2`, `a=(1 2`, `a=(1,2)`, `a=@x`, `a=é`, `a=1;`, `a=1;B=2`,
		`a="x"y`, ` ,a=1`, "a=1\x00",
		strings.Repeat("a", maxSFInput+1),
		"k=(" + strings.Repeat("1 ", maxSFItems+1) + ")",
	} {
		if _, err := parseSFDictionary(in); err == nil {
			t.Errorf("%q parsed", in)
		} else {
			wantErr(t, err, ErrMalformed)
		}
	}
	var members, params []string
	for i := 0; i <= maxSFMembers; i++ {
		members = append(members, fmt.Sprintf("k%d", i))
	}
	for i := 0; i <= maxSFParams; i++ {
		params = append(params, fmt.Sprintf("p%d", i))
	}
	for _, in := range []string{strings.Join(members, ", "), "a;" + strings.Join(params, ";")} {
		if _, err := parseSFDictionary(in); err == nil {
			t.Errorf("over the limit parsed: %.60s", in)
		}
	}
}

func TestSFListAndItem(t *testing.T) {
	l, err := parseSFList(`sugar, tea, rum;x="y"`)
	if err != nil || sfListString(l) != `sugar, tea, rum;x="y"` {
		t.Fatalf("%v %v", sfListString(l), err)
	}
	it, err := parseSFItem(` "hello";a=1 `)
	if err != nil || it.String() != `"hello";a=1` {
		t.Fatalf("%v %v", it, err)
	}
	if _, err := parseSFItem(`1 2`); err == nil {
		t.Fatal("two items parsed as one")
	}
}

func TestComponentValues(t *testing.T) {
	h := http.Header{}
	h.Add("X-Multi", "  one ")
	h.Add("X-Multi", "two")
	h.Set("X-Empty", "")
	h.Set("Example-Dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c)")
	h.Set("Content-Digest", contentDigest(testBody))
	m, err := newRequestMessage("POST", "HTTPS://Example.COM:443/a%20b/c?x=1&pet=dog&y=a+b&dup=1&dup=2", h)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		`"@method"`:                      "POST",
		`"@target-uri"`:                  "HTTPS://Example.COM:443/a%20b/c?x=1&pet=dog&y=a+b&dup=1&dup=2",
		`"@authority"`:                   "example.com",
		`"@scheme"`:                      "https",
		`"@request-target"`:              "/a%20b/c?x=1&pet=dog&y=a+b&dup=1&dup=2",
		`"@path"`:                        "/a%20b/c",
		`"@query"`:                       "?x=1&pet=dog&y=a+b&dup=1&dup=2",
		`"@query-param";name="pet"`:      "dog",
		`"@query-param";name="y"`:        "a%20b",
		`"x-multi"`:                      "one, two",
		`"x-empty"`:                      "",
		`"example-dict"`:                 "a=1,    b=2;x=1;y=2,   c=(a   b   c)",
		`"example-dict";sf`:              "a=1, b=2;x=1;y=2, c=(a b c)",
		`"example-dict";key="b"`:         "2;x=1;y=2",
		`"example-dict";key="c"`:         "(a b c)",
		`"x-multi";bs`:                   ":b25l:, :dHdv:",
		`"content-digest";key="sha-256"`: ":" + encodeStd(digestSHA256(testBody)) + ":",
	} {
		it, err := parseSFItem(id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := componentValue(m, it)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", id, got, err, want)
		}
	}
	for id, want := range map[string]error{
		`"@query-param";name="dup"`:    ErrMalformed,
		`"@query-param";name="absent"`: ErrMissingComponent,
		`"@query-param"`:               ErrMalformed,
		`"@status"`:                    ErrMissingComponent,
		`"@unknown"`:                   ErrMalformed,
		`"@method";req`:                ErrMalformed,
		`"Content-Type"`:               ErrMalformed,
		`"x-absent"`:                   ErrMissingComponent,
		`"example-dict";key="zz"`:      ErrMissingComponent,
		`"x-multi";tr`:                 ErrMalformed,
		`"x-multi";bs;sf`:              ErrMalformed,
	} {
		it, err := parseSFItem(id)
		if err != nil {
			t.Fatal(err)
		}
		_, err = componentValue(m, it)
		if err == nil {
			t.Errorf("%s: no error", id)
			continue
		}
		wantErr(t, err, want)
	}
	// Defaults: empty path, empty query, http default port.
	m, _ = newRequestMessage("GET", "http://example.com:80", nil)
	for id, want := range map[string]string{`"@path"`: "/", `"@query"`: "?", `"@authority"`: "example.com", `"@request-target"`: "/"} {
		it, _ := parseSFItem(id)
		if got, err := componentValue(m, it); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", id, got, err, want)
		}
	}
	// The same component twice is refused.
	if _, err := signatureBase(m, []sfItem{component("@method"), component("@method")}, nil); err == nil {
		t.Error("duplicate component accepted")
	}
	if _, err := newRequestMessage("GET", "/relative", nil); err == nil {
		t.Error("relative target accepted")
	}
}
