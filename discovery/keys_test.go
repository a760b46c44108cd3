package discovery

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/httpsig"
	"github.com/ocm-agent/ocm-agent/ocm"
)

// jwksServer serves a JWK Set that the test can change.
type jwksServer struct {
	mu   sync.Mutex
	keys []httpsig.JWK
	fail bool
}

func (s *jwksServer) add(t *testing.T, kid string, k httpsig.Key) {
	t.Helper()
	j, err := httpsig.PublicJWK(kid, k.Alg, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.keys = append(s.keys, j)
	s.mu.Unlock()
}

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		http.Error(w, "broken", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(httpsig.JWKS{Keys: s.keys})
}

func genKey(t *testing.T, id string) httpsig.Key {
	t.Helper()
	k, err := httpsig.GenerateEd25519(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// ocmgoPeer is an opencloudmesh-go style peer: discovery with jwksUri, and
// the JWK Set.
func ocmgoPeer(t *testing.T, js *jwksServer) *peer {
	return startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": serveDoc(fixture(t, "opencloudmesh-go-1.4.json")),
		"/ocm/jwks":        js,
	}))
}

func TestKeyResolverJWKS(t *testing.T) {
	z, clk := startDNS(t), newClock()
	js := &jwksServer{}
	p := ocmgoPeer(t, js)
	kid := p.host() + "#key1" // opencloudmesh-go: no scheme
	key := genKey(t, kid)
	js.add(t, kid, key)
	js.add(t, p.host()+"#other", genKey(t, "x"))
	k := NewKeyResolver(New(loopbackOptions(t, z, clk)))
	ctx := context.Background()

	pub, err := k.ResolveKeyFor(ctx, kid, p.host())
	if err != nil {
		t.Fatal(err)
	}
	if !samePublic(pub, key.Public()) {
		t.Fatal("wrong key")
	}
	pub, alg, err := k.ResolveKeyAlgorithmFor(ctx, kid, p.host())
	if err != nil || alg != httpsig.AlgEd25519 || !samePublic(pub, key.Public()) {
		t.Fatalf("ResolveKeyAlgorithmFor: %v %q", err, alg)
	}
	if pub, err := k.ResolveKey(ctx, kid); err != nil || !samePublic(pub, key.Public()) {
		t.Fatalf("unbound ResolveKey: %v", err)
	}
	// The keyid must equal the kid: an https:// spelling is another kid.
	if _, err := k.ResolveKeyFor(ctx, "https://"+kid, p.host()); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("other spelling: %v, want ErrKeyNotFound", err)
	}
	if n := p.hits.get("/ocm/jwks"); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1 (cached)", n)
	}
	if n := p.hits.get("/.well-known/ocm"); n != 1 {
		t.Fatalf("discovery fetched %d times, want 1", n)
	}
}

func TestKeyResolverVerifiesSignedRequest(t *testing.T) {
	z, clk := startDNS(t), newClock()
	js := &jwksServer{}
	p := ocmgoPeer(t, js)
	kid := p.host() + "#key1"
	key := genKey(t, kid)
	js.add(t, kid, key)
	k := NewKeyResolver(New(loopbackOptions(t, z, clk)))

	body := []byte(`{"shareWith":"me@agent.test"}`)
	const target = "https://agent.test/ocm/shares"
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := httpsig.SignRFC9421(req, body, key, now); err != nil {
		t.Fatal(err)
	}
	opts := httpsig.VerifyOptions{TargetURI: target, Now: func() time.Time { return now }}
	v, err := httpsig.Verify(context.Background(), req, body, k.For(p.host()), opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if v.KeyID != kid || v.Alg != httpsig.AlgEd25519 {
		t.Fatalf("verified: %+v", v)
	}
	// The same request claiming to come from another peer is refused
	// before anything is fetched from that peer.
	_, err = httpsig.Verify(context.Background(), req, body, k.For("other.test"), opts)
	if !errors.Is(err, ErrKeyDomainMismatch) {
		t.Fatalf("Verify for another domain: %v, want ErrKeyDomainMismatch", err)
	}
}

func TestKeyResolverLegacyPublicKey(t *testing.T) {
	z, clk := startDNS(t), newClock()
	doc := fixture(t, "nextcloud-32.json")
	p := startPeer(t, "", false, routes(map[string]http.Handler{"/.well-known/ocm": serveDoc(doc)}))
	parsed, err := ocm.ParseDiscovery([]byte(strings.ReplaceAll(doc, "{{BASE}}", p.URL)))
	if err != nil {
		t.Fatal(err)
	}
	want, err := httpsig.ParsePublicKeyPEM(parsed.PublicKey.PublicKeyPem)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeyResolver(New(loopbackOptions(t, z, clk)))
	keyID := p.URL + "/ocm#signature" // Nextcloud's cavage keyId
	pub, alg, err := k.ResolveKeyAlgorithmFor(context.Background(), keyID, p.host())
	if err != nil {
		t.Fatal(err)
	}
	if !samePublic(pub, want) || alg != "" {
		t.Fatalf("wrong key or algorithm %q", alg)
	}
	if _, err := k.ResolveKeyFor(context.Background(), p.URL+"/ocm#other", p.host()); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown keyId: %v, want ErrKeyNotFound", err)
	}
}

