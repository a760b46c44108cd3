package httpsig

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func cavageKey(t testing.TB) Key {
	t.Helper()
	return Key{ID: "https://sender.example.org/ocm#signature", Private: rfcPrivateKey(t, "test-key-rsa.pem")}
}

func cavageRequest(t testing.TB, k Key, body []byte, now time.Time) *http.Request {
	t.Helper()
	req := newRequest(t, http.MethodPost, testURL, body)
	if err := SignCavage(req, body, k.ID, rsaPriv(k), now); err != nil {
		t.Fatal(err)
	}
	return req
}

// nextcloudRequest builds a request the way Nextcloud's signatory does,
// independently of SignCavage: the signing string is written out by hand.
func nextcloudRequest(t *testing.T, k Key, body []byte, algorithm string, date time.Time, sign func([]byte) []byte) *http.Request {
	t.Helper()
	req := newRequest(t, http.MethodPost, testURL, body)
	dateStr := date.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
	digest := "SHA-256=" + encodeStd(digestSHA256(body))
	req.Header.Set("Date", dateStr)
	req.Header.Set("Digest", digest)
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	signing := "(request-target): post /ocm/shares?lang=en\n" +
		"content-length: " + strconv.Itoa(len(body)) + "\n" +
		"date: " + dateStr + "\n" +
		"digest: " + digest + "\n" +
		"host: receiver.example.org"
	alg := ""
	if algorithm != "" {
		alg = `algorithm="` + algorithm + `",`
	}
	req.Header.Set("Signature", `keyId="`+k.ID+`",`+alg+`headers="(request-target) content-length date digest host",signature="`+
		encodeStd(sign([]byte(signing)))+`"`)
	return req
}

func pkcs1Signer(t *testing.T, priv *rsa.PrivateKey) func([]byte) []byte {
	return func(msg []byte) []byte {
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digestSHA256(msg))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func TestSignCavageShape(t *testing.T) {
	k := cavageKey(t)
	req := cavageRequest(t, k, testBody, testNow)
	re := regexp.MustCompile(`^keyId="https://sender\.example\.org/ocm#signature",algorithm="rsa-sha256",` +
		`headers="\(request-target\) content-length date digest host",signature="([A-Za-z0-9+/]+=*)"$`)
	m := re.FindStringSubmatch(req.Header.Get("Signature"))
	if m == nil {
		t.Fatalf("Signature = %s", req.Header.Get("Signature"))
	}
	if got := req.Header.Get("Date"); got != "Sun, 26 Jul 2026 10:08:20 GMT" {
		t.Fatalf("Date = %s", got)
	}
	if got, want := req.Header.Get("Digest"), "SHA-256="+encodeStd(digestSHA256(testBody)); got != want {
		t.Fatalf("Digest = %s, want %s", got, want)
	}
	// Check the signature against a signing string written out by hand.
	signing := "(request-target): post /ocm/shares?lang=en\ncontent-length: " + strconv.Itoa(len(testBody)) +
		"\ndate: Sun, 26 Jul 2026 10:08:20 GMT\ndigest: " + req.Header.Get("Digest") + "\nhost: receiver.example.org"
	sig, err := decodeStd(m[1])
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public().(*rsa.PublicKey)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digestSHA256([]byte(signing)), sig); err != nil {
		t.Fatalf("signature does not cover the expected string: %v", err)
	}
}

func TestRoundTripCavage(t *testing.T) {
	k := cavageKey(t)
	v, err := Verify(context.Background(), cavageRequest(t, k, testBody, testNow), testBody, resolverFor(k), opts())
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyID != k.ID || v.Profile != ProfileCavage || v.Alg != AlgRSAV15SHA256 || !v.Created.Equal(testNow) {
		t.Fatalf("Verified = %+v", v)
	}
	// A bodiless GET.
	req := newRequest(t, http.MethodGet, "https://receiver.example.org/ocm/x", nil)
	if err := SignCavage(req, nil, k.ID, rsaPriv(k), testNow); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(req.Header.Get("Signature"), `headers="(request-target) date digest host"`) {
		t.Fatalf("GET Signature = %s", req.Header.Get("Signature"))
	}
	if _, err := Verify(context.Background(), req, nil, resolverFor(k), opts()); err != nil {
		t.Fatal(err)
	}
}

