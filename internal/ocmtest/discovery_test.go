package ocmtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/httpsig"
	"github.com/ocm-agent/ocm-agent/ocm"
)

func TestDiscoveryDocument(t *testing.T) {
	s := newPeer(t, Options{Criteria: []string{"must-use-http-sig"}})
	for _, path := range []string{"/.well-known/ocm", "/ocm-provider", "/ocm-provider/"} {
		st, hdr, body := do(t, s, http.MethodGet, s.URL()+path, "", nil, nil)
		if st != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s", path, st, hdr.Get("Content-Type"))
		}
		d, err := ocm.ParseDiscovery(body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !d.Enabled || d.APIVersion != ocm.APIVersion || d.EndPoint != s.URL()+"/ocm" ||
			d.TokenEndPoint != s.URL()+"/ocm/token" || d.JWKSURI != s.URL()+"/ocm/jwks" || d.InviteAcceptDialog == "" {
			t.Fatalf("%s: %+v", path, d)
		}
		if d.WebDAVRoot() != s.URL()+WebDAVRoot {
			t.Fatalf("%s: WebDAV root %q", path, d.WebDAVRoot())
		}
		for _, c := range DefaultCapabilities {
			if !d.HasCapability(c) {
				t.Errorf("%s: capability %s missing", path, c)
			}
		}
		if !d.HasCriterion("must-use-http-sig") {
			t.Errorf("%s: criterion missing", path)
		}
		var names []string
		for _, rt := range d.ResourceTypes {
			names = append(names, rt.Name)
		}
		if strings.Join(names, ",") != "file,folder" {
			t.Errorf("%s: resource types %v", path, names)
		}
		pub, err := httpsig.ParsePublicKeyPEM(d.PublicKey.PublicKeyPem)
		if err != nil || d.PublicKey.KeyID != s.CavageKeyID() || !s.RSAPublicKey().Equal(pub.(*rsa.PublicKey)) {
			t.Errorf("%s: legacy publicKey %q: %v", path, d.PublicKey.KeyID, err)
		}
	}
}

func TestDiscoveryHookAndCapabilities(t *testing.T) {
	s := newPeer(t, Options{
		Capabilities:  []string{},
		APIVersion:    "1.1.0",
		DiscoveryHook: func(doc map[string]any) { delete(doc, "jwksUri") },
	})
	_, _, body := do(t, s, http.MethodGet, s.URL()+"/.well-known/ocm", "", nil, nil)
	d, err := ocm.ParseDiscovery(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Capabilities) != 0 || d.APIVersion != "1.1.0" || d.JWKSURI != "" {
		t.Fatalf("hooked document %s", body)
	}
}

func TestJWKS(t *testing.T) {
	s := newPeer(t, Options{})
	_, _, body := do(t, s, http.MethodGet, s.URL()+"/ocm/jwks", "", nil, nil)
	set, err := httpsig.ParseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.KeyID(), s.URL()+"/ocm#") {
		t.Fatalf("kid %q is not absolute", s.KeyID())
	}
	pub, alg, err := set.Lookup(s.KeyID())
	if err != nil || alg != httpsig.AlgEd25519 || !s.PublicKey().Equal(pub.(ed25519.PublicKey)) {
		t.Fatalf("lookup %s: %v %v", s.KeyID(), alg, err)
	}

	old := s.KeyID()
	if err := s.RotateSigningKey(true); err != nil {
		t.Fatal(err)
	}
	_, _, body = do(t, s, http.MethodGet, s.URL()+"/ocm/jwks", "", nil, nil)
	set, _ = httpsig.ParseJWKS(body)
	if s.KeyID() == old {
		t.Fatal("rotation kept the kid")
	}
	if _, _, err := set.Lookup(old); err != nil {
		t.Fatalf("old key dropped although kept: %v", err)
	}
	if _, _, err := set.Lookup(s.KeyID()); err != nil {
		t.Fatalf("new key missing: %v", err)
	}
	if err := s.RotateSigningKey(false); err != nil {
		t.Fatal(err)
	}
	_, _, body = do(t, s, http.MethodGet, s.URL()+"/ocm/jwks", "", nil, nil)
	set, _ = httpsig.ParseJWKS(body)
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys after a rotation without keeping", len(set.Keys))
	}
}

func TestHTTPSWithTestCA(t *testing.T) {
	s := newPeer(t, Options{TLS: true})
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %q", s.URL())
	}
	if !bytes.Contains(s.CACertPEM(), []byte("BEGIN CERTIFICATE")) {
		t.Fatal("no CA PEM")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool()}}}
	resp, err := client.Get(s.URL() + "/.well-known/ocm")
	if err != nil {
		t.Fatalf("GET with the CA pool: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	untrusting := &http.Client{Timeout: 10 * time.Second}
	if resp, err := untrusting.Get(s.URL() + "/.well-known/ocm"); err == nil {
		resp.Body.Close()
		t.Fatal("a client without the test CA trusted the server")
	}

	// A share over HTTPS: signed with an https kid, read over TLS.
	recv := newReceiver(t, s)
	sh, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("bob"), Path: "folder", AbsoluteURI: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := recv.last(t, "/ocm/shares"); got.SigErr != nil {
		t.Fatalf("signature over https: %v", got.SigErr)
	}
	if st, _, b := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath()+"/hello.txt", bearer(sh.Secret), nil, nil); st != http.StatusOK || string(b) != "hello, world\n" {
		t.Fatalf("WebDAV over https: %d %q", st, b)
	}
}
