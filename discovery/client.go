package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ocm-agent/ocm-agent/ocm"
)

// How a discovery document was found (Result.Via).
const (
	ViaWellKnown   = "well-known"
	ViaOCMProvider = "ocm-provider"
	ViaSRV         = "srv"
)

// directPaths are tried in order on the peer itself.
var directPaths = []struct{ path, via string }{
	{"/.well-known/ocm", ViaWellKnown},
	{"/ocm-provider", ViaOCMProvider},
	{"/ocm-provider/", ViaOCMProvider},
}

// Result is a discovered peer. Treat it as read-only: it is shared by
// every caller until it expires.
type Result struct {
	Doc *ocm.Discovery
	// Host is the identity of the peer: the domain[:port] that was asked
	// for, normalised, never an SRV target.
	Host string
	// BaseURL is the origin the document was actually fetched from
	// ("https://cloud.example.org"), after redirects and SRV.
	BaseURL string
	// DocURL is the full URL of the document.
	DocURL string
	// Via says how it was found: ViaWellKnown, ViaOCMProvider or ViaSRV.
	Via       string
	FetchedAt time.Time
	Expires   time.Time
}

// Resolve turns a reference from the document (a path such as
// "/ocm/jwks" or an absolute URL) into an absolute URL against BaseURL.
func (r *Result) Resolve(ref string) (string, error) {
	base, err := url.Parse(r.BaseURL)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return base.ResolveReference(u).String(), nil
}

type entry struct {
	res     *Result
	err     error
	expires time.Time
}

// Client discovers peers. It is safe for concurrent use.
type Client struct {
	opts    Options
	http    *http.Client
	flights singleflight.Group
	newPeer *lookupBudget

	mu            sync.Mutex
	cache         map[string]*entry
	refused       int       // new-peer lookups refused since refusedLogged
	refusedLogged time.Time // when refusals were last logged

	// joinedFlight, set only by tests, is told each time a caller waits
	// on the lookup in flight for key.
	joinedFlight func(key string)
}

// New returns a Client with its own hardened HTTP client.
func New(o Options) *Client {
	o = o.withDefaults()
	c := &Client{
		opts:  o,
		http:  NewHTTPClient(o),
		cache: make(map[string]*entry),
	}
	c.newPeer = newLookupBudget(o.MaxNewPeersPerMinute)
	return c
}

// HTTPClient is the hardened client, for other requests to peers.
func (c *Client) HTTPClient() *http.Client { return c.http }

// Options returns the options in effect, defaults filled in.
func (c *Client) Options() Options { return c.opts }

// Discover finds the OCM API of hostport ("cloud.example.org" or
// "cloud.example.org:8443"; a scheme or trailing slash is tolerated).
//
// It tries https://<host>/.well-known/ocm, then /ocm-provider and
// /ocm-provider/ (plain http too when AllowInsecure is set and https could
// not connect), then, when the host is a name without a port, the DNS SRV
// record _ocm._tcp.<host> and /.well-known/ocm on its targets in RFC 2782
// order. Results are cached; failures are cached for NegativeTTL; one
// fetch serves all concurrent callers; and a peer not in the cache counts
// against MaxNewPeersPerMinute (ErrTooManyPeers beyond it), and against
// the smaller shares of it of ctx's requester and of host's domain (see
// WithRequester).
func (c *Client) Discover(ctx context.Context, hostport string) (*Result, error) {
	return c.discover(ctx, hostport, false)
}

// Refresh is Discover ignoring a cached document (coalesced with any
// lookup in flight). Callers bound how often they use it.
func (c *Client) Refresh(ctx context.Context, hostport string) (*Result, error) {
	return c.discover(ctx, hostport, true)
}

// Forget drops whatever is cached for hostport.
func (c *Client) Forget(hostport string) {
	if h, err := ocm.NormalizeHost(hostport); err == nil {
		c.mu.Lock()
		delete(c.cache, h)
		c.mu.Unlock()
	}
}

