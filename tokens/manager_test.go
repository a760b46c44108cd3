package tokens

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// accessTable is the agent's side of ShareAccessSource, as a map.
type accessTable struct {
	mu      sync.Mutex
	m       map[string]Access
	lookups atomic.Int64
}

func (s *accessTable) ShareAccess(ctx context.Context, id string) (Access, error) {
	s.lookups.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.m[id]
	if !ok {
		return Access{}, fmt.Errorf("share %s: no such share", id)
	}
	return a, nil
}

type shareErrors struct {
	mu   sync.Mutex
	errs map[string][]error
}

func (s *shareErrors) record(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errs == nil {
		s.errs = map[string][]error{}
	}
	s.errs[id] = append(s.errs[id], err)
}

func (s *shareErrors) get(id string) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs[id]...)
}

type managerRig struct {
	peer   *testPeer
	shares *accessTable
	clock  *fakeClock
	m      *Manager
	errs   *shareErrors
	logs   *logBuffer
	store  Store
}

func newRig(t *testing.T, shares ...Access) *managerRig {
	t.Helper()
	r := &managerRig{peer: newTestPeer(t), shares: &accessTable{m: map[string]Access{}}, clock: newFakeClock(), errs: &shareErrors{}}
	fs, err := OpenFileStore(context.Background(), FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r.store = fs
	for _, a := range shares {
		r.add(a)
	}
	r.m = r.newManager(t)
	return r
}

func (r *managerRig) newManager(t *testing.T) *Manager {
	t.Helper()
	logger, logs := newTestLogger()
	r.logs = logs
	ex := testExchanger(r.peer)
	ex.Logger = logger
	m, err := NewManager(ManagerOptions{Source: r.shares, Exchanger: ex, Store: r.store, Logger: logger,
		Now: r.clock.Now, OnShareError: r.errs.record})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// add registers a share; Peer, ClientID and endpoints default to the
// test peer's.
func (r *managerRig) add(a Access) {
	if a.Peer == "" {
		a.Peer = strings.TrimPrefix(r.peer.srv.URL, "http://")
	}
	if a.ClientID == "" {
		a.ClientID = r.peer.clientID
	}
	if a.MustExchange || a.PeerExchanges {
		if a.TokenEndpoint == "" {
			a.TokenEndpoint = r.peer.tokenURL()
		}
	}
	if a.LegacyCode && a.LegacyTokenEndpoint == "" {
		a.LegacyTokenEndpoint = r.peer.legacyTokenURL()
	}
	r.shares.mu.Lock()
	r.shares.m[a.ShareID] = a
	r.shares.mu.Unlock()
}

func (r *managerRig) header(t *testing.T, shareID string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
	if err := r.m.Authorize(context.Background(), shareID, req); err != nil {
		t.Fatalf("Authorize(%s): %v", shareID, err)
	}
	return req.Header.Get("Authorization")
}

// fetch does what the filesystem does: authorize, request, and on a 401
// invalidate and retry once.
func (r *managerRig) fetch(t *testing.T, shareID string) int {
	t.Helper()
	for attempt := 0; attempt < 2; attempt++ {
		req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
		if err := r.m.Authorize(context.Background(), shareID, req); err != nil {
			t.Fatalf("Authorize(%s): %v", shareID, err)
		}
		resp, err := r.peer.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return resp.StatusCode
		}
		r.m.Invalidate(shareID)
	}
	return http.StatusUnauthorized
}

func TestDecisionTable(t *testing.T) {
	cases := []struct {
		a    Access
		want Mode
	}{
		{Access{MustExchange: true, TokenEndpoint: "https://p/t"}, ModeMustExchange},
		{Access{MustExchange: true}, ModeMustExchange}, // no endpoint: an error, never the secret
		{Access{MustExchange: true, PeerExchanges: true, LegacyOptions: true}, ModeMustExchange},
		{Access{PeerExchanges: true, TokenEndpoint: "https://p/t"}, ModeMayExchange},
		{Access{PeerExchanges: true}, ModeSecret},
		{Access{LegacyCode: true, PeerExchanges: true, TokenEndpoint: "https://p/t"}, ModeLegacyCode},
		{Access{LegacyOptions: true, PeerExchanges: true, TokenEndpoint: "https://p/t"}, ModeLegacyBasic},
		{Access{}, ModeSecret},
	}
	for _, c := range cases {
		if got := Decide(c.a); got != c.want {
			t.Errorf("Decide(%+v) = %s, want %s", c.a, got, c.want)
		}
	}
}

func TestManagerMustExchangeUsesOnlyTheToken(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", MustExchange: true})
	r.peer.set(func(p *testPeer) { p.codes["secret-1"] = true })
	h := r.header(t, "s1")
	if !strings.HasPrefix(h, "Bearer tok-") {
		t.Fatalf("header %q, want a bearer token", h)
	}
	if status := r.fetch(t, "s1"); status != 200 {
		t.Fatalf("status %d", status)
	}
	if n := r.peer.exchanges.Load(); n != 1 {
		t.Fatalf("%d exchanges, want 1", n)
	}
}

func TestManagerMustExchangeNeverFallsBack(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			r := newRig(t, Access{ShareID: "s1", Secret: "secret-rejected", MustExchange: true})
			r.peer.set(func(p *testPeer) { p.rejectStatus = status; p.davSecrets["secret-rejected"] = true })
			req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
			err := r.m.Authorize(context.Background(), "s1", req)
			if !errors.Is(err, ErrCodeRejected) || !errors.Is(err, ErrInvalidGrant) {
				t.Fatalf("err = %v, want ErrCodeRejected", err)
			}
			if h := req.Header.Get("Authorization"); h != "" {
				t.Fatalf("a header was set: %q", h)
			}
			if strings.Contains(err.Error(), "secret-rejected") {
				t.Fatalf("the secret is in the error: %v", err)
			}
			errs := r.errs.get("s1")
			if len(errs) != 1 || !errors.Is(errs[0], ErrCodeRejected) {
				t.Fatalf("OnShareError got %v", errs)
			}
			// Asked again soon: answered from memory, not by hammering the peer.
			if err := r.m.Authorize(context.Background(), "s1", req); !errors.Is(err, ErrCodeRejected) {
				t.Fatalf("second attempt: %v", err)
			}
			if n := r.peer.exchanges.Load(); n != 1 {
				t.Fatalf("%d exchanges, want 1", n)
			}
			r.clock.Advance(DefaultRejectedBackoff + time.Second)
			_ = r.m.Authorize(context.Background(), "s1", req)
			if n := r.peer.exchanges.Load(); n != 2 {
				t.Fatalf("%d exchanges after the backoff, want 2", n)
			}
		})
	}
}