func TestCavageAsNextcloudSendsIt(t *testing.T) {
	k := cavageKey(t)
	priv := rsaPriv(k)
	pss := func(msg []byte) []byte {
		sig, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA512, digestSHA512(msg), &rsa.PSSOptions{SaltLength: 64})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	for _, c := range []struct {
		algorithm string
		sign      func([]byte) []byte
		want      Algorithm
	}{
		{"rsa-sha256", pkcs1Signer(t, priv), AlgRSAV15SHA256},
		{"hs2019", pkcs1Signer(t, priv), AlgRSAV15SHA256},
		{"hs2019", pss, AlgRSAPSSSHA512},
		{"", pkcs1Signer(t, priv), AlgRSAV15SHA256},
	} {
		req := nextcloudRequest(t, k, testBody, c.algorithm, testNow.Add(-time.Minute), c.sign)
		v, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
		if err != nil {
			t.Fatalf("algorithm %q: %v", c.algorithm, err)
		}
		if v.Alg != c.want || v.Profile != ProfileCavage {
			t.Fatalf("algorithm %q: %+v", c.algorithm, v)
		}
	}
	// rsa-sha256 means PKCS #1 v1.5 only.
	req := nextcloudRequest(t, k, testBody, "rsa-sha256", testNow, pss)
	_, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
	wantErr(t, err, ErrInvalidSignature)
}

func TestCavageTampered(t *testing.T) {
	k := cavageKey(t)
	other := []byte(`{"shareWith":"alice@receiver.example.org","name":"spec.yaml"}`)
	cases := []struct {
		name   string
		tamper func(req *http.Request) []byte
		want   error
	}{
		{"method", func(req *http.Request) []byte { req.Method = http.MethodPut; return testBody }, ErrInvalidSignature},
		{"path", func(req *http.Request) []byte { req.URL.Path = "/ocm/notifications"; return testBody }, ErrInvalidSignature},
		{"query", func(req *http.Request) []byte { req.URL.RawQuery = ""; return testBody }, ErrInvalidSignature},
		{"host", func(req *http.Request) []byte { req.Host = "other.example.org"; return testBody }, ErrInvalidSignature},
		{"body", func(req *http.Request) []byte { return other }, ErrDigestMismatch},
		{"body and digest", func(req *http.Request) []byte {
			req.Header.Set("Digest", legacyDigest(other))
			return other
		}, ErrInvalidSignature},
		{"date", func(req *http.Request) []byte {
			req.Header.Set("Date", testNow.Add(time.Second).UTC().Format(http.TimeFormat))
			return testBody
		}, ErrInvalidSignature},
		{"content-length", func(req *http.Request) []byte { req.Header.Set("Content-Length", "7"); return testBody }, ErrDigestMismatch},
		{"headers list", func(req *http.Request) []byte {
			req.Header.Set("Signature", strings.Replace(req.Header.Get("Signature"), "content-length date", "date", 1))
			return testBody
		}, ErrInvalidSignature},
		{"keyId", func(req *http.Request) []byte {
			req.Header.Set("Signature", strings.Replace(req.Header.Get("Signature"), "#signature", "#other", 1))
			return testBody
		}, ErrUnknownKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := cavageRequest(t, k, testBody, testNow)
			body := c.tamper(req)
			_, err := Verify(context.Background(), req, body, resolverFor(k), opts())
			wantErr(t, err, c.want)
		})
	}
}

func TestCavageDateSkewAndReplay(t *testing.T) {
	k := cavageKey(t)
	for _, c := range []struct {
		offset time.Duration
		ok     bool
	}{{-4 * time.Minute, true}, {4 * time.Minute, true}, {-6 * time.Minute, false}, {6 * time.Minute, false}} {
		_, err := Verify(context.Background(), cavageRequest(t, k, testBody, testNow.Add(c.offset)), testBody, resolverFor(k), opts())
		if c.ok && err != nil {
			t.Fatalf("offset %v: %v", c.offset, err)
		}
		if !c.ok {
			wantErr(t, err, ErrExpired)
		}
	}
	o := opts()
	o.Replay = NewReplayCache(time.Minute, 10)
	req := cavageRequest(t, k, testBody, testNow)
	if _, err := Verify(context.Background(), req, testBody, resolverFor(k), o); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(context.Background(), req, testBody, resolverFor(k), o)
	wantErr(t, err, ErrReplay)
}

