package discovery

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ocm-agent/ocm-agent/httpsig"
	"github.com/ocm-agent/ocm-agent/ocm"
)

// KeyResolver finds the public keys peers sign with, from their discovery
// documents: the JWK Set at jwksUri (RFC 9421) or the legacy
// publicKey {keyId, publicKeyPem} (draft-cavage). It implements
// httpsig.KeyResolver and httpsig.AlgorithmResolver.
//
// A key is only ever taken from the discovery document of the domain the
// key id names (ResolveKey) or of the domain the caller expects
// (ResolveKeyFor, which also insists that both are the same), so a peer
// cannot sign in another's name with a key it publishes itself.
//
// JWK Sets are cached like discovery documents. A key id the peer does not
// publish makes the resolver fetch the peer's discovery document and JWK
// Set again (key rotation), at most once per KeyRefetchInterval per peer.
type KeyResolver struct {
	c       *Client
	flights singleflight.Group

	mu          sync.Mutex
	sets        map[string]*jwksEntry // by JWKS URL
	lastRefetch map[string]time.Time  // by peer host
}

type jwksEntry struct {
	set       httpsig.JWKS
	ok        bool // set holds a fetched JWK Set
	err       error
	fetchedAt time.Time
	expires   time.Time
}

// NewKeyResolver returns a resolver that discovers peers with c.
func NewKeyResolver(c *Client) *KeyResolver {
	return &KeyResolver{c: c, sets: make(map[string]*jwksEntry), lastRefetch: make(map[string]time.Time)}
}

// KeyIDHost returns the host[:port] a key id names, normalised, with a
// default https port dropped: "https://cloud.example.org/ocm#signature"
// (Nextcloud), "https://cloud.example.org#key1", and the scheme-less
// "cloud.example.org:9200#key1" (opencloudmesh-go) all name their host.
func KeyIDHost(keyID string) (string, error) {
	s := keyID
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	var host string
	if i := strings.Index(s, "://"); i >= 0 {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return "", fmt.Errorf("%w: %q", ErrBadKeyID, keyID)
		}
		host = u.Host
		if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
			host = strings.TrimSuffix(host, ":"+p)
		}
	} else {
		host, _, _ = strings.Cut(s, "/")
	}
	h, err := ocm.NormalizeHost(host)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadKeyID, keyID, err)
	}
	if !strings.ContainsAny(h, ".:") && net.ParseIP(strings.Trim(h, "[]")) == nil {
		return "", fmt.Errorf("%w: %q does not name a host", ErrBadKeyID, keyID)
	}
	return trimHTTPSPort(h), nil
}

// trimHTTPSPort drops an explicit :443, which names the same https server.
func trimHTTPSPort(h string) string { return strings.TrimSuffix(h, ":443") }

// SameDomain reports whether two host[:port] strings name the same peer
// (normalised, :443 being the default).
func SameDomain(a, b string) bool {
	na, err1 := ocm.NormalizeHost(a)
	nb, err2 := ocm.NormalizeHost(b)
	return err1 == nil && err2 == nil && trimHTTPSPort(na) == trimHTTPSPort(nb)
}

// ResolveKey returns the key keyID names, taken from the discovery
// document of the host keyID names.
func (k *KeyResolver) ResolveKey(ctx context.Context, keyID string) (crypto.PublicKey, error) {
	pub, _, err := k.ResolveKeyAlgorithm(ctx, keyID)
	return pub, err
}

// ResolveKeyAlgorithm is ResolveKey that also returns the algorithm the
// JWK names ("" for a legacy PEM key or a JWK without "alg").
func (k *KeyResolver) ResolveKeyAlgorithm(ctx context.Context, keyID string) (crypto.PublicKey, httpsig.Algorithm, error) {
	host, err := KeyIDHost(keyID)
	if err != nil {
		return nil, "", err
	}
	return k.resolve(ctx, keyID, host)
}

