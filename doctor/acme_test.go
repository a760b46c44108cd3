package doctor

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

// TestACMECheck: the check reads the daemon's certificate status and
// resolves the name; each problem gets its outcome and a fix.
func TestACMECheck(t *testing.T) {
	cfg := baseConfig(t, "https://ocm.test")
	cfg.ACME = true
	here := net.ParseIP("192.0.2.10")
	resolves := func(ips ...string) func(context.Context, string) ([]net.IP, error) {
		return func(_ context.Context, host string) ([]net.IP, error) {
			if host != "ocm.test" {
				return nil, errors.New("asked for " + host)
			}
			var out []net.IP
			for _, s := range ips {
				out = append(out, net.ParseIP(s))
			}
			if len(out) == 0 {
				return nil, errors.New("no such host")
			}
			return out, nil
		}
	}
	isHere := func(ip net.IP) bool { return ip.Equal(here) }
	good := control.Status{PublicURL: "https://ocm.test", Listen: "0.0.0.0:8443", CertName: "ocm.test",
		CertIssuer: "R11", CertNotAfter: time.Now().Add(60 * 24 * time.Hour)}
	run := func(st control.Status, lookup func(context.Context, string) ([]net.IP, error)) Result {
		o := Options{Config: cfg, Status: statusOf(st), LookupIP: lookup, LocalAddr: isHere}
		return runOne(t, o, CheckACME)
	}
	expect(t, run(good, resolves("192.0.2.10")), Pass, "days left")
	expect(t, run(good, resolves("198.51.100.1")), Warn, "not an address of this machine")
	expect(t, run(good, resolves()), Fail, "does not resolve")

	failing := good
	failing.CertError = "2026-01-01T00:00:00Z connection refused"
	expect(t, run(failing, resolves("192.0.2.10")), Warn, "connection refused")
	soon := good
	soon.CertNotAfter = time.Now().Add(3 * 24 * time.Hour)
	expect(t, run(soon, resolves("192.0.2.10")), Warn, "expires in")
	none := good
	none.CertNotAfter, none.CertError = time.Time{}, "timeout during connect"
	expect(t, run(none, resolves("192.0.2.10")), Fail, "no certificate for ocm.test yet: timeout")
	gone := good
	gone.CertNotAfter = time.Now().Add(-time.Hour)
	expect(t, run(gone, resolves("192.0.2.10")), Fail, "expired")

	expect(t, runOne(t, Options{Config: cfg, Status: daemonDown, LookupIP: resolves()}, CheckACME), Fail, "not running")
	off := baseConfig(t, "https://ocm.test")
	expect(t, runOne(t, Options{Config: off, Status: statusOf(control.Status{}), LookupIP: resolves()}, CheckACME), Skip, "acme is off")
}
