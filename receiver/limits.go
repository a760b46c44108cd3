package receiver

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults for the zero values of Limits.
const (
	DefaultRate              = 20
	DefaultBurst             = 40
	DefaultMaxConcurrent     = 64
	DefaultMaxConnsPerClient = 64
	DefaultMaxClients        = 10000
)

// LimitedPaths are the routes that do work per request (parse, verify a
// signature, write the database) and are therefore limited. The
// discovery document and the JWKS are cached bytes and are not.
var LimitedPaths = []string{"/ocm/shares", "/ocm/notifications", "/ocm/invite-accepted", "/ocm/token"}

// FailureLimit limits how often one client may fail on a route: once a
// client has used up Burst failures it gets 429 on that route until
// failures are forgiven again, one per Every.
type FailureLimit struct {
	Path     string // the route, e.g. "/ocm/invite-accepted"
	Statuses []int  // response statuses that count as a failure
	Every    time.Duration
	Burst    int
}

// DefaultFailureLimits make guessing invite tokens slow: 10 failed
// acceptances from one address, then one every 30 seconds.
var DefaultFailureLimits = []FailureLimit{{
	Path:     "/ocm/invite-accepted",
	Statuses: []int{http.StatusBadRequest, http.StatusConflict},
	Every:    30 * time.Second,
	Burst:    10,
}}

// Limits configure a Limiter. Zero values take the defaults above.
type Limits struct {
	Rate          float64 // requests per second per client address on LimitedPaths
	Burst         int     // requests allowed at once above Rate
	MaxConcurrent int     // requests on LimitedPaths handled at once, all clients together
	// MaxConnsPerClient caps open connections from one address (trusted
	// proxies are exempt); further connections are closed at once.
	MaxConnsPerClient int
	// MaxClients bounds the addresses remembered; the idle, then the
	// least recently seen are forgotten first.
	MaxClients     int
	TrustedProxies []string       // IPs or CIDRs whose X-Forwarded-For is believed
	Failures       []FailureLimit // nil: DefaultFailureLimits
	Logger         *slog.Logger
	Now            func() time.Time // for tests
}

// Limiter protects the public API: per-client token buckets and a global
// concurrency limit on LimitedPaths, per-client failure limits, and a
// per-client connection cap (ConnState). Refusals are 429 with
// Retry-After. It is safe for concurrent use.
type Limiter struct {
	lim     Limits
	proxies Proxies
	sem     chan struct{}
	limited map[string]int // path -> index into lim.Failures, or -1
	log     *slog.Logger
	now     func() time.Time

	mu        sync.Mutex
	clients   map[netip.Addr]*client
	lastSweep time.Time

	connMu sync.Mutex
	conns  map[netip.Addr]int

	refusedRate, refusedBusy, refusedFail, refusedConn atomic.Int64
	logMu                                              sync.Mutex
	lastLog                                            time.Time
}

type client struct {
	req  *rate.Limiter
	fail []*rate.Limiter // per failure rule, nil until the first failure
	seen time.Time
}

