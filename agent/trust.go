package agent

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ocm-agent/ocm-agent/discovery"
	"github.com/ocm-agent/ocm-agent/httpsig"
	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/receiver"
	"github.com/ocm-agent/ocm-agent/tokens"
)

// Keys are the agent's own signing keys: Ed25519 for RFC 9421 and RSA for
// the draft-cavage profile Nextcloud verifies. The private halves live in
// the secret store; the public halves are published.
type Keys struct {
	Ed25519 httpsig.Key
	RSA     httpsig.Key
}

const (
	ed25519SecretKey = "agent/ed25519"
	rsaSecretKey     = "agent/rsa"
)

// loadOrCreateKeys reads the agent's keys from the secret store, making
// them on first start. Key ids are absolute URLs under the public URL, so
// that peers resolving a keyid over https find our discovery document.
func loadOrCreateKeys(ctx context.Context, s SecretStore, publicURL string) (Keys, error) {
	var k Keys
	var err error
	k.Ed25519, err = loadOrCreateKey(ctx, s, ed25519SecretKey, publicURL+"/ocm#ed25519", httpsig.AlgEd25519,
		func(id string) (httpsig.Key, error) { return httpsig.GenerateEd25519(id) })
	if err != nil {
		return k, err
	}
	k.RSA, err = loadOrCreateKey(ctx, s, rsaSecretKey, publicURL+"/ocm#signature", httpsig.AlgRSAV15SHA256,
		func(id string) (httpsig.Key, error) { return httpsig.GenerateRSA(id, 2048) })
	return k, err
}

func loadOrCreateKey(ctx context.Context, s SecretStore, name, id string, alg httpsig.Algorithm, gen func(string) (httpsig.Key, error)) (httpsig.Key, error) {
	der, err := s.Get(ctx, name)
	if err == nil {
		k, err := httpsig.ParsePrivate(id, alg, der)
		if err != nil {
			return k, fmt.Errorf("the agent's %s key in the secret store is damaged: %w", name, err)
		}
		return k, nil
	}
	if !errors.Is(err, tokens.ErrSecretNotFound) {
		return httpsig.Key{}, fmt.Errorf("read the agent's %s key: %w", name, err)
	}
	k, err := gen(id)
	if err != nil {
		return k, fmt.Errorf("generate the agent's %s key: %w", name, err)
	}
	k.Alg = alg
	der, err = httpsig.MarshalPrivate(k)
	if err != nil {
		return k, err
	}
	if err := s.Put(ctx, name, der); err != nil {
		return k, fmt.Errorf("store the agent's %s key: %w", name, err)
	}
	return k, nil
}

// publishKeys puts the public keys into the discovery document and JWKS.
func (a *Agent) publishKeys(k Keys) ([]byte, error) {
	jwk, err := httpsig.PublicJWK(k.Ed25519.ID, httpsig.AlgEd25519, k.Ed25519.Private.Public())
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(httpsig.JWKS{Keys: []httpsig.JWK{jwk}})
	if err != nil {
		return nil, err
	}
	pem, err := httpsig.PublicKeyPEM(k.RSA.Private.Public())
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.keys = k
	a.jwksURI = a.cfg.PublicURL + "/ocm/jwks"
	a.legacyKey = &ocm.LegacyPublicKey{KeyID: k.RSA.ID, PublicKeyPem: pem}
	a.capabilities = appendUnique(a.capabilities, "http-sig", "exchange-token")
	a.tokenEndPoint = a.cfg.PublicURL + "/ocm/token"
	a.mu.Unlock()
	return jwks, nil
}

func appendUnique(l []string, s ...string) []string {
	for _, x := range s {
		if !slices.Contains(l, x) {
			l = append(l, x)
		}
	}
	return l
}

// trust verifies inbound signatures and decides on unsigned requests.
type trust struct {
	keys      *discovery.KeyResolver
	publicURL string
	skew      time.Duration
	replay    *httpsig.ReplayCache
	now       func() time.Time // nil: time.Now; tests replaying captured requests fix it
}

