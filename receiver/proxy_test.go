package receiver

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestParseProxies(t *testing.T) {
	p, err := ParseProxies([]string{"127.0.0.1", " 10.0.0.0/8 ", "::1", "2001:db8::/32", ""})
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": false, "10.1.2.3": true, "11.0.0.1": false,
		"::1": true, "2001:db8:1::5": true, "2001:db9::1": false, "::ffff:10.0.0.1": true,
	} {
		if got := p.Trusted(netip.MustParseAddr(s)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", s, got, want)
		}
	}
	if p.Trusted(netip.Addr{}) {
		t.Error("the invalid address is trusted")
	}
	for _, bad := range []string{"localhost", "10.0.0.0/33", "1.2.3.4.5"} {
		if _, err := ParseProxies([]string{bad}); err == nil {
			t.Errorf("ParseProxies(%q) accepted", bad)
		}
	}
}

func TestClientAddr(t *testing.T) {
	p, err := ParseProxies([]string{"10.0.0.1", "10.0.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "192.0.2.7:5000", nil, "192.0.2.7"},
		{"untrusted peer's header is ignored", "192.0.2.7:5000", []string{"198.51.100.1"}, "192.0.2.7"},
		{"trusted proxy without header", "10.0.0.1:443", nil, "10.0.0.1"},
		{"trusted proxy", "10.0.0.1:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-written entries on the left are not believed", "10.0.0.1:443", []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.0.0.1:443", []string{"198.51.100.1, 10.0.1.5"}, "198.51.100.1"},
		{"several header lines", "10.0.0.1:443", []string{"6.6.6.6", "198.51.100.1, 10.0.1.9"}, "198.51.100.1"},
		{"entry with port", "10.0.0.1:443", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"IPv6 entries", "10.0.0.1:443", []string{"[2001:db8::1]:80, 2001:db8::2"}, "2001:db8::2"},
		{"garbage stops at the last trusted hop", "10.0.0.1:443", []string{"198.51.100.1, unknown, 10.0.1.7"}, "10.0.1.7"},
		{"only trusted hops", "10.0.0.1:443", []string{"10.0.1.3, 10.0.1.4"}, "10.0.1.3"},
		{"empty entries", "10.0.0.1:443", []string{" , 198.51.100.1 ,"}, "198.51.100.1"},
		{"IPv6 peer", "[2001:db8::9]:443", nil, "2001:db8::9"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := p.ClientAddr(r); got.String() != c.want {
			t.Errorf("%s: ClientAddr = %s, want %s", c.name, got, c.want)
		}
	}
	// Nobody trusted: the header never counts.
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:443"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := (Proxies{}).ClientAddr(r); got.String() != "10.0.0.1" {
		t.Errorf("without trusted proxies ClientAddr = %s", got)
	}
}

func TestClientKeyGroupsIPv6By64(t *testing.T) {
	a := clientKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := clientKey(netip.MustParseAddr("2001:db8:1:2:bbbb::2"))
	c := clientKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Errorf("IPv6 keys: %s %s %s", a, b, c)
	}
	if k := clientKey(netip.MustParseAddr("192.0.2.1")); k.String() != "192.0.2.1" {
		t.Errorf("IPv4 key %s", k)
	}
}
