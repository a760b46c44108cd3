package acmecert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// Options say which name to certify, by whom, and where the challenges are
// answered.
type Options struct {
	// Name is the DNS name the certificate is for (the public URL's host).
	Name string
	// CA is the ACME directory URL; Email the account's contact (optional).
	CA, Email string
	// CARoot is a PEM file of roots for the CA's own HTTPS; "" means the
	// system's.
	CARoot string
	// StateDir holds the account and certificates, under acme/.
	StateDir string
	// TLSAddr is the address of the TLS listener serving TLSConfig: the
	// TLS-ALPN-01 challenge is answered there.
	TLSAddr string
	// HTTPAddr is the address of the plain HTTP listener serving
	// HTTPHandler; "" turns the HTTP-01 challenge off.
	HTTPAddr string
	Logger   *slog.Logger
}

// Status is the state of the certificate at a glance.
type Status struct {
	Name   string
	CA     string
	Issuer string // common name of the issuer of the served certificate
	Serial string
	// NotBefore and NotAfter bound the served certificate; zero when there
	// is none yet.
	NotBefore, NotAfter time.Time
	// LastError is the last failure to obtain or renew ("" since a success).
	LastError   string
	LastErrorAt time.Time
}

// Renewal checks run every lifetime/100 of the served certificate, within
// these bounds: ten minutes suits 90-day and 6-day certificates alike, the
// lower bound very short-lived ones from private CAs.
const (
	maxCheck = 10 * time.Minute
	minCheck = time.Second
)

// Manager gets, stores, serves and renews one certificate.
type Manager struct {
	o        Options
	log      *slog.Logger
	cacheOpt certmagic.CacheOptions
	cache    *certmagic.Cache
	magic    *certmagic.Config
	issuer   *certmagic.ACMEIssuer

	mu          sync.Mutex
	lastErr     string
	lastErrAt   time.Time
	interval    time.Duration
	stopOnce    sync.Once
	stop        chan struct{}
	loopRunning sync.WaitGroup
}

// New prepares the manager; Start begins obtaining or loading the
// certificate.
func New(o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Name == "" {
		return nil, errors.New("acme: no name to get a certificate for")
	}
	dir := filepath.Join(o.StateDir, "acme")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme state %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme state %s: %w", dir, err)
	}
	var roots *x509.CertPool
	if o.CARoot != "" {
		b, err := os.ReadFile(o.CARoot)
		if err != nil {
			return nil, fmt.Errorf("acme-ca-root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("acme-ca-root %s holds no PEM certificate", o.CARoot)
		}
	}
	tlsHost, tlsPort, err := splitPort(o.TLSAddr)
	if err != nil {
		return nil, fmt.Errorf("acme: TLS listener %q: %w", o.TLSAddr, err)
	}
	m := &Manager{o: o, log: o.Logger.With("name", o.Name), interval: maxCheck, stop: make(chan struct{})}
	zl := newZap(o.Logger)
	m.cacheOpt = certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		RenewCheckInterval: maxCheck,
		Logger:             zl,
	}
	m.cache = certmagic.NewCache(m.cacheOpt)
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: dir},
		Logger:  zl,
		OnEvent: m.onEvent,
	})
	tmpl := certmagic.ACMEIssuer{
		CA: o.CA, Email: o.Email, Agreed: true, TrustedRoots: roots,
		// The challenge listeners are the agent's own: certmagic finds
		// their ports taken and leaves the answering to them.
		ListenHost: tlsHost, AltTLSALPNPort: tlsPort,
		DisableHTTPChallenge: o.HTTPAddr == "",
		Logger:               zl,
	}
	if o.HTTPAddr != "" {
		if _, tmpl.AltHTTPPort, err = splitPort(o.HTTPAddr); err != nil {
			return nil, fmt.Errorf("acme: HTTP listener %q: %w", o.HTTPAddr, err)
		}
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, tmpl)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 {
		return "", 0, fmt.Errorf("no port in %q", addr)
	}
	return host, port, nil
}