func TestManagerMustExchangePeerDown(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", MustExchange: true})
	r.peer.set(func(p *testPeer) { p.failStatus = http.StatusServiceUnavailable })
	req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
	err := r.m.Authorize(context.Background(), "s1", req)
	if err == nil || errors.Is(err, ErrCodeRejected) || req.Header.Get("Authorization") != "" {
		t.Fatalf("err = %v, header %q", err, req.Header.Get("Authorization"))
	}
	if len(r.errs.get("s1")) != 0 {
		t.Fatal("a passing outage was reported as a share error")
	}
	// The peer recovers; after the short backoff the exchange succeeds.
	r.peer.set(func(p *testPeer) { p.failStatus = 0; p.codes["secret-1"] = true })
	r.clock.Advance(DefaultFailureBackoff + time.Second)
	if h := r.header(t, "s1"); !strings.HasPrefix(h, "Bearer tok-") {
		t.Fatalf("header %q", h)
	}
}

func TestManagerMustExchangeWithoutEndpoint(t *testing.T) {
	r := newRig(t)
	r.shares.m["s1"] = Access{ShareID: "s1", Peer: "peer.test", Secret: "secret-1", MustExchange: true, ClientID: "me.test"}
	req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
	if err := r.m.Authorize(context.Background(), "s1", req); !errors.Is(err, ErrNoTokenEndpoint) {
		t.Fatalf("err = %v", err)
	}
	if len(r.errs.get("s1")) != 1 {
		t.Fatal("OnShareError not called")
	}
}

func TestManagerOptionalExchange(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", PeerExchanges: true})
	r.peer.set(func(p *testPeer) { p.codes["secret-1"] = true })
	if h := r.header(t, "s1"); !strings.HasPrefix(h, "Bearer tok-") {
		t.Fatalf("header %q, want an exchanged token", h)
	}
}

