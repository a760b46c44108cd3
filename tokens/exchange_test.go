package tokens

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func testExchanger(p *testPeer) *Exchanger {
	return &Exchanger{Client: p.srv.Client(), Signer: testSigner{key: p.sigKey}, AllowInsecure: true, Timeout: 5 * time.Second}
}

func TestExchangeFormContract(t *testing.T) {
	p := newTestPeer(t)
	p.set(func(p *testPeer) { p.codes["code-1"] = true; p.expiresIn = 120 })
	tok, err := testExchanger(p).Exchange(context.Background(), p.tokenURL(), p.clientID, "code-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "tok-") || tok.TokenType != "Bearer" || tok.ExpiresIn != 120*time.Second || tok.RefreshToken != "" {
		t.Fatalf("token %+v", tok)
	}
	if p.badSignatures.Load() != 0 {
		t.Fatal("the signature did not cover the body sent")
	}
	// Unsigned requests are refused by this peer.
	e := testExchanger(p)
	e.Signer = nil
	if _, err := e.Exchange(context.Background(), p.tokenURL(), p.clientID, "code-1"); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("unsigned: %v, want invalid_client", err)
	}
}

func TestExchangeInvalidGrant(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			p := newTestPeer(t)
			p.set(func(p *testPeer) { p.rejectStatus = status })
			_, err := testExchanger(p).Exchange(context.Background(), p.tokenURL(), p.clientID, "wrong-code")
			if !errors.Is(err, ErrInvalidGrant) || !errors.Is(err, ErrTokenEndpoint) {
				t.Fatalf("err = %v, want invalid_grant", err)
			}
			var te *TokenError
			if !errors.As(err, &te) || te.Status != status || te.Temporary() {
				t.Fatalf("TokenError %+v", te)
			}
		})
	}
}

func TestExchangeErrorCodes(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   error
		not    error
	}{
		{400, `{"error":"invalid_request"}`, ErrInvalidRequest, ErrInvalidGrant},
		{400, `{"error":"invalid_client"}`, ErrInvalidClient, ErrInvalidGrant},
		{401, `{"error":"invalid_client"}`, ErrInvalidClient, ErrInvalidGrant},
		{400, `{"error":"unauthorized_client"}`, ErrUnauthorizedClient, ErrInvalidGrant},
		{400, `{"error":"unsupported_grant_type"}`, ErrUnsupportedGrantType, ErrInvalidGrant},
		{403, `{"message":"Token denied"}`, ErrInvalidGrant, nil},
		{401, `not json`, ErrInvalidGrant, nil},
		{400, `{"error":"something_else"}`, ErrTokenEndpoint, ErrInvalidGrant},
		{500, `{"error":"server_error"}`, ErrTokenEndpoint, ErrInvalidGrant},
		{404, ``, ErrTokenEndpoint, ErrInvalidGrant},
		{302, ``, ErrTokenEndpoint, ErrInvalidGrant},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d %s", c.status, c.body), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			defer srv.Close()
			e := &Exchanger{Client: srv.Client(), AllowInsecure: true}
			_, err := e.Exchange(context.Background(), srv.URL+"/token", "me.test", "code")
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.not != nil && errors.Is(err, c.not) {
				t.Fatalf("err = %v also matches %v", err, c.not)
			}
		})
	}
}

func TestExchangeStrictParsing(t *testing.T) {
	bad := map[string]string{
		"not json":          `<html>`,
		"array":             `[{"access_token":"a","token_type":"Bearer"}]`,
		"duplicate key":     `{"access_token":"a","access_token":"b","token_type":"Bearer"}`,
		"trailing data":     `{"access_token":"a","token_type":"Bearer"} {}`,
		"no token":          `{"token_type":"Bearer","expires_in":60}`,
		"empty token":       `{"access_token":"","token_type":"Bearer"}`,
		"token with space":  `{"access_token":"a b","token_type":"Bearer"}`,
		"token with CRLF":   `{"access_token":"a\r\nX-Evil: 1","token_type":"Bearer"}`,
		"token not string":  `{"access_token":42,"token_type":"Bearer"}`,
		"wrong type":        `{"access_token":"a","token_type":"mac"}`,
		"missing type":      `{"access_token":"a"}`,
		"expires as string": `{"access_token":"a","token_type":"Bearer","expires_in":"60"}`,
		"expires fraction":  `{"access_token":"a","token_type":"Bearer","expires_in":1.5}`,
		"expires negative":  `{"access_token":"a","token_type":"Bearer","expires_in":-1}`,
		"huge token":        `{"access_token":"` + strings.Repeat("a", maxTokenLen+1) + `","token_type":"Bearer"}`,
		"oversized body":    `{"access_token":"a","token_type":"Bearer","pad":"` + strings.Repeat(" ", maxTokenResponse) + `"}`,
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, body)
			}))
			defer srv.Close()
			e := &Exchanger{Client: srv.Client(), AllowInsecure: true}
			tok, err := e.Exchange(context.Background(), srv.URL+"/token", "me.test", "code")
			if !errors.Is(err, ErrBadTokenResponse) {
				t.Fatalf("accepted %+v (err %v)", tok, err)
			}
		})
	}
	// Lower-case "bearer" (older servers) and extra members are fine.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"access_token":"eyJ.abc-_~+/=","token_type":"bearer","expires_in":60,"scope":"x"}`)
	}))
	defer srv.Close()
	e := &Exchanger{Client: srv.Client(), AllowInsecure: true}
	if tok, err := e.Exchange(context.Background(), srv.URL, "me.test", "code"); err != nil || tok.AccessToken != "eyJ.abc-_~+/=" {
		t.Fatalf("%+v %v", tok, err)
	}
}

