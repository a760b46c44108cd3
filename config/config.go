package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	osuser "os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// Duration is a time.Duration written as "5s", "10m" in the file.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (examples: 30s, 5m, 1h)", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is every setting of the agent. The toml tag is both the file key
// and the flag name; help is the one-line documentation of both.
type Config struct {
	Listen             string   `toml:"listen" help:"address the public OCM endpoint listens on (host:port)"`
	PublicURL          string   `toml:"public-url" help:"origin peers use to reach this agent, e.g. https://ocm.example.org (default http://<listen>)"`
	User               string   `toml:"user" help:"local OCM user id; your OCM address is <user>@<host of public-url> (default $USER)"`
	DisplayName        string   `toml:"display-name" help:"name shown to people who share with you (default: the user id)"`
	Email              string   `toml:"email" help:"e-mail address given to peers when you accept an invite"`
	StateDir           string   `toml:"state-dir" help:"directory for the database and spooled uploads (default $XDG_STATE_HOME/ocm-agent)"`
	Socket             string   `toml:"socket" help:"control socket path (default $XDG_RUNTIME_DIR/ocm-agent.sock)"`
	TLSCert            string   `toml:"tls-cert" help:"TLS certificate file (PEM); with tls-key, serve HTTPS"`
	TLSKey             string   `toml:"tls-key" help:"TLS private key file (PEM)"`
	ACME               bool     `toml:"acme" help:"get and renew the certificate for the host of public-url from an ACME CA (Let's Encrypt by default); port 443 of that host must reach listen"`
	ACMECA             string   `toml:"acme-ca" help:"ACME directory URL of the certificate authority"`
	ACMEEmail          string   `toml:"acme-email" help:"e-mail address of the ACME account, for the CA's notices (optional)"`
	ACMECARoot         string   `toml:"acme-ca-root" help:"PEM file of the roots to trust for the ACME CA's own HTTPS, for a private CA (default: the system's)"`
	ACMEHTTPListen     string   `toml:"acme-http-listen" help:"host:port that port 80 of the public host reaches: answers HTTP-01 challenges and redirects to https (default: none, TLS-ALPN-01 on listen only)"`
	AllowRoot          bool     `toml:"allow-root" help:"run as root even with acme or a non-loopback listen address (not recommended)"`
	AllowInsecurePeers bool     `toml:"allow-insecure-peers" help:"permit http:// and loopback/private peer addresses (tests and labs only)"`
	Secrets            string   `toml:"secrets" help:"secret store backend: auto, keyring or file"`
	SecretsKeyFile     string   `toml:"secrets-key-file" help:"key file for the encrypted file secret store (default: systemd credential or $XDG_CONFIG_HOME/ocm-agent/secrets.key)"`
	Mount              string   `toml:"mount" help:"directory where accepted shares are mounted; empty disables mounting (default ~/OCM)"`
	MountTimeout       Duration `toml:"mount-timeout" help:"how long a file operation may wait for a peer before it fails"`
	MountEntries       int      `toml:"mount-max-entries" help:"most entries a folder listing of a share may have; a larger one fails with an error"`
	MountDirectReads   bool     `toml:"mount-direct-reads" help:"read files of 8 MiB or more with direct I/O: about twice as fast for programs that read 128 KiB or more at a time, slower for small reads, and not kept in the page cache between opens"`
	CacheSize          Size     `toml:"cache-size" help:"room for the content of shares kept on this device ($XDG_CACHE_HOME/ocm-agent/content) for fast re-reads and offline use, such as 4GiB or 500MiB; what was read least recently goes first, pinned content stays; 0 keeps nothing"`
	Bookmark           bool     `toml:"file-manager-bookmark" help:"put the mount in the file managers' sidebars (GTK bookmarks, KDE places) once, at the first start; false takes it out"`
	LogFormat          string   `toml:"log-format" help:"log format: text or json"`
	LogLevel           string   `toml:"log-level" help:"log level: debug, info, warn or error"`
	RequireSignatures  bool     `toml:"require-signatures" help:"refuse unsigned requests from peers (criterion must-use-http-sig)"`
	AllowServers       []string `toml:"allow-servers" help:"if set, only these servers (host[:port]) may send shares"`
	DenyServers        []string `toml:"deny-servers" help:"servers (host[:port]) whose shares are refused"`
	AcceptFrom         string   `toml:"accept-from" help:"who may share with you: anyone or contacts (criterion must-invite)"`
	AutoAcceptContacts bool     `toml:"auto-accept-contacts" help:"accept shares from contacts without asking"`
	MaxClockSkew       Duration `toml:"max-clock-skew" help:"largest accepted difference between a signature's time and ours"`
	DNSServer          string   `toml:"dns-server" help:"DNS server (host:port) for SRV lookups (default: from /etc/resolv.conf)"`
	Directories        []string `toml:"directories" help:"OCM Directory Service URLs listing servers to offer in the invite dialog"`
	TrustedProxies     []string `toml:"trusted-proxies" help:"addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed"`
	RateLimit          float64  `toml:"rate-limit" help:"requests per second allowed per client address on the public OCM routes"`
	RateBurst          int      `toml:"rate-burst" help:"burst of requests allowed per client address above rate-limit"`
	MaxConcurrent      int      `toml:"max-concurrent" help:"requests handled at once on the public OCM routes"`
	MaxPendingPerPeer  int      `toml:"max-pending-per-server" help:"pending shares one sending server may have waiting for your decision; more get 429"`
	MaxPending         int      `toml:"max-pending" help:"pending shares from all servers together; more get 429"`
	NotifyRetry        Duration `toml:"notify-retry" help:"first wait before resending a notification the sender did not take (doubles each time)"`
	NotifyRetryMax     Duration `toml:"notify-retry-max" help:"longest wait between resends of a notification"`
	NotifyGiveUp       Duration `toml:"notify-give-up" help:"how long to keep resending a notification before giving up (shown on the share)"`
	PinRefresh         Duration `toml:"pin-refresh" help:"how often shares kept on this device (pinned) are checked for changes on their server"`
	UnreachableAfter   Duration `toml:"unreachable-after" help:"how long a share's server may answer its root with errors (3 in a row at least) before the share shows as unreachable"`
}