func (c *Client) discover(ctx context.Context, hostport string, force bool) (*Result, error) {
	host, err := ocm.NormalizeHost(hostport)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHost, err)
	}
	if !force {
		if res, err, ok := c.cached(host); ok {
			return res, err
		}
	}
	key := host
	if force {
		key = "refresh " + host
	}
	ch := c.flights.DoChan(key, func() (any, error) {
		return c.fetch(context.WithoutCancel(ctx), host, force)
	})
	if c.joinedFlight != nil {
		c.joinedFlight(key)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Result), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cached returns a fresh cache entry for host.
func (c *Client) cached(host string) (*Result, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.cache[host]
	if e == nil || !c.opts.Now().Before(e.expires) {
		return nil, nil, false
	}
	return e.res, e.err, true
}

// fetch runs inside the single flight for host.
func (c *Client) fetch(ctx context.Context, host string, force bool) (*Result, error) {
	now := c.opts.Now()
	c.mu.Lock()
	e := c.cache[host]
	if e != nil && !force && now.Before(e.expires) {
		c.mu.Unlock()
		return e.res, e.err
	}
	if e == nil && c.newPeer != nil && !c.newPeer.allow(ctx, host, now) {
		// Under a flood this happens for every request: log once a minute.
		c.refused++
		if now.Sub(c.refusedLogged) >= time.Minute {
			c.opts.Logger.Warn("discovery: lookups of new peers refused by the rate limit",
				"refused", c.refused, "last_peer", host, "limit_per_minute", c.opts.MaxNewPeersPerMinute)
			c.refused, c.refusedLogged = 0, now
		}
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrTooManyPeers, host)
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.opts.LookupTimeout)
	defer cancel()
	res, err := c.lookup(ctx, host)
	now = c.opts.Now()

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if e != nil && e.res != nil && c.opts.MaxStale > 0 && now.Sub(e.res.Expires) < c.opts.MaxStale {
			c.opts.Logger.Warn("discovery: refresh failed, using the previous document", "peer", host, "err", err)
			e.expires = now.Add(c.opts.NegativeTTL)
			return e.res, nil
		}
		c.store(host, &entry{err: err, expires: now.Add(c.opts.NegativeTTL)})
		c.opts.Logger.Info("discovery failed", "peer", host, "err", err)
		return nil, err
	}
	c.store(host, &entry{res: res, expires: res.Expires})
	c.opts.Logger.Debug("discovered peer", "peer", host, "via", res.Via, "base", res.BaseURL, "expires", res.Expires)
	return res, nil
}

// store adds e, evicting expired entries, then the soonest to expire,
// when the cache is full. c.mu is held.
func (c *Client) store(host string, e *entry) {
	if _, ok := c.cache[host]; !ok && len(c.cache) >= c.opts.MaxCacheEntries {
		now := c.opts.Now()
		for h, x := range c.cache {
			if !now.Before(x.expires) {
				delete(c.cache, h)
			}
		}
		for len(c.cache) >= c.opts.MaxCacheEntries {
			var victim string
			var soonest time.Time
			for h, x := range c.cache {
				if victim == "" || x.expires.Before(soonest) {
					victim, soonest = h, x.expires
				}
			}
			delete(c.cache, victim)
		}
	}
	c.cache[host] = e
}

