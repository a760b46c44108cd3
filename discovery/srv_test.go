package discovery

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

func TestDiscoverSRV(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": serveDoc(fixture(t, "opencloudmesh-go-1.4.json")),
	}))
	port, _ := strconv.Atoi(p.port())
	// vanity.test has no address of its own; its SRV record lists a dead
	// target first (lower priority value) and the real one second.
	z.A("dead.vanity.test", "127.0.0.1")
	z.A("cloud.vanity.test", "127.0.0.1")
	z.SRV("vanity.test", 10, 5, "dead.vanity.test", closedPort(t))
	z.SRV("vanity.test", 20, 5, "cloud.vanity.test", port)

	c := New(loopbackOptions(t, z, clk))
	res, err := c.Discover(context.Background(), "Vanity.Test")
	if err != nil {
		t.Fatal(err)
	}
	base := "https://cloud.vanity.test:" + p.port()
	if res.Host != "vanity.test" || res.Via != ViaSRV || res.BaseURL != base || res.DocURL != base+"/.well-known/ocm" {
		t.Fatalf("result: %+v", res)
	}
	if res.Doc.EndPoint != base+"/ocm" {
		t.Fatalf("endPoint %q", res.Doc.EndPoint)
	}
	if z.count("vanity.test", dns.TypeA) == 0 || z.count("_ocm._tcp.vanity.test", dns.TypeSRV) != 1 {
		t.Fatal("the direct lookup or the SRV query did not happen")
	}
	// Cached under the domain.
	if again, err := c.Discover(context.Background(), "vanity.test"); err != nil || again != res {
		t.Fatalf("cache: %v", err)
	}
}

func TestDiscoverSRVNotUsedWhenDirectWorks(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": serveDoc(fixture(t, "reva-1.3.json")),
	}))
	z.A("direct.test", "127.0.0.1")
	z.SRV("direct.test", 10, 1, "elsewhere.test", 443)
	res, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), "direct.test:"+p.port())
	if err != nil || res.Via != ViaWellKnown {
		t.Fatalf("%v %+v", err, res)
	}
	if z.count("_ocm._tcp.direct.test", dns.TypeSRV) != 0 {
		t.Fatal("SRV queried although the peer answered (and had a port)")
	}
}

func TestDiscoverSRVTargetMustBeAllowed(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": serveDoc(fixture(t, "reva-1.3.json")),
	}))
	port, _ := strconv.Atoi(p.port())
	z.A("inside.sneaky.test", "127.0.0.1")
	z.SRV("sneaky.test", 10, 1, "inside.sneaky.test", port)
	_, err := New(safeOptions(t, z, clk)).Discover(context.Background(), "sneaky.test")
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
	if p.hits.total() != 0 {
		t.Fatal("the SRV target on loopback was reached")
	}
}

func TestDiscoverNoSRV(t *testing.T) {
	z, clk := startDNS(t), newClock()
	_, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), "nowhere.test")
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, errNoSRV) {
		t.Fatalf("err = %v, want ErrNotFound with no SRV record", err)
	}
	if z.count("_ocm._tcp.nowhere.test", dns.TypeSRV) != 1 {
		t.Fatal("SRV not queried")
	}
}

func TestDiscoverSRVDisabled(t *testing.T) {
	z, clk := startDNS(t), newClock()
	o := loopbackOptions(t, z, clk)
	o.DisableSRV = true
	if _, err := New(o).Discover(context.Background(), "nowhere.test"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if z.count("_ocm._tcp.nowhere.test", dns.TypeSRV) != 0 {
		t.Fatal("SRV queried although disabled")
	}
}

func TestDNSServersFromResolvConf(t *testing.T) {
	conf := t.TempDir() + "/resolv.conf"
	if err := os.WriteFile(conf, []byte("# test\nsearch example.org\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	servers, err := New(Options{ResolvConf: conf, Logger: quiet}).dnsServers()
	if err != nil || len(servers) != 2 || servers[0] != "192.0.2.53:53" || servers[1] != "[2001:db8::53]:53" {
		t.Fatalf("servers from resolv.conf: %v %v", servers, err)
	}
	servers, err = New(Options{ResolvConf: conf, DNSServer: "127.0.0.1:5353", Logger: quiet}).dnsServers()
	if err != nil || len(servers) != 1 || servers[0] != "127.0.0.1:5353" {
		t.Fatalf("DNSServer override: %v %v", servers, err)
	}
	if _, err := New(Options{ResolvConf: conf + ".missing", Logger: quiet}).dnsServers(); err == nil {
		t.Fatal("missing resolv.conf accepted")
	}
}

func TestOrderSRV(t *testing.T) {
	rec := func(name string, prio, weight uint16) *dns.SRV {
		return &dns.SRV{Hdr: dns.RR_Header{Name: name}, Target: name + ".", Priority: prio, Weight: weight, Port: 443}
	}
	t.Run("priority first", func(t *testing.T) {
		recs := []*dns.SRV{rec("c", 30, 100), rec("a", 10, 0), rec("b", 20, 65535)}
		got := orderSRV(recs, rand.New(rand.NewPCG(1, 2)).IntN)
		if got[0].Target != "a." || got[1].Target != "b." || got[2].Target != "c." {
			t.Fatalf("order %v %v %v", got[0].Target, got[1].Target, got[2].Target)
		}
	})
	t.Run("weights", func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 11))
		first := map[string]int{}
		const trials = 4000
		for range trials {
			recs := []*dns.SRV{rec("light", 10, 10), rec("heavy", 10, 30), rec("zero", 10, 0), rec("backup", 20, 100)}
			got := orderSRV(recs, r.IntN)
			if len(got) != 4 || got[3].Target != "backup." {
				t.Fatalf("the lower priority record is not last: %v", got)
			}
			first[got[0].Target]++
		}
		// P(heavy first) = 30/40 (the zero-weight record wins only on a
		// draw of 0: 1/41). Bounds are far outside any plausible deviation.
		if first["heavy."] < trials*65/100 || first["heavy."] > trials*85/100 {
			t.Fatalf("heavy first %d/%d, want about 3/4", first["heavy."], trials)
		}
		if first["light."] < trials*15/100 || first["light."] > trials*35/100 {
			t.Fatalf("light first %d/%d, want about 1/4", first["light."], trials)
		}
		if first["zero."] > trials*5/100 {
			t.Fatalf("zero-weight first %d/%d times", first["zero."], trials)
		}
	})
	t.Run("all zero", func(t *testing.T) {
		got := orderSRV([]*dns.SRV{rec("a", 1, 0), rec("b", 1, 0)}, rand.New(rand.NewPCG(3, 4)).IntN)
		if len(got) != 2 || got[0] == got[1] {
			t.Fatalf("%v", got)
		}
	})
}
