package discovery

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

var b64 = base64.RawURLEncoding

// signJWS returns protected and signature (base64url) over payload.
func signJWS(t *testing.T, alg string, key crypto.Signer, payloadB64 string) (string, string) {
	t.Helper()
	prot := b64.EncodeToString([]byte(`{"alg":"` + alg + `"}`))
	input := []byte(prot + "." + payloadB64)
	var sig []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, input)
	case *rsa.PrivateKey:
		h := sha256.Sum256(input)
		var err error
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("key type %T", key)
	}
	return prot, b64.EncodeToString(sig)
}

func TestParseDirectoryPlain(t *testing.T) {
	d, err := ParseDirectory([]byte(fixture(t, "directory-sciencemesh.json")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Federation != "The ScienceMesh Directory" || d.Signed || d.Verified || len(d.Problems) != 0 {
		t.Fatalf("directory: %+v", d)
	}
	want := []DirectoryServer{
		{URL: "https://ocm-server.example.org", DisplayName: "OCM Server 1", Host: "ocm-server.example.org"},
		{URL: "https://ocm-server.example.com:4443", DisplayName: "OCM Server 2", Host: "ocm-server.example.com:4443"},
		{URL: "http://192.168.1.1:8080", DisplayName: "OCM Server 3", Host: "192.168.1.1:8080"},
	}
	if len(d.Servers) != len(want) {
		t.Fatalf("servers: %+v", d.Servers)
	}
	for i := range want {
		if d.Servers[i] != want[i] {
			t.Errorf("server %d: %+v, want %+v", i, d.Servers[i], want[i])
		}
	}
}

func TestParseDirectoryDropsInvalidServers(t *testing.T) {
	doc := `{"federation":"F","servers":[
		{"url":"https://ok.example.org/","displayName":"OK"},
		{"url":"https://ok.example.org:443","displayName":"twice"},
		{"url":"https://path.example.org/ocm","displayName":"path"},
		{"url":"https://q.example.org/?a=b","displayName":"query"},
		{"url":"https://f.example.org/#x","displayName":"fragment"},
		{"url":"https://u:p@user.example.org","displayName":"userinfo"},
		{"url":"ftp://ftp.example.org","displayName":"ftp"},
		{"url":"ok2.example.org","displayName":"no scheme"},
		{"url":"https://noname.example.org"},
		{"url":"https://legacy.example.org","name":"Legacy name"}
	]}`
	d, err := ParseDirectory([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Servers) != 2 || d.Servers[0].Host != "ok.example.org" || d.Servers[0].URL != "https://ok.example.org" ||
		d.Servers[1].DisplayName != "Legacy name" {
		t.Fatalf("servers: %+v", d.Servers)
	}
	if len(d.Problems) != 8 {
		t.Fatalf("problems: %q", d.Problems)
	}
}

func TestParseDirectoryBareList(t *testing.T) {
	d, err := ParseDirectory([]byte(`[{"url":"https://a.example.org","displayName":"A"}]`), nil)
	if err != nil || len(d.Servers) != 1 || d.Servers[0].Host != "a.example.org" {
		t.Fatalf("%v %+v", err, d)
	}
}

func TestParseDirectoryJWS(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payload := b64.EncodeToString([]byte(fixture(t, "directory-sciencemesh.json")))
	evil := b64.EncodeToString([]byte(`{"federation":"F","servers":[{"url":"https://evil.example","displayName":"Evil"}]}`))

	t.Run("compact ES256", func(t *testing.T) {
		prot, sig := signJWS(t, "ES256", ecKey, payload)
		jws := prot + "." + payload + "." + sig
		d, err := ParseDirectory([]byte(jws+"\n"), []crypto.PublicKey{otherEC.Public(), ecKey.Public()})
		if err != nil || !d.Signed || !d.Verified || len(d.Servers) != 3 {
			t.Fatalf("%v %+v", err, d)
		}
		// Unchecked without keys, but read.
		d, err = ParseDirectory([]byte(jws), nil)
		if err != nil || !d.Signed || d.Verified || len(d.Servers) != 3 || len(d.Problems) != 1 {
			t.Fatalf("no keys: %v %+v", err, d)
		}
		// Another key, a swapped payload, a forged algorithm.
		if _, err := ParseDirectory([]byte(jws), []crypto.PublicKey{otherEC.Public()}); !errors.Is(err, ErrDirectoryUnverified) {
			t.Fatalf("wrong key: %v", err)
		}
		if _, err := ParseDirectory([]byte(prot+"."+evil+"."+sig), []crypto.PublicKey{ecKey.Public()}); !errors.Is(err, ErrDirectoryUnverified) {
			t.Fatalf("swapped payload: %v", err)
		}
		none := b64.EncodeToString([]byte(`{"alg":"none"}`))
		if _, err := ParseDirectory([]byte(none+"."+evil+"."), []crypto.PublicKey{ecKey.Public()}); !errors.Is(err, ErrDirectoryUnverified) {
			t.Fatalf("alg none: %v", err)
		}
	})
	t.Run("flattened EdDSA", func(t *testing.T) {
		prot, sig := signJWS(t, "EdDSA", edKey, payload)
		doc, _ := json.Marshal(map[string]string{"payload": payload, "protected": prot, "signature": sig})
		d, err := ParseDirectory(doc, []crypto.PublicKey{edKey.Public()})
		if err != nil || !d.Verified || d.Federation != "The ScienceMesh Directory" {
			t.Fatalf("%v %+v", err, d)
		}
	})
	t.Run("general RS256", func(t *testing.T) {
		prot, sig := signJWS(t, "RS256", rsaKey, payload)
		doc, _ := json.Marshal(map[string]any{"payload": payload, "signatures": []map[string]string{
			{"protected": prot, "signature": "AAAA"}, {"protected": prot, "signature": sig},
		}})
		d, err := ParseDirectory(doc, []crypto.PublicKey{rsaKey.Public()})
		if err != nil || !d.Verified {
			t.Fatalf("%v %+v", err, d)
		}
	})
	t.Run("spec example form", func(t *testing.T) {
		doc := `{"payload":` + fixture(t, "directory-sciencemesh.json") + `,"protected":{"alg":"ES256"},"signature":"..."}`
		d, err := ParseDirectory([]byte(doc), nil)
		if err != nil || !d.Signed || d.Verified || len(d.Servers) != 3 || len(d.Problems) != 2 {
			t.Fatalf("%v %+v", err, d)
		}
		if _, err := ParseDirectory([]byte(doc), []crypto.PublicKey{ecKey.Public()}); !errors.Is(err, ErrDirectoryUnverified) {
			t.Fatalf("with keys: %v", err)
		}
	})
	t.Run("unsigned refused with keys", func(t *testing.T) {
		_, err := ParseDirectory([]byte(fixture(t, "directory-sciencemesh.json")), []crypto.PublicKey{ecKey.Public()})
		if !errors.Is(err, ErrDirectoryUnverified) {
			t.Fatalf("%v", err)
		}
	})
}

func TestParseDirectoryRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":            "",
		"not json":         "hello",
		"no servers":       `{"federation":"F"}`,
		"servers string":   `{"servers":"x"}`,
		"duplicate key":    `{"servers":[],"servers":[{"url":"https://x.example","displayName":"X"}]}`,
		"bad payload":      `{"payload":"!!!","protected":"e30","signature":""}`,
		"bad compact":      `a.!!!.c`,
		"deep":             `{"servers":[],"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		"payload not json": `{"payload":"` + b64.EncodeToString([]byte("nope")) + `"}`,
	} {
		if d, err := ParseDirectory([]byte(doc), nil); !errors.Is(err, ErrBadDirectory) {
			t.Errorf("%s: %v %+v, want ErrBadDirectory", name, err, d)
		}
	}
}

func TestFetchDirectory(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/directory": serveDoc(fixture(t, "directory-sciencemesh.json")),
		"/huge":      serveDoc(`{"servers":[],"pad":"` + strings.Repeat("x", 4096) + `"}`),
	}))
	o := loopbackOptions(t, z, clk)
	o.MaxDirectoryBytes = 2048
	c := New(o)
	servers, err := c.FetchDirectory(context.Background(), p.URL+"/directory")
	if err != nil || len(servers) != 3 {
		t.Fatalf("%v %+v", err, servers)
	}
	if _, err := c.FetchDirectory(context.Background(), p.URL+"/huge"); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("huge: %v, want ErrBodyTooLarge", err)
	}
	if _, err := c.FetchDirectory(context.Background(), strings.Replace(p.URL, "https", "http", 1)+"/directory"); !errors.Is(err, ErrInsecureScheme) {
		t.Fatalf("http: %v, want ErrInsecureScheme", err)
	}
	if _, err := New(safeOptions(t, z, clk)).FetchDirectory(context.Background(), p.URL+"/directory"); !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("loopback: %v, want ErrForbiddenAddress", err)
	}
}

func FuzzParseDirectory(f *testing.F) {
	plain := `{"federation":"F","servers":[{"url":"https://a.example.org","displayName":"A"},{"url":"http://[::1]:80/","name":"B"}]}`
	p := b64.EncodeToString([]byte(plain))
	prot := b64.EncodeToString([]byte(`{"alg":"ES256"}`))
	for _, s := range []string{
		plain, `[]`, `[{"url":"https://x","displayName":"x"}]`,
		prot + "." + p + ".AAAA",
		`{"payload":"` + p + `","protected":"` + prot + `","signature":"AAAA"}`,
		`{"payload":` + plain + `,"protected":{"alg":"ES256"},"signature":"..."}`,
		`{"payload":"` + p + `","signatures":[{"protected":"` + prot + `","signature":"AAAA"}]}`,
	} {
		f.Add([]byte(s))
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	keys := []crypto.PublicKey{ecKey.Public()}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDirectory(data, nil)
		if err != nil {
			if !errors.Is(err, ErrBadDirectory) {
				t.Fatalf("error %v does not wrap ErrBadDirectory", err)
			}
			return
		}
		if d.Verified {
			t.Fatal("verified without keys")
		}
		seen := map[string]bool{}
		for _, s := range d.Servers {
			h, err := serverHost(s.URL)
			if err != nil || h != s.Host || s.DisplayName == "" || seen[h] {
				t.Fatalf("bad server kept: %+v (%v)", s, err)
			}
			seen[h] = true
		}
		// Random input never verifies under a key it was not signed with.
		if d2, err := ParseDirectory(data, keys); err == nil && d2.Verified {
			t.Fatal("forged directory verified")
		}
	})
}
