package httpsig

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed clock of the tests.
var testNow = time.Unix(1785060500, 0)

const testURL = "https://receiver.example.org/ocm/shares?lang=en"

var testBody = []byte(`{"shareWith":"marie@receiver.example.org","name":"spec.yaml"}`)

// staticResolver serves fixed public keys.
type staticResolver map[string]crypto.PublicKey

func (s staticResolver) ResolveKey(_ context.Context, id string) (crypto.PublicKey, error) {
	if k, ok := s[id]; ok {
		return k, nil
	}
	return nil, errors.New("no such key")
}

// algResolver serves fixed public keys with the algorithm they are
// published for.
type algResolver struct {
	pub crypto.PublicKey
	alg Algorithm
}

func (a algResolver) ResolveKey(context.Context, string) (crypto.PublicKey, error) { return a.pub, nil }
func (a algResolver) ResolveKeyAlgorithm(context.Context, string) (crypto.PublicKey, Algorithm, error) {
	return a.pub, a.alg, nil
}

// testKeys returns one key per algorithm. The RSA and ECDSA keys are the RFC
// 9421 test keys (generating RSA keys is slow); the Ed25519 key is fresh.
func testKeys(t testing.TB) []Key {
	t.Helper()
	ed, err := GenerateEd25519("https://sender.example.org/ocm#ed25519")
	if err != nil {
		t.Fatal(err)
	}
	return []Key{
		ed,
		{ID: "https://sender.example.org/ocm#p256", Alg: AlgECDSAP256SHA256, Private: rfcPrivateKey(t, "test-key-ecc-p256.pem")},
		{ID: "https://sender.example.org/ocm#pss", Alg: AlgRSAPSSSHA512, Private: rfcPrivateKey(t, "test-key-rsa-pss.pem")},
		{ID: "https://sender.example.org/ocm#rsa", Alg: AlgRSAV15SHA256, Private: rfcPrivateKey(t, "test-key-rsa.pem")},
	}
}

func resolverFor(keys ...Key) staticResolver {
	r := staticResolver{}
	for _, k := range keys {
		r[k.ID] = k.Public()
	}
	return r
}

func newRequest(t testing.TB, method, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

func signedRequest(t testing.TB, k Key, body []byte) *http.Request {
	t.Helper()
	req := newRequest(t, http.MethodPost, testURL, body)
	if err := SignRFC9421(req, body, k, testNow); err != nil {
		t.Fatal(err)
	}
	return req
}

func opts() VerifyOptions {
	return VerifyOptions{Now: func() time.Time { return testNow }}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// addSignature adds an RFC 9421 signature made by hand: any label, any
// covered components, any parameters. It appends to existing fields.
func addSignature(t *testing.T, req *http.Request, k Key, label string, covered []string, params sfParams) {
	t.Helper()
	var items []sfItem
	for _, c := range covered {
		items = append(items, component(c))
	}
	msg, err := newRequestMessage(requestMethod(req), absoluteURI(req.URL.Scheme, hostOf(req), req.URL), req.Header)
	if err != nil {
		t.Fatal(err)
	}
	base, err := signatureBase(msg, items, params)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signMessage(k.algorithm(), k.Private, []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add("Signature-Input", sfDict{{label, sfMember{isList: true, list: items, params: params}}}.String())
	req.Header.Add("Signature", sfDict{{label, sfMember{item: sfItem{bare: sfByteSeq(sig)}}}}.String())
}

// ocmParams are the parameters SignRFC9421 uses, without alg.
func ocmParams(k Key, created time.Time) sfParams {
	return sfParams{{"created", sfInt(created.Unix())}, {"keyid", sfStr(k.ID)}, {"tag", sfStr("ocm")}}
}

var ocmCovered = []string{"@method", "@target-uri", "content-digest", "content-length"}

// bodyRequest is a POST with body and the digest fields set, unsigned.
func bodyRequest(t *testing.T, body []byte) *http.Request {
	t.Helper()
	req := newRequest(t, http.MethodPost, testURL, body)
	req.Header.Set("Content-Digest", contentDigest(body))
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return req
}

func newEd25519(t testing.TB, id string) Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Private: priv}
}

func encodeStd(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func rsaPriv(k Key) *rsa.PrivateKey { return k.Private.(*rsa.PrivateKey) }

var smallRSA struct {
	once sync.Once
	key  *rsa.PrivateKey
	err  error
}

// smallRSAKey is a 1024-bit RSA public key, too small for this package.
func smallRSAKey(t *testing.T) *rsa.PublicKey {
	t.Helper()
	smallRSA.once.Do(func() { smallRSA.key, smallRSA.err = rsa.GenerateKey(rand.Reader, 1024) })
	if smallRSA.err != nil {
		t.Fatal(smallRSA.err)
	}
	return &smallRSA.key.PublicKey
}

func decodeStd(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
