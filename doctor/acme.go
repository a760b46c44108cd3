package doctor

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// lookupIP resolves through server (host:port) or, if empty, the system.
func lookupIP(server string, timeout time.Duration) func(ctx context.Context, host string) ([]net.IP, error) {
	res := net.DefaultResolver
	if server != "" {
		d := &net.Dialer{Timeout: timeout}
		res = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, server)
		}}
	}
	return func(ctx context.Context, host string) ([]net.IP, error) { return res.LookupIP(ctx, "ip", host) }
}

// checkACME: with acme, the daemon holds a valid certificate, its renewal
// works, and the name leads to this machine.
func (r *run) checkACME(ctx context.Context) Result {
	if !r.cfg.ACME && r.status.CertName == "" {
		return skip("acme is off: the certificate, if any, comes from tls-cert or a reverse proxy")
	}
	if r.statusErr != nil {
		return fail(publicFix(r.statusErr), "the daemon keeps the certificate and is not running: %v", r.statusErr)
	}
	st, now := r.status, r.o.Now()
	host := st.CertName
	if u, err := url.Parse(r.publicURL); host == "" && err == nil {
		host = u.Hostname()
	}
	reach := "make port 443 of " + host + " reach this machine's listen address " + r.cfg.Listen +
		" (a router forward, or listen on :443 with setcap, see the README)"
	if st.CertNotAfter.IsZero() {
		return fail(reach+"; the daemon log tells the CA's answer", "no certificate for %s yet: %s", host, orNone(st.CertError))
	}
	left := st.CertNotAfter.Sub(now)
	days := int(left.Hours() / 24)
	if left <= 0 {
		return fail(reach+"; the agent keeps trying", "the certificate for %s expired on %s: %s", host,
			st.CertNotAfter.UTC().Format(time.DateOnly), orNone(st.CertError))
	}
	dctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	ips, err := r.o.LookupIP(dctx, host)
	if err != nil || len(ips) == 0 {
		return fail("publish an A (or AAAA) record for "+host+" with this machine's public address",
			"%s does not resolve: %v", host, err)
	}
	local := false
	var shown []string
	for _, ip := range ips {
		local = local || r.o.LocalAddr(ip)
		shown = append(shown, ip.String())
	}
	where := fmt.Sprintf("%s resolves to %s", host, strings.Join(shown, ", "))
	switch {
	case st.CertError != "":
		return warn(reach+"; the agent retries by itself",
			"renewing the certificate for %s fails (%d days left): %s", host, days, st.CertError)
	case left < r.o.ExpiryWarning:
		return warn(reach+"; renewal should have happened by now",
			"the certificate for %s expires in %d days and is not renewed yet", host, days)
	case !local:
		return warn("if that is your router, forward its port 443 (and 80 with acme-http-listen) to this machine; otherwise point the record here",
			"certificate valid until %s, but %s, not an address of this machine", st.CertNotAfter.UTC().Format(time.DateOnly), where)
	}
	return pass("certificate for %s from %q valid until %s (%d days left); %s, this machine",
		host, st.CertIssuer, st.CertNotAfter.UTC().Format(time.DateOnly), days, where)
}
