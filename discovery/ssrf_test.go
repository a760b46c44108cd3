package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func TestSpecialAddress(t *testing.T) {
	special := []string{
		"0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.255.0.9",
		"169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.168.1.1",
		"198.18.0.1", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
		"255.255.255.255", "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1",
		"64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::1", "100::1", "2001::1", "2001:db8::1",
		"2002:7f00:1::1", "2002:c0a8:101::1", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0",
		"fec0::1", "ff02::1", "3fff::1",
	}
	public := []string{
		"1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.169.0.1",
		"198.20.0.1", "2001:4860:4860::8888", "2a00:1450:4001::1", "64:ff9b::808:808",
		"2002:808:808::1", "::ffff:8.8.8.8",
	}
	for _, s := range special {
		if SpecialAddress(netip.MustParseAddr(s)) == "" {
			t.Errorf("%s counted as public", s)
		}
	}
	for _, s := range public {
		if why := SpecialAddress(netip.MustParseAddr(s)); why != "" {
			t.Errorf("%s counted as %s", s, why)
		}
	}
	if SpecialAddress(netip.Addr{}) == "" {
		t.Error("the zero Addr counted as public")
	}
}

// The address rules, without AllowInsecure.

func TestRefuseLoopbackIPLiteral(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(map[string]http.Handler{"/.well-known/ocm": serveDoc(fixture(t, "reva-1.3.json"))}))
	c := New(safeOptions(t, z, clk))
	_, err := c.Discover(context.Background(), p.host())
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
	if p.hits.total() != 0 {
		t.Fatal("the server on 127.0.0.1 was reached")
	}
	// The raw client too.
	resp, err := c.HTTPClient().Get(p.URL + "/.well-known/ocm")
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrForbiddenAddress) || p.hits.total() != 0 {
		t.Fatalf("HTTPClient: %v", err)
	}
}

func TestRefuseNameResolvingToLoopback(t *testing.T) {
	z, clk := startDNS(t), newClock()
	z.A("evil.test", "127.0.0.1")
	z.A("evil6.test", "::1")
	p := startPeer(t, "", false, routes(map[string]http.Handler{"/.well-known/ocm": serveDoc(fixture(t, "reva-1.3.json"))}))
	c := New(safeOptions(t, z, clk))
	for _, name := range []string{"evil.test", "evil6.test"} {
		_, err := c.Discover(context.Background(), name+":"+p.port())
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Fatalf("%s: err = %v, want ErrForbiddenAddress", name, err)
		}
	}
	if z.count("evil.test", 1) == 0 {
		t.Fatal("the name was not resolved through the test DNS server")
	}
	if p.hits.total() != 0 {
		t.Fatal("the server was reached")
	}
}

func TestRefuseRedirectToPrivateAddress(t *testing.T) {
	z, clk := startDNS(t), newClock()
	z.A("internal.test", "10.1.2.3")
	inner := startPeer(t, "127.0.0.2:0", false, routes(map[string]http.Handler{
		"/.well-known/ocm": serveDoc(fixture(t, "reva-1.3.json")),
	}))
	for _, target := range []string{
		inner.URL + "/.well-known/ocm",           // 127.0.0.2: loopback, not allowed
		"https://internal.test:443/x",            // a name resolving to 10.1.2.3
		"https://192.168.7.7/.well-known/ocm",    // a private literal
		"https://[fd00::1]:8443/.well-known/ocm", // unique local
	} {
		t.Run(target, func(t *testing.T) {
			outer := startPeer(t, "", false, http.RedirectHandler(target, http.StatusFound))
			_, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), outer.host())
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("err = %v, want ErrForbiddenAddress", err)
			}
			if outer.hits.total() != 1 {
				t.Fatalf("the first hop saw %d requests, want 1 (no fallback after a refusal)", outer.hits.total())
			}
		})
	}
	if inner.hits.total() != 0 {
		t.Fatal("the redirect target was reached")
	}
}

func TestRefusePlainHTTP(t *testing.T) {
	z, clk := startDNS(t), newClock()
	plain := startPeer(t, "", true, routes(map[string]http.Handler{"/.well-known/ocm": serveDoc(fixture(t, "reva-1.3.json"))}))

	o := loopbackOptions(t, z, clk)
	o.Scheme = "http"
	if _, err := New(o).Discover(context.Background(), plain.host()); !errors.Is(err, ErrInsecureScheme) {
		t.Fatalf("Scheme http: %v, want ErrInsecureScheme", err)
	}
	// Without a forced scheme, https is tried and nothing falls back to http.
	if _, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), plain.host()); err == nil {
		t.Fatal("found a document over http")
	}
	// An https peer redirecting to http.
	down := startPeer(t, "", false, http.RedirectHandler(plain.URL+"/.well-known/ocm", http.StatusMovedPermanently))
	if _, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), down.host()); !errors.Is(err, ErrInsecureScheme) {
		t.Fatalf("redirect to http: %v, want ErrInsecureScheme", err)
	}
	if plain.hits.total() != 0 {
		t.Fatal("the http server was reached")
	}
}

