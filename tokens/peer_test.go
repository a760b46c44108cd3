package tokens

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// testPeer is a small sending server with both token contracts and a
// WebDAV-like resource that checks the Authorization header:
//
//	POST /ocm/token        1.4: form-encoded authorization_code, signed
//	POST /ocm/legacy/token older drafts: JSON ocm_authorization_code / refresh_token
//	GET  /dav/...          200 for an accepted credential, else 401
type testPeer struct {
	t        *testing.T
	srv      *httptest.Server
	clientID string
	sigKey   []byte

	mu             sync.Mutex
	codes          map[string]bool // codes the token endpoints accept
	refresh        map[string]bool
	tokens         map[string]bool // issued and not revoked
	davSecrets     map[string]bool // secrets /dav accepts as Bearer
	basicSecrets   map[string]bool // secrets /dav accepts as Basic <secret>:
	expiresIn      int
	rejectStatus   int // 400 (spec) or 401 (Nextcloud) for an invalid grant
	failStatus     int // when set, the token endpoints answer this
	issueRefresh   bool
	rotateRefresh  bool
	echoCode       bool // a careless peer echoing the code in its error
	n              int
	exchanges      atomic.Int64 // 1.4 requests
	legacyCodes    atomic.Int64 // legacy code requests
	refreshes      atomic.Int64 // legacy refresh requests
	unauthorized   atomic.Int64 // 401s from /dav
	badSignatures  atomic.Int64
	acceptedDavReq atomic.Int64
}

func newTestPeer(t *testing.T) *testPeer {
	p := &testPeer{
		t:            t,
		clientID:     "receiver.test:8443",
		sigKey:       []byte("test signing key"),
		codes:        map[string]bool{},
		refresh:      map[string]bool{},
		tokens:       map[string]bool{},
		davSecrets:   map[string]bool{},
		basicSecrets: map[string]bool{},
		expiresIn:    300,
		rejectStatus: http.StatusBadRequest,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ocm/token", p.token)
	mux.HandleFunc("POST /ocm/legacy/token", p.legacyToken)
	mux.HandleFunc("/dav/", p.dav)
	p.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testPeer) tokenURL() string       { return p.srv.URL + "/ocm/token" }
func (p *testPeer) legacyTokenURL() string { return p.srv.URL + "/ocm/legacy/token" }
func (p *testPeer) davURL() string         { return p.srv.URL + "/dav/file.txt" }

func (p *testPeer) set(f func(p *testPeer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// revokeTokens makes every issued access token invalid, as a server
// restart or an early expiry would.
func (p *testPeer) revokeTokens() {
	p.set(func(p *testPeer) { p.tokens = map[string]bool{} })
}

// testSignature stands in for the RFC 9421 signature the agent's httpsig
// signer makes: it proves the signer is handed the exact body sent.
func testSignature(key []byte, method, path string, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s %s\n", method, path)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

type testSigner struct{ key []byte }

func (s testSigner) SignRequest(req *http.Request, body []byte) error {
	req.Header.Set("X-Test-Signature", testSignature(s.key, req.Method, req.URL.Path, body))
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (p *testPeer) readSigned(w http.ResponseWriter, r *http.Request, contentType string) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return nil, false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != contentType {
		writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "content type " + mt})
		return nil, false
	}
	if !hmac.Equal([]byte(r.Header.Get("X-Test-Signature")), []byte(testSignature(p.sigKey, r.Method, r.URL.Path, body))) {
		p.badSignatures.Add(1)
		writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "bad signature"})
		return nil, false
	}
	return body, true
}

func (p *testPeer) issueLocked(withRefresh bool) map[string]any {
	p.n++
	tok := fmt.Sprintf("tok-%d-%s", p.n, strings.Repeat("x", 8))
	p.tokens[tok] = true
	resp := map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": p.expiresIn}
	if withRefresh {
		rt := fmt.Sprintf("refresh-%d", p.n)
		p.refresh[rt] = true
		resp["refresh_token"] = rt
	}
	return resp
}

func (p *testPeer) reject(w http.ResponseWriter, code string) {
	if p.rejectStatus == http.StatusUnauthorized {
		// Nextcloud's answer: 401 with its own body, no OAuth error code.
		writeJSON(w, 401, map[string]string{"message": "Invalid token"})
		return
	}
	desc := "unknown code"
	if p.echoCode {
		desc = "unknown code " + code
	}
	writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": desc})
}

func (p *testPeer) token(w http.ResponseWriter, r *http.Request) {
	p.exchanges.Add(1)
	body, ok := p.readSigned(w, r, "application/x-www-form-urlencoded")
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failStatus != 0 {
		writeJSON(w, p.failStatus, map[string]string{"error": "server_error"})
		return
	}
	form, err := parseStrictForm(string(body))
	switch {
	case err != nil:
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
	case form["grant_type"] != GrantAuthorizationCode:
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
	case form["client_id"] != p.clientID:
		writeJSON(w, 400, map[string]string{"error": "invalid_client"})
	case !p.codes[form["code"]]:
		p.reject(w, form["code"])
	default:
		writeJSON(w, 200, p.issueLocked(false))
	}
}

// parseStrictForm parses a form body with each field exactly once.
func parseStrictForm(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, "&") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("bad pair")
		}
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad escape")
		}
		if _, dup := out[dk]; dup {
			return nil, fmt.Errorf("duplicate %s", dk)
		}
		out[dk] = dv
	}
	return out, nil
}

func (p *testPeer) legacyToken(w http.ResponseWriter, r *http.Request) {
	body, ok := p.readSigned(w, r, "application/json")
	if !ok {
		return
	}
	var req map[string]string
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failStatus != 0 {
		writeJSON(w, p.failStatus, map[string]string{"error": "server_error"})
		return
	}
	if req["client_id"] != p.clientID {
		writeJSON(w, 400, map[string]string{"error": "invalid_client"})
		return
	}
	switch req["grant_type"] {
	case GrantLegacyCode:
		p.legacyCodes.Add(1)
		if !p.codes[req["code"]] {
			// The older contract: 403 "Token denied".
			writeJSON(w, 403, map[string]string{"message": "Token denied"})
			return
		}
		writeJSON(w, 200, p.issueLocked(p.issueRefresh))
	case GrantRefreshToken:
		p.refreshes.Add(1)
		rt := req["refresh_token"]
		if !p.refresh[rt] {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
			return
		}
		resp := p.issueLocked(p.rotateRefresh)
		if p.rotateRefresh {
			delete(p.refresh, rt)
		}
		writeJSON(w, 200, resp)
	default:
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
	}
}

func (p *testPeer) dav(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Get("Authorization")
	p.mu.Lock()
	ok := false
	switch {
	case strings.HasPrefix(h, "Bearer "):
		v := strings.TrimPrefix(h, "Bearer ")
		ok = p.tokens[v] || p.davSecrets[v]
	case strings.HasPrefix(h, "Basic "):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		if user, pass, found := strings.Cut(string(raw), ":"); err == nil && found && pass == "" {
			ok = p.basicSecrets[user]
		}
	}
	p.mu.Unlock()
	if !ok {
		p.unauthorized.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	p.acceptedDavReq.Add(1)
	_, _ = io.WriteString(w, "content")
}
