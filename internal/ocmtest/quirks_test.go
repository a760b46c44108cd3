package ocmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/httpsig"
)

// The peer's own signature code, held to real traffic: it must verify what
// Nextcloud 34 and opencloudmesh-go really sent, and the product must
// verify what the peer signs (two independent implementations agreeing).

type wireCapture struct {
	Request struct {
		Method  string      `json:"method"`
		URL     string      `json:"url"`
		Headers [][2]string `json:"headers"`
		Body    struct {
			Data string `json:"data"`
		} `json:"body"`
	} `json:"request"`
	Response struct {
		Body struct {
			Data string `json:"data"`
		} `json:"body"`
	} `json:"response"`
}

func readCapture(t *testing.T, name string) wireCapture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "captures", name))
	if err != nil {
		t.Fatal(err)
	}
	var c wireCapture
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c wireCapture) request(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	u, err := url.Parse(c.Request.URL)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	raw.WriteString(c.Request.Method + " " + u.RequestURI() + " HTTP/1.1\r\n")
	for _, h := range c.Request.Headers {
		raw.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	raw.WriteString("\r\n" + c.Request.Body.Data)
	req, err := http.ReadRequest(bufio.NewReader(&raw))
	if err != nil {
		t.Fatal(err)
	}
	return req, []byte(c.Request.Body.Data)
}

func TestOwnVerifierAcceptsCapturedRealSignatures(t *testing.T) {
	doc, err := parseDiscovery([]byte(readCapture(t, "nextcloud-01-discovery.json").Response.Body.Data))
	if err != nil {
		t.Fatal(err)
	}
	ncKey, err := parsePEMKey(doc.PublicKey.PublicKeyPem)
	if err != nil {
		t.Fatal(err)
	}
	fromJWKS := func(name string) keyLookup {
		set := []byte(readCapture(t, name).Response.Body.Data)
		return func(kid string) (crypto.PublicKey, error) { return lookupJWK(set, kid) }
	}
	for _, c := range []struct {
		file    string
		keys    keyLookup
		at      time.Time
		profile string
	}{
		{"nextcloud-06-share-signed.json", func(kid string) (crypto.PublicKey, error) {
			if kid != doc.PublicKey.KeyID {
				return nil, errors.New("unknown key")
			}
			return ncKey, nil
		}, time.Date(2026, 12, 3, 10, 31, 40, 0, time.UTC), SignCavage},
		{"ocmgo-09-share-signed.json", fromJWKS("ocmgo-02-jwks.json"), time.Unix(1796294120, 0), SignRFC9421},
		{"ocmgo-12-token-exchange.json", fromJWKS("ocmgo-11-receiver-jwks.json"), time.Unix(1796294121, 0), SignRFC9421},
	} {
		t.Run(c.file, func(t *testing.T) {
			cp := readCapture(t, c.file)
			req, body := cp.request(t)
			o := verifyOptions{targetURI: cp.Request.URL, now: c.at.Add(time.Second)}
			v, err := verifyRequest(req, body, c.keys, o)
			if err != nil || v.Profile != c.profile {
				t.Fatalf("verify: %v, %+v", err, v)
			}
			body[len(body)/3] ^= 1
			if _, err := verifyRequest(req, body, c.keys, o); !errors.Is(err, errBadSignature) {
				t.Fatalf("a changed body verified: %v", err)
			}
		})
	}
}

// What the peer signs, the product verifies; and the draft-cavage form is
// Nextcloud's: rsa-sha512, Digest SHA-512, a keyId saying https.
func TestOwnSignaturesVerifyWithTheProduct(t *testing.T) {
	s := newPeer(t, Options{})
	keys := httpsig.KeyResolverFunc(func(_ context.Context, kid string) (crypto.PublicKey, error) {
		switch kid {
		case s.KeyID():
			return s.PublicKey(), nil
		case s.CavageKeyID():
			return s.RSAPublicKey(), nil
		}
		return nil, errors.New("unknown key")
	})
	body := []byte(`{"shareWith":"bob@127.0.0.1:1"}`)
	for _, profile := range []string{SignRFC9421, SignCavage, SignCavageSHA256} {
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/ocm/shares", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SignRequest(req, body, profile); err != nil {
			t.Fatal(err)
		}
		v, err := httpsig.Verify(context.Background(), req, body, keys, httpsig.VerifyOptions{})
		if err != nil {
			t.Fatalf("%s: the product does not verify the peer's signature: %v", profile, err)
		}
		switch profile {
		case SignCavage:
			sig := req.Header.Get("Signature")
			if v.Alg != httpsig.AlgCavageRSASHA512 || !strings.Contains(sig, `algorithm="rsa-sha512"`) ||
				!strings.HasPrefix(sig, `keyId="https://`) || !strings.HasPrefix(req.Header.Get("Digest"), "SHA-512=") {
				t.Fatalf("not Nextcloud's form: %s, Digest %s", sig, req.Header.Get("Digest"))
			}
		case SignCavageSHA256:
			if v.Alg != httpsig.AlgRSAV15SHA256 {
				t.Fatalf("alg %s", v.Alg)
			}
		}
	}
}

// reva answers any Range with 416 although it advertises byte ranges; a
// plain GET works.
func TestRevaRefusesRanges(t *testing.T) {
	s := newPeer(t, Options{RefuseRanges: true})
	sh, err := s.RegisterShare(ShareRequest{To: "bob@127.0.0.1:1", Path: "file.txt", Dialect: DialectReva})
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + sh.Secret
	st, _, b := do(t, s, http.MethodGet, s.WebDAVURL()+sh.ID, auth, nil, map[string]string{"Range": "bytes=0-3"})
	if st != http.StatusRequestedRangeNotSatisfiable || len(b) != 0 {
		t.Fatalf("Range GET: %d %q", st, b)
	}
	st, _, b = do(t, s, http.MethodGet, s.WebDAVURL()+sh.ID, auth, nil, nil)
	if st != http.StatusOK || string(b) != "0123456789abcdefghij" {
		t.Fatalf("plain GET: %d %q", st, b)
	}
}

