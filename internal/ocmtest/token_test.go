package ocmtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/httpsig"
	"github.com/ocm-agent/ocm-agent/ocm"
)

const formType = "application/x-www-form-urlencoded"

func form(vals map[string]string) []byte {
	v := url.Values{}
	for k, x := range vals {
		v.Set(k, x)
	}
	return []byte(v.Encode())
}

type tokenReply struct {
	ocm.TokenResponse
	ocm.TokenError
}

func postToken(t *testing.T, s *Server, contentType string, body []byte) (int, http.Header, tokenReply) {
	t.Helper()
	st, hdr, b := do(t, s, http.MethodPost, s.TokenEndPoint(), "", body, map[string]string{"Content-Type": contentType})
	var a tokenReply
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("token endpoint answered non-JSON %q: %v", b, err)
	}
	return st, hdr, a
}

func TestTokenFormContract(t *testing.T) {
	s := newPeer(t, Options{TokenLifetime: 90 * time.Second})
	sh := register(t, s, ShareRequest{Path: "folder", To: "bob@127.0.0.1:9200"})
	st, hdr, a := postToken(t, s, formType, form(map[string]string{
		"grant_type": "authorization_code", "client_id": "127.0.0.1:9200", "code": sh.Secret,
		"redirect_uri": "https://ignored.example/cb"}))
	if st != http.StatusOK {
		t.Fatalf("status %d (%s)", st, a.Error)
	}
	if a.AccessToken == "" || a.TokenType != "Bearer" || a.ExpiresIn != 90 || a.RefreshToken != "" {
		t.Fatalf("1.4 token response %+v: want a Bearer token for 90 s and no refresh token", a.TokenResponse)
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", hdr.Get("Cache-Control"))
	}
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath()+"/hello.txt", bearer(a.AccessToken), nil, nil); st != http.StatusOK {
		t.Fatalf("issued token at WebDAV: %d", st)
	}
	reqs := s.TokenRequests()
	if len(reqs) != 1 || reqs[0].Contract != ContractForm || reqs[0].ClientID != "127.0.0.1:9200" || reqs[0].ShareID != sh.ID || reqs[0].Status != 200 {
		t.Fatalf("recorded token requests %+v", reqs)
	}
}

func TestTokenInvalidGrant(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
		want int
	}{{"spec", Options{}, http.StatusBadRequest}, {"nextcloud", Options{NextcloudStyleErrors: true}, http.StatusUnauthorized}} {
		t.Run(c.name, func(t *testing.T) {
			s := newPeer(t, c.opts)
			st, _, a := postToken(t, s, formType, form(map[string]string{
				"grant_type": "authorization_code", "client_id": "127.0.0.1:9200", "code": "no-such-code"}))
			if st != c.want || a.Error != "invalid_grant" {
				t.Fatalf("unknown code: %d %q, want %d invalid_grant", st, a.Error, c.want)
			}
		})
	}
}

func TestTokenRequestErrors(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder", To: "bob@127.0.0.1:9200"})
	for _, c := range []struct {
		name, contentType string
		body              []byte
		status            int
		code              string
	}{
		{"no client_id", formType, form(map[string]string{"grant_type": "authorization_code", "code": sh.Secret}), 400, "invalid_request"},
		{"no grant_type", formType, form(map[string]string{"client_id": "127.0.0.1:9200", "code": sh.Secret}), 400, "invalid_request"},
		{"other grant", formType, form(map[string]string{"grant_type": "password", "client_id": "127.0.0.1:9200", "code": sh.Secret}), 400, "unsupported_grant_type"},
		{"legacy grant in a form", formType, form(map[string]string{"grant_type": "ocm_authorization_code", "client_id": "127.0.0.1:9200", "code": sh.Secret}), 400, "unsupported_grant_type"},
		{"client_id of another provider", formType, form(map[string]string{"grant_type": "authorization_code", "client_id": "evil.example", "code": sh.Secret}), 400, "invalid_client"},
		{"text body", "text/plain", []byte("grant_type=authorization_code"), 400, "invalid_request"},
		{"bad JSON", "application/json", []byte(`{"grant_type":`), 400, "invalid_request"},
		{"duplicate JSON keys", "application/json", []byte(`{"grant_type":"ocm_authorization_code","client_id":"127.0.0.1:9200","code":"x","code":"` + sh.Secret + `"}`), 400, "invalid_request"},
	} {
		st, _, a := postToken(t, s, c.contentType, c.body)
		if st != c.status || a.Error != c.code {
			t.Errorf("%s: %d %q, want %d %q", c.name, st, a.Error, c.status, c.code)
		}
	}
	if st, _, _ := do(t, s, http.MethodGet, s.TokenEndPoint(), "", nil, nil); st != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", st)
	}
}

