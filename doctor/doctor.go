package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
)

// Outcome is the verdict of one check.
type Outcome string

// The outcomes. Only Fail makes the whole run fail.
const (
	Pass Outcome = "pass"
	Warn Outcome = "warn"
	Fail Outcome = "fail"
	Skip Outcome = "skip" // not applicable here, or not possible without another part
)

// The checks, in the order Run performs them.
const (
	CheckConfig    = "config"
	CheckFUSE      = "fuse"
	CheckMount     = "mount"
	CheckSecrets   = "secrets"
	CheckEndpoint  = "endpoint"
	CheckPublicURL = "public-url"
	CheckTLS       = "tls"
	CheckACME      = "acme"
	CheckSRV       = "dns-srv"
	CheckClock     = "clock"
	CheckSystemd   = "systemd"
)

// Checks lists every check id in order.
func Checks() []string {
	return []string{CheckConfig, CheckFUSE, CheckMount, CheckSecrets, CheckEndpoint, CheckPublicURL, CheckTLS, CheckACME, CheckSRV, CheckClock, CheckSystemd}
}

var checkNames = map[string]string{
	CheckConfig: "Config", CheckFUSE: "FUSE", CheckMount: "Mount", CheckSecrets: "Secrets",
	CheckEndpoint: "Endpoint", CheckPublicURL: "Public URL", CheckTLS: "TLS", CheckACME: "ACME certificate", CheckSRV: "DNS SRV",
	CheckClock: "Clock", CheckSystemd: "systemd",
}

// Result is the outcome of one check.
type Result struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Outcome Outcome `json:"outcome"`
	Detail  string  `json:"detail"`
	Fix     string  `json:"fix,omitempty"`
}

// Report is the outcome of every check.
type Report struct {
	Checks []Result `json:"checks"`
	Failed int      `json:"failed"`
}

// Get returns the result of the check id.
func (r Report) Get(id string) (Result, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Result{}, false
}

// Options say what to check and how to reach it. Only Config is required;
// a nil probe means the real one.
type Options struct {
	// Config is the finished configuration; the daemon's status wins
	// where it differs (the daemon may run with flags).
	Config config.Config
	// ConfigSource says where Config came from ("/path/config.toml", "defaults").
	ConfigSource string
	// ConfigErr is why the configuration could not be loaded, if so.
	ConfigErr error

	// Status asks the running daemon for its status.
	Status func(ctx context.Context) (control.Status, error)

	// DNSServer (host:port) answers the SRV query; empty means the
	// servers of ResolvConf (default /etc/resolv.conf).
	DNSServer  string
	ResolvConf string
	// ClockPeer is a URL whose Date header is the reference time; empty
	// means the public URL's answer (when it comes from another machine).
	ClockPeer string
	// RootCAs verify the public URL's certificate; nil means the system's.
	RootCAs *x509.CertPool
	// Timeout bounds each network probe (default 10s).
	Timeout time.Duration
	// ExpiryWarning is how close to its end a certificate gets a warning
	// (default 14 days).
	ExpiryWarning time.Duration

	Now         func() time.Time
	Stat        func(name string) (os.FileInfo, error)
	Access      func(path string, mode uint32) error
	LookPath    func(file string) (string, error)
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Systemctl runs systemctl with args and returns its standard output.
	Systemctl func(ctx context.Context, args ...string) (string, error)
	// LocalAddr says whether ip belongs to this machine.
	LocalAddr func(ip net.IP) bool
	// LookupIP resolves a host name (default: DNSServer, else the system's resolver).
	LookupIP func(ctx context.Context, host string) ([]net.IP, error)
}

