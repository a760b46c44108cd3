package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// special lists the address ranges an OCM peer must never resolve to:
// everything that is not a globally routed unicast address.
var special = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing"},
	{netip.MustParsePrefix("fc00::/7"), "unique local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// SpecialAddress reports why a is not a public unicast address (loopback,
// private, link-local, CGNAT, multicast, unspecified, documentation, ...),
// or "" when it is one. IPv4 addresses embedded in IPv6 (mapped, NAT64,
// 6to4) are judged by the IPv4 address.
func SpecialAddress(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return SpecialAddress(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case sixToFour.Contains(a):
			return SpecialAddress(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	for _, s := range special {
		if s.prefix.Contains(a) {
			return s.what
		}
	}
	return ""
}

// checkAddr decides whether a connection to a may be made.
func checkAddr(a netip.Addr, o Options) error {
	if o.AllowInsecure {
		return nil
	}
	a = a.Unmap()
	for _, p := range o.AllowedNets {
		if p.Contains(a.WithZone("")) {
			return nil
		}
	}
	if why := SpecialAddress(a); why != "" {
		return fmt.Errorf("%w: %s is a %s address", ErrForbiddenAddress, a, why)
	}
	return nil
}

// SafeDialer returns a dialer that refuses, at connect time and on the
// resolved address, every address SpecialAddress names (unless
// o.AllowInsecure or o.AllowedNets say otherwise). Because the check runs
// on the address actually dialled, a name that resolves to a public
// address once and to 127.0.0.1 the next time (DNS rebinding) is refused.
// With o.DNSServer set, host names are resolved there.
func SafeDialer(o Options) *net.Dialer {
	o = o.withDefaults()
	return &net.Dialer{
		Timeout:   o.PathTimeout,
		KeepAlive: 30 * time.Second,
		Resolver:  resolverFor(o),
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot parse dialled address %q", ErrForbiddenAddress, address)
			}
			return checkAddr(ap.Addr(), o)
		},
	}
}

// resolverFor returns the resolver for host names: the system's, or the
// Go resolver talking to o.DNSServer only.
func resolverFor(o Options) *net.Resolver {
	if o.DNSServer == "" {
		return net.DefaultResolver
	}
	server := o.DNSServer
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}

// NewHTTPClient returns the client every request to a peer goes through:
// connections only to public addresses (SafeDialer), https only, TLS 1.2
// or newer, no proxy from the environment, at most o.MaxRedirects
// redirects, each checked again, and o.Timeout per request. Bodies must
// still be read with ReadLimited.
func NewHTTPClient(o Options) *http.Client {
	o = o.withDefaults()
	d := SafeDialer(o)
	tr := &http.Transport{
		Proxy:       nil, // a proxy would make the address check meaningless
		DialContext: d.DialContext,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    o.RootCAs,
		},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    o.PathTimeout,
		ResponseHeaderTimeout:  o.PathTimeout,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		MaxResponseHeaderBytes: 64 << 10,
	}
	c := &http.Client{
		Transport: &guard{next: tr, allowHTTP: o.AllowInsecure},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > o.MaxRedirects {
				return fmt.Errorf("%w: more than %d", ErrTooManyRedirects, o.MaxRedirects)
			}
			return checkURLScheme(req, o.AllowInsecure)
		},
	}
	if o.Timeout > 0 {
		c.Timeout = o.Timeout
	}
	return c
}

// guard refuses plain http (unless allowed) and credentials in URLs on
// every request the transport sends, redirects included.
type guard struct {
	next      http.RoundTripper
	allowHTTP bool
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkURLScheme(req, g.allowHTTP); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (g *guard) CloseIdleConnections() {
	if c, ok := g.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func checkURLScheme(req *http.Request, allowHTTP bool) error {
	u := req.URL
	if u == nil {
		return errors.New("request without URL")
	}
	if u.User != nil {
		return errors.New("credentials in a URL are not sent")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTP {
			return nil
		}
		return fmt.Errorf("%w: refusing http://%s", ErrInsecureScheme, u.Host)
	}
	return fmt.Errorf("%w: unsupported scheme %q", ErrInsecureScheme, u.Scheme)
}

// ReadLimited reads r to its end, or fails with ErrBodyTooLarge as soon as
// more than max bytes arrive.
func ReadLimited(r io.Reader, max int64) ([]byte, error) {
	if max < 0 {
		max = 0
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, max)
	}
	return b, nil
}