func TestTokenLegacyJSONContractAndRefresh(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder", To: "bob@127.0.0.1:9200", MustExchangeToken: true})
	file := s.URL() + sh.WebDAVPath() + "/hello.txt"
	body, _ := json.Marshal(map[string]string{"grant_type": "ocm_authorization_code", "client_id": "127.0.0.1:9200", "code": sh.Secret})
	st, _, a := postToken(t, s, "application/json", body)
	if st != http.StatusOK || a.AccessToken == "" || a.RefreshToken == "" || a.TokenType != "bearer" {
		t.Fatalf("legacy contract: %d %+v", st, a.TokenResponse)
	}
	if st, _, _ := do(t, s, http.MethodGet, file, bearer(a.AccessToken), nil, nil); st != http.StatusOK {
		t.Fatalf("token: %d", st)
	}

	s.ExpireTokensNow()
	if st, _, _ := do(t, s, http.MethodGet, file, bearer(a.AccessToken), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("expired token: %d, want 401", st)
	}

	body, _ = json.Marshal(map[string]string{"grant_type": "refresh_token", "refresh_token": a.RefreshToken})
	st, _, r := postToken(t, s, "application/json", body)
	if st != http.StatusOK || r.AccessToken == "" || r.AccessToken == a.AccessToken || r.RefreshToken == a.RefreshToken {
		t.Fatalf("refresh: %d %+v", st, r.TokenResponse)
	}
	if st, _, _ := do(t, s, http.MethodGet, file, bearer(r.AccessToken), nil, nil); st != http.StatusOK {
		t.Fatalf("refreshed token: %d", st)
	}
	// Refresh tokens rotate: the old one is spent.
	if st, _, e := postToken(t, s, "application/json", body); st != http.StatusBadRequest || e.Error != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %q", st, e.Error)
	}
	// The form-encoded refresh grant works too.
	st, _, f := postToken(t, s, formType, form(map[string]string{"grant_type": "refresh_token", "refresh_token": r.RefreshToken}))
	if st != http.StatusOK || f.AccessToken == "" {
		t.Fatalf("form refresh: %d %q", st, f.Error)
	}
}

func TestTokenLifetimeAndExpiry(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "file.txt", To: "bob@127.0.0.1:9200"})
	s.SetTokenLifetime(time.Hour)
	st, _, a := postToken(t, s, formType, form(map[string]string{"grant_type": "authorization_code", "client_id": "127.0.0.1:9200", "code": sh.Secret}))
	if st != http.StatusOK || a.ExpiresIn != 3600 {
		t.Fatalf("%d expires_in %d, want 3600", st, a.ExpiresIn)
	}
	s.ExpireTokensNow()
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath(), bearer(a.AccessToken), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("token after ExpireTokensNow: %d, want 401", st)
	}
	// A new exchange gives a working token again.
	tok := exchange(t, s, "127.0.0.1:9200", sh.Secret)
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath(), bearer(tok), nil, nil); st != http.StatusOK {
		t.Fatalf("new token: %d", st)
	}
}

func TestTokenLegacyCode(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder", To: "bob@127.0.0.1:9200", LegacyCode: true})
	if sh.Secret != "" || sh.Code == "" {
		t.Fatalf("a legacy-code share has a code and no secret: secret set %v, code set %v", sh.Secret != "", sh.Code != "")
	}
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath()+"/hello.txt", bearer(sh.Code), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("the code itself is no WebDAV credential: %d", st)
	}
	body, _ := json.Marshal(map[string]string{"grant_type": "ocm_authorization_code", "client_id": "127.0.0.1:9200", "code": sh.Code})
	st, _, a := postToken(t, s, "application/json", body)
	if st != http.StatusOK {
		t.Fatalf("code exchange: %d %q", st, a.Error)
	}
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath()+"/hello.txt", bearer(a.AccessToken), nil, nil); st != http.StatusOK {
		t.Fatalf("token from the code: %d", st)
	}
}

