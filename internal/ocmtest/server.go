package ocmtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultUser          = "alice"
	DefaultDisplayName   = "Alice Sender"
	DefaultTokenLifetime = 5 * time.Minute
	DefaultHTTPTimeout   = 10 * time.Second
)

// Paths served by the Server.
const (
	pathWellKnown     = "/.well-known/ocm"
	pathOCMProvider   = "/ocm-provider"
	pathEndPoint      = "/ocm"
	pathJWKS          = "/ocm/jwks"
	pathToken         = "/ocm/token"
	pathNotifications = "/ocm/notifications"
	pathInviteAccept  = "/ocm/invite-accepted"
	pathShares        = "/ocm/shares"
	pathAcceptDialog  = "/accept-invite"
	// WebDAVRoot is the path prefix of the WebDAV tree.
	WebDAVRoot = "/webdav/ocm/"
)

// maxBody bounds every request or response body this package reads.
const maxBody = 1 << 20

// DefaultCapabilities are advertised when Options.Capabilities is nil.
var DefaultCapabilities = []string{"exchange-token", "http-sig", "invites", "notifications", "protocol-object"}

// Options configure a Server. The zero value is usable.
type Options struct {
	// User is the local user that owns and sends shares ("alice").
	User        string
	DisplayName string
	Email       string
	// Dir is the root directory shares are taken from. When empty a
	// temporary directory is made and removed by Close.
	Dir string
	// Listen is the address to bind, default "127.0.0.1:0".
	Listen string
	// TLS serves HTTPS with a certificate from a test CA made at New.
	TLS bool
	// APIVersion advertised in discovery, default APIVersion ("1.4.0").
	APIVersion string
	// Provider is the friendly name in discovery, default "ocmtest".
	Provider string
	// Capabilities advertised; nil means DefaultCapabilities, an empty
	// non-nil slice advertises none.
	Capabilities []string
	// Criteria advertised (e.g. "must-use-http-sig").
	Criteria []string
	// DiscoveryHook, when set, may edit the discovery document (a fresh
	// map per request) before it is served.
	DiscoveryHook func(doc map[string]any)
	// TokenLifetime of issued access tokens, default DefaultTokenLifetime.
	TokenLifetime time.Duration
	// RequireSignedTokenRequests makes the token endpoint refuse requests
	// that carry no valid signature (as opencloudmesh-go does).
	RequireSignedTokenRequests bool
	// RequireSignedRequests makes /notifications and /invite-accepted
	// refuse (401) requests without a valid signature.
	RequireSignedRequests bool
	// RejectReplays refuses a signature that was already accepted (within
	// the freshness window). Off by default: an identical retry within the
	// same second carries an identical signature.
	RejectReplays bool
	// NextcloudStyleErrors answers 401 instead of 400 for invalid grants.
	NextcloudStyleErrors bool
	// NoPropfindOnFiles answers 405 to PROPFIND on file shares, as
	// opencloudmesh-go does.
	NoPropfindOnFiles bool
	// ReadSignaturesAsCavage reads every Signature field as draft-cavage
	// and answers 400 "Invalid signature" to one that does not verify, as
	// Nextcloud does (an RFC 9421 signature then never verifies).
	ReadSignaturesAsCavage bool
	// RefuseRanges answers a GET with Range by 416 and an empty body
	// although HEAD says Accept-Ranges: bytes, as reva does.
	RefuseRanges bool
	// OCMGoNotifications answers notifications as opencloudmesh-go does:
	// 200 {"status":"ok"}, and 409 SHARE_STATUS_CONFLICT to a
	// SHARE_DECLINED for a share that was accepted.
	OCMGoNotifications bool
	// ServerErrorForRevoked answers 500 to WebDAV requests with the
	// credentials of a share that was revoked (RevokeShare), as OpenCloud
	// does for a share its user removed.
	ServerErrorForRevoked bool
	// ClientRootCAs are the roots trusted when this server calls others
	// (receivers, key look-ups). The server's own CA is always trusted;
	// nil adds the system roots.
	ClientRootCAs *x509.CertPool
	// HTTPTimeout bounds every outbound request, default DefaultHTTPTimeout.
	HTTPTimeout time.Duration
	// Logger receives what the server does (never secrets); default discards.
	Logger *slog.Logger
}