// NewLimiter checks l and builds a Limiter.
func NewLimiter(l Limits) (*Limiter, error) {
	if l.Rate <= 0 {
		l.Rate = DefaultRate
	}
	if l.Burst <= 0 {
		l.Burst = DefaultBurst
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = DefaultMaxConcurrent
	}
	if l.MaxConnsPerClient <= 0 {
		l.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if l.MaxClients <= 0 {
		l.MaxClients = DefaultMaxClients
	}
	if l.Failures == nil {
		l.Failures = DefaultFailureLimits
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	proxies, err := ParseProxies(l.TrustedProxies)
	if err != nil {
		return nil, err
	}
	lm := &Limiter{
		lim: l, proxies: proxies, log: l.Logger, now: l.Now,
		sem:     make(chan struct{}, l.MaxConcurrent),
		limited: make(map[string]int, len(LimitedPaths)),
		clients: make(map[netip.Addr]*client),
		conns:   make(map[netip.Addr]int),
	}
	for _, p := range LimitedPaths {
		lm.limited[p] = -1
	}
	for i, f := range l.Failures {
		if f.Every <= 0 || f.Burst <= 0 || len(f.Statuses) == 0 {
			return nil, fmt.Errorf("failure limit for %s: every, burst and statuses must be set", f.Path)
		}
		lm.limited[f.Path] = i
	}
	return lm, nil
}

// ClientAddr is the address r is attributed to (see Proxies.ClientAddr).
func (l *Limiter) ClientAddr(r *http.Request) netip.Addr { return l.proxies.ClientAddr(r) }

// ClientKey is what r's client is counted as: its address, or its /64
// for IPv6 (one host usually holds a whole /64).
func (l *Limiter) ClientKey(r *http.Request) netip.Addr { return clientKey(l.ClientAddr(r)) }

// Wrap puts the limits in front of next.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rule, ok := l.limited[r.URL.Path]
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		key := clientKey(l.ClientAddr(r))
		now := l.now()
		switch wait, refusal := l.admit(key, rule, now); refusal {
		case refusedFailures:
			l.refuse(w, wait, &l.refusedFail, "too many failed requests from your address")
			return
		case refusedRate:
			l.refuse(w, wait, &l.refusedRate, "too many requests from your address")
			return
		}
		// Read the body before taking a slot: a client trickling its body
		// must not hold one (the server's ReadTimeout ends it).
		buf, err := preread(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "could not read the body", nil)
			return
		}
		defer putBuf(buf)
		select {
		case l.sem <- struct{}{}:
		default:
			l.refuse(w, time.Second, &l.refusedBusy, "the server is busy")
			return
		}
		defer func() { <-l.sem }()
		if rule < 0 {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if isFailure(l.lim.Failures[rule].Statuses, sw.status) {
			l.NoteFailure(r.URL.Path, key)
		}
	})
}

const (
	admitted = iota
	refusedRate
	refusedFailures
)

// admit decides whether key may make a request now: it must have a failure
// left on the route (rule >= 0), and it takes a token from its request
// bucket. When refused, it says why and how long to wait.
func (l *Limiter) admit(key netip.Addr, rule int, now time.Time) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clientLocked(key, now)
	c.seen = now
	if rule >= 0 && c.fail != nil && c.fail[rule] != nil {
		if f := c.fail[rule]; f.TokensAt(now) < 1 {
			return tokenWait(f, now), refusedFailures
		}
	}
	if c.req.AllowN(now, 1) {
		return 0, admitted
	}
	return tokenWait(c.req, now), refusedRate
}

// NoteFailure counts a failed request on path (one with a FailureLimit)
// against the client address a.
func (l *Limiter) NoteFailure(path string, a netip.Addr) {
	rule, ok := l.limited[path]
	if !ok || rule < 0 {
		return
	}
	key := clientKey(a)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clientLocked(key, now)
	if c.fail == nil {
		c.fail = make([]*rate.Limiter, len(l.lim.Failures))
	}
	if c.fail[rule] == nil {
		f := l.lim.Failures[rule]
		c.fail[rule] = rate.NewLimiter(rate.Every(f.Every), f.Burst)
	}
	c.fail[rule].AllowN(now, 1)
}

// tokenWait is how long until lim has a whole token again.
func tokenWait(lim *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - lim.TokensAt(now)
	if missing <= 0 || lim.Limit() <= 0 {
		return time.Second
	}
	return time.Duration(missing / float64(lim.Limit()) * float64(time.Second))
}

func isFailure(statuses []int, status int) bool {
	for _, s := range statuses {
		if s == status {
			return true
		}
	}
	return false
}

// clientLocked finds or makes the entry of key; l.mu is held.
func (l *Limiter) clientLocked(key netip.Addr, now time.Time) *client {
	if c := l.clients[key]; c != nil {
		return c
	}
	if len(l.clients) >= l.lim.MaxClients || now.Sub(l.lastSweep) > time.Minute {
		l.sweepLocked(now)
	}
	c := &client{req: rate.NewLimiter(rate.Limit(l.lim.Rate), l.lim.Burst), seen: now}
	l.clients[key] = c
	return c
}