// Default returns the configuration used when neither file nor flag says
// otherwise. It reads the environment (XDG variables, $USER, $HOME).
func Default() Config {
	user := os.Getenv("USER")
	if user == "" {
		if u, err := osuser.Current(); err == nil {
			user = u.Username
		}
	}
	c := Config{
		Listen:         "127.0.0.1:9200",
		ACMECA:         DefaultACMECA,
		User:           user,
		StateDir:       filepath.Join(xdgDir("XDG_STATE_HOME", ".local/state"), "ocm-agent"),
		Socket:         DefaultSocket(),
		Secrets:        "auto",
		Mount:          filepath.Join(homeDir(), "OCM"),
		MountTimeout:   Duration{5 * time.Second},
		MountEntries:   100_000,
		CacheSize:      Size{4 << 30},
		Bookmark:       true,
		LogFormat:      "text",
		LogLevel:       "info",
		AcceptFrom:     "anyone",
		MaxClockSkew:   Duration{5 * time.Minute},
		RateLimit:      20,
		RateBurst:      40,
		MaxConcurrent:  64,
		NotifyRetry:    Duration{10 * time.Second},
		NotifyRetryMax: Duration{time.Hour},
		NotifyGiveUp:   Duration{48 * time.Hour},
	}
	c.MaxPendingPerPeer, c.MaxPending = 100, 1000
	// A minute of server errors (OpenCloud answers 500 for a removed share).
	c.UnreachableAfter = Duration{time.Minute}
	c.PinRefresh = Duration{15 * time.Minute}
	return c
}

// DefaultACMECA is Let's Encrypt's production directory.
const DefaultACMECA = "https://acme-v02.api.letsencrypt.org/directory"

// DefaultSocket is $XDG_RUNTIME_DIR/ocm-agent.sock, or a per-user path in
// the state directory where there is no runtime directory.
func DefaultSocket() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "ocm-agent.sock")
	}
	return filepath.Join(xdgDir("XDG_STATE_HOME", ".local/state"), "ocm-agent", "ocm-agent.sock")
}

// DefaultFile is $XDG_CONFIG_HOME/ocm-agent/config.toml.
func DefaultFile() string {
	return filepath.Join(xdgDir("XDG_CONFIG_HOME", ".config"), "ocm-agent", "config.toml")
}

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return h
	}
	return "/"
}

func xdgDir(env, fallback string) string {
	if d := os.Getenv(env); d != "" && filepath.IsAbs(d) {
		return d
	}
	return filepath.Join(homeDir(), fallback)
}

// Key describes one configuration key.
type Key struct {
	Name    string
	Help    string
	Type    string // string, bool, list, duration, int, float
	Default string
}

