package httpsig

import (
	"bufio"
	"context"
	"crypto/elliptic"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSignRFC9421Shape(t *testing.T) {
	k := testKeys(t)[0]
	req := signedRequest(t, k, testBody)
	wantInput := `sig1=("@method" "@target-uri" "content-digest" "content-length");created=1785060500;keyid="` +
		k.ID + `";alg="ed25519";tag="ocm"`
	if got := req.Header.Get("Signature-Input"); got != wantInput {
		t.Fatalf("Signature-Input\n got: %s\nwant: %s", got, wantInput)
	}
	if got, want := req.Header.Get("Content-Digest"), "sha-256=:"+encodeStd(digestSHA256(testBody))+":"; got != want {
		t.Fatalf("Content-Digest = %s, want %s", got, want)
	}
	if req.ContentLength != int64(len(testBody)) || req.GetBody == nil {
		t.Fatalf("body not set: ContentLength %d", req.ContentLength)
	}
	sig := req.Header.Get("Signature")
	if !strings.HasPrefix(sig, "sig1=:") || !strings.HasSuffix(sig, ":") {
		t.Fatalf("Signature = %s", sig)
	}
}

func TestRoundTripRFC9421EveryAlgorithm(t *testing.T) {
	for _, k := range testKeys(t) {
		t.Run(string(k.Alg), func(t *testing.T) {
			req := signedRequest(t, k, testBody)
			v, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
			if err != nil {
				t.Fatal(err)
			}
			if v.KeyID != k.ID || v.Profile != ProfileRFC9421 || v.Alg != k.Alg || !v.Created.Equal(testNow) {
				t.Fatalf("Verified = %+v", v)
			}
			// The same with a resolver that knows the JWK algorithm.
			req = signedRequest(t, k, testBody)
			if _, err := Verify(context.Background(), req, testBody, algResolver{k.Public(), k.Alg}, opts()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRFC9421WithoutAlgParameter(t *testing.T) {
	for _, k := range testKeys(t) {
		t.Run(string(k.Alg), func(t *testing.T) {
			req := bodyRequest(t, testBody)
			addSignature(t, req, k, "x", ocmCovered, ocmParams(k, testNow))
			v, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
			if err != nil {
				t.Fatal(err)
			}
			if v.Alg != k.Alg {
				t.Fatalf("derived alg %s, want %s", v.Alg, k.Alg)
			}
		})
	}
}

func TestRFC9421GetWithoutBody(t *testing.T) {
	k := testKeys(t)[0]
	req := newRequest(t, http.MethodGet, "https://receiver.example.org/ocm/token", nil)
	if err := SignRFC9421(req, nil, k, testNow); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Content-Digest") != "" || req.Body != nil {
		t.Fatal("a bodiless GET got a digest or a body")
	}
	if !strings.HasPrefix(req.Header.Get("Signature-Input"), `sig1=("@method" "@target-uri");`) {
		t.Fatalf("Signature-Input = %s", req.Header.Get("Signature-Input"))
	}
	if _, err := Verify(context.Background(), req, nil, resolverFor(k), opts()); err != nil {
		t.Fatal(err)
	}
	// A body the signature does not cover is refused.
	_, err := Verify(context.Background(), req, []byte("x"), resolverFor(k), opts())
	wantErr(t, err, ErrMissingComponent)
}

func TestRFC9421TamperedComponents(t *testing.T) {
	k := testKeys(t)[0]
	other := []byte(`{"shareWith":"alice@receiver.example.org","name":"spec.yaml"}`) // same length
	cases := []struct {
		name   string
		tamper func(req *http.Request) []byte
		want   error
	}{
		{"method", func(req *http.Request) []byte { req.Method = http.MethodPut; return testBody }, ErrInvalidSignature},
		{"target path", func(req *http.Request) []byte { req.URL.Path = "/ocm/notifications"; return testBody }, ErrInvalidSignature},
		{"target query", func(req *http.Request) []byte { req.URL.RawQuery = "lang=de"; return testBody }, ErrInvalidSignature},
		{"target host", func(req *http.Request) []byte { req.Host = "other.example.org"; return testBody }, ErrInvalidSignature},
		{"target scheme", func(req *http.Request) []byte { req.URL.Scheme = "http"; return testBody }, ErrInvalidSignature},
		{"body", func(req *http.Request) []byte { return other }, ErrDigestMismatch},
		{"body and content-digest", func(req *http.Request) []byte {
			req.Header.Set("Content-Digest", contentDigest(other))
			return other
		}, ErrInvalidSignature},
		{"content-digest header", func(req *http.Request) []byte {
			req.Header.Set("Content-Digest", contentDigest(other))
			return testBody
		}, ErrDigestMismatch},
		{"content-length", func(req *http.Request) []byte {
			req.Header.Set("Content-Length", "1000")
			return testBody
		}, ErrDigestMismatch},
		{"created", func(req *http.Request) []byte {
			req.Header.Set("Signature-Input", strings.Replace(req.Header.Get("Signature-Input"), "created=1785060500", "created=1785060501", 1))
			return testBody
		}, ErrInvalidSignature},
		{"keyid", func(req *http.Request) []byte {
			req.Header.Set("Signature-Input", strings.Replace(req.Header.Get("Signature-Input"), `#ed25519"`, `#other"`, 1))
			return testBody
		}, ErrUnknownKey},
		{"signature bytes", func(req *http.Request) []byte {
			s := req.Header.Get("Signature")
			i := len("sig1=:") + 3
			c := byte('A')
			if s[i] == 'A' {
				c = 'B'
			}
			req.Header.Set("Signature", s[:i]+string(c)+s[i+1:])
			return testBody
		}, ErrInvalidSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := signedRequest(t, k, testBody)
			body := c.tamper(req)
			_, err := Verify(context.Background(), req, body, resolverFor(k), opts())
			wantErr(t, err, c.want)
		})
	}
}

func TestRFC9421LabelIsNotSignificant(t *testing.T) {
	k := testKeys(t)[0]
	req := signedRequest(t, k, testBody)
	for _, f := range []string{"Signature-Input", "Signature"} {
		req.Header.Set(f, strings.Replace(req.Header.Get(f), "sig1=", "renamed=", 1))
	}
	if _, err := Verify(context.Background(), req, testBody, resolverFor(k), opts()); err != nil {
		t.Fatal(err)
	}
}

func TestRFC9421Replay(t *testing.T) {
	k := testKeys(t)[0]
	o := opts()
	o.Replay = NewReplayCache(time.Minute, 100)
	req := signedRequest(t, k, testBody)
	if _, err := Verify(context.Background(), req, testBody, resolverFor(k), o); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(context.Background(), req, testBody, resolverFor(k), o)
	wantErr(t, err, ErrReplay)
	// Ed25519 is deterministic: the same request signed at the same second
	// is the same signature, hence a replay; a second later it is new.
	_, err = Verify(context.Background(), signedRequest(t, k, testBody), testBody, resolverFor(k), o)
	wantErr(t, err, ErrReplay)
	later := newRequest(t, http.MethodPost, testURL, testBody)
	if err := SignRFC9421(later, testBody, k, testNow.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), later, testBody, resolverFor(k), o); err != nil {
		t.Fatal(err)
	}
	// A signature that failed is not recorded.
	bad := newRequest(t, http.MethodPost, testURL, testBody)
	if err := SignRFC9421(bad, testBody, k, testNow.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), bad, testBody, resolverFor(newEd25519(t, k.ID)), o); err == nil {
		t.Fatal("wrong key verified")
	}
	if _, err := Verify(context.Background(), bad, testBody, resolverFor(k), o); err != nil {
		t.Fatalf("signature rejected after a failed attempt: %v", err)
	}
}

func TestRFC9421ClockSkew(t *testing.T) {
	k := testKeys(t)[0]
	cases := []struct {
		name    string
		created time.Time
		skew    time.Duration
		ok      bool
	}{
		{"now", testNow, 0, true},
		{"4 minutes old", testNow.Add(-4 * time.Minute), 0, true},
		{"6 minutes old", testNow.Add(-6 * time.Minute), 0, false},
		{"4 minutes ahead", testNow.Add(4 * time.Minute), 0, true},
		{"6 minutes ahead", testNow.Add(6 * time.Minute), 0, false},
		{"2 minutes old, 1 minute skew", testNow.Add(-2 * time.Minute), time.Minute, false},
		{"2 minutes old, 3 minutes skew", testNow.Add(-2 * time.Minute), 3 * time.Minute, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, testURL, testBody)
			if err := SignRFC9421(req, testBody, k, c.created); err != nil {
				t.Fatal(err)
			}
			o := opts()
			o.MaxSkew = c.skew
			_, err := Verify(context.Background(), req, testBody, resolverFor(k), o)
			if c.ok && err != nil {
				t.Fatal(err)
			}
			if !c.ok {
				wantErr(t, err, ErrExpired)
			}
		})
	}
}