func TestKeyResolverDomainMismatch(t *testing.T) {
	z, clk := startDNS(t), newClock()
	js := &jwksServer{}
	p := ocmgoPeer(t, js)
	k := NewKeyResolver(New(loopbackOptions(t, z, clk)))
	for _, keyID := range []string{
		"https://evil.test/ocm#signature",
		"evil.test#key1",
		"127.0.0.1:1#key1", // same address, another port: another server
		"https://127.0.0.1.evil.test:" + p.port() + "#key1",
	} {
		if _, err := k.ResolveKeyFor(context.Background(), keyID, p.host()); !errors.Is(err, ErrKeyDomainMismatch) {
			t.Errorf("%s: %v, want ErrKeyDomainMismatch", keyID, err)
		}
	}
	if p.hits.total() != 0 {
		t.Fatal("something was fetched for a mismatching key id")
	}
	for _, keyID := range []string{"key1", "#key1", "https:///x#k", "ftp://x.test#k"} {
		if _, err := k.ResolveKeyFor(context.Background(), keyID, p.host()); !errors.Is(err, ErrBadKeyID) {
			t.Errorf("%q: %v, want ErrBadKeyID", keyID, err)
		}
	}
}

func TestKeyIDHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://cloud.example.org/ocm#signature":  "cloud.example.org",
		"https://Cloud.Example.org:443/ocm#sig":    "cloud.example.org",
		"https://cloud.example.org#key1":           "cloud.example.org",
		"cloud.example.org:9200#key1":              "cloud.example.org:9200",
		"cloud.example.org#key1":                   "cloud.example.org",
		"cloud.example.org/ocm#key1":               "cloud.example.org",
		"http://127.0.0.1:8080/jwks#k":             "127.0.0.1:8080",
		"https://[2001:db8::1]:8443/ocm#k":         "[2001:db8::1]:8443",
		"https://cloud.example.org/index.php/ocm#": "cloud.example.org",
	} {
		got, err := KeyIDHost(in)
		if err != nil || got != want {
			t.Errorf("KeyIDHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "key1", "#key1", "https://user@cloud.example.org#k", "https://#k", "a b#k"} {
		if got, err := KeyIDHost(in); err == nil {
			t.Errorf("KeyIDHost(%q) = %q, want an error", in, got)
		}
	}
	if !SameDomain("cloud.example.org:443", "Cloud.example.org") || SameDomain("a.test:8443", "a.test") {
		t.Error("SameDomain")
	}
}

func TestKeyResolverRotationBounded(t *testing.T) {
	z, clk := startDNS(t), newClock()
	js := &jwksServer{}
	p := ocmgoPeer(t, js)
	kid := func(n int) string { return p.host() + "#key" + strconv.Itoa(n) }
	js.add(t, kid(1), genKey(t, kid(1)))
	k := NewKeyResolver(New(loopbackOptions(t, z, clk)))
	ctx, host := context.Background(), p.host()
	jwksHits := func() int { return p.hits.get("/ocm/jwks") }

	if _, err := k.ResolveKeyFor(ctx, kid(1), host); err != nil {
		t.Fatal(err)
	}
	// The set was just fetched: an unknown kid does not fetch it again.
	if _, err := k.ResolveKeyFor(ctx, kid(2), host); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown kid: %v", err)
	}
	if jwksHits() != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", jwksHits())
	}
	// The peer rotates; a minute later the new kid is found by refetching.
	key2 := genKey(t, kid(2))
	js.add(t, kid(2), key2)
	clk.Advance(KeyRefetchInterval + time.Second)
	pub, err := k.ResolveKeyFor(ctx, kid(2), host)
	if err != nil || !samePublic(pub, key2.Public()) {
		t.Fatalf("rotated key: %v", err)
	}
	if jwksHits() != 2 || p.hits.get("/.well-known/ocm") != 2 {
		t.Fatalf("refetch: JWKS %d, discovery %d; want 2 and 2", jwksHits(), p.hits.get("/.well-known/ocm"))
	}
	// A flood of unknown kids costs at most one refetch per minute.
	for i := 3; i < 20; i++ {
		if _, err := k.ResolveKeyFor(ctx, kid(i), host); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("kid %d: %v", i, err)
		}
	}
	if jwksHits() != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", jwksHits())
	}
	clk.Advance(KeyRefetchInterval)
	for i := 20; i < 40; i++ {
		_, _ = k.ResolveKeyFor(ctx, kid(i), host)
	}
	if jwksHits() != 3 {
		t.Fatalf("JWKS fetched %d times after another minute, want 3", jwksHits())
	}
	// Known keys never cause a fetch.
	if _, err := k.ResolveKeyFor(ctx, kid(1), host); err != nil || jwksHits() != 3 {
		t.Fatalf("known key: %v, %d fetches", err, jwksHits())
	}
}