func (o *Options) fill() {
	if o.ResolvConf == "" {
		o.ResolvConf = "/etc/resolv.conf"
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ExpiryWarning <= 0 {
		o.ExpiryWarning = 14 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stat == nil {
		o.Stat = os.Stat
	}
	if o.Access == nil {
		o.Access = syscall.Access
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.DialContext == nil {
		d := &net.Dialer{Timeout: o.Timeout}
		o.DialContext = d.DialContext
	}
	if o.Systemctl == nil {
		o.Systemctl = runSystemctl
	}
	if o.LocalAddr == nil {
		o.LocalAddr = isLocalAddr
	}
	if o.LookupIP == nil {
		o.LookupIP = lookupIP(o.DNSServer, o.Timeout)
	}
	if o.Status == nil {
		o.Status = func(context.Context) (control.Status, error) {
			return control.Status{}, errors.New("no daemon to ask")
		}
	}
}

// run holds what the checks learn from each other.
type run struct {
	o         Options
	cfg       config.Config
	status    control.Status
	statusErr error
	publicURL string
	// Filled by the public URL check for the clock check.
	publicAnswered bool
	dateHeader     string
	sentAt         time.Time
	answeredAt     time.Time
	remoteIP       net.IP
}

// Run performs every check and returns the report. It never fails as a
// whole; each problem is a failed check.
func Run(ctx context.Context, o Options) Report {
	o.fill()
	r := &run{o: o, cfg: o.Config}
	r.status, r.statusErr = o.Status(ctx)
	r.publicURL = r.cfg.PublicURL
	if r.statusErr == nil {
		if r.status.PublicURL != "" {
			r.publicURL = r.status.PublicURL
		}
		r.cfg.Listen = r.status.Listen
		r.cfg.Mount = r.status.Mount
	}
	r.publicURL = strings.TrimSuffix(r.publicURL, "/")

	steps := []struct {
		id string
		fn func(context.Context) Result
	}{
		{CheckConfig, r.checkConfig},
		{CheckFUSE, r.checkFUSE},
		{CheckMount, r.checkMount},
		{CheckSecrets, r.checkSecrets},
		{CheckEndpoint, r.checkEndpoint},
		{CheckPublicURL, r.checkPublicURL},
		{CheckTLS, r.checkTLS},
		{CheckACME, r.checkACME},
		{CheckSRV, r.checkSRV},
		{CheckClock, r.checkClock},
		{CheckSystemd, r.checkSystemd},
	}
	var rep Report
	for _, s := range steps {
		res := s.fn(ctx)
		res.ID, res.Name = s.id, checkNames[s.id]
		if res.Outcome == Fail {
			rep.Failed++
		}
		rep.Checks = append(rep.Checks, res)
	}
	return rep
}

func pass(format string, a ...any) Result {
	return Result{Outcome: Pass, Detail: fmt.Sprintf(format, a...)}
}

func skip(format string, a ...any) Result {
	return Result{Outcome: Skip, Detail: fmt.Sprintf(format, a...)}
}

func warn(fix, format string, a ...any) Result {
	return Result{Outcome: Warn, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

func fail(fix, format string, a ...any) Result {
	return Result{Outcome: Fail, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

func (r *run) checkConfig(context.Context) Result {
	src := r.o.ConfigSource
	if src == "" {
		src = "built-in defaults"
	}
	if r.o.ConfigErr != nil {
		return fail("edit the file (see ocm-agent.toml(5)) or write a new one with 'ocm-agent init --force'",
			"%s: %v", src, r.o.ConfigErr)
	}
	if addr := r.cfg.PeerAddress(); addr != r.cfg.Address() {
		return pass("%s; OCM address %s (with http://: served over plain http, peers such as Nextcloud would otherwise try https)", src, addr)
	}
	return pass("%s; OCM address %s", src, r.cfg.Address())
}

// daemonDown is the detail and fix of checks that need the daemon.
const startFix = "start it: 'systemctl --user start ocm-agent' (or 'ocm-agent serve' in a terminal); 'journalctl --user -u ocm-agent' shows why it stopped"

func (r *run) checkSecrets(context.Context) Result {
	if r.statusErr != nil {
		return skip("the daemon is not running; it reports which secret store it uses")
	}
	st := r.status
	switch st.SecretsBackend {
	case "keyring":
		if st.KeyringUnlocked {
			return pass("OS keyring (Secret Service), reachable and unlocked")
		}
		return fail("unlock the keyring: log in to the desktop session, or open 'Passwords and Keys'; on a headless machine run 'gnome-keyring-daemon --unlock' in the session, then 'systemctl --user restart ocm-agent'",
			"the OS keyring is locked: %s", orNone(st.SecretsReason))
	case "file":
		if strings.HasPrefix(st.SecretsReason, "configured") {
			return pass("encrypted file store, as configured: %s", st.SecretsReason)
		}
		return warn("start a Secret Service provider (gnome-keyring, KWallet, KeePassXC) in your session and unlock it, then 'systemctl --user restart ocm-agent'; or set secrets = \"file\" to keep the file store on purpose",
			"falling back to the encrypted file store: %s", orNone(st.SecretsReason))
	default:
		return warn("update the daemon and this command to the same version", "the daemon reports an unknown secret store %q", st.SecretsBackend)
	}
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// WriteText prints the report as aligned lines, a fix under each problem,
// and a summary.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	counts := map[Outcome]int{}
	for _, c := range r.Checks {
		counts[c.Outcome]++
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(c.Outcome)), c.Name, clean(c.Detail))
		if c.Fix != "" && (c.Outcome == Fail || c.Outcome == Warn) {
			fmt.Fprintf(tw, "\t\tfix: %s\n", clean(c.Fix))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d checks: %d passed, %d warnings, %d failed, %d skipped\n",
		len(r.Checks), counts[Pass], counts[Warn], counts[Fail], counts[Skip])
	return err
}

// clean keeps text that came from elsewhere (a peer, a proxy, DNS) from
// driving the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
