package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/ocm-agent/ocm-agent/ocm"
)

// maxDiscoveryBody bounds the discovery document read from the public URL.
const maxDiscoveryBody = 1 << 20

func (r *run) checkEndpoint(ctx context.Context) Result {
	if r.statusErr != nil {
		return fail(startFix, "the daemon does not answer: %v", r.statusErr)
	}
	addr := r.status.Listen
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fail("check the key 'listen' (host:port)", "the daemon reports an unusable listen address %q", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	target := net.JoinHostPort(host, port)
	dctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	c, err := r.o.DialContext(dctx, "tcp", target)
	if err != nil {
		return fail("restart the agent ('systemctl --user restart ocm-agent') and see 'journalctl --user -u ocm-agent'",
			"the daemon runs (version %s) but nothing accepts connections on %s: %v", r.status.Version, target, err)
	}
	c.Close()
	return pass("the daemon (version %s) runs and listens on %s", r.status.Version, addr)
}

// httpClient follows at most a few redirects and verifies certificates
// against Options.RootCAs.
func (r *run) httpClient() *http.Client {
	tr := &http.Transport{
		DialContext:           r.o.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: r.o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   r.o.Timeout,
		ResponseHeaderTimeout: r.o.Timeout,
		DisableKeepAlives:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   r.o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("more than 3 redirects")
			}
			return nil
		},
	}
}

func (r *run) checkPublicURL(ctx context.Context) Result {
	u, err := url.Parse(r.publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("set 'public-url' to the https origin peers use, e.g. https://ocm.example.org", "%q is not a usable public URL", r.publicURL)
	}
	docURL := r.publicURL + "/.well-known/ocm"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return fail("set 'public-url' to the https origin peers use", "%s: %v", docURL, err)
	}
	req.Header.Set("Accept", "application/json")
	var remote net.Addr
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) { remote = ci.Conn.RemoteAddr() },
	}))
	r.sentAt = r.o.Now()
	resp, err := r.httpClient().Do(req)
	r.answeredAt = r.o.Now()
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail(publicFix(r.statusErr), "GET %s: %v", docURL, err)
	}
	defer resp.Body.Close()
	r.publicAnswered = true
	if ta, ok := remote.(*net.TCPAddr); ok {
		r.remoteIP = ta.IP
	}
	r.dateHeader = resp.Header.Get("Date")
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBody+1))
	if err != nil {
		return fail(publicFix(r.statusErr), "GET %s: reading the answer: %v", docURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail("the server at the public URL is not this agent, or the reverse proxy does not forward /.well-known/ocm to it (see 'ocm-agent init' for a proxy configuration)",
			"GET %s answered %s", docURL, resp.Status)
	}
	if len(body) > maxDiscoveryBody {
		return fail("make the reverse proxy forward /.well-known/ocm to the agent", "GET %s: the answer is larger than %d bytes", docURL, maxDiscoveryBody)
	}
	d, err := ocm.ParseDiscovery(body)
	if err != nil {
		return fail("make the reverse proxy forward /.well-known/ocm to the agent", "GET %s: not a valid OCM discovery document: %v", docURL, err)
	}
	want := r.publicURL + "/ocm"
	if !sameURL(d.EndPoint, want) {
		return fail("make the reverse proxy pass the original Host and scheme (X-Forwarded-Proto), and set 'public-url' to the URL peers use",
			"the discovery document at %s names the endpoint %s, but this agent's endpoint is %s", docURL, d.EndPoint, want)
	}
	if !d.Enabled {
		return fail("restart the agent; the document should say enabled: true", "the discovery document at %s says OCM is disabled", docURL)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
		return warn("so that people on other servers can share with you, publish the agent under an https URL and set 'public-url' (run 'ocm-agent init')",
			"%s serves a valid discovery document (endpoint %s), but a loopback URL is reachable from this machine only", docURL, d.EndPoint)
	}
	return pass("%s serves a valid discovery document (API %s, endpoint %s)", docURL, d.APIVersion, d.EndPoint)
}

func publicFix(statusErr error) string {
	if statusErr != nil {
		return "start the daemon first: 'systemctl --user start ocm-agent' (or 'ocm-agent serve' in a terminal)"
	}
	return "check that the name resolves to your reverse proxy or this machine, that port 443 (or the URL's port) is open, and that the proxy forwards to the agent's 'listen' address"
}