// ResolveKeyFor returns the key keyID names only if keyID's host is
// domain (the peer the request claims to come from: the sender's
// provider) and domain's discovery document publishes the key. Errors:
// ErrKeyDomainMismatch, ErrKeyNotFound, ErrBadKeyID, or a discovery error.
func (k *KeyResolver) ResolveKeyFor(ctx context.Context, keyID, domain string) (crypto.PublicKey, error) {
	pub, _, err := k.ResolveKeyAlgorithmFor(ctx, keyID, domain)
	return pub, err
}

// ResolveKeyAlgorithmFor is ResolveKeyFor with the JWK's algorithm.
func (k *KeyResolver) ResolveKeyAlgorithmFor(ctx context.Context, keyID, domain string) (crypto.PublicKey, httpsig.Algorithm, error) {
	host, err := KeyIDHost(keyID)
	if err != nil {
		return nil, "", err
	}
	want, err := ocm.NormalizeHost(domain)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadHost, err)
	}
	if host != trimHTTPSPort(want) {
		return nil, "", fmt.Errorf("%w: key id names %s, the peer is %s", ErrKeyDomainMismatch, host, want)
	}
	return k.resolve(ctx, keyID, want)
}

// For returns a resolver bound to domain, to hand to httpsig.Verify.
func (k *KeyResolver) For(domain string) httpsig.AlgorithmResolver {
	return boundResolver{k: k, domain: domain}
}

type boundResolver struct {
	k      *KeyResolver
	domain string
}

func (b boundResolver) ResolveKey(ctx context.Context, keyID string) (crypto.PublicKey, error) {
	return b.k.ResolveKeyFor(ctx, keyID, b.domain)
}

func (b boundResolver) ResolveKeyAlgorithm(ctx context.Context, keyID string) (crypto.PublicKey, httpsig.Algorithm, error) {
	return b.k.ResolveKeyAlgorithmFor(ctx, keyID, b.domain)
}

// PeerPublishesKeys reports whether domain publishes signing keys (a
// jwksUri, a legacy publicKey, or the http-sig capability). A peer that
// does not (reva, oCIS, OpenCloud) signs nothing, so an unsigned request
// from it may be acceptable; one that does should sign.
func (k *KeyResolver) PeerPublishesKeys(ctx context.Context, domain string) (bool, error) {
	res, err := k.c.Discover(ctx, domain)
	if err != nil {
		return false, err
	}
	d := res.Doc
	return d.JWKSURI != "" || (d.PublicKey != nil && d.PublicKey.PublicKeyPem != "") || d.HasCapability("http-sig"), nil
}

func (k *KeyResolver) resolve(ctx context.Context, keyID, domain string) (crypto.PublicKey, httpsig.Algorithm, error) {
	res, err := k.c.Discover(ctx, domain)
	if err != nil {
		return nil, "", err
	}
	pub, alg, fetched, err := k.fromDoc(ctx, res, keyID, false)
	if !errors.Is(err, ErrKeyNotFound) || !k.mayRefetch(res.Host, fetched) {
		return pub, alg, err
	}
	k.c.opts.Logger.Info("discovery: unknown key id, fetching the peer's keys again", "peer", res.Host, "keyid", keyID)
	if fresh, rerr := k.c.Refresh(ctx, domain); rerr == nil {
		res = fresh
	}
	pub, alg, _, err = k.fromDoc(ctx, res, keyID, true)
	return pub, alg, err
}

// mayRefetch allows one refetch per KeyRefetchInterval per peer, counting
// the last fetch of its keys as one.
func (k *KeyResolver) mayRefetch(host string, lastFetch time.Time) bool {
	now := k.c.opts.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	last := k.lastRefetch[host]
	if lastFetch.After(last) {
		last = lastFetch
	}
	if now.Sub(last) < KeyRefetchInterval {
		return false
	}
	if len(k.lastRefetch) >= k.c.opts.MaxCacheEntries {
		for h, t := range k.lastRefetch {
			if now.Sub(t) >= KeyRefetchInterval {
				delete(k.lastRefetch, h)
			}
		}
	}
	k.lastRefetch[host] = now
	return true
}