func TestRFC9421Expires(t *testing.T) {
	k := testKeys(t)[0]
	for _, c := range []struct {
		expires time.Time
		ok      bool
	}{{testNow.Add(time.Second), true}, {testNow, false}, {testNow.Add(-time.Second), false}} {
		req := bodyRequest(t, testBody)
		addSignature(t, req, k, "sig1", ocmCovered, append(ocmParams(k, testNow), sfParam{"expires", sfInt(c.expires.Unix())}))
		_, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
		if c.ok && err != nil {
			t.Fatalf("expires %v: %v", c.expires, err)
		}
		if !c.ok {
			wantErr(t, err, ErrExpired)
		}
	}
}

func TestRFC9421WrongKey(t *testing.T) {
	keys := testKeys(t)
	ed, p256, pss, rsa15 := keys[0], keys[1], keys[2], keys[3]
	ctx := context.Background()

	// Another key of the same type.
	_, err := Verify(ctx, signedRequest(t, ed, testBody), testBody, resolverFor(newEd25519(t, ed.ID)), opts())
	wantErr(t, err, ErrInvalidSignature)
	// A key of another type than alg names.
	_, err = Verify(ctx, signedRequest(t, ed, testBody), testBody, staticResolver{ed.ID: p256.Public()}, opts())
	wantErr(t, err, ErrInvalidSignature)
	// The resolver knows no such key.
	_, err = Verify(ctx, signedRequest(t, ed, testBody), testBody, staticResolver{}, opts())
	wantErr(t, err, ErrUnknownKey)
	// The JWK says PS512, the signature says rsa-v1_5-sha256.
	_, err = Verify(ctx, signedRequest(t, rsa15, testBody), testBody, algResolver{rsa15.Public(), AlgRSAPSSSHA512}, opts())
	wantErr(t, err, ErrInvalidSignature)
	// Without an alg parameter the JWK's algorithm rules: PSS signature, key published for RS256.
	req := bodyRequest(t, testBody)
	addSignature(t, req, Key{ID: pss.ID, Alg: AlgRSAPSSSHA512, Private: rsa15.Private}, "sig1", ocmCovered, ocmParams(pss, testNow))
	_, err = Verify(ctx, req, testBody, algResolver{rsa15.Public(), AlgRSAV15SHA256}, opts())
	wantErr(t, err, ErrInvalidSignature)
	// An algorithm we do not implement.
	req = bodyRequest(t, testBody)
	addSignature(t, req, ed, "sig1", ocmCovered, append(ocmParams(ed, testNow), sfParam{"alg", sfStr("hmac-sha256")}))
	_, err = Verify(ctx, req, testBody, resolverFor(ed), opts())
	wantErr(t, err, ErrInvalidSignature)
	// An RSA key under 2048 bits from the resolver.
	_, err = Verify(ctx, signedRequest(t, rsa15, testBody), testBody, staticResolver{rsa15.ID: smallRSAKey(t)}, opts())
	wantErr(t, err, ErrUnknownKey)
}

