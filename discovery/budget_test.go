package discovery

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestLookupBudgetIsShared checks that flooding sources spend only their
// share of the budget for new peers: after four addresses have taken all
// they may, with made-up names and addresses, a fifth client still gets
// its lookup, names under one domain are capped together, and lookups
// without a requester (the person's own actions) meet only the global cap.
func TestLookupBudgetIsShared(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := newLookupBudget(60)
	allowed := 0
	for i := range 1000 {
		ctx := WithRequester(context.Background(), fmt.Sprintf("127.0.0.%d", 2+i%4))
		host := fmt.Sprintf("127.%d.%d.%d:1", 1+i%200, i/200%250, 1+i%250)
		if i%2 == 0 {
			host = fmt.Sprintf("h%d.flood.test", i)
		}
		if b.allow(ctx, host, now) {
			allowed++
		}
	}
	// Two clients send names under flood.test, capped together as one
	// domain; two send addresses, each capped as one client.
	if want := 3 * (60 / budgetShares); allowed != want {
		t.Errorf("four flooding clients got %d lookups, want %d", allowed, want)
	}
	real := WithRequester(context.Background(), "127.0.0.1")
	if !b.allow(real, "127.0.0.1:8443", now) {
		t.Fatal("a real peer's first share was refused after a flood from other addresses")
	}

	// One domain, many clients: capped as one.
	b = newLookupBudget(60)
	allowed = 0
	for i := range 100 {
		ctx := WithRequester(context.Background(), fmt.Sprintf("10.0.%d.1", i))
		if b.allow(ctx, fmt.Sprintf("h%d.one.example", i), now) {
			allowed++
		}
	}
	if allowed != 60/budgetShares {
		t.Errorf("names under one domain got %d lookups, want %d", allowed, 60/budgetShares)
	}
	if !b.allow(WithRequester(context.Background(), "10.9.9.9"), "other.example", now) {
		t.Error("another domain was refused")
	}

	// No requester: only the global cap, which still holds.
	b = newLookupBudget(60)
	allowed = 0
	for i := range 100 {
		if b.allow(context.Background(), fmt.Sprintf("h%d.one.example", i), now) {
			allowed++
		}
	}
	if allowed != 60 {
		t.Errorf("lookups without a requester: %d, want the global cap 60", allowed)
	}
	// It refills: one a second.
	if !b.allow(context.Background(), "late.example", now.Add(time.Second)) {
		t.Error("the budget did not refill")
	}
}

func TestClaimedDomain(t *testing.T) {
	for in, want := range map[string]string{
		"h1.flood.test":          "flood.test",
		"cloud.example.org:8443": "example.org",
		"a.b.example.co.uk":      "example.co.uk",
		"127.3.4.5:1":            "127.3.4.0/24",
		"[2001:db8::1]:443":      "2001:db8::/48",
		"2001:db8:0:1::1":        "2001:db8::/48",
	} {
		if got := claimedDomain(in); got != want {
			t.Errorf("claimedDomain(%q) = %q, want %q", in, got, want)
		}
	}
}