// Emulate sets the options that make the server behave as one real
// server does on the wire: "nextcloud" (signature reading), "reva" (416 to
// every Range), "ocmgo" (PROPFIND 405, 200/409 notification answers,
// signed token requests), "opencloud" (500 for a removed share); ""
// changes nothing. Share bodies follow the
// ShareRequest's Dialect.
func Emulate(o *Options, server string) error {
	switch server {
	case "":
	case "nextcloud":
		o.ReadSignaturesAsCavage = true
	case "reva":
		o.RefuseRanges = true
	case "ocmgo":
		o.NoPropfindOnFiles, o.OCMGoNotifications, o.RequireSignedTokenRequests = true, true, true
	case "opencloud":
		o.ServerErrorForRevoked = true
	default:
		return fmt.Errorf("ocmtest: cannot emulate %q (nextcloud, reva, ocmgo or opencloud)", server)
	}
	return nil
}

// Server is a reference OCM sending server. Create it with New, then Start.
type Server struct {
	opts   Options
	log    *slog.Logger
	dir    string
	ownDir bool

	ca      *testCA
	edKey   ed25519.PrivateKey
	kidN    int
	oldKeys []publishedKey // keys still published after a rotation
	rsaKey  *rsa.PrivateKey
	client  *http.Client
	replay  *replayCache
	faults  faults
	closing chan struct{}

	ln      net.Listener
	srv     *http.Server
	base    string // scheme://host:port
	host    string // host:port
	started bool
	closed  bool

	mu            sync.Mutex
	changed       chan struct{}
	shares        map[string]*shareRec // by share id
	bySecret      map[string]*shareRec
	byCode        map[string]*shareRec
	tokens        map[string]*tokenRec // access tokens
	refresh       map[string]*tokenRec // refresh tokens (legacy contract)
	tokenLifetime time.Duration
	invites       map[string]*inviteRec
	notifications []Notification
	acceptances   []InviteAcceptance
	hits          map[string]int64
	davStats      map[string]MethodStats
	tokenRequests []TokenRequest
	seq           int64  // Nextcloud-style numeric provider ids
	ocisUser      string // the local user's UUID in the oCIS dialect
}

type publishedKey struct {
	kid string
	pub ed25519.PublicKey
}

// New makes a Server with fresh keys (and a test CA when opts.TLS). It does
// not listen yet: call Start.
func New(opts Options) (*Server, error) {
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.DisplayName == "" {
		opts.DisplayName = DefaultDisplayName
	}
	if opts.Email == "" {
		opts.Email = opts.User + "@example.org"
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Provider == "" {
		opts.Provider = "ocmtest"
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.HTTPTimeout <= 0 {
		opts.HTTPTimeout = DefaultHTTPTimeout
	}
	if opts.Capabilities == nil {
		opts.Capabilities = append([]string(nil), DefaultCapabilities...)
	}
	s := &Server{
		opts:          opts,
		log:           opts.Logger,
		closing:       make(chan struct{}),
		changed:       make(chan struct{}),
		shares:        map[string]*shareRec{},
		bySecret:      map[string]*shareRec{},
		byCode:        map[string]*shareRec{},
		tokens:        map[string]*tokenRec{},
		refresh:       map[string]*tokenRec{},
		invites:       map[string]*inviteRec{},
		hits:          map[string]int64{},
		davStats:      map[string]MethodStats{},
		tokenLifetime: opts.TokenLifetime,
		kidN:          1,
	}
	if opts.RejectReplays {
		s.replay = newReplayCache()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if _, s.edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, fmt.Errorf("ocmtest: ed25519 key: %w", err)
	}
	if s.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, fmt.Errorf("ocmtest: rsa key: %w", err)
	}
	// The CA is made even for plain HTTP so CertPool is always usable.
	if s.ca, err = newTestCA(); err != nil {
		return nil, err
	}
	s.dir = opts.Dir
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "ocmtest-"); err != nil {
			return nil, fmt.Errorf("ocmtest: root dir: %w", err)
		}
		s.ownDir = true
	} else if fi, err := os.Stat(s.dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("ocmtest: root dir %q is not a directory", s.dir)
	}
	s.client = s.newClient()
	return s, nil
}

func (s *Server) newClient() *http.Client {
	roots := s.opts.ClientRootCAs
	if roots == nil {
		if sys, err := x509.SystemCertPool(); err == nil {
			roots = sys
		} else {
			roots = x509.NewCertPool()
		}
	} else {
		roots = roots.Clone()
	}
	roots.AddCert(s.ca.cert)
	tr := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: s.opts.HTTPTimeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		DialContext:         (&net.Dialer{Timeout: s.opts.HTTPTimeout}).DialContext,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   s.opts.HTTPTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // peers must answer where asked
		},
	}
}