func TestRFC9421MultipleOCMSignatures(t *testing.T) {
	k := testKeys(t)[0]
	req := signedRequest(t, k, testBody)
	addSignature(t, req, k, "second", ocmCovered, ocmParams(k, testNow))
	_, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
	wantErr(t, err, ErrInvalidSignature)
}

func TestRFC9421OtherSignaturesIgnored(t *testing.T) {
	k := testKeys(t)[0]
	proxy := newEd25519(t, "proxy-key")
	req := bodyRequest(t, testBody)
	// A proxy signature first, tagged otherwise, by a key the resolver does not know.
	addSignature(t, req, proxy, "proxy", []string{"@method", "content-type"},
		sfParams{{"created", sfInt(testNow.Unix())}, {"keyid", sfStr("proxy-key")}, {"tag", sfStr("proxy")}})
	addSignature(t, req, k, "sig1", ocmCovered, ocmParams(k, testNow))
	// And one without any tag, whose signature bytes are garbage.
	req.Header.Add("Signature-Input", `junk=("@method");created=1;keyid="x"`)
	req.Header.Add("Signature", `junk=:AAAA:`)
	v, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyID != k.ID {
		t.Fatalf("verified %q", v.KeyID)
	}
}

func TestRFC9421NoOCMSignature(t *testing.T) {
	k := testKeys(t)[0]
	req := bodyRequest(t, testBody)
	addSignature(t, req, k, "sig1", ocmCovered, sfParams{{"created", sfInt(testNow.Unix())}, {"keyid", sfStr(k.ID)}})
	_, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
	wantErr(t, err, ErrNoSignature)
	// tag must be the string "ocm".
	req = bodyRequest(t, testBody)
	addSignature(t, req, k, "sig1", ocmCovered, sfParams{{"created", sfInt(testNow.Unix())}, {"keyid", sfStr(k.ID)}, {"tag", sfStr("OCM")}})
	_, err = Verify(context.Background(), req, testBody, resolverFor(k), opts())
	wantErr(t, err, ErrNoSignature)
}