// lookup does the network work for one peer.
func (c *Client) lookup(ctx context.Context, host string) (*Result, error) {
	var errs []error
	res, err := c.tryHost(ctx, host, directPaths)
	if err == nil {
		res.Host = host
		return res, nil
	}
	if errors.Is(err, ErrForbiddenAddress) || errors.Is(err, ErrInsecureScheme) {
		return nil, err
	}
	errs = append(errs, err)

	if c.useSRV(host) {
		res, err := c.trySRV(ctx, host)
		if err == nil {
			res.Host = host
			return res, nil
		}
		if errors.Is(err, ErrForbiddenAddress) || errors.Is(err, ErrInsecureScheme) {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w for %s: %w", ErrNotFound, host, errors.Join(errs...))
}

// schemes are the URL schemes to try, in order.
func (c *Client) schemes() []string {
	switch c.opts.Scheme {
	case "https", "http":
		return []string{c.opts.Scheme}
	}
	if c.opts.AllowInsecure {
		return []string{"https", "http"}
	}
	return []string{"https"}
}

// tryHost tries paths on authority (host[:port]) with each scheme; a later
// scheme only when the earlier one could not connect at all.
func (c *Client) tryHost(ctx context.Context, authority string, paths []struct{ path, via string }) (*Result, error) {
	var errs []error
	for _, scheme := range c.schemes() {
		connected := false
		for _, p := range paths {
			u := scheme + "://" + authority + p.path
			res, err := c.fetchDoc(ctx, u)
			if err == nil {
				res.Via = p.via
				return res, nil
			}
			if errors.Is(err, ErrForbiddenAddress) || errors.Is(err, ErrInsecureScheme) {
				return nil, err
			}
			errs = append(errs, err)
			if isConnectError(err) {
				break // the other paths are on the same host
			}
			connected = true
		}
		if connected || ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// isConnectError tells transport failures (nothing answered in HTTP)
// from HTTP answers that were not a discovery document.
func isConnectError(err error) bool {
	var se *StatusError
	if errors.As(err, &se) || errors.Is(err, ocm.ErrBadJSON) || errors.Is(err, ErrBodyTooLarge) ||
		errors.Is(err, ErrTooManyRedirects) {
		return false
	}
	return true
}

// fetchDoc GETs one URL and parses it as a discovery document.
func (c *Client) fetchDoc(ctx context.Context, rawURL string) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.PathTimeout)
	defer cancel()
	body, resp, err := c.get(ctx, rawURL, c.opts.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	doc, err := ocm.ParseDiscovery(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	final := resp.Request.URL
	now := c.opts.Now()
	return &Result{
		Doc:       doc,
		BaseURL:   origin(final),
		DocURL:    final.String(),
		FetchedAt: now,
		Expires:   now.Add(c.ttl(resp.Header)),
	}, nil
}

// origin is scheme://host[:port] of u, without a default port.
func origin(u *url.URL) string {
	host := u.Host
	if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return u.Scheme + "://" + host
}

// get fetches a JSON document with a size limit. The response is returned
// with its body already consumed and closed.
func (c *Client) get(ctx context.Context, rawURL string, limit int64) ([]byte, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp, &StatusError{URL: rawURL, Code: resp.StatusCode}
	}
	body, err := ReadLimited(resp.Body, limit)
	if err != nil {
		return nil, resp, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	return body, resp, nil
}

// ttl derives a cache lifetime from Cache-Control: max-age clamped to
// [MinTTL, MaxTTL]; no-store and no-cache give MinTTL; nothing gives
// DefaultTTL.
func (c *Client) ttl(h http.Header) time.Duration {
	return cacheTTL(h, c.opts.DefaultTTL)
}

func cacheTTL(h http.Header, def time.Duration) time.Duration {
	ttl := def
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			switch {
			case d == "no-store" || d == "no-cache":
				return MinTTL
			case strings.HasPrefix(d, "max-age="):
				n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(d, "max-age="), `"`), 10, 64)
				if err == nil && n >= 0 {
					if n > int64(MaxTTL/time.Second) {
						n = int64(MaxTTL / time.Second)
					}
					ttl = time.Duration(n) * time.Second
				}
			}
		}
	}
	return min(max(ttl, MinTTL), MaxTTL)
}

// useSRV says whether host may be looked up by SRV: a DNS name without
// a port (an explicit port says where the server is).
func (c *Client) useSRV(host string) bool {
	if c.opts.DisableSRV {
		return false
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return false
	}
	return net.ParseIP(strings.Trim(host, "[]")) == nil
}