func TestManagerOptionalExchangeFallsBackToSecret(t *testing.T) {
	for name, setup := range map[string]func(p *testPeer){
		"server error":  func(p *testPeer) { p.failStatus = 500 },
		"invalid grant": func(p *testPeer) {},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", PeerExchanges: true})
			r.peer.set(setup)
			r.peer.set(func(p *testPeer) { p.davSecrets["secret-1"] = true })
			if h := r.header(t, "s1"); h != "Bearer secret-1" {
				t.Fatalf("header %q, want the shared secret", h)
			}
			if status := r.fetch(t, "s1"); status != 200 {
				t.Fatalf("status %d", status)
			}
			if len(r.errs.get("s1")) != 0 {
				t.Fatal("a fallback was reported as a share error")
			}
			// Later the exchange is tried again and its token used.
			r.peer.set(func(p *testPeer) { p.failStatus = 0; p.codes["secret-1"] = true })
			r.clock.Advance(DefaultFallbackRetry + time.Second)
			if h := r.header(t, "s1"); !strings.HasPrefix(h, "Bearer tok-") {
				t.Fatalf("after the retry period: %q", h)
			}
		})
	}
}

func TestManagerPlainSecret(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1"})
	r.peer.set(func(p *testPeer) { p.davSecrets["secret-1"] = true })
	if h := r.header(t, "s1"); h != "Bearer secret-1" {
		t.Fatalf("header %q", h)
	}
	if status := r.fetch(t, "s1"); status != 200 {
		t.Fatalf("status %d", status)
	}
	if r.peer.exchanges.Load() != 0 {
		t.Fatal("exchanged although the sender offers no token endpoint")
	}
	r.add(Access{ShareID: "bad", Secret: "has\r\nnewline"})
	req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
	if err := r.m.Authorize(context.Background(), "bad", req); !errors.Is(err, ErrUnusableSecret) {
		t.Fatalf("err = %v", err)
	}
}

func TestManagerLegacyCodeWithRefreshToken(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "legacy-code-1", LegacyCode: true})
	r.peer.set(func(p *testPeer) { p.codes["legacy-code-1"] = true; p.issueRefresh = true; p.expiresIn = 60 })
	h1 := r.header(t, "s1")
	if !strings.HasPrefix(h1, "Bearer tok-") || r.peer.legacyCodes.Load() != 1 {
		t.Fatalf("header %q after %d code exchanges", h1, r.peer.legacyCodes.Load())
	}
	ctx := context.Background()
	rt, err := r.store.Get(ctx, "share/s1/refresh")
	if err != nil || !strings.HasPrefix(string(rt), "refresh-") {
		t.Fatalf("refresh token not kept in the secret store: %q %v", rt, err)
	}
	// At expiry the refresh token is used, not the code.
	r.clock.Advance(61 * time.Second)
	h2 := r.header(t, "s1")
	if h2 == h1 || r.peer.refreshes.Load() != 1 || r.peer.legacyCodes.Load() != 1 {
		t.Fatalf("renewal: header changed %t, refreshes %d, code exchanges %d", h2 != h1, r.peer.refreshes.Load(), r.peer.legacyCodes.Load())
	}
	// A restarted agent starts from the stored refresh token.
	r.m = r.newManager(t)
	if h := r.header(t, "s1"); h == h2 || r.peer.refreshes.Load() != 2 || r.peer.legacyCodes.Load() != 1 {
		t.Fatalf("after restart: refreshes %d, code exchanges %d", r.peer.refreshes.Load(), r.peer.legacyCodes.Load())
	}
	// A refused refresh token falls back to the code, and is replaced.
	r.peer.set(func(p *testPeer) { p.refresh = map[string]bool{} })
	r.clock.Advance(61 * time.Second)
	if h := r.header(t, "s1"); !strings.HasPrefix(h, "Bearer tok-") || r.peer.legacyCodes.Load() != 2 {
		t.Fatalf("after a refused refresh token: %d code exchanges", r.peer.legacyCodes.Load())
	}
	rt2, err := r.store.Get(ctx, "share/s1/refresh")
	if err != nil || string(rt2) == string(rt) {
		t.Fatalf("refresh token not replaced: %v", err)
	}
}