func TestRFC9421MissingComponents(t *testing.T) {
	k := testKeys(t)[0]
	for _, c := range []struct {
		name    string
		covered []string
		params  sfParams
		want    error
	}{
		{"no @method", []string{"@target-uri", "content-digest", "content-length"}, ocmParams(k, testNow), ErrMissingComponent},
		{"no @target-uri", []string{"@method", "content-digest", "content-length"}, ocmParams(k, testNow), ErrMissingComponent},
		{"@authority instead of @target-uri", []string{"@method", "@authority", "@path", "content-digest", "content-length"}, ocmParams(k, testNow), ErrMissingComponent},
		{"no content-digest", []string{"@method", "@target-uri", "content-length"}, ocmParams(k, testNow), ErrMissingComponent},
		{"no content-length", []string{"@method", "@target-uri", "content-digest"}, ocmParams(k, testNow), ErrMissingComponent},
		{"no created", ocmCovered, sfParams{{"keyid", sfStr(k.ID)}, {"tag", sfStr("ocm")}}, ErrMissingComponent},
		{"no keyid", ocmCovered, sfParams{{"created", sfInt(testNow.Unix())}, {"tag", sfStr("ocm")}}, ErrMissingComponent},
		{"created not an integer", ocmCovered, sfParams{{"created", sfStr("now")}, {"keyid", sfStr(k.ID)}, {"tag", sfStr("ocm")}}, ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := bodyRequest(t, testBody)
			addSignature(t, req, k, "sig1", c.covered, c.params)
			_, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
			wantErr(t, err, c.want)
		})
	}
	// Covered but absent from the request.
	req := signedRequest(t, k, testBody)
	req.Header.Del("Content-Digest")
	_, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
	wantErr(t, err, ErrMissingComponent)
}