// Authenticate implements receiver.Authenticator.
func (t *trust) Authenticate(ctx context.Context, r *http.Request, body []byte, expectHost string) (receiver.Peer, error) {
	if r.Header.Get("Signature") == "" && r.Header.Get("Signature-Input") == "" {
		return receiver.Peer{}, receiver.ErrNoSignature
	}
	var resolver httpsig.KeyResolver = t.keys
	if expectHost != "" {
		resolver = t.keys.For(expectHost)
	}
	v, err := httpsig.Verify(ctx, r, body, resolver, httpsig.VerifyOptions{
		TargetURI: t.publicURL + r.URL.RequestURI(), MaxSkew: t.skew, Replay: t.replay, Now: t.now,
	})
	if errors.Is(err, httpsig.ErrNoSignature) {
		return receiver.Peer{}, receiver.ErrNoSignature
	}
	if err != nil {
		return receiver.Peer{}, err
	}
	host := expectHost
	if host == "" {
		if host, err = discovery.KeyIDHost(v.KeyID); err != nil {
			return receiver.Peer{}, err
		}
	}
	return receiver.Peer{Host: host, Signed: true, KeyID: v.KeyID, Profile: v.Profile}, nil
}

// UnsignedAllowed implements PeerTrust: a peer that publishes keys must
// sign. When its keys cannot be looked up, the request is refused (the
// caller answers 503): a signing server must not be impersonated by
// making its discovery fail.
func (t *trust) UnsignedAllowed(ctx context.Context, host string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	publishes, err := t.keys.PeerPublishesKeys(ctx, host)
	if err != nil {
		return false, err
	}
	return !publishes, nil
}

// signingTransport signs every outbound request.
type signingTransport struct {
	base      http.RoundTripper
	keys      func() Keys
	discovery *discovery.Client
}

func (s *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	// One Signature header per request: RFC 9421, unless the peer only
	// publishes a draft-cavage key (Nextcloud), which then gets that.
	cavage := s.cavageOnly(req.Context(), req.URL.Host)
	resp, err := s.send(req, body, cavage)
	if err != nil || !refusesSignature(resp) {
		return resp, err
	}
	// The choice came from a cached discovery document, which may predate
	// the peer turning signing on or changing keys (Nextcloud reads every
	// Signature field as draft-cavage and answers 400 to anything else):
	// forget it and try the other profile once before calling it a failure.
	if s.discovery != nil {
		s.discovery.Forget(req.URL.Host)
	}
	retry, rerr := s.send(req, body, !cavage)
	if rerr != nil {
		return resp, nil
	}
	resp.Body.Close()
	return retry, nil
}

// send signs a copy of req with one profile and sends it.
func (s *signingTransport) send(req *http.Request, body []byte, cavage bool) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	k := s.keys()
	now := time.Now()
	if cavage {
		priv, ok := k.RSA.Private.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("the agent has no RSA key for draft-cavage signatures")
		}
		if err := httpsig.SignCavage(r, body, k.RSA.ID, priv, now); err != nil {
			return nil, fmt.Errorf("sign request (draft-cavage): %w", err)
		}
	} else if err := httpsig.SignRFC9421(r, body, k.Ed25519, now); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	return s.base.RoundTrip(r)
}

// maxRefusalPeek bounds how much of a refusal is read to see whether it
// is about the signature.
const maxRefusalPeek = 4 << 10

// refusesSignature reports whether resp is a 400 or 401 that names the
// request's signature (Nextcloud: 400 "Invalid signature";
// opencloudmesh-go: 401 "signature required"; ocm-agent: 401 "signature
// verification failed"). The body stays readable.
func refusesSignature(resp *http.Response) bool {
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	peek, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalPeek))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
	lower := strings.ToLower(string(peek))
	return strings.Contains(lower, "signature") || strings.Contains(lower, "signed") || strings.Contains(lower, "sign its request")
}

func (s *signingTransport) cavageOnly(ctx context.Context, host string) bool {
	if s.discovery == nil {
		return false
	}
	res, err := s.discovery.Discover(ctx, host)
	return err == nil && res.Doc.JWKSURI == "" && res.Doc.PublicKey != nil && res.Doc.PublicKey.PublicKeyPem != ""
}

// PeerClient is the HTTP client for requests to peers: safe dialing,
// timeouts, and every request signed.
func (a *Agent) PeerClient() *http.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.peerClient
}

// Discovery is the agent's discovery client (nil until trust is set up).
func (a *Agent) Discovery() *discovery.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.discovery
}

