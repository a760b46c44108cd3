package discovery

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"
	"golang.org/x/time/rate"
)

// requesterKey carries who caused a lookup (see WithRequester).
type requesterKey struct{}

// WithRequester marks ctx as acting for requester: the address (or address
// prefix) of the client whose request needs the lookup. Lookups of new
// peers are then charged to that client and to the claimed domain as well
// as to the global budget, so a flood from some addresses, or of names
// under one domain, cannot spend the budget of everybody else.
func WithRequester(ctx context.Context, requester string) context.Context {
	return context.WithValue(ctx, requesterKey{}, requester)
}

func requesterFrom(ctx context.Context) string {
	s, _ := ctx.Value(requesterKey{}).(string)
	return s
}

// The share of the global budget one requester, or one claimed domain, may
// take: with 60 a minute, 10 each, so that six flooding sources are needed
// to spend it all and a single one leaves most of it to real peers.
const budgetShares = 6

// maxBudgetKeys bounds the per-requester and per-domain buckets kept; full
// buckets (nobody spent anything lately) are dropped first.
const maxBudgetKeys = 4096

// lookupBudget is the allowance for lookups of peers never seen before:
// one global bucket plus one per requester and one per claimed domain.
type lookupBudget struct {
	perMinute int
	global    *rate.Limiter

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newLookupBudget(perMinute int) *lookupBudget {
	if perMinute <= 0 {
		return nil
	}
	return &lookupBudget{
		perMinute: perMinute,
		global:    rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute),
		buckets:   make(map[string]*rate.Limiter),
	}
}

// allow takes one lookup of host for ctx's requester, or none if any of
// the buckets concerned is empty.
func (b *lookupBudget) allow(ctx context.Context, host string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	lims := []*rate.Limiter{b.global}
	if req := requesterFrom(ctx); req != "" {
		lims = append(lims, b.bucketLocked("client "+req, now), b.bucketLocked("domain "+claimedDomain(host), now))
	}
	var taken []*rate.Reservation
	for _, l := range lims {
		r := l.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			for _, t := range taken {
				t.CancelAt(now)
			}
			return false
		}
		taken = append(taken, r)
	}
	return true
}

func (b *lookupBudget) bucketLocked(key string, now time.Time) *rate.Limiter {
	if l := b.buckets[key]; l != nil {
		return l
	}
	share := max(1, b.perMinute/budgetShares)
	if len(b.buckets) >= maxBudgetKeys {
		for k, l := range b.buckets {
			if l.TokensAt(now) >= float64(share) {
				delete(b.buckets, k)
			}
		}
	}
	if len(b.buckets) >= maxBudgetKeys {
		// Every bucket is in use: a flood from that many sources. Charge
		// the newcomers to one shared bucket rather than grow without bound.
		key = "overflow"
		if l := b.buckets[key]; l != nil {
			return l
		}
	}
	l := rate.NewLimiter(rate.Limit(float64(share)/60), share)
	b.buckets[key] = l
	return l
}

// claimedDomain groups hosts by who controls them: the registrable domain
// of a name (h1.flood.example and h2.flood.example are one), the /24 of an
// IPv4 address and the /48 of an IPv6 one.
func claimedDomain(host string) string {
	h := host
	if ap, err := netip.ParseAddrPort(h); err == nil {
		h = ap.Addr().String()
	} else if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.Contains(h[:i], ":") {
		h = h[:i]
	}
	h = strings.Trim(h, "[]")
	if a, err := netip.ParseAddr(h); err == nil {
		bits := 24
		if a.Is6() && !a.Is4In6() {
			bits = 48
		}
		if p, err := a.Unmap().Prefix(bits); err == nil {
			return p.String()
		}
		return a.String()
	}
	if d, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil {
		return d
	}
	return h
}