func TestExchangeRefusesInsecureEndpointsAndRedirects(t *testing.T) {
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, `{"access_token":"a","token_type":"Bearer"}`)
	}))
	defer target.Close()
	e := &Exchanger{Client: target.Client()}
	for _, ep := range []string{target.URL + "/token", "https://user:pw@peer.test/token", "/relative", ""} {
		if _, err := e.Exchange(context.Background(), ep, "me.test", "code"); err == nil {
			t.Fatalf("%q accepted", ep)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("a code was sent over http without AllowInsecure")
	}
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/token", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	e = &Exchanger{Client: redirector.Client(), AllowInsecure: true}
	if _, err := e.Exchange(context.Background(), redirector.URL, "me.test", "code"); err == nil {
		t.Fatal("a redirect answer was taken as a token")
	}
	if hits.Load() != 0 {
		t.Fatal("the redirect was followed with the code")
	}
}

func TestExchangeTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	defer close(release)
	e := &Exchanger{Client: srv.Client(), AllowInsecure: true, Timeout: 100 * time.Millisecond}
	_, err := e.Exchange(context.Background(), srv.URL, "me.test", "code")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
}

func TestExchangeErrorsNeverCarryTheCode(t *testing.T) {
	p := newTestPeer(t)
	p.set(func(p *testPeer) { p.echoCode = true })
	code := "canary-code-5b1e0d"
	_, err := testExchanger(p).Exchange(context.Background(), p.tokenURL()+"?q=1", p.clientID, code)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), code) || strings.Contains(fmt.Sprintf("%+v", err), code) {
		t.Fatalf("the code leaked into the error: %v", err)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("the peer's echo was not redacted: %v", err)
	}
	if strings.Contains(err.Error(), "q=1") {
		t.Fatalf("the endpoint's query is in the error: %v", err)
	}
}

func TestExchangeLegacyContract(t *testing.T) {
	p := newTestPeer(t)
	p.set(func(p *testPeer) { p.codes["legacy-code"] = true; p.issueRefresh = true; p.rotateRefresh = true })
	e := testExchanger(p)
	tok, err := e.ExchangeLegacy(context.Background(), p.legacyTokenURL(), p.clientID, "legacy-code")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" {
		t.Fatalf("token %+v", tok)
	}
	tok2, err := e.RefreshLegacy(context.Background(), p.legacyTokenURL(), p.clientID, tok.RefreshToken)
	if err != nil || tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %+v %v", tok2, err)
	}
	if _, err := e.RefreshLegacy(context.Background(), p.legacyTokenURL(), p.clientID, tok.RefreshToken); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("reused refresh token: %v", err)
	}
	if _, err := e.ExchangeLegacy(context.Background(), p.legacyTokenURL(), p.clientID, "nope"); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("403 Token denied: %v", err)
	}
	if p.legacyCodes.Load() != 2 || p.refreshes.Load() != 2 || p.badSignatures.Load() != 0 {
		t.Fatalf("legacy requests %d, refreshes %d, bad signatures %d", p.legacyCodes.Load(), p.refreshes.Load(), p.badSignatures.Load())
	}
}

func TestTokenAndAccessRedact(t *testing.T) {
	tok := Token{AccessToken: "at-secret-1", TokenType: "Bearer", ExpiresIn: time.Minute, RefreshToken: "rt-secret-2"}
	a := Access{ShareID: "s1", Peer: "peer.test", Secret: "shared-secret-3", MustExchange: true}
	logger, logs := newTestLogger()
	logger.Debug("values", "token", tok, "access", a)
	out := fmt.Sprintf("%v %+v %s %v %+v %s", tok, tok, tok, a, a, a) + logs.String()
	for _, s := range []string{"at-secret-1", "rt-secret-2", "shared-secret-3"} {
		if strings.Contains(out, s) {
			t.Fatalf("%q printed: %s", s, out)
		}
	}
}