// The same, with AllowInsecure: everything works.
func TestAllowInsecure(t *testing.T) {
	z, clk := startDNS(t), newClock()
	z.A("evil.test", "127.0.0.1")
	doc := routes(map[string]http.Handler{"/.well-known/ocm": serveDoc(fixture(t, "reva-1.3.json"))})
	tlsPeer := startPeer(t, "", false, doc)
	plain := startPeer(t, "", true, doc)
	inner := startPeer(t, "127.0.0.2:0", false, doc)
	outer := startPeer(t, "", false, http.RedirectHandler(inner.URL+"/.well-known/ocm", http.StatusFound))
	toHTTP := startPeer(t, "", false, http.RedirectHandler(plain.URL+"/.well-known/ocm", http.StatusFound))

	o := safeOptions(t, z, clk)
	o.AllowInsecure = true
	c := New(o)
	ctx := context.Background()

	if res, err := c.Discover(ctx, tlsPeer.host()); err != nil || res.BaseURL != tlsPeer.URL {
		t.Fatalf("IP literal: %v %+v", err, res)
	}
	if res, err := c.Discover(ctx, "evil.test:"+tlsPeer.port()); err != nil || res.Host != "evil.test:"+tlsPeer.port() {
		t.Fatalf("name resolving to loopback: %v %+v", err, res)
	}
	if res, err := c.Discover(ctx, outer.host()); err != nil || res.BaseURL != inner.URL {
		t.Fatalf("redirect to 127.0.0.2: %v %+v", err, res)
	}
	// https cannot connect to a plain server, so http is tried.
	res, err := c.Discover(ctx, plain.host())
	if err != nil || res.BaseURL != plain.URL || res.Via != ViaWellKnown {
		t.Fatalf("http fallback: %v %+v", err, res)
	}
	if res, err := c.Discover(ctx, toHTTP.host()); err != nil || res.BaseURL != plain.URL {
		t.Fatalf("redirect to http: %v %+v", err, res)
	}
	if inner.hits.total() != 1 {
		t.Fatalf("redirect target saw %d requests", inner.hits.total())
	}
}

func TestHTTPClientRedirectLimit(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /hop/N redirects N more times, then answers.
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
		if err != nil || n <= 0 {
			_, _ = io.WriteString(w, "done")
			return
		}
		http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
	}))
	c := NewHTTPClient(loopbackOptions(t, z, clk))
	resp, err := c.Get(p.URL + "/hop/3")
	if err != nil {
		t.Fatalf("3 redirects: %v", err)
	}
	resp.Body.Close()
	resp, err = c.Get(p.URL + "/hop/4")
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrTooManyRedirects) {
		t.Fatalf("4 redirects: %v, want ErrTooManyRedirects", err)
	}
}

func TestHTTPClientRefusesCredentialsInURL(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, http.NotFoundHandler())
	c := NewHTTPClient(loopbackOptions(t, z, clk))
	resp, err := c.Get(strings.Replace(p.URL, "https://", "https://user:secret@", 1) + "/")
	if err == nil {
		resp.Body.Close()
		t.Fatal("a URL with credentials was requested")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("the error leaks the credentials: %v", err)
	}
	if p.hits.total() != 0 {
		t.Fatal("the server was reached")
	}
}

func TestHTTPClientTLSMinimum(t *testing.T) {
	z, clk := startDNS(t), newClock()
	modern := startPeer(t, "", false, http.NotFoundHandler())
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	old := httptest.NewUnstartedServer(http.NotFoundHandler())
	old.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	old.Config.ErrorLog = log.New(io.Discard, "", 0)
	old.StartTLS()
	defer old.Close()

	c := NewHTTPClient(loopbackOptions(t, z, clk))
	if resp, err := c.Get(old.URL + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("TLS 1.1 accepted")
	}
	resp, err := c.Get(modern.URL + "/")
	if err != nil {
		t.Fatalf("modern TLS: %v", err)
	}
	resp.Body.Close()
}

func TestReadLimited(t *testing.T) {
	b, err := ReadLimited(strings.NewReader("12345"), 5)
	if err != nil || string(b) != "12345" {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := ReadLimited(strings.NewReader("123456"), 5); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("err = %v, want ErrBodyTooLarge", err)
	}
	if b, err := ReadLimited(strings.NewReader(""), 0); err != nil || len(b) != 0 {
		t.Fatalf("%q %v", b, err)
	}
}
