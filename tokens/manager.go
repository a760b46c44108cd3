package tokens

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

var (
	// ErrCodeRejected: the sending server refused the share's code or
	// secret (invalid_grant, or the 401/403 some servers send instead).
	// The share cannot be accessed until the sender shares again.
	ErrCodeRejected = errors.New("the sending server rejected the share's code")
	// ErrNoTokenEndpoint: the share needs a token exchange and no token
	// endpoint is known for its sender.
	ErrNoTokenEndpoint = errors.New("no token endpoint known for the sender")
	// ErrNoSecret: the share has no secret to present or exchange.
	ErrNoSecret = errors.New("the share has no secret")
	// ErrUnusableSecret: the secret cannot be sent in an HTTP header.
	ErrUnusableSecret = errors.New("the share's secret is not usable as a bearer token")
)

// Defaults of a Manager.
const (
	DefaultRenewBefore     = 30 * time.Second
	DefaultTokenLifetime   = 5 * time.Minute
	DefaultFallbackRetry   = 5 * time.Minute
	DefaultSchemeMemory    = time.Hour
	DefaultInvalidateGrace = time.Second
	DefaultFailureBackoff  = 5 * time.Second
	DefaultRejectedBackoff = time.Minute
	DefaultRenewTimeout    = 45 * time.Second
)