// sameURL compares two URLs ignoring a trailing slash and the case of
// scheme and host.
func sameURL(a, b string) bool {
	ua, err1 := url.Parse(strings.TrimSuffix(a, "/"))
	ub, err2 := url.Parse(strings.TrimSuffix(b, "/"))
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) && ua.Path == ub.Path
}

func (r *run) checkTLS(ctx context.Context) Result {
	u, err := url.Parse(r.publicURL)
	if err != nil || u.Host == "" {
		return skip("no usable public URL")
	}
	host := u.Hostname()
	if u.Scheme != "https" {
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return skip("the public URL is plain http on loopback; nothing to check")
		}
		return warn("publish the agent under https (a reverse proxy with a Let's Encrypt certificate, or 'tls-cert'/'tls-key')",
			"the public URL %s is plain http: peers that insist on https will refuse it", r.publicURL)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	dctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	raw, err := r.o.DialContext(dctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fail(publicFix(r.statusErr), "cannot connect to %s:%s: %v", host, port, err)
	}
	defer raw.Close()
	if dl, ok := dctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	// The chain is verified below, by hand, to say precisely what is wrong.
	conn := tls.Client(raw, &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // verified below
	if err := conn.HandshakeContext(dctx); err != nil {
		return fail("check the server's TLS configuration (certificate and key files, TLS 1.2 or newer)", "TLS handshake with %s:%s: %v", host, port, err)
	}
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return fail("configure a certificate on the server", "%s:%s sent no certificate", host, port)
	}
	leaf := certs[0]
	now := r.o.Now()
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: r.o.RootCAs, Intermediates: inter, CurrentTime: now})
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	var unknown x509.UnknownAuthorityError
	switch {
	case now.After(leaf.NotAfter) || (errors.As(verr, &invalid) && invalid.Reason == x509.Expired):
		return fail("renew the certificate (for Let's Encrypt: 'certbot renew', or check that Caddy can reach the ACME server) and reload the server",
			"the certificate of %s expired on %s", host, leaf.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		return fail("check this machine's clock, or wait until the certificate is valid",
			"the certificate of %s is valid only from %s", host, leaf.NotBefore.UTC().Format(time.RFC3339))
	case errors.As(verr, &hostErr):
		return fail("use a certificate that names "+host+" (subject alternative name)", "the certificate is not valid for %s: %v", host, verr)
	case errors.As(verr, &unknown):
		return fail("use a certificate from a public authority (e.g. Let's Encrypt) and serve the full chain, intermediates included",
			"the certificate of %s is not signed by an authority this machine trusts (issuer %q)", host, leaf.Issuer.CommonName)
	case verr != nil:
		return fail("use a valid certificate for "+host+" and serve the full chain", "the certificate of %s is not valid: %v", host, verr)
	}
	left := leaf.NotAfter.Sub(now)
	if left < r.o.ExpiryWarning {
		return warn("renew it now (for Let's Encrypt: 'certbot renew'); automatic renewal seems not to work",
			"the certificate of %s expires in %d days (%s)", host, int(left.Hours()/24), leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	return pass("the certificate of %s is valid until %s (issuer %q)", host, leaf.NotAfter.UTC().Format(time.DateOnly), leaf.Issuer.CommonName)
}

func (r *run) checkSRV(ctx context.Context) Result {
	u, err := url.Parse(r.publicURL)
	if err != nil || u.Host == "" {
		return skip("no usable public URL")
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil || host == "localhost" || !strings.Contains(host, ".") {
		return skip("the address host %s is not a DNS domain; no SRV record applies", host)
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	name := dns.Fqdn("_ocm._tcp." + host)
	recs, err := r.lookupSRV(ctx, name)
	if err != nil {
		return warn("check the DNS server (--dns-server, the key 'dns-server' or /etc/resolv.conf)", "cannot look up %s: %v", name, err)
	}
	if len(recs) == 0 {
		return skip("no %s record; peers reach %s directly", name, u.Host)
	}
	var seen []string
	for _, s := range recs {
		target := strings.ToLower(strings.TrimSuffix(s.Target, "."))
		if target == host && strconv.Itoa(int(s.Port)) == port {
			return pass("%s points here (%s:%d)", name, target, s.Port)
		}
		seen = append(seen, fmt.Sprintf("%s:%d", target, s.Port))
	}
	return fail(fmt.Sprintf("point the record here: '%s 3600 IN SRV 10 10 %s %s.', or delete it", name, port, host),
		"%s points to %s, not to this agent (%s:%s)", name, strings.Join(seen, ", "), host, port)
}

// lookupSRV returns the SRV answers for name; none when the name does not
// exist.
func (r *run) lookupSRV(ctx context.Context, name string) ([]*dns.SRV, error) {
	servers := []string{r.o.DNSServer}
	if r.o.DNSServer == "" {
		cc, err := dns.ClientConfigFromFile(r.o.ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", r.o.ResolvConf, err)
		}
		servers = servers[:0]
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("no nameserver in %s", r.o.ResolvConf)
		}
	}
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeSRV)
	q.RecursionDesired = true
	var errs []error
	for i, server := range servers {
		if i == 3 {
			break
		}
		in, err := r.exchange(ctx, q, server)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, nil
		default:
			errs = append(errs, fmt.Errorf("%s answered %s", server, dns.RcodeToString[in.Rcode]))
			continue
		}
		var recs []*dns.SRV
		for _, rr := range in.Answer {
			if s, ok := rr.(*dns.SRV); ok && strings.EqualFold(s.Hdr.Name, name) && s.Target != "." {
				recs = append(recs, s)
			}
		}
		return recs, nil
	}
	return nil, errors.Join(errs...)
}

func (r *run) exchange(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	c := &dns.Client{Net: "udp", Timeout: r.o.Timeout}
	in, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, q, server)
	}
	return in, err
}