// fromDoc finds keyID in what res publishes. fetched is when the keys it
// looked at were fetched.
func (k *KeyResolver) fromDoc(ctx context.Context, res *Result, keyID string, force bool) (crypto.PublicKey, httpsig.Algorithm, time.Time, error) {
	d := res.Doc
	if d.PublicKey != nil && d.PublicKey.KeyID == keyID && d.PublicKey.PublicKeyPem != "" {
		pub, err := httpsig.ParsePublicKeyPEM(d.PublicKey.PublicKeyPem)
		if err != nil {
			return nil, "", res.FetchedAt, fmt.Errorf("peer %s publishes an unusable publicKey: %w", res.Host, err)
		}
		return pub, "", res.FetchedAt, nil
	}
	if d.JWKSURI == "" {
		return nil, "", res.FetchedAt, fmt.Errorf("%w: %s publishes no key %q", ErrKeyNotFound, res.Host, keyID)
	}
	uri, err := res.Resolve(d.JWKSURI)
	if err != nil {
		return nil, "", res.FetchedAt, fmt.Errorf("peer %s: bad jwksUri: %w", res.Host, err)
	}
	e, err := k.jwks(ctx, uri, force)
	if err != nil {
		return nil, "", res.FetchedAt, fmt.Errorf("peer %s: JWKS: %w", res.Host, err)
	}
	pub, alg, err := e.set.Lookup(keyID)
	if err != nil {
		return nil, "", e.fetchedAt, fmt.Errorf("%w: %s: %w", ErrKeyNotFound, res.Host, err)
	}
	return pub, alg, e.fetchedAt, nil
}

// jwks returns the JWK Set at uri, cached; force fetches it again.
func (k *KeyResolver) jwks(ctx context.Context, uri string, force bool) (*jwksEntry, error) {
	if !force {
		k.mu.Lock()
		e := k.sets[uri]
		k.mu.Unlock()
		if e != nil && k.c.opts.Now().Before(e.expires) {
			if e.ok {
				return e, nil
			}
			return nil, e.err
		}
	}
	ch := k.flights.DoChan(uri, func() (any, error) {
		return k.fetchJWKS(context.WithoutCancel(ctx), uri)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*jwksEntry), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (k *KeyResolver) fetchJWKS(ctx context.Context, uri string) (*jwksEntry, error) {
	o := k.c.opts
	ctx, cancel := context.WithTimeout(ctx, o.PathTimeout)
	defer cancel()
	body, resp, err := k.c.get(ctx, uri, o.MaxBodyBytes)
	var set httpsig.JWKS
	if err == nil {
		set, err = httpsig.ParseJWKS(body)
	}
	now := o.Now()

	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.sets[uri]
	if err != nil {
		if old != nil && old.ok && o.MaxStale > 0 && now.Sub(old.expires) < o.MaxStale {
			o.Logger.Warn("discovery: JWKS refresh failed, using the previous set", "url", uri, "err", err)
			old.expires = now.Add(o.NegativeTTL)
			return old, nil
		}
		k.storeSet(uri, &jwksEntry{err: err, fetchedAt: now, expires: now.Add(o.NegativeTTL)})
		return nil, err
	}
	e := &jwksEntry{set: set, ok: true, fetchedAt: now, expires: now.Add(cacheTTL(resp.Header, o.DefaultTTL))}
	k.storeSet(uri, e)
	return e, nil
}

// storeSet adds e, evicting expired and then soonest-expiring sets when
// full. k.mu is held.
func (k *KeyResolver) storeSet(uri string, e *jwksEntry) {
	if _, ok := k.sets[uri]; !ok && len(k.sets) >= k.c.opts.MaxCacheEntries {
		now := k.c.opts.Now()
		for u, x := range k.sets {
			if !now.Before(x.expires) {
				delete(k.sets, u)
			}
		}
		for len(k.sets) >= k.c.opts.MaxCacheEntries {
			var victim string
			var soonest time.Time
			for u, x := range k.sets {
				if victim == "" || x.expires.Before(soonest) {
					victim, soonest = u, x.expires
				}
			}
			delete(k.sets, victim)
		}
	}
	k.sets[uri] = e
}