// sweepLocked forgets clients whose buckets are full again (they are as
// good as new); when that is not enough, the least recently seen of a
// sample. l.mu is held.
func (l *Limiter) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) >= time.Second {
		l.lastSweep = now
		for k, c := range l.clients {
			if c.idle(now) {
				delete(l.clients, k)
			}
		}
	}
	for len(l.clients) >= l.lim.MaxClients {
		var victim netip.Addr
		var oldest time.Time
		n := 0
		for k, c := range l.clients {
			if n == 0 || c.seen.Before(oldest) {
				victim, oldest = k, c.seen
			}
			if n++; n >= 32 {
				break
			}
		}
		delete(l.clients, victim)
	}
}

func (c *client) idle(now time.Time) bool {
	if c.req.TokensAt(now) < float64(c.req.Burst()) {
		return false
	}
	for _, f := range c.fail {
		if f != nil && f.TokensAt(now) < float64(f.Burst()) {
			return false
		}
	}
	return true
}

// Clients is the number of addresses currently remembered.
func (l *Limiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// ConnState is for http.Server.ConnState: it closes a new connection from
// an address that already has MaxConnsPerClient open (trusted proxies are
// exempt), so that one client cannot hold every connection.
func (l *Limiter) ConnState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		a := RemoteIP(c.RemoteAddr().String())
		key := clientKey(a)
		l.connMu.Lock()
		l.conns[key]++
		over := l.conns[key] > l.lim.MaxConnsPerClient && !l.proxies.Trusted(a)
		l.connMu.Unlock()
		if over {
			l.refusedConn.Add(1)
			l.maybeLog()
			c.Close()
		}
	case http.StateClosed, http.StateHijacked:
		key := clientKey(RemoteIP(c.RemoteAddr().String()))
		l.connMu.Lock()
		if l.conns[key] <= 1 {
			delete(l.conns, key)
		} else {
			l.conns[key]--
		}
		l.connMu.Unlock()
	}
}

// Refused counts the refusals since start, by reason.
type Refused struct{ Rate, Busy, Failures, Conns int64 }

// Refused returns the refusal counters.
func (l *Limiter) Refused() Refused {
	return Refused{Rate: l.refusedRate.Load(), Busy: l.refusedBusy.Load(),
		Failures: l.refusedFail.Load(), Conns: l.refusedConn.Load()}
}

// refuse answers 429 with Retry-After (whole seconds, at least 1).
func (l *Limiter) refuse(w http.ResponseWriter, wait time.Duration, counter *atomic.Int64, msg string) {
	counter.Add(1)
	l.maybeLog()
	secs := int64(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeError(w, http.StatusTooManyRequests, msg+"; retry later", nil)
}

// maybeLog reports refusals at most once a minute: under a flood a line
// per request would be a flood of its own.
func (l *Limiter) maybeLog() {
	now := l.now()
	l.logMu.Lock()
	if now.Sub(l.lastLog) < time.Minute {
		l.logMu.Unlock()
		return
	}
	l.lastLog = now
	l.logMu.Unlock()
	r := l.Refused()
	l.log.Warn("public endpoint: requests refused by the limits (totals since start)",
		"rate", r.Rate, "busy", r.Busy, "failures", r.Failures, "connections", r.Conns,
		"rate_limit", l.lim.Rate, "burst", l.lim.Burst, "max_concurrent", l.lim.MaxConcurrent)
}

// prereadLimit is one byte more than the largest body a route takes, so
// that the route still sees that the body is too large.
const prereadLimit = maxShareBody + 1

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func putBuf(b *[]byte) {
	if b != nil && cap(*b) <= prereadLimit {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

// preread reads up to prereadLimit bytes of the body and puts them back in
// front of the rest. A body declared too large is left to the route.
func preread(r *http.Request) (*[]byte, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength > maxShareBody || r.ContentLength == 0 {
		return nil, nil
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if r.ContentLength > 0 && int64(cap(b)) < r.ContentLength+1 {
		b = make([]byte, 0, r.ContentLength+1)
	}
	lr := io.LimitReader(r.Body, prereadLimit)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b
			putBuf(bp)
			return nil, err
		}
	}
	*bp = b
	r.Body = &prereadBody{Reader: io.MultiReader(bytes.NewReader(b), r.Body), Closer: r.Body}
	return bp, nil
}

type prereadBody struct {
	io.Reader
	io.Closer
}
