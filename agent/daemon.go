package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ocm-agent/ocm-agent/acmecert"
	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/discovery"
	"github.com/ocm-agent/ocm-agent/receiver"
	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

// Daemon is a running agent with its servers.
type Daemon struct {
	Agent    *Agent
	cfg      config.Config
	log      *slog.Logger
	store    *store.Store
	public   *http.Server
	publicLn net.Listener
	control  *control.Server
	Receiver *receiver.Server
	Tokens   *tokens.Manager
	closers  []func(context.Context) error
	trust    *trust
	// With acme (acme.go): the certificate manager and the HTTP-01 listener.
	acme       *acmecert.Manager
	acmeHTTP   *http.Server
	acmeHTTPLn net.Listener
}

// Start opens the state, listens on the public address and the control
// socket, and returns a daemon that serves until Stop. Everything that
// fails says what to fix.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (*Daemon, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", cfg.StateDir, err)
	}
	if err := tightenStateDir(cfg.StateDir, log); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			d.Stop(context.Background())
		}
	}()

	st, err := store.Open(ctx, filepath.Join(cfg.StateDir, "agent.db"))
	if err != nil {
		return nil, err
	}
	d.store = st
	d.closers = append(d.closers, func(context.Context) error { return st.Close() })

	secrets, sstatus, err := tokens.Open(ctx, tokens.OpenOptions{
		Backend: cfg.Secrets, StateDir: cfg.StateDir, KeyFile: cfg.SecretsKeyFile, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	a := New(Options{Config: cfg, Store: st, Secrets: secrets, Logger: log})
	a.SetSecretsStatus(SecretsStatus{Backend: sstatus.Backend, Reason: sstatus.Reason, Unlocked: sstatus.Unlocked})
	d.Agent = a

	tr, jwks, err := a.setupTrust(ctx)
	if err != nil {
		return nil, err
	}
	d.trust = tr
	tm, err := tokens.NewManager(tokens.ManagerOptions{
		Source: a,
		Exchanger: &tokens.Exchanger{Client: a.Discovery().HTTPClient(), Signer: a,
			AllowInsecure: cfg.AllowInsecurePeers, UserAgent: "ocm-agent/" + Version, Logger: log},
		Store:        secrets,
		OnShareError: a.ShareErrorLater, // called inside filesystem operations
		Logger:       log,
	})
	if err != nil {
		return nil, err
	}
	a.SetTokenManager(tm)
	d.Tokens = tm
	d.Receiver = receiver.New(a, tr, log)
	d.Receiver.SetJWKS(jwks)
	cur, legacy := a.DiscoveryDocs()
	if err := d.Receiver.SetDiscovery(cur, legacy); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another agent or program using it? change 'listen')", cfg.Listen, err)
	}
	d.publicLn = ln
	// The limits sit in front of the request log: refusals under a flood
	// are counted and logged once a minute, not once per request.
	limiter, err := receiver.NewLimiter(receiver.Limits{
		Rate: cfg.RateLimit, Burst: cfg.RateBurst, MaxConcurrent: cfg.MaxConcurrent,
		TrustedProxies: cfg.TrustedProxies, Logger: log,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("trusted-proxies: %w", err)
	}
	d.public = &http.Server{
		Handler:           receiver.Public(chargeLookups(d.Receiver, limiter), limiter, log),
		ConnState:         limiter.ConnState,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate %s / key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		d.public.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		d.publicLn = tls.NewListener(ln, d.public.TLSConfig)
	}
	if cfg.ACME {
		if err := d.setupACME(ln); err != nil {
			ln.Close()
			return nil, err
		}
		d.public.TLSConfig = d.acme.TLSConfig()
		d.publicLn = tls.NewListener(ln, d.public.TLSConfig)
	}

	d.control = control.NewServer(a.ControlBackend(), log)
	if err := d.control.Listen(cfg.Socket); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// Serve runs the servers until ctx ends, then stops them.
func (d *Daemon) Serve(ctx context.Context) error {
	d.EnableLifecycle(ctx) // invites, contacts, notification outbox, expiry (lifecycle.go)
	errc := make(chan error, 2)
	go func() { errc <- d.public.Serve(d.publicLn) }()
	go func() { errc <- d.control.Serve() }()
	d.startACME(ctx)
	// Mount only once the endpoint serves: showing the shares may exchange
	// codes, and the peer then fetches our keys from this endpoint.
	d.mount(ctx, d.Tokens)
	d.bookmark() // the mount in the file managers' sidebars (bookmark.go)
	// Under systemd (Type=notify): ready once the endpoint listens and the
	// mount is up, which Start has already done. Outside systemd this is a no-op.
	if _, err := sddaemon.SdNotify(false, sddaemon.SdNotifyReady); err != nil {
		d.log.Warn("could not tell systemd the agent is ready", "err", err)
	}
	d.log.Info("ocm-agent running", "version", Version, "address", d.cfg.PeerAddress(), "endpoint", d.cfg.PublicURL+"/ocm",
		"listen", d.publicLn.Addr().String(), "socket", d.cfg.Socket, "secrets", d.Agent.secrets.Backend())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.Stop(sctx)
	return err
}

// Addr is the address the public endpoint listens on.
func (d *Daemon) Addr() net.Addr { return d.publicLn.Addr() }

// Stop shuts everything down, most recent first.
func (d *Daemon) Stop(ctx context.Context) {
	if d.public != nil {
		d.public.Shutdown(ctx)
	}
	if d.control != nil {
		d.control.Shutdown(ctx)
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](ctx); err != nil {
			d.log.Warn("shutdown step failed", "err", err)
		}
	}
	d.closers = nil
}

// chargeLookups marks each request with its client, so that the lookups of
// unknown peers it causes are charged to that client's share of the
// budget: a flood from some addresses cannot stop a real peer's first share.
func chargeLookups(next http.Handler, lim *receiver.Limiter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := discovery.WithRequester(r.Context(), lim.ClientKey(r).String())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