func TestCavageRequiredHeaders(t *testing.T) {
	k := cavageKey(t)
	sign := pkcs1Signer(t, rsaPriv(k))
	for _, headers := range []string{
		"content-length date digest host",             // no (request-target)
		"(request-target) content-length date digest", // no host
		"(request-target) content-length digest host", // no date
		"(request-target) content-length date host",   // no digest, with a body
	} {
		req := cavageRequest(t, k, testBody, testNow)
		cs := &cavageSig{headers: strings.Fields(headers)}
		signing, err := cavageSigningString(http.MethodPost, req.URL, req.Header, cs)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Signature", `keyId="`+k.ID+`",algorithm="rsa-sha256",headers="`+headers+`",signature="`+encodeStd(sign([]byte(signing)))+`"`)
		_, err = Verify(context.Background(), req, testBody, resolverFor(k), opts())
		wantErr(t, err, ErrMissingComponent)
	}
	// Listed but absent.
	req := cavageRequest(t, k, testBody, testNow)
	req.Header.Del("Date")
	_, err := Verify(context.Background(), req, testBody, resolverFor(k), opts())
	wantErr(t, err, ErrMissingComponent)
}

func TestCavageWrongKeyOrAlgorithm(t *testing.T) {
	k := cavageKey(t)
	ctx := context.Background()
	req := cavageRequest(t, k, testBody, testNow)
	_, err := Verify(ctx, req, testBody, staticResolver{k.ID: rfcPublicKey(t, "test-key-rsa-pss.pub.pem")}, opts())
	wantErr(t, err, ErrInvalidSignature)
	_, err = Verify(ctx, req, testBody, staticResolver{k.ID: newEd25519(t, "x").Public()}, opts())
	wantErr(t, err, ErrInvalidSignature)
	_, err = Verify(ctx, req, testBody, staticResolver{}, opts())
	wantErr(t, err, ErrUnknownKey)
	req.Header.Set("Signature", strings.Replace(req.Header.Get("Signature"), "rsa-sha256", "dsa-sha1", 1))
	_, err = Verify(ctx, req, testBody, resolverFor(k), opts())
	wantErr(t, err, ErrInvalidSignature)
}

func TestCavageBehindProxy(t *testing.T) {
	k := cavageKey(t)
	req := cavageRequest(t, k, testBody, testNow)
	// The proxy forwards to the agent on loopback.
	req.URL.Scheme, req.URL.Host, req.Host = "http", "127.0.0.1:9000", "127.0.0.1:9000"
	req.URL.Path = "/agent/ocm/shares"
	o := opts()
	_, err := Verify(context.Background(), req, testBody, resolverFor(k), o)
	wantErr(t, err, ErrInvalidSignature)
	o.TargetURI = testURL
	if _, err := Verify(context.Background(), req, testBody, resolverFor(k), o); err != nil {
		t.Fatal(err)
	}
}

func TestParseCavage(t *testing.T) {
	cs, err := parseCavage(`keyId="https://a.example/ocm#signature", algorithm="RSA-SHA256" ,headers="(request-target) Host  date",created=1785060500,signature="AAEC"`)
	if err != nil {
		t.Fatal(err)
	}
	if cs.keyID != "https://a.example/ocm#signature" || cs.algorithm != "rsa-sha256" ||
		strings.Join(cs.headers, "|") != "(request-target)|host|date" || !cs.hasCreated || cs.created != 1785060500 ||
		string(cs.signature) != "\x00\x01\x02" {
		t.Fatalf("parsed %+v", cs)
	}
	cs, err = parseCavage(`keyId="k",signature="AAEC"`)
	if err != nil || strings.Join(cs.headers, " ") != "(created)" {
		t.Fatalf("default headers: %+v, %v", cs, err)
	}
	for _, bad := range []string{
		``,
		`keyId="k"`,
		`signature="AAEC"`,
		`keyId="k",keyId="j",signature="AAEC"`,
		`keyId="k,signature="AAEC"`,
		`keyId=k,signature="AAEC"`,
		`keyId="k" signature="AAEC"`,
		`keyId="k",signature="not base64!"`,
		`keyId="k",signature="AAEC",headers=""`,
		`keyId="k",signature="AAEC",created="soon"`,
		`keyId="k",signature="AAEC",headers="` + strings.Repeat("a ", 40) + `"`,
		`="k"`,
		`keyId="k\` + "\x01" + `",signature="AAEC"`,
	} {
		if _, err := parseCavage(bad); err == nil {
			t.Errorf("parseCavage(%q) succeeded", bad)
		} else {
			wantErr(t, err, ErrMalformed)
		}
	}
}

func TestSignCavageRefuses(t *testing.T) {
	k := cavageKey(t)
	req := newRequest(t, http.MethodPost, testURL, testBody)
	wantErrString(t, SignCavage(req, testBody, k.ID, nil, testNow), "no RSA")
	wantErrString(t, SignCavage(req, testBody, `a"b`, rsaPriv(k), testNow), "key id")
	wantErrString(t, SignCavage(newRequest(t, http.MethodPost, "/x", nil), nil, k.ID, rsaPriv(k), testNow), "absolute")
}