func TestManagerLegacyCodeRejected(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "revoked-code", LegacyCode: true})
	req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
	err := r.m.Authorize(context.Background(), "s1", req)
	if !errors.Is(err, ErrCodeRejected) || len(r.errs.get("s1")) != 1 {
		t.Fatalf("err = %v, share errors %v", err, r.errs.get("s1"))
	}
}

func TestManagerRenewsBeforeExpiry(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", MustExchange: true})
	r.peer.set(func(p *testPeer) { p.codes["secret-1"] = true; p.expiresIn = 60 })
	h1 := r.header(t, "s1")
	r.clock.Advance(20 * time.Second)
	if h := r.header(t, "s1"); h != h1 || r.peer.exchanges.Load() != 1 {
		t.Fatalf("renewed %d times with 40 s left", r.peer.exchanges.Load()-1)
	}
	r.clock.Advance(15 * time.Second) // 25 s left: inside the 30 s margin
	if h := r.header(t, "s1"); h == h1 || r.peer.exchanges.Load() != 2 {
		t.Fatalf("not renewed shortly before expiry (%d exchanges)", r.peer.exchanges.Load())
	}
	// A short-lived token is renewed at half its life.
	r.peer.set(func(p *testPeer) { p.expiresIn = 10 })
	r.clock.Advance(time.Hour)
	h3 := r.header(t, "s1")
	r.clock.Advance(4 * time.Second)
	if h := r.header(t, "s1"); h != h3 {
		t.Fatal("a 10 s token was renewed after 4 s")
	}
	r.clock.Advance(2 * time.Second)
	if h := r.header(t, "s1"); h == h3 {
		t.Fatal("a 10 s token was not renewed after 6 s")
	}
}

func TestManagerKeepsTokenWhenEarlyRenewalFails(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", MustExchange: true})
	r.peer.set(func(p *testPeer) { p.codes["secret-1"] = true; p.expiresIn = 60 })
	h1 := r.header(t, "s1")
	r.peer.set(func(p *testPeer) { p.failStatus = 503 })
	r.clock.Advance(40 * time.Second)
	if h := r.header(t, "s1"); h != h1 {
		t.Fatal("the still valid token was dropped")
	}
	r.clock.Advance(25 * time.Second) // expired now
	req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
	if err := r.m.Authorize(context.Background(), "s1", req); err == nil {
		t.Fatal("an expired token was handed out")
	}
}

func TestManagerInvalidateRenewsOnce(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", MustExchange: true})
	r.peer.set(func(p *testPeer) { p.codes["secret-1"] = true })
	if status := r.fetch(t, "s1"); status != 200 {
		t.Fatalf("status %d", status)
	}
	r.clock.Advance(10 * time.Second)
	r.peer.revokeTokens() // the server forgot our token: the next request gets a 401
	if status := r.fetch(t, "s1"); status != 200 {
		t.Fatalf("status %d after the token was revoked", status)
	}
	if n := r.peer.exchanges.Load(); n != 2 {
		t.Fatalf("%d exchanges, want 2", n)
	}
	// A burst of 401s from requests in flight with the old token.
	for i := 0; i < 10; i++ {
		r.m.Invalidate("s1")
	}
	for i := 0; i < 5; i++ {
		r.header(t, "s1")
	}
	if n := r.peer.exchanges.Load(); n != 2 {
		t.Fatalf("stragglers caused %d more exchanges", n-2)
	}
	r.clock.Advance(5 * time.Second)
	r.m.Invalidate("s1")
	r.m.Invalidate("s1")
	for i := 0; i < 5; i++ {
		r.header(t, "s1")
	}
	if n := r.peer.exchanges.Load(); n != 3 {
		t.Fatalf("%d exchanges after one more Invalidate, want 3", n)
	}
}

func TestManagerSingleFlight(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", MustExchange: true})
	r.peer.set(func(p *testPeer) { p.codes["secret-1"] = true })
	const n = 100
	var wg sync.WaitGroup
	headers := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
			errs[i] = r.m.Authorize(context.Background(), "s1", req)
			headers[i] = req.Header.Get("Authorization")
		}()
	}
	close(start)
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil || headers[i] != headers[0] || headers[0] == "" {
			t.Fatalf("caller %d: %v %q", i, errs[i], headers[i])
		}
	}
	if got := r.peer.exchanges.Load(); got != 1 {
		t.Fatalf("%d concurrent Authorize calls made %d exchanges, want 1", n, got)
	}
}