// Keys lists every key in file order, for flags and documentation.
func Keys() []Key {
	d := Default()
	v := reflect.ValueOf(d)
	t := v.Type()
	keys := make([]Key, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		k := Key{Name: f.Tag.Get("toml"), Help: f.Tag.Get("help")}
		fv := v.Field(i)
		switch fv.Interface().(type) {
		case string:
			k.Type, k.Default = "string", fv.String()
		case bool:
			k.Type, k.Default = "bool", fmt.Sprint(fv.Bool())
		case []string:
			k.Type, k.Default = "list", strings.Join(fv.Interface().([]string), ",")
		case Duration:
			k.Type, k.Default = "duration", fv.Interface().(Duration).String()
		case Size:
			// a string in the file ("4GiB"), documented as such
			k.Type, k.Default = "string", fv.Interface().(Size).String()
		case int:
			k.Type, k.Default = "int", fmt.Sprint(fv.Int())
		case float64:
			k.Type, k.Default = "float", fmt.Sprint(fv.Float())
		}
		keys = append(keys, k)
	}
	return keys
}

// durationValue adapts *Duration to pflag.
type durationValue struct{ d *Duration }

func (v durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}
func (v durationValue) Set(s string) error { return v.d.UnmarshalText([]byte(s)) }
func (v durationValue) Type() string       { return "duration" }

// BindFlags registers one flag per key on fs, writing into c.
func BindFlags(fs *pflag.FlagSet, c *Config) {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, help := f.Tag.Get("toml"), f.Tag.Get("help")
		switch p := v.Field(i).Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, name, *p, help)
		case *bool:
			fs.BoolVar(p, name, *p, help)
		case *[]string:
			fs.StringSliceVar(p, name, *p, help)
		case *Duration:
			fs.Var(durationValue{p}, name, help)
		case *Size:
			fs.Var(sizeValue{p}, name, help)
		case *int:
			fs.IntVar(p, name, *p, help)
		case *float64:
			fs.Float64Var(p, name, *p, help)
		}
	}
}

// Load reads the TOML file at path into a copy of base: keys the file sets
// replace base's values, except those named in keep (set by flags).
// A missing file is not an error when optional is true.
func Load(path string, base Config, keep map[string]bool, optional bool) (Config, error) {
	fromFile := base
	md, err := toml.DecodeFile(path, &fromFile)
	if errors.Is(err, os.ErrNotExist) && optional {
		return base, nil
	}
	if err != nil {
		return base, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		names := make([]string, len(und))
		for i, k := range und {
			names[i] = k.String()
		}
		sort.Strings(names)
		return base, fmt.Errorf("config %s: unknown key(s) %s (see ocm-agent.toml(5) or 'ocm-agent serve --help')", path, strings.Join(names, ", "))
	}
	out := base
	bv, fv, ov := reflect.ValueOf(base), reflect.ValueOf(fromFile), reflect.ValueOf(&out).Elem()
	t := bv.Type()
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Tag.Get("toml")
		if keep[name] || !md.IsDefined(name) {
			continue
		}
		ov.Field(i).Set(fv.Field(i))
	}
	return out, nil
}

