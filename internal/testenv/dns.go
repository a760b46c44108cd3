package testenv

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ServeDNS runs srv (a test's own DNS server on a loopback listener or
// packet conn it made), returns once it answers, and stops it when the
// test ends.
func ServeDNS(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("DNS server did not start")
	}
	t.Cleanup(func() { _ = srv.Shutdown() })
}