func TestRFC9421ContentDigestAlgorithms(t *testing.T) {
	k := testKeys(t)[0]
	sha256 := "sha-256=:" + encodeStd(digestSHA256(testBody)) + ":"
	sha512 := "sha-512=:" + encodeStd(digestSHA512(testBody)) + ":"
	badSHA512 := "sha-512=:" + encodeStd(digestSHA512([]byte("other"))) + ":"
	for _, c := range []struct {
		field string
		want  error
	}{
		{sha256, nil},
		{sha512, nil},
		{sha512 + ", " + sha256, nil},
		{sha256 + ", md5=:AAAA:", nil},
		{sha256 + ", " + badSHA512, ErrDigestMismatch},
		{"md5=:AAAA:", ErrDigestMismatch},
		{"sha-256=1", ErrMalformed},
	} {
		req := bodyRequest(t, testBody)
		req.Header.Set("Content-Digest", c.field)
		addSignature(t, req, k, "sig1", ocmCovered, ocmParams(k, testNow))
		_, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
		if c.want == nil && err != nil {
			t.Fatalf("%s: %v", c.field, err)
		}
		if c.want != nil {
			wantErr(t, err, c.want)
		}
	}
}

func TestRFC9421MalformedHeaders(t *testing.T) {
	k := testKeys(t)[0]
	for _, c := range []struct{ input, sig string }{
		{`sig1=("@method" "@target-uri";tag="ocm"`, `sig1=:AAAA:`},
		{`sig1=("@method" "@target-uri");created=1785060500;keyid="k";tag="ocm"`, `sig1="AAAA"`},
		{`sig1=("@method" "@target-uri");created=1785060500;keyid="k";tag="ocm"`, `other=:AAAA:`},
		{`sig1=("@method" "@target-uri");created=1785060500;keyid="k";tag="ocm"`, `sig1=:AAAA`},
		{`sig1=("@method" @target-uri);created=1785060500;keyid="k";tag="ocm"`, `sig1=:AAAA:`},
		{`sig1="@method";created=1785060500;keyid="k";tag="ocm"`, `sig1=:AAAA:`},
	} {
		req := newRequest(t, http.MethodGet, testURL, nil)
		req.Header.Set("Signature-Input", c.input)
		req.Header.Set("Signature", c.sig)
		_, err := Verify(context.Background(), req, nil, resolverFor(k), opts())
		wantErr(t, err, ErrMalformed)
	}
}

func TestVerifyPicksProfile(t *testing.T) {
	ctx := context.Background()
	req := newRequest(t, http.MethodPost, testURL, testBody)
	_, err := Verify(ctx, req, testBody, staticResolver{}, opts())
	wantErr(t, err, ErrNoSignature)
	req.Header.Set("Signature", "sig1=:AAAA:") // RFC 9421 form without Signature-Input
	_, err = Verify(ctx, req, testBody, staticResolver{}, opts())
	wantErr(t, err, ErrNoSignature)

	rsaKey := testKeys(t)[3]
	req = newRequest(t, http.MethodPost, testURL, testBody)
	if err := SignCavage(req, testBody, rsaKey.ID, rsaPriv(rsaKey), testNow); err != nil {
		t.Fatal(err)
	}
	v, err := Verify(ctx, req, testBody, resolverFor(rsaKey), opts())
	if err != nil || v.Profile != ProfileCavage {
		t.Fatalf("cavage: %+v, %v", v, err)
	}
	// The profiles share the Signature field, so one request carries one.
	wantErrString(t, SignRFC9421(req, testBody, rsaKey, testNow), "draft-cavage")
	req = signedRequest(t, rsaKey, testBody)
	wantErrString(t, SignCavage(req, testBody, rsaKey.ID, rsaPriv(rsaKey), testNow), "RFC 9421")
	v, err = Verify(ctx, req, testBody, resolverFor(rsaKey), opts())
	if err != nil || v.Profile != ProfileRFC9421 {
		t.Fatalf("rfc9421: %+v, %v", v, err)
	}
}

