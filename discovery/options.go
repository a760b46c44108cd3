package discovery

import (
	"crypto"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout              = 10 * time.Second
	DefaultPathTimeout          = 5 * time.Second
	DefaultLookupTimeout        = 30 * time.Second
	DefaultMaxRedirects         = 3
	DefaultMaxBodyBytes         = 512 << 10
	DefaultMaxDirectoryBytes    = 1 << 20
	DefaultTTL                  = 15 * time.Minute
	MinTTL                      = time.Minute
	MaxTTL                      = 24 * time.Hour
	DefaultNegativeTTL          = time.Minute
	DefaultMaxStale             = time.Hour
	DefaultMaxNewPeersPerMinute = 60
	DefaultMaxCacheEntries      = 4096
	DefaultUserAgent            = "ocm-agent"
	// KeyRefetchInterval bounds how often an unknown key id may make us
	// fetch a peer's discovery document and JWKS again.
	KeyRefetchInterval = time.Minute
)

// Options configure the HTTP client and the discovery Client. The zero
// value is the safe production setting.
type Options struct {
	// AllowInsecure (--allow-insecure-peers) permits plain http and
	// connections to loopback, private and other special addresses. For
	// tests and closed networks only.
	AllowInsecure bool
	// AllowedNets are address ranges reachable although special (a peer on
	// the LAN, say), without allowing plain http.
	AllowedNets []netip.Prefix
	// RootCAs replaces the system roots when set (tests, private CAs).
	RootCAs *x509.CertPool
	// Timeout bounds each HTTP request (default DefaultTimeout); a
	// negative value removes the client-wide limit, for callers that set
	// a deadline on every request themselves.
	Timeout time.Duration
	// PathTimeout bounds each discovery attempt (default DefaultPathTimeout).
	PathTimeout time.Duration
	// LookupTimeout bounds a whole Discover, all fallbacks included
	// (default DefaultLookupTimeout).
	LookupTimeout time.Duration
	// MaxRedirects is the number of redirects followed (default 3).
	MaxRedirects int
	// Scheme forces "https" or "http" for discovery. Empty means https,
	// and http as well when AllowInsecure is set and https could not
	// connect. "http" still needs AllowInsecure.
	Scheme string
	// DNSServer ("127.0.0.1:5353") replaces the resolvers of
	// /etc/resolv.conf, both for SRV queries and for resolving host names
	// before connecting.
	DNSServer string
	// ResolvConf is the resolver configuration read for SRV queries when
	// DNSServer is empty (default /etc/resolv.conf).
	ResolvConf string
	// DisableSRV turns off the DNS SRV fallback.
	DisableSRV bool
	// UserAgent sent with every request (default "ocm-agent").
	UserAgent string
	// MaxBodyBytes limits discovery documents and JWKS (default 512 KiB).
	MaxBodyBytes int64
	// MaxDirectoryBytes limits Directory Service documents (default 1 MiB).
	MaxDirectoryBytes int64
	// DefaultTTL applies when a document carries no Cache-Control max-age
	// (default 15 min); max-age is clamped to [MinTTL, MaxTTL].
	DefaultTTL time.Duration
	// NegativeTTL is how long a failed lookup is remembered (default 1 min).
	NegativeTTL time.Duration
	// MaxStale is how long past its expiry a document is still used when
	// refreshing it fails (default 1 h; negative: never).
	MaxStale time.Duration
	// MaxNewPeersPerMinute caps lookups of peers not in the cache
	// (default 60; negative: no cap).
	MaxNewPeersPerMinute int
	// MaxCacheEntries bounds the number of peers remembered (default 4096).
	MaxCacheEntries int
	// DirectoryKeys verify signed Directory Service documents. When set,
	// unsigned or badly signed directories are refused.
	DirectoryKeys []crypto.PublicKey
	// Now is the clock for cache expiry and rate limits (default time.Now).
	Now func() time.Time
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.PathTimeout <= 0 {
		o.PathTimeout = DefaultPathTimeout
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = DefaultLookupTimeout
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	if o.MaxRedirects < 0 {
		o.MaxRedirects = 0
	}
	if o.ResolvConf == "" {
		o.ResolvConf = "/etc/resolv.conf"
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxDirectoryBytes <= 0 {
		o.MaxDirectoryBytes = DefaultMaxDirectoryBytes
	}
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = DefaultTTL
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.MaxStale == 0 {
		o.MaxStale = DefaultMaxStale
	}
	if o.MaxNewPeersPerMinute == 0 {
		o.MaxNewPeersPerMinute = DefaultMaxNewPeersPerMinute
	}
	if o.MaxCacheEntries <= 0 {
		o.MaxCacheEntries = DefaultMaxCacheEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
