package httpsig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

type equaler interface{ Equal(crypto.PublicKey) bool }

func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func TestKeyNeverShowsPrivateHalf(t *testing.T) {
	k, err := GenerateEd25519("https://me.example/ocm#ed25519")
	if err != nil {
		t.Fatal(err)
	}
	seed := k.Private.(ed25519.PrivateKey).Seed()
	secrets := []string{hex.EncodeToString(seed), fmt.Sprint(seed), encodeStd(seed), fmt.Sprint([]byte(k.Private.(ed25519.PrivateKey)))}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("key", "key", k)
	outputs := []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), fmt.Sprint(&k), logged.String()}
	for _, out := range outputs {
		if !strings.Contains(out, k.ID) {
			t.Errorf("output lacks the key id: %s", out)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("private key in output: %s", out)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(k), "[redacted]") {
		t.Fatalf("String = %s", k)
	}
}

func TestGenerateAndStoreKeys(t *testing.T) {
	ed, err := GenerateEd25519("ed")
	if err != nil || ed.Alg != AlgEd25519 {
		t.Fatal(ed, err)
	}
	rsaKey, err := GenerateRSA("rsa", 2048)
	if err != nil || rsaKey.Alg != AlgRSAPSSSHA512 || rsaPriv(rsaKey).N.BitLen() != 2048 {
		t.Fatal(rsaKey, err)
	}
	if _, err := GenerateRSA("small", 1024); err == nil {
		t.Fatal("1024-bit RSA key generated")
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := []Key{ed, rsaKey, {ID: "ec", Alg: AlgECDSAP256SHA256, Private: ec}}
	for _, k := range keys {
		t.Run(string(k.Alg), func(t *testing.T) {
			der, err := MarshalPrivate(k)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePrivate(k.ID, k.Alg, der)
			if err != nil {
				t.Fatal(err)
			}
			if back.ID != k.ID || back.Alg != k.Alg || !samePublic(back.Public(), k.Public()) {
				t.Fatalf("round trip: %v", back)
			}
			// The parsed key signs what the original public key verifies.
			req := signedRequest(t, back, testBody)
			if _, err := Verify(t.Context(), req, testBody, resolverFor(k), opts()); err != nil {
				t.Fatal(err)
			}
			// Without alg the algorithm comes from the key type.
			derived, err := ParsePrivate(k.ID, "", der)
			if err != nil || derived.algorithm() != candidateAlgorithms(k.Public())[0] {
				t.Fatalf("derived: %v %v", derived, err)
			}
		})
	}
	if _, err := ParsePrivate("ed", AlgRSAV15SHA256, mustMarshal(t, ed)); err == nil {
		t.Fatal("ed25519 key accepted for rsa-v1_5-sha256")
	}
	if _, err := ParsePrivate("x", "", []byte("not a key")); err == nil {
		t.Fatal("garbage parsed")
	} else {
		wantErr(t, err, ErrMalformed)
	}
	if _, err := ParsePrivate("", "", mustMarshal(t, ed)); err == nil {
		t.Fatal("empty key id accepted")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	if _, err := ParsePrivate("x", "", der); err == nil {
		t.Fatal("P-384 key accepted")
	}
}

func mustMarshal(t *testing.T, k Key) []byte {
	t.Helper()
	der, err := MarshalPrivate(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestPublicKeyPEM(t *testing.T) {
	for _, k := range testKeys(t) {
		s, err := PublicKeyPEM(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, "-----BEGIN PUBLIC KEY-----\n") {
			t.Fatalf("PEM = %s", s)
		}
		back, err := ParsePublicKeyPEM(s)
		if err != nil || !samePublic(back, k.Public()) {
			t.Fatalf("%s: %v", k.Alg, err)
		}
	}
	// PKCS #1, as some servers publish RSA keys.
	pub, err := ParsePublicKeyPEM(string(rfcFile(t, "test-key-rsa.pub.pem")))
	if err != nil || !samePublic(pub, rfcPrivateKey(t, "test-key-rsa.pem").Public()) {
		t.Fatalf("PKCS #1: %v", err)
	}
	// Nextcloud sends the PEM inside JSON, sometimes with surrounding blanks.
	if _, err := ParsePublicKeyPEM("\n  " + string(rfcFile(t, "test-key-ecc-p256.pub.pem")) + "  \n"); err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(smallRSAKey(t))
	for _, bad := range []string{
		"",
		"not pem",
		string(rfcFile(t, "test-key-ed25519.pem")), // a private key
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), // 1024 bits
		strings.Repeat("A", maxPEMLen+1),
	} {
		if _, err := ParsePublicKeyPEM(bad); err == nil {
			t.Errorf("ParsePublicKeyPEM(%.40q) succeeded", bad)
		} else {
			wantErr(t, err, ErrMalformed)
		}
	}
}

func TestJWKRoundTrip(t *testing.T) {
	for _, k := range testKeys(t) {
		t.Run(string(k.Alg), func(t *testing.T) {
			j, err := PublicJWK(k.ID, k.Alg, k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if j.Alg != k.Alg.JOSE() || j.Use != "sig" || j.Kid != k.ID {
				t.Fatalf("JWK = %+v", j)
			}
			doc, err := json.Marshal(JWKS{Keys: []JWK{j}})
			if err != nil {
				t.Fatal(err)
			}
			set, err := ParseJWKS(doc)
			if err != nil {
				t.Fatal(err)
			}
			pub, alg, err := set.Lookup(k.ID)
			if err != nil || alg != k.Alg || !samePublic(pub, k.Public()) {
				t.Fatalf("Lookup: %v %v %v", pub, alg, err)
			}
			// A JWKS verifies requests and holds them to the JWK's algorithm.
			if _, err := Verify(t.Context(), signedRequest(t, k, testBody), testBody, set, opts()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestJWKVectors(t *testing.T) {
	// RFC 8037 Appendix A.1/A.2: the Ed25519 key pair.
	seed, _ := b64url.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	j, err := PublicJWK("k", "", ed25519.NewKeyFromSeed(seed).Public())
	if err != nil {
		t.Fatal(err)
	}
	if j.Kty != "OKP" || j.Crv != "Ed25519" || j.X != "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" || j.Alg != "Ed25519" {
		t.Fatalf("JWK = %+v", j)
	}
	// RFC 9421 B.1.4 as published in JWK form.
	j, _ = PublicJWK("test-key-ed25519", "", rfcPublicKey(t, "test-key-ed25519.pub.pem"))
	if j.X != "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs" {
		t.Fatalf("x = %s", j.X)
	}
	// RSA public exponent 65537 is "AQAB".
	j, _ = PublicJWK("rsa", "", rfcPublicKey(t, "test-key-rsa.pub.pem"))
	if j.E != "AQAB" || j.Alg != "PS512" {
		t.Fatalf("JWK = %+v", j)
	}
}

func TestParseJWKSRejects(t *testing.T) {
	ed := newEd25519(t, "ed")
	good, _ := PublicJWK("ed", AlgEd25519, ed.Public())
	small := JWK{Kty: "RSA", Kid: "small", N: b64url.EncodeToString(smallRSAKey(t).N.Bytes()), E: "AQAB"}
	p256 := rfcPublicKey(t, "test-key-ecc-p256.pub.pem")
	ec, _ := PublicJWK("ec", "", p256)
	offCurve := ec
	offCurve.Y = b64url.EncodeToString(bytes.Repeat([]byte{1}, 32))
	many := make([]JWK, maxJWKs+1)
	for i := range many {
		many[i] = good
	}
	for name, doc := range map[string]any{
		"small RSA":         JWKS{Keys: []JWK{good, small}},
		"short x":           JWKS{Keys: []JWK{{Kty: "OKP", Crv: "Ed25519", Kid: "x", X: "AAAA"}}},
		"point off curve":   JWKS{Keys: []JWK{offCurve}},
		"alg of other type": JWKS{Keys: []JWK{{Kty: "OKP", Crv: "Ed25519", Kid: "x", X: good.X, Alg: "ES256"}}},
		"unknown alg":       JWKS{Keys: []JWK{{Kty: "OKP", Crv: "Ed25519", Kid: "x", X: good.X, Alg: "HS256"}}},
		"even exponent":     JWKS{Keys: []JWK{{Kty: "RSA", Kid: "r", N: b64url.EncodeToString(rfcPublicKey(t, "test-key-rsa.pub.pem").(*rsa.PublicKey).N.Bytes()), E: "Ag"}}},
		"too many keys":     JWKS{Keys: many},
		"huge member":       JWKS{Keys: []JWK{{Kty: "oct", Kid: strings.Repeat("k", maxJWKField+1)}}},
		"no keys member":    map[string]any{"kyes": []JWK{good}},
		"not an object":     []JWK{good},
	} {
		b, _ := json.Marshal(doc)
		if _, err := ParseJWKS(b); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			wantErr(t, err, ErrMalformed)
		}
	}
	if _, err := ParseJWKS(bytes.Repeat([]byte(" "), MaxJWKSSize+1)); err == nil {
		t.Error("oversized JWKS accepted")
	}
}

func TestJWKSLookup(t *testing.T) {
	ed := newEd25519(t, "ed")
	good, _ := PublicJWK("ed", AlgEd25519, ed.Public())
	eddsa := good
	eddsa.Kid, eddsa.Alg = "eddsa", "EdDSA"
	noAlg := good
	noAlg.Kid, noAlg.Alg, noAlg.Use = "noalg", "", ""
	enc := good
	enc.Kid, enc.Use = "enc", "enc"
	rsaJWK, _ := PublicJWK("rsa-noalg", "", rfcPublicKey(t, "test-key-rsa.pub.pem"))
	rsaJWK.Alg = ""
	doc, _ := json.Marshal(JWKS{Keys: []JWK{
		good, eddsa, noAlg, enc, rsaJWK,
		{Kty: "oct", Kid: "secret", Alg: "HS256"}, // ignored: not a signing key type we use
		{Kty: "OKP", Crv: "X25519", Kid: "x25519", X: good.X},
		good, // duplicate kid "ed"
	}})
	set, err := ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	for kid, want := range map[string]Algorithm{"eddsa": AlgEd25519, "noalg": AlgEd25519, "rsa-noalg": ""} {
		_, alg, err := set.Lookup(kid)
		if err != nil || alg != want {
			t.Errorf("Lookup(%s) = %q, %v", kid, alg, err)
		}
	}
	for _, kid := range []string{"ed", "enc", "secret", "x25519", "absent"} {
		_, _, err := set.Lookup(kid)
		wantErr(t, err, ErrUnknownKey)
	}
	// The OCM specification's example set.
	set, err = ParseJWKS(mustRead(t, "testdata/ocm-draft-06/jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, alg, err := set.Lookup("sender.example.org#key1"); err != nil || alg != AlgEd25519 {
		t.Fatalf("Lookup: %v %v", alg, err)
	}
}