func TestSignRFC9421Refuses(t *testing.T) {
	k := testKeys(t)[0]
	req := newRequest(t, http.MethodPost, "/relative", testBody)
	wantErrString(t, SignRFC9421(req, testBody, k, testNow), "absolute")
	req = newRequest(t, http.MethodPost, testURL, testBody)
	wantErrString(t, SignRFC9421(req, testBody, Key{ID: k.ID}, testNow), "private")
	wantErrString(t, SignRFC9421(req, testBody, Key{ID: `a"b`, Private: k.Private}, testNow), "key id")
	wantErrString(t, SignRFC9421(req, testBody, Key{ID: "k", Alg: AlgRSAPSSSHA512, Private: k.Private}, testNow), "does not fit")
}

// TestOCMDraftAppendixB verifies the complete example of the OCM
// specification's Appendix B, body and JWK Set included.
func TestOCMDraftAppendixB(t *testing.T) {
	dir := filepath.Join("testdata", "ocm-draft-06")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	body := read("share.json")
	jwks, err := ParseJWKS(read("jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	newReq := func() *http.Request {
		req := newRequest(t, http.MethodPost, "http://127.0.0.1:8080/ocm/shares", body)
		sc := bufio.NewScanner(strings.NewReader(string(read("headers.txt"))))
		for sc.Scan() {
			name, value, _ := strings.Cut(sc.Text(), ": ")
			req.Header.Set(name, value)
		}
		return req
	}
	o := VerifyOptions{
		TargetURI: "https://receiver.example.org/ocm/shares",
		Now:       func() time.Time { return time.Unix(1785060500+30, 0) },
	}
	v, err := Verify(context.Background(), newReq(), body, jwks, o)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyID != "sender.example.org#key1" || v.Alg != AlgEd25519 || v.Created.Unix() != 1785060500 {
		t.Fatalf("Verified = %+v", v)
	}
	// Behind that proxy, without the public URL, the target differs.
	o.TargetURI = ""
	_, err = Verify(context.Background(), newReq(), body, jwks, o)
	wantErr(t, err, ErrInvalidSignature)
}

func wantErrString(t *testing.T, err error, sub string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Fatalf("error = %v, want one mentioning %q", err, sub)
	}
}

// TestRFC9421ReplayOfMalleatedECDSA replays an ECDSA signature re-encoded as
// (r, n-s), which verifies as well: the cache must still see a replay.
func TestRFC9421ReplayOfMalleatedECDSA(t *testing.T) {
	k := testKeys(t)[1]
	o := opts()
	o.Replay = NewReplayCache(time.Minute, 100)
	req := signedRequest(t, k, testBody)
	if _, err := Verify(context.Background(), req, testBody, resolverFor(k), o); err != nil {
		t.Fatal(err)
	}
	d, err := parseSFDictionary(req.Header.Get("Signature"))
	if err != nil {
		t.Fatal(err)
	}
	raw := d[0].val.item.bare.bytes
	n := elliptic.P256().Params().N
	s := new(big.Int).Sub(n, new(big.Int).SetBytes(raw[32:]))
	malleated := append(append([]byte{}, raw[:32]...), s.FillBytes(make([]byte, 32))...)
	req.Header.Set("Signature", sfDict{{"sig1", sfMember{item: sfItem{bare: sfByteSeq(malleated)}}}}.String())
	if _, err := Verify(context.Background(), req, testBody, resolverFor(k), opts()); err != nil {
		t.Fatalf("malleated signature does not verify, the test proves nothing: %v", err)
	}
	_, err = Verify(context.Background(), req, testBody, resolverFor(k), o)
	wantErr(t, err, ErrReplay)
}