// Finish fills derived defaults and checks the whole configuration,
// returning every problem at once.
func (c *Config) Finish() error {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen %q: %v (expected host:port)", c.Listen, err)
	}
	if c.ACME && c.PublicURL == "" {
		bad("acme needs public-url: the https origin whose name the certificate is for")
	}
	if c.PublicURL == "" {
		scheme := "http"
		if c.TLSCert != "" {
			scheme = "https"
		}
		c.PublicURL = scheme + "://" + c.Listen
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		bad("public-url %q must be an origin like https://ocm.example.org (no path)", c.PublicURL)
	} else if u.Scheme == "http" && !c.AllowInsecurePeers && !isLoopbackHost(u.Hostname()) {
		bad("public-url %q uses http on a non-loopback host; use https, or allow-insecure-peers for a lab", c.PublicURL)
	}
	if c.User == "" || strings.ContainsAny(c.User, "@/ \t\n") {
		bad("user %q must be a non-empty id without '@', '/' or white space", c.User)
	}
	if c.DisplayName == "" {
		c.DisplayName = c.User
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls-cert and tls-key go together")
	}
	if c.ACME {
		c.checkACME(bad)
	}
	switch c.Secrets {
	case "auto", "keyring", "file":
	default:
		bad("secrets %q: expected auto, keyring or file", c.Secrets)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log-format %q: expected text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level %q: expected debug, info, warn or error", c.LogLevel)
	}
	switch c.AcceptFrom {
	case "anyone", "contacts":
	default:
		bad("accept-from %q: expected anyone or contacts", c.AcceptFrom)
	}
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		bad("state-dir %q must be an absolute path", c.StateDir)
	}
	if c.Socket == "" || !filepath.IsAbs(c.Socket) {
		bad("socket %q must be an absolute path", c.Socket)
	}
	if c.Mount != "" && !filepath.IsAbs(c.Mount) {
		bad("mount %q must be an absolute path (or empty to disable mounting)", c.Mount)
	}
	if c.MountTimeout.Duration <= 0 {
		bad("mount-timeout must be positive")
	}
	if c.PinRefresh.Duration <= 0 {
		bad("pin-refresh must be positive")
	}
	if c.UnreachableAfter.Duration < 0 {
		bad("unreachable-after must not be negative")
	}
	if c.MountEntries <= 0 {
		bad("mount-max-entries must be positive")
	}
	if c.MaxClockSkew.Duration <= 0 {
		bad("max-clock-skew must be positive")
	}
	if c.NotifyRetry.Duration <= 0 || c.NotifyRetryMax.Duration < c.NotifyRetry.Duration || c.NotifyGiveUp.Duration <= 0 {
		bad("notify-retry must be positive, notify-retry-max at least notify-retry, notify-give-up positive")
	}
	if c.RateLimit <= 0 || c.RateBurst <= 0 || c.MaxConcurrent <= 0 {
		bad("rate-limit, rate-burst and max-concurrent must be positive")
	}
	if c.MaxPendingPerPeer <= 0 || c.MaxPending <= 0 {
		bad("max-pending-per-server and max-pending must be positive")
	}
	for _, p := range c.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				bad("trusted-proxies entry %q is neither an IP address nor a CIDR", p)
			}
		}
	}
	if len(problems) > 0 {
		return errors.New("invalid configuration:\n  " + strings.Join(problems, "\n  "))
	}
	return nil
}

func (c *Config) checkACME(bad func(string, ...any)) {
	if c.TLSCert != "" {
		bad("acme and tls-cert exclude each other: the agent either gets its certificate or uses yours")
	}
	if u, err := url.Parse(c.PublicURL); err == nil && u.Scheme != "https" {
		bad("acme needs an https public-url, not %q", c.PublicURL)
	} else if err == nil && (u.Hostname() == "localhost" || net.ParseIP(u.Hostname()) != nil) {
		bad("acme needs a DNS name in public-url, not %q", u.Hostname())
	}
	if u, err := url.Parse(c.ACMECA); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("acme-ca %q must be the https URL of an ACME directory", c.ACMECA)
	}
	if c.ACMECARoot != "" && !filepath.IsAbs(c.ACMECARoot) {
		bad("acme-ca-root %q must be an absolute path", c.ACMECARoot)
	}
	if c.ACMEHTTPListen != "" {
		if _, _, err := net.SplitHostPort(c.ACMEHTTPListen); err != nil {
			bad("acme-http-listen %q: %v (expected host:port)", c.ACMEHTTPListen, err)
		}
	}
}

// CheckRoot refuses to run as root (euid 0) where it matters: with acme or
// a listen address beyond loopback, a flaw reachable from the network would
// own the machine. Binding port 443 needs no root (see the README); a
// loopback-only agent (development, tests) is not refused. allow-root
// overrides.
func (c *Config) CheckRoot(euid int) error {
	if euid != 0 || c.AllowRoot {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err == nil && !c.ACME && isLoopbackHost(host) {
		return nil
	}
	return errors.New("refusing to run as root with acme or a public listen address: run as your own user " +
		"(to listen on port 443: 'sudo setcap cap_net_bind_service=+ep $(command -v ocm-agent)' or forward 443 to a high port), " +
		"or set allow-root if you really mean it")
}

// PublicHost is the host[:port] of the public URL: the provider part of
// this agent's OCM address.
func (c *Config) PublicHost() string {
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// Address is this agent's OCM address.
func (c *Config) Address() string { return c.User + "@" + c.PublicHost() }

// PeerAddress is the OCM address in the form peers must be given: with
// its scheme when the agent is served over plain http, since Nextcloud
// puts https:// in front of a bare address and never tries http.
func (c *Config) PeerAddress() string {
	if strings.HasPrefix(c.PublicURL, "http://") {
		return c.User + "@" + c.PublicURL
	}
	return c.Address()
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