// TLSConfig serves the certificate and answers TLS-ALPN-01 challenges.
func (m *Manager) TLSConfig() *tls.Config {
	tc := m.magic.TLSConfig()
	tc.NextProtos = []string{"http/1.1", "acme-tls/1"}
	tc.MinVersion = tls.VersionTLS12
	return tc
}

// HTTPHandler answers HTTP-01 challenges and passes every other request to
// next.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

// Start loads the stored certificate, or obtains one in the background
// (the listeners must already serve: the CA connects to them), and keeps it
// renewed until ctx ends or Stop.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.magic.ManageAsync(ctx, []string{m.o.Name}); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	m.loopRunning.Add(1)
	go m.loop(ctx)
	return nil
}

// Stop ends renewals and releases certmagic's locks.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		close(m.stop)
		m.loopRunning.Wait()
		m.cache.Stop()
	})
}

// loop checks for renewal at a pace set by the served certificate's
// lifetime (certmagic's own check runs every maxCheck regardless).
func (m *Manager) loop(ctx context.Context) {
	defer m.loopRunning.Done()
	t := time.NewTimer(minCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.stop:
			return
		case <-t.C:
		}
		next := minCheck // no certificate yet: look again soon
		if leaf := m.current(); leaf != nil {
			next = min(max(leaf.NotAfter.Sub(leaf.NotBefore)/100, minCheck), maxCheck)
			m.setInterval(next)
			if err := m.cache.RenewManagedCertificates(ctx); err != nil {
				m.log.Warn("certificate renewal check failed", "err", err)
			}
		}
		t.Reset(next)
	}
}

// setInterval tells certmagic how often renewals are checked: it renews
// early when expiry is within five check intervals.
func (m *Manager) setInterval(d time.Duration) {
	m.mu.Lock()
	changed := d != m.interval
	m.interval = d
	m.mu.Unlock()
	if changed {
		o := m.cacheOpt
		o.RenewCheckInterval = d
		m.cache.SetOptions(o)
	}
}

// current is the certificate served for the name, if any.
func (m *Manager) current() *x509.Certificate {
	var best *x509.Certificate
	for _, c := range m.cache.AllMatchingCertificates(m.o.Name) {
		if c.Leaf != nil && (best == nil || c.Leaf.NotAfter.After(best.NotAfter)) {
			best = c.Leaf
		}
	}
	return best
}

// Status reports the served certificate and the last failure.
func (m *Manager) Status() Status {
	st := Status{Name: m.o.Name, CA: m.o.CA}
	if leaf := m.current(); leaf != nil {
		st.Issuer, st.Serial = leaf.Issuer.CommonName, leaf.SerialNumber.Text(16)
		st.NotBefore, st.NotAfter = leaf.NotBefore, leaf.NotAfter
	}
	m.mu.Lock()
	st.LastError, st.LastErrorAt = m.lastErr, m.lastErrAt
	m.mu.Unlock()
	return st
}

// onEvent turns certmagic's events into the status and the agent's log.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtaining":
		m.log.Info("asking the ACME CA for a certificate", "ca", m.o.CA, "renewal", renewal)
	case "cert_obtained":
		m.mu.Lock()
		m.lastErr, m.lastErrAt = "", time.Time{}
		m.mu.Unlock()
		m.log.Info("certificate obtained", "ca", m.o.CA, "renewal", renewal)
	case "cached_managed_cert":
		if leaf := m.current(); leaf != nil {
			m.log.Info("serving the stored certificate", "expires", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	case "cert_failed":
		msg := fmt.Sprint(data["error"])
		m.mu.Lock()
		m.lastErr, m.lastErrAt = msg, time.Now()
		m.mu.Unlock()
		if leaf := m.current(); leaf != nil {
			m.log.Warn("could not renew the certificate; still serving the last one", "expires",
				leaf.NotAfter.UTC().Format(time.RFC3339), "ca", m.o.CA, "err", msg)
		} else {
			m.log.Error("could not obtain a certificate; peers cannot connect over HTTPS until it works", "ca", m.o.CA, "err", msg)
		}
	}
	return nil
}