// ManagerOptions configures a Manager. Source and Exchanger are required.
type ManagerOptions struct {
	Source    ShareAccessSource
	Exchanger *Exchanger
	// Store keeps refresh tokens (share/<id>/refresh); nil keeps them in
	// memory only. Forget deletes the share's secrets from it.
	Store Store
	// OnShareError is called (from the goroutine doing the exchange, once
	// per failed attempt) when a share's access failed for a reason that
	// retrying will not fix: a rejected code (errors.Is(err,
	// ErrCodeRejected)), no token endpoint, an unusable secret, another
	// 4xx from the token endpoint. The agent moves the share to `error`.
	OnShareError func(shareID string, err error)
	Logger       *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RenewBefore: renew a token this long before it expires (at most
	// half its lifetime); DefaultRenewBefore when zero.
	RenewBefore time.Duration
	// DefaultLifetime is assumed for tokens without expires_in.
	DefaultLifetime time.Duration
	// FallbackRetry: after an optional exchange failed and the shared
	// secret is used instead, try exchanging again after this long.
	FallbackRetry time.Duration
	// SchemeMemory: how long the Bearer/Basic choice for a legacy peer
	// is remembered.
	SchemeMemory time.Duration
	// InvalidateGrace: an Invalidate this soon after the credential was
	// obtained (or the scheme switched) is taken as a straggler of the
	// same burst of 401s and ignored.
	InvalidateGrace time.Duration
	// FailureBackoff / RejectedBackoff: how long a failed attempt is
	// answered from memory before the peer is asked again (transient /
	// permanent failures).
	FailureBackoff  time.Duration
	RejectedBackoff time.Duration
	// RenewTimeout bounds one renewal (lookup and exchanges).
	RenewTimeout time.Duration
}

// Manager hands out Authorization headers for shares: it implements the
// Authorizer of the fuse package. Credentials are cached in memory,
// renewed before they expire and after Invalidate, and a burst of
// requests for one share triggers a single exchange.
type Manager struct {
	o      ManagerOptions
	logger *slog.Logger
	group  singleflight.Group

	mu      sync.Mutex
	creds   map[string]*cred
	gen     map[string]uint64 // bumped by Forget
	schemes map[string]schemeMemo
}

type credKind int

const (
	kindToken credKind = iota
	kindSecret
	kindLegacyBasic
)

// cred is what the manager holds for one share. It holds secrets: never
// log or print it.
type cred struct {
	kind     credKind
	mode     Mode
	peer     string
	header   string // kindToken, kindSecret
	bearer   string // kindLegacyBasic
	basic    string // kindLegacyBasic
	refresh  string
	obtained time.Time
	expires  time.Time // zero: does not expire
	renewAt  time.Time // zero: no renewal planned
	stale    bool
	err      error // a failed attempt, answered until renewAt
}

// schemeMemo is the Bearer/Basic choice for one legacy peer.
type schemeMemo struct {
	basic   bool
	until   time.Time
	changed time.Time
}

// NewManager returns a Manager.
func NewManager(o ManagerOptions) (*Manager, error) {
	if o.Source == nil || o.Exchanger == nil {
		return nil, errors.New("tokens: a Manager needs a ShareAccessSource and an Exchanger")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	setDefault(&o.RenewBefore, DefaultRenewBefore)
	setDefault(&o.DefaultLifetime, DefaultTokenLifetime)
	setDefault(&o.FallbackRetry, DefaultFallbackRetry)
	setDefault(&o.SchemeMemory, DefaultSchemeMemory)
	setDefault(&o.InvalidateGrace, DefaultInvalidateGrace)
	setDefault(&o.FailureBackoff, DefaultFailureBackoff)
	setDefault(&o.RejectedBackoff, DefaultRejectedBackoff)
	setDefault(&o.RenewTimeout, DefaultRenewTimeout)
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		o:       o,
		logger:  logger,
		creds:   map[string]*cred{},
		gen:     map[string]uint64{},
		schemes: map[string]schemeMemo{},
	}, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Authorize sets the Authorization header of req for the share, exchanging
// or renewing a token first when needed.
func (m *Manager) Authorize(ctx context.Context, shareID string, req *http.Request) error {
	if h, err, ok := m.cached(shareID); ok {
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", h)
		return nil
	}
	// The renewal runs detached from this caller's cancellation (other
	// callers may be waiting on it) but bounded by RenewTimeout.
	rctx := context.WithoutCancel(ctx)
	ch := m.group.DoChan(shareID, func() (any, error) {
		return m.renew(rctx, shareID)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return r.Err
		}
		req.Header.Set("Authorization", r.Val.(string))
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cached returns the header to use (or the remembered failure) when the
// cache can answer.
func (m *Manager) cached(shareID string) (string, error, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.creds[shareID]
	now := m.o.Now()
	if c == nil || c.stale || (!c.renewAt.IsZero() && !now.Before(c.renewAt)) {
		return "", nil, false
	}
	if c.err != nil {
		return "", c.err, true
	}
	return m.headerLocked(c, now), nil, true
}

// headerLocked is the Authorization value of c now.
func (m *Manager) headerLocked(c *cred, now time.Time) string {
	if c.kind == kindLegacyBasic {
		if s, ok := m.schemes[c.peer]; ok && s.basic && now.Before(s.until) {
			return c.basic
		}
		return c.bearer
	}
	return c.header
}

// Invalidate is called after the share's credential got a 401. The next
// Authorize renews it (legacy shares switch between Bearer and Basic).
// Stragglers of the same burst are ignored (InvalidateGrace).
func (m *Manager) Invalidate(shareID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.creds[shareID]
	if c == nil || c.err != nil {
		return
	}
	now := m.o.Now()
	if c.kind == kindLegacyBasic {
		s := m.schemes[c.peer]
		if now.Sub(s.changed) < m.o.InvalidateGrace {
			return
		}
		usingBasic := s.basic && now.Before(s.until)
		m.schemes[c.peer] = schemeMemo{basic: !usingBasic, until: now.Add(m.o.SchemeMemory), changed: now}
		m.pruneSchemesLocked(now)
		m.logger.Debug("tokens: switching the legacy auth scheme for peer", "peer", c.peer, "basic", !usingBasic)
		return
	}
	if now.Sub(c.obtained) < m.o.InvalidateGrace {
		return
	}
	c.stale = true
}

// InvalidateCredential is called after a request authorized with header
// (its Authorization value) got a 401. It drops that credential, however
// young it is (a server that restarted forgets tokens it issued a moment
// ago), so that the next Authorize renews it once; a 401 to a credential
// that was already replaced (a straggler of the same burst) changes
// nothing. Legacy shares switch between Bearer and Basic instead.
func (m *Manager) InvalidateCredential(shareID, header string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.creds[shareID]
	if c == nil || c.err != nil || c.stale || header == "" {
		return
	}
	now := m.o.Now()
	if header != m.headerLocked(c, now) {
		return // already renewed since that request was sent
	}
	m.logger.Info("tokens: the sending server refused the share's credentials (401); renewing them once",
		"share", shareID, "peer", c.peer, "mode", c.mode.String())
	if c.kind == kindLegacyBasic {
		usingBasic := header == c.basic && c.basic != c.bearer
		m.schemes[c.peer] = schemeMemo{basic: !usingBasic, until: now.Add(m.o.SchemeMemory), changed: now}
		m.pruneSchemesLocked(now)
		return
	}
	c.stale = true
}

func (m *Manager) pruneSchemesLocked(now time.Time) {
	for p, s := range m.schemes {
		if !now.Before(s.until) {
			delete(m.schemes, p)
		}
	}
}

// Reset drops the cached credential of the share, keeping its secrets in
// the store: the agent calls it when a share's access changed (the sender
// re-sent it with a new secret, its discovery changed).
func (m *Manager) Reset(shareID string) {
	m.mu.Lock()
	delete(m.creds, shareID)
	m.gen[shareID]++
	m.mu.Unlock()
	m.group.Forget(shareID)
}

// Forget drops everything known about the share: cached credentials and
// its secrets in the store (secret, token, refresh token). For decline,
// unshare, expiry and removal.
func (m *Manager) Forget(ctx context.Context, shareID string) error {
	m.Reset(shareID)
	if m.o.Store == nil {
		return nil
	}
	var errs []error
	for _, key := range []string{shareSecretKey(shareID), shareTokenKey(shareID), shareRefreshKey(shareID)} {
		if err := m.o.Store.Delete(ctx, key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// renew obtains a credential for the share and caches it (or the
// failure); it returns the Authorization value.
func (m *Manager) renew(ctx context.Context, shareID string) (string, error) {
	if h, err, ok := m.cached(shareID); ok {
		return h, err // another flight just finished
	}
	ctx, cancel := context.WithTimeout(ctx, m.o.RenewTimeout)
	defer cancel()
	m.mu.Lock()
	gen := m.gen[shareID]
	prev := m.creds[shareID]
	var pv *cred // a snapshot: prev's fields change under m.mu
	if prev != nil {
		c := *prev
		pv = &c
	}
	m.mu.Unlock()

	a, err := m.o.Source.ShareAccess(ctx, shareID)
	if err != nil {
		return "", fmt.Errorf("share %s: looking up its access: %w", shareID, err)
	}
	if a.ShareID == "" {
		a.ShareID = shareID
	}
	c, err := m.obtain(ctx, a, pv, gen)
	now := m.o.Now()
	if err != nil {
		if pv != nil && pv.err == nil && !pv.stale && pv.kind == kindToken && now.Before(pv.expires) {
			// Renewal ahead of expiry failed; the current token still works.
			m.logger.Warn("tokens: renewing a token failed; using the current one until it expires",
				"share", shareID, "peer", a.Peer, "err", err)
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.gen[shareID] == gen && m.creds[shareID] == prev {
				prev.renewAt = now.Add(min(m.o.FailureBackoff, prev.expires.Sub(now)))
			}
			return m.headerLocked(pv, now), nil
		}
		backoff := m.o.FailureBackoff
		if permanent(err) {
			backoff = m.o.RejectedBackoff
			m.logger.Warn("tokens: the share cannot be accessed", "share", shareID, "peer", a.Peer, "err", err)
			if m.o.OnShareError != nil {
				m.o.OnShareError(shareID, err)
			}
		} else {
			// This failure reaches whoever is reading the share: say why
			// at the default level, not only in debug logs.
			m.logger.Warn("tokens: could not obtain credentials for the share; will try again",
				"share", shareID, "peer", a.Peer, "retry_in", backoff, "err", err)
		}
		m.put(shareID, gen, &cred{err: err, obtained: now, renewAt: now.Add(backoff), peer: a.Peer})
		return "", err
	}
	return m.put(shareID, gen, c), nil
}

// put caches c unless the share was forgotten meanwhile, and returns its
// Authorization value.
func (m *Manager) put(shareID string, gen uint64, c *cred) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen[shareID] == gen {
		m.creds[shareID] = c
	}
	if c.err != nil {
		return ""
	}
	return m.headerLocked(c, m.o.Now())
}

// obtain follows the decision table for one share.
func (m *Manager) obtain(ctx context.Context, a Access, prev *cred, gen uint64) (*cred, error) {
	mode := Decide(a)
	now := m.o.Now()
	if a.Secret == "" {
		return nil, fmt.Errorf("share %s: %w", a.ShareID, ErrNoSecret)
	}
	secretCred := func() (*cred, error) {
		if !headerSafe(a.Secret) {
			return nil, fmt.Errorf("share %s: %w", a.ShareID, ErrUnusableSecret)
		}
		return &cred{kind: kindSecret, mode: mode, peer: a.Peer, header: "Bearer " + a.Secret, obtained: now}, nil
	}
	switch mode {
	case ModeSecret:
		return secretCred()

	case ModeLegacyBasic:
		c := &cred{kind: kindLegacyBasic, mode: mode, peer: a.Peer, obtained: now,
			basic: "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Secret+":"))}
		if headerSafe(a.Secret) {
			c.bearer = "Bearer " + a.Secret
		} else {
			c.bearer = c.basic
		}
		return c, nil

	case ModeMustExchange:
		if a.TokenEndpoint == "" {
			return nil, fmt.Errorf("share %s requires a token exchange: %w", a.ShareID, ErrNoTokenEndpoint)
		}
		tok, err := m.o.Exchanger.Exchange(ctx, a.TokenEndpoint, a.ClientID, a.Secret)
		if err != nil {
			return nil, exchangeError(a.ShareID, err)
		}
		return m.tokenCred(a, mode, tok, now), nil

	case ModeMayExchange:
		tok, err := m.o.Exchanger.Exchange(ctx, a.TokenEndpoint, a.ClientID, a.Secret)
		if err == nil {
			return m.tokenCred(a, mode, tok, now), nil
		}
		c, serr := secretCred()
		if serr != nil {
			return nil, errors.Join(exchangeError(a.ShareID, err), serr)
		}
		m.logger.Warn("tokens: optional token exchange failed; using the shared secret",
			"share", a.ShareID, "peer", a.Peer, "err", err, "retry_in", m.o.FallbackRetry)
		c.renewAt = now.Add(m.o.FallbackRetry)
		return c, nil

	case ModeLegacyCode:
		return m.legacyCode(ctx, a, prev, gen, now)
	}
	return nil, fmt.Errorf("share %s: unknown access mode %s", a.ShareID, mode)
}

// legacyCode exchanges a top-level code at the legacy endpoint, using a
// refresh token first when one is known.
func (m *Manager) legacyCode(ctx context.Context, a Access, prev *cred, gen uint64, now time.Time) (*cred, error) {
	if a.LegacyTokenEndpoint == "" {
		return nil, fmt.Errorf("share %s has a code: %w", a.ShareID, ErrNoTokenEndpoint)
	}
	refresh := ""
	if prev != nil {
		refresh = prev.refresh
	}
	if refresh == "" && m.o.Store != nil {
		if v, err := m.o.Store.Get(ctx, shareRefreshKey(a.ShareID)); err == nil {
			refresh = string(v)
			clear(v)
		} else if !errors.Is(err, ErrSecretNotFound) {
			m.logger.Warn("tokens: reading a refresh token failed", "share", a.ShareID, "err", err)
		}
	}
	var tok Token
	var err error
	if refresh != "" {
		tok, err = m.o.Exchanger.RefreshLegacy(ctx, a.LegacyTokenEndpoint, a.ClientID, refresh)
		if err != nil {
			m.logger.Debug("tokens: refresh token refused; exchanging the code again", "share", a.ShareID, "err", err)
			m.deleteRefresh(ctx, a.ShareID)
		} else if tok.RefreshToken == "" {
			tok.RefreshToken = refresh
		}
	}
	if refresh == "" || err != nil {
		tok, err = m.o.Exchanger.ExchangeLegacy(ctx, a.LegacyTokenEndpoint, a.ClientID, a.Secret)
		if err != nil {
			return nil, exchangeError(a.ShareID, err)
		}
	}
	if tok.RefreshToken != "" && tok.RefreshToken != refresh && m.o.Store != nil {
		if err := m.o.Store.Put(ctx, shareRefreshKey(a.ShareID), []byte(tok.RefreshToken)); err != nil {
			m.logger.Warn("tokens: keeping the refresh token failed", "share", a.ShareID, "err", err)
		}
		m.mu.Lock()
		forgotten := m.gen[a.ShareID] != gen
		m.mu.Unlock()
		if forgotten {
			m.deleteRefresh(ctx, a.ShareID)
		}
	}
	return m.tokenCred(a, ModeLegacyCode, tok, now), nil
}

func (m *Manager) deleteRefresh(ctx context.Context, shareID string) {
	if m.o.Store == nil {
		return
	}
	if err := m.o.Store.Delete(ctx, shareRefreshKey(shareID)); err != nil {
		m.logger.Warn("tokens: deleting a refresh token failed", "share", shareID, "err", err)
	}
}

func (m *Manager) tokenCred(a Access, mode Mode, tok Token, now time.Time) *cred {
	life := tok.ExpiresIn
	if life <= 0 {
		life = m.o.DefaultLifetime
	}
	before := min(m.o.RenewBefore, life/2)
	m.logger.Debug("tokens: obtained a bearer token", "share", a.ShareID, "peer", a.Peer, "mode", mode.String(), "token", tok)
	return &cred{kind: kindToken, mode: mode, peer: a.Peer, header: "Bearer " + tok.AccessToken,
		refresh: tok.RefreshToken, obtained: now, expires: now.Add(life), renewAt: now.Add(life - before)}
}

// exchangeError wraps a failed exchange; a refused code also matches
// ErrCodeRejected.
func exchangeError(shareID string, err error) error {
	if errors.Is(err, ErrInvalidGrant) {
		return fmt.Errorf("share %s: %w: %w", shareID, ErrCodeRejected, err)
	}
	return fmt.Errorf("share %s: token exchange: %w", shareID, err)
}

// permanent reports whether retrying cannot fix err.
func permanent(err error) bool {
	switch {
	case errors.Is(err, ErrCodeRejected), errors.Is(err, ErrNoTokenEndpoint), errors.Is(err, ErrNoSecret),
		errors.Is(err, ErrUnusableSecret), errors.Is(err, ErrInsecureEndpoint):
		return true
	}
	var te *TokenError
	if errors.As(err, &te) {
		return !te.Temporary()
	}
	return false
}
