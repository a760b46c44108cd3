package receiver

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies whose X-Forwarded-For header is
// believed. The zero value trusts nobody.
type Proxies struct {
	nets []netip.Prefix
}

// ParseProxies reads a list of IP addresses and CIDRs ("127.0.0.1",
// "10.0.0.0/8", "::1").
func ParseProxies(list []string) (Proxies, error) {
	var p Proxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			pfx, err := netip.ParsePrefix(s)
			if err != nil {
				return Proxies{}, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			p.nets = append(p.nets, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Proxies{}, fmt.Errorf("trusted proxy %q is neither an IP address nor a CIDR", s)
		}
		a = a.Unmap()
		p.nets = append(p.nets, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// Trusted reports whether a is one of the proxies.
func (p Proxies) Trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// RemoteIP is the peer address of a connection ("1.2.3.4:5678"), or the
// invalid Addr when it is not an IP (a unix socket, a test).
func RemoteIP(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// ClientAddr is the address a request is attributed to: the connection's
// peer, or, when that peer is a trusted proxy, the right-most address in
// X-Forwarded-For that is not itself a trusted proxy. Entries to the left
// of it were written by the client and prove nothing.
func (p Proxies) ClientAddr(r *http.Request) netip.Addr {
	remote := RemoteIP(r.RemoteAddr)
	if len(p.nets) == 0 || !p.Trusted(remote) {
		return remote
	}
	values := r.Header.Values("X-Forwarded-For")
	client := remote
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var hop string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				hop, v = v[j+1:], v[:j]
			} else {
				hop, v = v, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			a, ok := parseHop(hop)
			if !ok {
				// Whoever wrote this entry is not a proxy we know: the
				// hop to its right is the last address we can vouch for.
				return client
			}
			if !p.Trusted(a) {
				return a
			}
			client = a
		}
	}
	return client
}

// parseHop reads one X-Forwarded-For entry: an address, optionally with
// a port, IPv6 optionally in brackets.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.WithZone("").Unmap(), true
	}
	return netip.Addr{}, false
}

// clientKey is what limits are counted against: the address itself for
// IPv4, its /64 for IPv6 (one subscriber usually holds a whole /64).
func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}