// Start binds the listener and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("ocmtest: already started")
	}
	if s.closed {
		return errors.New("ocmtest: closed")
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("ocmtest: listen: %w", err)
	}
	s.host = ln.Addr().String()
	scheme := "http"
	if s.opts.TLS {
		cert, err := s.ca.leaf()
		if err != nil {
			_ = ln.Close()
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"http/1.1"}, // HTTP/1.1 only, so connections can be hijacked
			MinVersion:   tls.VersionTLS12,
		})
		scheme = "https"
	}
	s.base = scheme + "://" + s.host
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.started = true
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("ocmtest: serve stopped", "err", err)
		}
	}()
	s.log.Info("ocmtest: serving", "url", s.base, "user", s.opts.User, "dir", s.dir)
	return nil
}

// Close stops serving, releases hung requests and removes a temporary root
// directory. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close() // closes connections first, so released handlers cannot answer
	}
	close(s.closing)
	s.client.CloseIdleConnections()
	if s.ownDir {
		if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// TB is the part of testing.TB that StartForTest uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// StartForTest makes and starts a Server and closes it when the test ends.
func StartForTest(t TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("ocmtest: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("ocmtest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// URL is the base URL, "http(s)://127.0.0.1:port" (empty before Start).
func (s *Server) URL() string { return s.base }

// Host is "127.0.0.1:port", the provider part of this server's addresses.
func (s *Server) Host() string { return s.host }

// Address is the OCM address of the server's user, "alice@127.0.0.1:port".
func (s *Server) Address() string { return s.opts.User + "@" + s.host }

// User is the local user name.
func (s *Server) User() string { return s.opts.User }

// Dir is the root directory shares are taken from.
func (s *Server) Dir() string { return s.dir }

// EndPoint is the OCM API end point advertised in discovery.
func (s *Server) EndPoint() string { return s.base + pathEndPoint }

// TokenEndPoint is the token endpoint URL.
func (s *Server) TokenEndPoint() string { return s.base + pathToken }

// WebDAVURL is the absolute URL of the WebDAV root.
func (s *Server) WebDAVURL() string { return s.base + WebDAVRoot }

// CACertPEM is the test CA certificate in PEM form; trust it to reach this
// server over HTTPS.
func (s *Server) CACertPEM() []byte { return s.ca.certPEM }

// CertPool holds the test CA certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca.cert)
	return p
}

// Client is an HTTP client that trusts this server's CA (and the roots of
// Options.ClientRootCAs), with the configured timeout. The server uses it
// for its own outbound calls too.
func (s *Server) Client() *http.Client { return s.client }

// SetTokenLifetime changes the lifetime of tokens issued from now on.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	s.tokenLifetime = d
	s.mu.Unlock()
}

// handler is the whole server: request accounting, faults, routes.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pathWellKnown, s.serveDiscovery)
	mux.HandleFunc(pathOCMProvider, s.serveDiscovery)
	mux.HandleFunc(pathOCMProvider+"/", s.serveDiscovery)
	mux.HandleFunc(pathJWKS, s.serveJWKS)
	mux.HandleFunc(pathToken, s.serveToken)
	mux.HandleFunc(pathNotifications, s.serveNotifications)
	mux.HandleFunc(pathInviteAccept, s.serveInviteAccepted)
	mux.HandleFunc(pathShares, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"message": "this server only sends shares"})
	})
	mux.HandleFunc(pathAcceptDialog, s.serveAcceptDialog)
	mux.HandleFunc(WebDAVRoot, s.serveWebDAV)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.countHit(r.URL.Path)
		s.withFaults(w, r, mux)
	})
}

func (s *Server) countHit(path string) {
	s.mu.Lock()
	s.hits[path]++
	s.mu.Unlock()
}

// Hits counts the requests received whose path starts with prefix ("" for
// all), faulted ones included.
func (s *Server) Hits(prefix string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for p, c := range s.hits {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// broadcast wakes the waiters; s.mu must be held.
func (s *Server) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor waits until check (called with s.mu held) is true, bounded by
// ctx and, when ctx has no deadline, by a minute.
func (s *Server) waitFor(ctx context.Context, check func() bool) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	for {
		s.mu.Lock()
		ok := check()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("ocmtest: waiting: %w", ctx.Err())
		case <-s.closing:
			return errors.New("ocmtest: server closed while waiting")
		}
	}
}