func TestManagerAuthorizeHonoursCallerContext(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", MustExchange: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
	if err := r.m.Authorize(ctx, "s1", req); err == nil {
		t.Fatal("no error with a cancelled context")
	}
}

func TestManagerLegacyBasicFallbackRemembered(t *testing.T) {
	r := newRig(t,
		Access{ShareID: "a", Secret: "nc-secret-a", LegacyOptions: true},
		Access{ShareID: "b", Secret: "nc-secret-b", LegacyOptions: true})
	r.peer.set(func(p *testPeer) { p.basicSecrets["nc-secret-a"] = true; p.basicSecrets["nc-secret-b"] = true })
	if h := r.header(t, "a"); h != "Bearer nc-secret-a" {
		t.Fatalf("first try %q, want Bearer", h)
	}
	if status := r.fetch(t, "a"); status != 200 {
		t.Fatalf("status %d", status)
	}
	if n := r.peer.unauthorized.Load(); n != 1 {
		t.Fatalf("%d 401s, want 1 (Bearer, then Basic)", n)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("nc-secret-b:"))
	if h := r.header(t, "b"); h != want {
		t.Fatalf("second share of the same peer: %q, want Basic right away", h)
	}
	for i := 0; i < 3; i++ {
		if status := r.fetch(t, "b"); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if n := r.peer.unauthorized.Load(); n != 1 {
		t.Fatalf("%d 401s, want still 1", n)
	}
	// An hour later Bearer is tried first again.
	r.clock.Advance(DefaultSchemeMemory + time.Minute)
	if h := r.header(t, "a"); h != "Bearer nc-secret-a" {
		t.Fatalf("after an hour: %q", h)
	}
}

func TestManagerForget(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "legacy-code-1", LegacyCode: true})
	r.peer.set(func(p *testPeer) { p.codes["legacy-code-1"] = true; p.issueRefresh = true })
	ctx := context.Background()
	if err := r.store.Put(ctx, "share/s1/secret", []byte("legacy-code-1")); err != nil {
		t.Fatal(err)
	}
	r.header(t, "s1")
	if err := r.m.Forget(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"share/s1/secret", "share/s1/refresh", "share/s1/token"} {
		if _, err := r.store.Get(ctx, k); !errors.Is(err, ErrSecretNotFound) {
			t.Fatalf("%s after Forget: %v", k, err)
		}
	}
	lookups := r.shares.lookups.Load()
	r.header(t, "s1")
	if r.shares.lookups.Load() != lookups+1 || r.peer.legacyCodes.Load() != 2 {
		t.Fatal("the cached token survived Forget")
	}
}

// TestSecretsNeverInLogsOrErrors runs every path, failures included,
// with debug logging, and looks for the secret values.
func TestSecretsNeverInLogsOrErrors(t *testing.T) {
	r := newRig(t,
		Access{ShareID: "must", Secret: "canary-must-1", MustExchange: true},
		Access{ShareID: "must-bad", Secret: "canary-rejected-2", MustExchange: true},
		Access{ShareID: "may", Secret: "canary-may-3", PeerExchanges: true},
		Access{ShareID: "legacy", Secret: "canary-legacy-4", LegacyCode: true},
		Access{ShareID: "basic", Secret: "canary-basic-5", LegacyOptions: true},
		Access{ShareID: "plain", Secret: "canary-plain-6"},
	)
	r.peer.set(func(p *testPeer) {
		p.codes["canary-must-1"] = true
		p.codes["canary-legacy-4"] = true
		p.issueRefresh = true
		p.echoCode = true
		p.basicSecrets["canary-basic-5"] = true
		p.davSecrets["canary-plain-6"] = true
		p.davSecrets["canary-may-3"] = true
	})
	var errs []string
	var tokens []string
	for _, id := range []string{"must", "must-bad", "may", "legacy", "basic", "plain"} {
		req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
		if err := r.m.Authorize(context.Background(), id, req); err != nil {
			errs = append(errs, err.Error(), fmt.Sprintf("%+v", err))
		}
		if h := req.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer tok-") {
			tokens = append(tokens, strings.TrimPrefix(h, "Bearer "))
		}
		if id != "must-bad" {
			r.fetch(t, id)
		}
		r.m.Invalidate(id)
	}
	r.clock.Advance(10 * time.Minute)
	r.peer.set(func(p *testPeer) { p.failStatus = 500 })
	for _, id := range []string{"must", "legacy", "may"} {
		req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
		if err := r.m.Authorize(context.Background(), id, req); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, e := range r.errs.get("must-bad") {
		errs = append(errs, e.Error())
	}
	if len(errs) == 0 || len(tokens) == 0 {
		t.Fatalf("the scenario produced no errors (%d) or no tokens (%d)", len(errs), len(tokens))
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "level=DEBUG") || !strings.Contains(logs, "level=WARN") {
		t.Fatalf("expected debug and warning lines:\n%s", logs)
	}
	hay := logs + strings.Join(errs, "\n")
	needles := append([]string{"canary-must-1", "canary-rejected-2", "canary-may-3", "canary-legacy-4", "canary-basic-5", "canary-plain-6",
		base64.StdEncoding.EncodeToString([]byte("canary-basic-5:")), "refresh-"}, tokens...)
	for _, s := range needles {
		if strings.Contains(hay, s) {
			t.Errorf("%q appears in logs or errors", s)
		}
	}
}