func (r *run) checkClock(ctx context.Context) Result {
	ref := "the public URL"
	date, sent, answered := r.dateHeader, r.sentAt, r.answeredAt
	if r.o.ClockPeer != "" {
		ref = r.o.ClockPeer
		var err error
		date, sent, answered, err = r.peerDate(ctx, r.o.ClockPeer)
		if err != nil {
			return warn("give a reachable https URL with --clock-peer", "cannot ask %s for the time: %v", ref, err)
		}
	} else {
		if !r.publicAnswered {
			return skip("the public URL did not answer, so there is no time to compare with; use --clock-peer URL")
		}
		if date == "" {
			return skip("the public URL gave no Date header to compare with; use --clock-peer URL")
		}
		if r.o.LocalAddr(r.remoteIP) {
			return skip("the public URL is served from this machine, so its Date header is this clock; use --clock-peer https://another-server to compare")
		}
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return warn("use --clock-peer with another server", "%s sent an unreadable Date header %q", ref, date)
	}
	// Date has a resolution of one second and was set between sending
	// and receiving.
	var skew time.Duration
	switch {
	case t.Before(sent.Add(-time.Second)):
		skew = sent.Sub(t)
	case t.After(answered):
		skew = t.Sub(answered)
	}
	limit := r.cfg.MaxClockSkew.Duration
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	const fixNTP = "turn on time synchronisation: 'sudo timedatectl set-ntp true' (or install chrony or systemd-timesyncd)"
	switch {
	case skew > limit:
		return fail(fixNTP, "this clock differs from %s by %s, more than max-clock-skew (%s): signed requests will be refused", ref, skew.Round(time.Second), limit)
	case skew > 30*time.Second:
		return warn(fixNTP, "this clock differs from %s by %s", ref, skew.Round(time.Second))
	}
	return pass("this clock agrees with %s (within %s)", ref, max(skew.Round(time.Second), time.Second))
}

func (r *run) peerDate(ctx context.Context, peer string) (date string, sent, answered time.Time, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, peer, nil)
	if err != nil {
		return "", sent, answered, err
	}
	sent = r.o.Now()
	resp, err := r.httpClient().Do(req)
	answered = r.o.Now()
	if err != nil {
		return "", sent, answered, err
	}
	resp.Body.Close()
	date = resp.Header.Get("Date")
	if date == "" {
		return "", sent, answered, errors.New("no Date header in the answer")
	}
	return date, sent, answered, nil
}
