package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/ocm-agent/ocm-agent/ocm"
)

// srvPaths are tried on an SRV target, as the seed README prescribes.
var srvPaths = []struct{ path, via string }{{"/.well-known/ocm", ViaSRV}}

// maxSRVTargets bounds how many SRV targets one lookup tries.
const maxSRVTargets = 8

// errNoSRV: the domain has no usable _ocm._tcp record.
var errNoSRV = errors.New("no _ocm._tcp SRV record")

// trySRV discovers host through its _ocm._tcp SRV record. The identity of
// the peer stays host; only BaseURL names the target.
func (c *Client) trySRV(ctx context.Context, host string) (*Result, error) {
	recs, err := c.lookupSRV(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i, r := range orderSRV(recs, rand.IntN) {
		if i == maxSRVTargets {
			break
		}
		target := strings.ToLower(strings.TrimSuffix(r.Target, "."))
		authority := net.JoinHostPort(target, strconv.Itoa(int(r.Port)))
		res, err := c.tryHost(ctx, authority, srvPaths)
		if err == nil {
			return res, nil
		}
		if errors.Is(err, ErrForbiddenAddress) || errors.Is(err, ErrInsecureScheme) {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("SRV target %s: %w", authority, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// dnsServers returns the servers to ask, as host:port.
func (c *Client) dnsServers() ([]string, error) {
	if c.opts.DNSServer != "" {
		return []string{c.opts.DNSServer}, nil
	}
	cfg, err := dns.ClientConfigFromFile(c.opts.ResolvConf)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", c.opts.ResolvConf, err)
	}
	port := cfg.Port
	if port == "" {
		port = "53"
	}
	var out []string
	for _, s := range cfg.Servers {
		out = append(out, net.JoinHostPort(s, port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no nameserver in %s", c.opts.ResolvConf)
	}
	return out, nil
}

// lookupSRV queries _ocm._tcp.<host> and returns the usable records.
func (c *Client) lookupSRV(ctx context.Context, host string) ([]*dns.SRV, error) {
	servers, err := c.dnsServers()
	if err != nil {
		return nil, err
	}
	name := dns.Fqdn("_ocm._tcp." + host)
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeSRV)
	q.RecursionDesired = true
	q.SetEdns0(4096, false)

	var errs []error
	for _, server := range servers {
		in, err := exchange(ctx, q, server, c.opts.PathTimeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("SRV %s at %s: %w", name, server, err))
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, fmt.Errorf("%w for %s", errNoSRV, host)
		default:
			errs = append(errs, fmt.Errorf("SRV %s at %s: %s", name, server, dns.RcodeToString[in.Rcode]))
			continue
		}
		var recs []*dns.SRV
		for _, rr := range in.Answer {
			srv, ok := rr.(*dns.SRV)
			if !ok || !strings.EqualFold(srv.Hdr.Name, name) || srv.Target == "." || srv.Port == 0 {
				continue
			}
			if _, err := ocm.NormalizeHost(strings.TrimSuffix(srv.Target, ".")); err != nil {
				continue
			}
			recs = append(recs, srv)
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("%w for %s", errNoSRV, host)
		}
		return recs, nil
	}
	return nil, errors.Join(errs...)
}

// exchange sends q over UDP, and again over TCP when the answer was
// truncated.
func exchange(ctx context.Context, q *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl := &dns.Client{Net: "udp", Timeout: timeout}
	in, _, err := cl.ExchangeContext(ctx, q, server)
	if err == nil && in.Truncated {
		cl.Net = "tcp"
		in, _, err = cl.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, err
	}
	return in, nil
}

// orderSRV sorts records as RFC 2782 says: by ascending priority, and
// within one priority by weighted random selection, each record chosen
// with a probability proportional to its weight (zero-weight records are
// placed first and only picked when they win the draw of 0). intn(n)
// returns a uniform random number in [0, n).
func orderSRV(recs []*dns.SRV, intn func(int) int) []*dns.SRV {
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b *dns.SRV) int { return int(a.Priority) - int(b.Priority) })
	out := make([]*dns.SRV, 0, len(sorted))
	for len(sorted) > 0 {
		n := 1
		for n < len(sorted) && sorted[n].Priority == sorted[0].Priority {
			n++
		}
		group := sorted[:n]
		sorted = sorted[n:]
		// Weight 0 first, the others in their original order.
		slices.SortStableFunc(group, func(a, b *dns.SRV) int {
			switch {
			case a.Weight == 0 && b.Weight != 0:
				return -1
			case a.Weight != 0 && b.Weight == 0:
				return 1
			}
			return 0
		})
		for len(group) > 0 {
			sum := 0
			for _, r := range group {
				sum += int(r.Weight)
			}
			pick := intn(sum + 1)
			i, running := 0, 0
			for ; i < len(group)-1; i++ {
				running += int(group[i].Weight)
				if running >= pick {
					break
				}
			}
			out = append(out, group[i])
			group = slices.Delete(group, i, i+1)
		}
	}
	return out
}