func TestManagerResetPicksUpANewSecret(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "old-secret"})
	if h := r.header(t, "s1"); h != "Bearer old-secret" {
		t.Fatalf("header %q", h)
	}
	r.add(Access{ShareID: "s1", Secret: "new-secret"})
	if h := r.header(t, "s1"); h != "Bearer old-secret" {
		t.Fatalf("the cache was bypassed: %q", h)
	}
	r.m.Reset("s1")
	if h := r.header(t, "s1"); h != "Bearer new-secret" {
		t.Fatalf("after Reset: %q", h)
	}
}

// A server that restarted forgets the token it issued a moment ago: the
// 401 invalidates that token (by identity, however young), one renewal
// follows and the retried request succeeds; 401s from requests still in
// flight with the old token renew nothing more.
func TestManager401RightAfterIssueRenewsByIdentity(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", MustExchange: true})
	r.peer.set(func(p *testPeer) { p.codes["secret-1"] = true })
	old := r.header(t, "s1")
	r.peer.revokeTokens()
	r.clock.Advance(100 * time.Millisecond) // well inside the old grace period

	status := 0
	for attempt := 0; attempt < 2; attempt++ {
		req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
		if err := r.m.Authorize(context.Background(), "s1", req); err != nil {
			t.Fatal(err)
		}
		resp, err := r.peer.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status = resp.StatusCode
		if status != http.StatusUnauthorized {
			break
		}
		r.m.InvalidateCredential("s1", resp.Request.Header.Get("Authorization"))
	}
	if status != http.StatusOK {
		t.Fatalf("status %d after one renewal", status)
	}
	if n := r.peer.exchanges.Load(); n != 2 {
		t.Fatalf("%d exchanges, want 2", n)
	}
	for range 10 {
		r.m.InvalidateCredential("s1", old) // stragglers
	}
	if h := r.header(t, "s1"); h == old || r.peer.exchanges.Load() != 2 {
		t.Fatalf("stragglers renewed again (%d exchanges)", r.peer.exchanges.Load())
	}
	if logs := r.logs.String(); !strings.Contains(logs, "level=INFO") || !strings.Contains(logs, "refused the share's credentials") ||
		!strings.Contains(logs, "share=s1") || !strings.Contains(logs, "peer="+strings.TrimPrefix(r.peer.srv.URL, "http://")) {
		t.Fatalf("the 401 is not logged at the default level with share and server:\n%s", logs)
	}
}

// A renewal that fails for a transient reason reaches the reader: it is
// logged at the default level with the share and the server.
func TestManagerTransientFailureLogged(t *testing.T) {
	r := newRig(t, Access{ShareID: "s1", Secret: "secret-1", MustExchange: true})
	r.peer.set(func(p *testPeer) { p.failStatus = http.StatusServiceUnavailable })
	req, _ := http.NewRequest(http.MethodGet, r.peer.davURL(), nil)
	if err := r.m.Authorize(context.Background(), "s1", req); err == nil {
		t.Fatal("no error from a failing token endpoint")
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "could not obtain credentials") || !strings.Contains(logs, "share=s1") || !strings.Contains(logs, "peer=127.0.0.1") {
		t.Fatalf("logs:\n%s", logs)
	}
}