func TestKeyResolverJWKSFailureCached(t *testing.T) {
	z, clk := startDNS(t), newClock()
	js := &jwksServer{fail: true}
	p := ocmgoPeer(t, js)
	k := NewKeyResolver(New(loopbackOptions(t, z, clk)))
	for range 5 {
		if _, err := k.ResolveKeyFor(context.Background(), p.host()+"#key1", p.host()); err == nil {
			t.Fatal("resolved a key from a broken JWKS")
		}
	}
	if n := p.hits.get("/ocm/jwks"); n != 1 {
		t.Fatalf("broken JWKS fetched %d times, want 1", n)
	}
}

func TestKeyResolverSRVIdentity(t *testing.T) {
	z, clk := startDNS(t), newClock()
	js := &jwksServer{}
	p := ocmgoPeer(t, js)
	port, _ := strconv.Atoi(p.port())
	z.A("cloud.vanity.test", "127.0.0.1")
	z.SRV("vanity.test", 1, 1, "cloud.vanity.test", port)
	key := genKey(t, "vanity.test#key1")
	js.add(t, "vanity.test#key1", key)
	target := "cloud.vanity.test:" + p.port()
	js.add(t, target+"#key1", genKey(t, target+"#key1"))
	k := NewKeyResolver(New(loopbackOptions(t, z, clk)))

	pub, err := k.ResolveKeyFor(context.Background(), "vanity.test#key1", "vanity.test")
	if err != nil || !samePublic(pub, key.Public()) {
		t.Fatalf("key of the vanity domain: %v", err)
	}
	// The SRV target is not the peer's identity.
	if _, err := k.ResolveKeyFor(context.Background(), target+"#key1", "vanity.test"); !errors.Is(err, ErrKeyDomainMismatch) {
		t.Fatalf("key named after the SRV target: %v, want ErrKeyDomainMismatch", err)
	}
}

func TestPeerPublishesKeys(t *testing.T) {
	z, clk := startDNS(t), newClock()
	k := NewKeyResolver(New(loopbackOptions(t, z, clk)))
	for name, want := range map[string]bool{
		"opencloudmesh-go-1.4.json": true,
		"nextcloud-32.json":         true,
		"nextcloud-27.json":         false,
		"reva-1.3.json":             false,
	} {
		p := startPeer(t, "", false, routes(map[string]http.Handler{"/.well-known/ocm": serveDoc(fixture(t, name))}))
		got, err := k.PeerPublishesKeys(context.Background(), p.host())
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
	}
	// http-sig advertised without a jwksUri still means "expect signatures".
	doc := strings.Replace(fixture(t, "opencloudmesh-go-1.4.json"), `"jwksUri":"{{BASE}}/ocm/jwks",`, "", 1)
	p := startPeer(t, "", false, routes(map[string]http.Handler{"/.well-known/ocm": serveDoc(doc)}))
	if got, err := k.PeerPublishesKeys(context.Background(), p.host()); err != nil || !got {
		t.Errorf("http-sig without jwksUri: %v %v", got, err)
	}
	if _, err := k.PeerPublishesKeys(context.Background(), "127.0.0.1:"+strconv.Itoa(closedPort(t))); err == nil {
		t.Error("no error for an unreachable peer")
	}
}
