package httpsig

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// The example keys and signatures of RFC 9421 Appendix B; see
// testdata/rfc9421/README.md.

type rfcVector struct {
	Name           string `json:"name"`
	Message        string `json:"message"`
	Key            string `json:"key"`
	PrivateKey     string `json:"privateKey"`
	Alg            string `json:"alg"`
	Label          string `json:"label"`
	Deterministic  bool   `json:"deterministic"`
	SignatureInput string `json:"signatureInput"`
	Signature      string `json:"signature"`
	Base           string `json:"base"`
}

func rfcFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rfc9421", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rfcPublicKey(t testing.TB, name string) crypto.PublicKey {
	t.Helper()
	pub, err := ParsePublicKeyPEM(string(rfcFile(t, name)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return pub
}

// rfcPrivateKey reads the private test keys, whose PEM forms vary: PKCS #1,
// SEC 1, PKCS #8, and PKCS #8 with the RSASSA-PSS OID that crypto/x509 does
// not read (its inner key is PKCS #1).
func rfcPrivateKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	block, _ := pem.Decode(rfcFile(t, name))
	if block == nil {
		t.Fatalf("%s: no PEM", name)
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return k.(crypto.Signer)
	}
	var p8 struct {
		Version int
		Algo    struct{ Algorithm asn1.ObjectIdentifier }
		Key     []byte
	}
	if _, err := asn1.Unmarshal(block.Bytes, &p8); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !p8.Algo.Algorithm.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}) {
		t.Fatalf("%s: unexpected algorithm %v", name, p8.Algo.Algorithm)
	}
	k, err := x509.ParsePKCS1PrivateKey(p8.Key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rfcMessage reads request.http or response.http into a message. The RFC's
// examples use https://example.com as target.
func rfcMessage(t *testing.T, name string) *message {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(rfcFile(t, name)))
	if name == "response.http" {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &message{status: resp.StatusCode, header: resp.Header}
	}
	req, err := http.ReadRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newRequestMessage(req.Method, "https://"+req.Host+req.URL.RequestURI(), req.Header)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loadRFCVectors(t *testing.T) []rfcVector {
	t.Helper()
	var vs []rfcVector
	if err := json.Unmarshal(rfcFile(t, "vectors.json"), &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 6 {
		t.Fatalf("only %d vectors", len(vs))
	}
	return vs
}

func TestRFC9421VectorsSignatureBase(t *testing.T) {
	for _, v := range loadRFCVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			in, err := parseSFDictionary(v.SignatureInput)
			if err != nil {
				t.Fatal(err)
			}
			mem, ok := in.get(v.Label)
			if !ok || !mem.isList {
				t.Fatalf("no inner list for %s", v.Label)
			}
			base, err := signatureBase(rfcMessage(t, v.Message), mem.list, mem.params)
			if err != nil {
				t.Fatal(err)
			}
			if base != v.Base {
				t.Fatalf("signature base\n got: %q\nwant: %q", base, v.Base)
			}
			// The Signature-Input member re-serialises to what the RFC shows.
			if got := (sfDict{{v.Label, mem}}).String(); got != v.SignatureInput {
				t.Fatalf("re-serialised input\n got: %s\nwant: %s", got, v.SignatureInput)
			}
		})
	}
}

func TestRFC9421VectorsVerify(t *testing.T) {
	for _, v := range loadRFCVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			sigs, err := parseSFDictionary(v.Signature)
			if err != nil {
				t.Fatal(err)
			}
			mem, ok := sigs.get(v.Label)
			if !ok || mem.item.bare.kind != sfBytes {
				t.Fatalf("no signature for %s", v.Label)
			}
			sig := mem.item.bare.bytes
			pub := rfcPublicKey(t, v.Key)
			alg := Algorithm(v.Alg)
			if err := verifyMessage(alg, pub, []byte(v.Base), sig); err != nil {
				t.Fatalf("RFC signature does not verify: %v", err)
			}
			// One flipped bit of the base must fail.
			bad := []byte(v.Base)
			bad[len(bad)/2] ^= 1
			if err := verifyMessage(alg, pub, bad, sig); err == nil {
				t.Fatal("tampered base verified")
			}
			if v.PrivateKey == "" {
				return
			}
			priv := rfcPrivateKey(t, v.PrivateKey)
			mine, err := signMessage(alg, priv, []byte(v.Base))
			if err != nil {
				t.Fatal(err)
			}
			if v.Deterministic && !bytes.Equal(mine, sig) {
				t.Fatalf("signature differs from the vector\n got: %s\nwant: %s", sfItem{bare: sfByteSeq(mine)}.String(), v.Signature)
			}
		})
	}
}

// TestRFC9421TestKeys checks that each private test key matches its public
// half by signing with it and verifying with the published public key.
func TestRFC9421TestKeys(t *testing.T) {
	cases := []struct {
		priv, pub string
		alg       Algorithm
	}{
		{"test-key-rsa.pem", "test-key-rsa.pub.pem", AlgRSAV15SHA256},
		{"test-key-rsa.pem", "test-key-rsa.pub.pem", AlgRSAPSSSHA512},
		{"test-key-rsa-pss.pem", "test-key-rsa-pss.pub.pem", AlgRSAPSSSHA512},
		{"test-key-ecc-p256.pem", "test-key-ecc-p256.pub.pem", AlgECDSAP256SHA256},
		{"test-key-ed25519.pem", "test-key-ed25519.pub.pem", AlgEd25519},
	}
	for _, c := range cases {
		t.Run(c.priv+"/"+string(c.alg), func(t *testing.T) {
			priv := rfcPrivateKey(t, c.priv)
			pub := rfcPublicKey(t, c.pub)
			msg := []byte("test message")
			sig, err := signMessage(c.alg, priv, msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyMessage(c.alg, pub, msg, sig); err != nil {
				t.Fatal(err)
			}
			if c.alg == AlgECDSAP256SHA256 && len(sig) != 64 {
				t.Fatalf("ECDSA signature is %d bytes, want raw r||s of 64", len(sig))
			}
		})
	}
	// The Ed25519 test key published as a JWK in many places.
	pub := rfcPublicKey(t, "test-key-ed25519.pub.pem").(ed25519.PublicKey)
	if got := b64url.EncodeToString(pub); got != "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs" {
		t.Fatalf("ed25519 x = %s", got)
	}
	if _, ok := rfcPublicKey(t, "test-key-rsa.pub.pem").(*rsa.PublicKey); !ok {
		t.Fatal("PKCS #1 public key not read as RSA")
	}
}
