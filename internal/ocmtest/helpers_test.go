package ocmtest

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/httpsig"
)

// newPeer starts a Server over a root directory holding a folder and a file:
//
//	folder/hello.txt      "hello, world\n"
//	folder/sub/deep.txt   "deep\n"
//	file.txt              "0123456789abcdefghij"
func newPeer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	write := func(name, content string) {
		p := filepath.Join(opts.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("folder/hello.txt", "hello, world\n")
	write("folder/sub/deep.txt", "deep\n")
	write("file.txt", "0123456789abcdefghij")
	return StartForTest(t, opts)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// captured is one request a testReceiver got.
type captured struct {
	Path     string
	Header   http.Header
	Body     []byte
	Verified *httpsig.Verified
	SigErr   error
}

// testReceiver is a minimal OCM receiver on loopback: discovery, a JWK Set
// with its own Ed25519 key (for signing token requests), and /shares and
// /notifications that record what they get and verify signatures against
// the peer's published keys.
type testReceiver struct {
	t    *testing.T
	srv  *httptest.Server
	host string
	key  httpsig.Key
	peer *Server

	mu           sync.Mutex
	got          []captured
	shareStatus  int
	shareAnswer  string
	capabilities []string
	criteria     []string
	noTokenEP    bool
}

func newReceiver(t *testing.T, peer *Server) *testReceiver {
	t.Helper()
	r := &testReceiver{t: t, peer: peer, shareStatus: http.StatusCreated, shareAnswer: `{"recipientDisplayName":"Bob"}`,
		capabilities: []string{"exchange-token", "http-sig", "notifications"}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(r.srv.URL, "http://")
	k, err := httpsig.GenerateEd25519(r.srv.URL + "/ocm#key1")
	if err != nil {
		t.Fatal(err)
	}
	r.key = k
	return r
}

// useKeyID republishes the receiver's key under another kid.
func (r *testReceiver) useKeyID(kid string) {
	r.mu.Lock()
	r.key.ID = kid
	r.mu.Unlock()
}

func (r *testReceiver) address(user string) string { return user + "@" + r.host }

func (r *testReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req.URL.Path {
	case "/.well-known/ocm":
		doc := map[string]any{
			"enabled": true, "apiVersion": "1.4.0", "endPoint": r.srv.URL + "/ocm",
			"resourceTypes": []any{map[string]any{"name": "file", "shareTypes": []string{"user"},
				"protocols": map[string]any{"webdav-receive": map[string]any{"uri": "relative"}}}},
			"capabilities": r.capabilities, "jwksUri": r.srv.URL + "/ocm/jwks",
		}
		if len(r.criteria) > 0 {
			doc["criteria"] = r.criteria
		}
		if !r.noTokenEP {
			doc["tokenEndPoint"] = r.srv.URL + "/ocm/token"
		}
		writeJSON(w, http.StatusOK, doc)
	case "/ocm/jwks":
		jwk, err := httpsig.PublicJWK(r.key.ID, httpsig.AlgEd25519, r.key.Public())
		if err != nil {
			writeJSON(w, 500, map[string]string{"message": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, httpsig.JWKS{Keys: []httpsig.JWK{jwk}})
	case "/ocm/shares", "/ocm/notifications":
		c := captured{Path: req.URL.Path, Header: req.Header.Clone(), Body: body}
		r.mu.Unlock()
		c.Verified, c.SigErr = httpsig.Verify(req.Context(), req, body, peerKeys{r.peer}, httpsig.VerifyOptions{
			TargetURI: r.srv.URL + req.URL.RequestURI()})
		r.mu.Lock()
		r.got = append(r.got, c)
		if req.URL.Path == "/ocm/shares" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(r.shareStatus)
			_, _ = io.WriteString(w, r.shareAnswer)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{})
	default:
		http.NotFound(w, req)
	}
}

func (r *testReceiver) captured(path string) []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []captured
	for _, c := range r.got {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

func (r *testReceiver) last(t *testing.T, path string) captured {
	t.Helper()
	c := r.captured(path)
	if len(c) == 0 {
		t.Fatalf("receiver got no request at %s", path)
	}
	return c[len(c)-1]
}

// signedTokenRequest builds a token request signed with the receiver's key.
func (r *testReceiver) signedTokenRequest(t *testing.T, url, contentType string, body []byte, key httpsig.Key) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if key.Private != nil {
		if err := httpsig.SignRFC9421(req, body, key, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

// peerKeys resolves the peer's keys by reading what it publishes, written
// independently of the server's own resolver.
type peerKeys struct{ s *Server }

func (p peerKeys) ResolveKey(ctx context.Context, keyID string) (crypto.PublicKey, error) {
	resp, err := p.s.Client().Get(p.s.URL() + "/ocm/jwks")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	set, err := httpsig.ParseJWKS(b)
	if err != nil {
		return nil, err
	}
	if pub, _, err := set.Lookup(keyID); err == nil {
		return pub, nil
	}
	resp2, err := p.s.Client().Get(p.s.URL() + "/.well-known/ocm")
	if err != nil {
		return nil, err
	}
	defer resp2.Body.Close()
	var doc struct {
		PublicKey struct{ KeyID, PublicKeyPem string } `json:"publicKey"`
	}
	if err := json.NewDecoder(resp2.Body).Decode(&doc); err != nil {
		return nil, err
	}
	if doc.PublicKey.KeyID != keyID {
		return nil, fmt.Errorf("%w: %s", httpsig.ErrUnknownKey, keyID)
	}
	return httpsig.ParsePublicKeyPEM(doc.PublicKey.PublicKeyPem)
}

// do sends a request to the peer and returns status, headers and body.
func do(t *testing.T, s *Server, method, url, auth string, body []byte, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, b
}

func bearer(s string) string { return "Bearer " + s }

func basic(secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))
}

// exchange gets an access token for a share over the 1.4 form contract,
// unsigned.
func exchange(t *testing.T, s *Server, clientID, code string) string {
	t.Helper()
	form := "grant_type=authorization_code&client_id=" + clientID + "&code=" + code
	st, _, b := do(t, s, http.MethodPost, s.TokenEndPoint(), "", []byte(form),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if st != http.StatusOK {
		t.Fatalf("token exchange: %d %s", st, b)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s: %v", b, err)
	}
	return tr.AccessToken
}

func nopBody(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