// SignRequest signs req (RFC 9421) with the agent's key; for the token
// exchange, whose client signs on its own.
func (a *Agent) SignRequest(req *http.Request, body []byte) error {
	a.mu.Lock()
	k := a.keys
	a.mu.Unlock()
	if k.Ed25519.Private == nil {
		return errors.New("the agent has no signing key")
	}
	return httpsig.SignRFC9421(req, body, k.Ed25519, time.Now())
}

// setupTrust loads keys, publishes them and builds the discovery client,
// the inbound verifier and the signing outbound client.
func (a *Agent) setupTrust(ctx context.Context) (*trust, []byte, error) {
	keys, err := loadOrCreateKeys(ctx, a.secrets, a.cfg.PublicURL)
	if err != nil {
		return nil, nil, err
	}
	jwks, err := a.publishKeys(keys)
	if err != nil {
		return nil, nil, err
	}
	dc := discovery.New(discovery.Options{
		AllowInsecure: a.cfg.AllowInsecurePeers,
		DNSServer:     a.cfg.DNSServer,
		Logger:        a.log,
		UserAgent:     "ocm-agent/" + Version,
	})
	t := &trust{keys: discovery.NewKeyResolver(dc), publicURL: a.cfg.PublicURL,
		skew: a.cfg.MaxClockSkew.Duration, replay: httpsig.NewReplayCache(2*a.cfg.MaxClockSkew.Duration, 100000)}
	base := dc.HTTPClient()
	pc := &http.Client{
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if err := base.CheckRedirect(req, via); err != nil {
				return err
			}
			return sameOriginBody(req, via[0])
		},
		Transport: &signingTransport{base: base.Transport, discovery: dc, keys: func() Keys {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.keys
		}},
	}
	a.mu.Lock()
	a.discovery, a.peerClient = dc, pc
	a.mu.Unlock()
	a.SetTrust(t)
	return t, jwks, nil
}

// ResolveWebDAV turns a share's webdav URI into an absolute URL: absolute
// URIs are kept, relative ones and the empty legacy one are resolved
// against the WebDAV root the sender advertises. Either way the result
// must be on the sender's origin (see origin.go): a URL elsewhere is an
// error wrapping errForeignOrigin, and is never contacted.
func (a *Agent) ResolveWebDAV(ctx context.Context, peer, uri string) (string, error) {
	if isAbsoluteHTTP(uri) && onOrigins(uri, senderOrigins(peer, nil)) {
		return uri, nil
	}
	dc := a.Discovery()
	if dc == nil {
		if isAbsoluteHTTP(uri) {
			return "", fmt.Errorf("share URI: %w", errForeignOrigin)
		}
		return "", errors.New("discovery is not available")
	}
	res, err := dc.Discover(ctx, peer)
	if err != nil {
		return "", err
	}
	origins := senderOrigins(peer, res)
	if isAbsoluteHTTP(uri) {
		if !onOrigins(uri, origins) {
			return "", fmt.Errorf("share URI: %w", errForeignOrigin)
		}
		return uri, nil
	}
	root := res.Doc.WebDAVRoot()
	if root == "" {
		return "", fmt.Errorf("%s advertises no WebDAV root for a relative share URI", peer)
	}
	if !strings.HasPrefix(strings.ToLower(root), "http") {
		root = strings.TrimSuffix(res.BaseURL, "/") + "/" + strings.TrimPrefix(root, "/")
	}
	if !onOrigins(root, origins) {
		return "", fmt.Errorf("the WebDAV root %s advertises: %w", peer, errForeignOrigin)
	}
	full := strings.TrimSuffix(root, "/") + "/" + strings.TrimPrefix(uri, "/")
	if !onOrigins(full, origins) {
		return "", fmt.Errorf("share URI: %w", errForeignOrigin)
	}
	return full, nil
}

// sameOriginBody refuses a redirect that would send a request's body (an
// invite's token, a notification about a share) again to another origin
// than the one it was addressed to: a 307 or 308 repeats a POST wherever it
// points. Redirects that drop the body (301, 302, 303 to a GET) are left to
// the client's other rules.
func sameOriginBody(req, first *http.Request) error {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return nil
	}
	to, err := originKey(req.URL.String())
	if err != nil {
		return err
	}
	if from, err := originKey(first.URL.String()); err != nil || from != to {
		return fmt.Errorf("%s to %s redirected to %s, another server: not followed", req.Method, first.URL.Host, req.URL.Host)
	}
	return nil
}