// OpenCloud answers 500 for a share its user removed; other servers 401.
func TestOpenCloudRemovedShareAnswers500(t *testing.T) {
	for _, c := range []struct {
		emulate string
		want    int
	}{{"opencloud", http.StatusInternalServerError}, {"", http.StatusUnauthorized}} {
		var o Options
		if err := Emulate(&o, c.emulate); err != nil {
			t.Fatal(err)
		}
		s := newPeer(t, o)
		sh, err := s.RegisterShare(ShareRequest{To: "bob@127.0.0.1:1", Path: "file.txt", Dialect: DialectOCIS})
		if err != nil {
			t.Fatal(err)
		}
		auth := "Bearer " + sh.Secret
		if st, _, _ := do(t, s, http.MethodGet, s.WebDAVURL()+sh.ID, auth, nil, nil); st != http.StatusOK {
			t.Fatalf("%s: live share: %d", c.emulate, st)
		}
		s.RevokeShare(sh.ID)
		if st, _, _ := do(t, s, http.MethodGet, s.WebDAVURL()+sh.ID, auth, nil, nil); st != c.want {
			t.Fatalf("%q: removed share: %d, want %d", c.emulate, st, c.want)
		}
		if st, _, _ := do(t, s, http.MethodGet, s.WebDAVURL()+sh.ID, "Bearer wrong", nil, nil); st != http.StatusUnauthorized {
			t.Fatalf("%q: unknown credentials: %d", c.emulate, st)
		}
		s.RestoreShare(sh.ID)
		if st, _, _ := do(t, s, http.MethodGet, s.WebDAVURL()+sh.ID, auth, nil, nil); st != http.StatusOK {
			t.Fatalf("%q: restored share: %d", c.emulate, st)
		}
	}
}

// opencloudmesh-go answers 200 and refuses a decline after an accept.
func TestOCMGoNotificationAnswers(t *testing.T) {
	s := newPeer(t, Options{OCMGoNotifications: true})
	sh, err := s.RegisterShare(ShareRequest{To: "bob@127.0.0.1:1", Path: "file.txt", Dialect: DialectOCMGo})
	if err != nil {
		t.Fatal(err)
	}
	post := func(typ string) (int, string) {
		body := `{"notificationType":"` + typ + `","resourceType":"file","providerId":"` + sh.ProviderID + `","notification":{}}`
		st, _, b := do(t, s, http.MethodPost, s.EndPoint()+"/notifications", "", []byte(body), map[string]string{"Content-Type": "application/json"})
		return st, string(b)
	}
	if st, b := post(ShareAccepted); st != http.StatusOK || !strings.Contains(b, `"status":"ok"`) {
		t.Fatalf("accept: %d %s", st, b)
	}
	if st, b := post(ShareDeclined); st != http.StatusConflict || !strings.Contains(b, "SHARE_STATUS_CONFLICT") {
		t.Fatalf("decline after accept: %d %s", st, b)
	}
	if st, _ := post(ShareUnshared); st != http.StatusOK {
		t.Fatalf("unshare: %d", st)
	}
}

// Nextcloud reads every Signature field as draft-cavage: an RFC 9421
// signature gets 400 "Invalid signature"; its own cloud ids keep http.
func TestNextcloudQuirks(t *testing.T) {
	s := newPeer(t, Options{ReadSignaturesAsCavage: true})
	recv := newReceiver(t, s)
	sh, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("bob"), Path: "folder", Dialect: DialectNextcloudSender})
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(sh.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["owner"] != "alice@"+s.URL() || body["sender"] != "alice@"+s.URL() || body["resourceType"] != "file" {
		t.Fatalf("owner %v sender %v resourceType %v", body["owner"], body["sender"], body["resourceType"])
	}
	if p := body["protocol"].(map[string]any)["options"].(map[string]any)["permissions"]; p != nextcloudPermissions {
		t.Fatalf("permissions %v", p)
	}
	n := []byte(`{"notificationType":"SHARE_ACCEPTED","resourceType":"file","providerId":"` + sh.ProviderID + `","notification":{}}`)
	if st, b := postSigned(t, s, "/ocm/notifications", n, recv.key); st != http.StatusBadRequest || !strings.Contains(string(b), "Invalid signature") {
		t.Fatalf("an RFC 9421 signed notification got %d %s", st, b)
	}
}

func TestEmulate(t *testing.T) {
	var o Options
	if err := Emulate(&o, "reva"); err != nil || !o.RefuseRanges {
		t.Fatalf("reva: %v %+v", err, o)
	}
	if err := Emulate(&o, "ocmgo"); err != nil || !o.NoPropfindOnFiles || !o.OCMGoNotifications || !o.RequireSignedTokenRequests {
		t.Fatalf("ocmgo: %v %+v", err, o)
	}
	if err := Emulate(&o, "nextcloud"); err != nil || !o.ReadSignaturesAsCavage {
		t.Fatalf("nextcloud: %v", err)
	}
	if err := Emulate(&o, "opencloud"); err != nil || !o.ServerErrorForRevoked {
		t.Fatalf("opencloud: %v", err)
	}
	if err := Emulate(&o, "seafile"); err == nil {
		t.Fatal("an unknown server was accepted")
	}
}
