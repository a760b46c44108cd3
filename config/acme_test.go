package config

import (
	"strings"
	"testing"
)

func acmeConfig(mod func(c *Config)) Config {
	c := Default()
	c.User, c.StateDir, c.Socket = "bob", "/state", "/run/s.sock"
	c.ACME, c.PublicURL = true, "https://ocm.example.org"
	mod(&c)
	return c
}

// TestACMEConfig: acme takes an https name it can certify, from an https
// directory, and excludes a certificate of one's own.
func TestACMEConfig(t *testing.T) {
	ok := acmeConfig(func(*Config) {})
	if err := ok.Finish(); err != nil {
		t.Fatalf("a plain acme configuration is refused: %v", err)
	}
	if ok.ACMECA != DefaultACMECA {
		t.Errorf("acme-ca defaults to %q", ok.ACMECA)
	}
	for name, tc := range map[string]struct {
		mod  func(c *Config)
		want string
	}{
		"no public URL":   {func(c *Config) { c.PublicURL = "" }, "acme needs public-url"},
		"http":            {func(c *Config) { c.PublicURL, c.AllowInsecurePeers = "http://ocm.example.org", true }, "https public-url"},
		"IP address":      {func(c *Config) { c.PublicURL = "https://192.0.2.7:8443" }, "DNS name"},
		"localhost":       {func(c *Config) { c.PublicURL = "https://localhost" }, "DNS name"},
		"own cert":        {func(c *Config) { c.TLSCert, c.TLSKey = "/c.pem", "/k.pem" }, "exclude each other"},
		"http CA":         {func(c *Config) { c.ACMECA = "http://ca.example/dir" }, "acme-ca"},
		"relative root":   {func(c *Config) { c.ACMECARoot = "root.pem" }, "acme-ca-root"},
		"bad HTTP01 addr": {func(c *Config) { c.ACMEHTTPListen = "80" }, "acme-http-listen"},
	} {
		c := acmeConfig(tc.mod)
		err := c.Finish()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming %q", name, err, tc.want)
		}
	}
	off := acmeConfig(func(c *Config) { c.ACME, c.ACMECA = false, "not checked" })
	if err := off.Finish(); err != nil {
		t.Errorf("acme keys are checked with acme off: %v", err)
	}
}

// TestCheckRoot: root is refused when the agent faces the network (acme,
// or a listen address beyond loopback) unless allow-root; a loopback-only
// agent and any other user are never refused.
func TestCheckRoot(t *testing.T) {
	for _, tc := range []struct {
		listen  string
		acme    bool
		allow   bool
		euid    int
		refused bool
	}{
		{"127.0.0.1:9200", false, false, 0, false},
		{"[::1]:9200", false, false, 0, false},
		{"localhost:9200", false, false, 0, false},
		{"127.0.0.1:9200", true, false, 0, true},
		{"0.0.0.0:443", false, false, 0, true},
		{":8443", false, false, 0, true},
		{"192.0.2.1:443", false, false, 0, true},
		{"0.0.0.0:443", true, true, 0, false},
		{"0.0.0.0:443", true, false, 1000, false},
	} {
		c := Config{Listen: tc.listen, ACME: tc.acme, AllowRoot: tc.allow}
		err := c.CheckRoot(tc.euid)
		if (err != nil) != tc.refused {
			t.Errorf("listen %s acme %v allow-root %v euid %d: got %v, refused should be %v", tc.listen, tc.acme, tc.allow, tc.euid, err, tc.refused)
		}
		if err != nil && !strings.Contains(err.Error(), "allow-root") {
			t.Errorf("the refusal does not say how to override it: %v", err)
		}
	}
}