func TestTokenSignatureRequired(t *testing.T) {
	s := newPeer(t, Options{RequireSignedTokenRequests: true})
	recv := newReceiver(t, s)
	other := newReceiver(t, s)
	sh := register(t, s, ShareRequest{Path: "folder", To: recv.address("bob"), MustExchangeToken: true})
	body := form(map[string]string{"grant_type": "authorization_code", "client_id": recv.host, "code": sh.Secret})

	send := func(req *http.Request) (int, tokenReply) {
		t.Helper()
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a tokenReply
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, a
	}

	if st, a := send(recv.signedTokenRequest(t, s.TokenEndPoint(), formType, body, httpsig.Key{})); st != http.StatusUnauthorized || a.Error != "invalid_client" {
		t.Fatalf("unsigned: %d %q, want 401 invalid_client", st, a.Error)
	}
	st, a := send(recv.signedTokenRequest(t, s.TokenEndPoint(), formType, body, recv.key))
	if st != http.StatusOK || a.AccessToken == "" {
		t.Fatalf("signed with an absolute keyid: %d %q", st, a.Error)
	}

	// A keyid without scheme is looked up over https, then http on loopback.
	recv.useKeyID(recv.host + "#key1")
	k := recv.key
	k.ID = recv.host + "#key1"
	if st, a := send(recv.signedTokenRequest(t, s.TokenEndPoint(), formType, body, k)); st != http.StatusOK {
		t.Fatalf("signed with a keyid without scheme: %d %q", st, a.Error)
	}

	// Signed by another provider than client_id.
	if st, a := send(recv.signedTokenRequest(t, s.TokenEndPoint(), formType, body, other.key)); st != http.StatusBadRequest || a.Error != "invalid_client" {
		t.Fatalf("signed by another host: %d %q, want 400 invalid_client", st, a.Error)
	}

	// A key that is not the published one.
	forged, err := httpsig.GenerateEd25519(k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st, a := send(recv.signedTokenRequest(t, s.TokenEndPoint(), formType, body, forged)); st != http.StatusUnauthorized {
		t.Fatalf("signed with an unpublished key: %d %q, want 401", st, a.Error)
	}

	// A body changed after signing.
	tampered := form(map[string]string{"grant_type": "authorization_code", "client_id": recv.host, "code": sh.Secret + "x"})
	req := recv.signedTokenRequest(t, s.TokenEndPoint(), formType, body, k)
	req.Body = nopBody(tampered)
	req.ContentLength = int64(len(tampered))
	if st, _ := send(req); st != http.StatusUnauthorized && st != http.StatusBadRequest {
		t.Fatalf("tampered body: %d, want a refusal", st)
	}

	var signed, verified int
	for _, r := range s.TokenRequests() {
		if r.Signature.Present {
			signed++
		}
		if r.Signature.Verified {
			verified++
		}
	}
	if signed != 5 || verified != 3 {
		t.Fatalf("recorded %d signed and %d verified token requests, want 5 and 3", signed, verified)
	}
}

func TestRevokeShareInvalidatesCodeAndTokens(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "folder", To: "bob@127.0.0.1:9200"})
	tok := exchange(t, s, "127.0.0.1:9200", sh.Secret)
	s.RevokeShare(sh.ID)
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath()+"/hello.txt", bearer(tok), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("token of a revoked share: %d, want 401", st)
	}
	st, _, a := postToken(t, s, formType, form(map[string]string{"grant_type": "authorization_code", "client_id": "127.0.0.1:9200", "code": sh.Secret}))
	if st != http.StatusBadRequest || a.Error != "invalid_grant" {
		t.Fatalf("code of a revoked share: %d %q, want 400 invalid_grant", st, a.Error)
	}
	if got, _ := s.Share(sh.ID); got.State != ShareStateRevoked {
		t.Fatalf("state %q", got.State)
	}
}
