package main

import (
	"net"
	"strings"
	"testing"
)

// TestInitOffersACME: for an https URL, init offers the agent's own
// certificate first, moves the listen address off loopback, names the
// ports to open and how to bind 443 without root, and writes acme.
func TestInitOffersACME(t *testing.T) {
	bin := buildAgent(t)

	t.Run("interactive", func(t *testing.T) {
		u := newUserEnv(t)
		answers := strings.Join([]string{
			"alice", "", "https://ocm.example.org", "", "-",
			"",               // who serves HTTPS: the default, acme
			"127.0.0.1:9300", // refused: loopback
			"0.0.0.0:8443",
			"alice@example.org",
		}, "\n") + "\n"
		out, stderr, code := runInit(t, bin, u, answers)
		if code != 0 {
			t.Fatalf("init failed (%d): %s\n%s", code, stderr, out)
		}
		m := readWritten(t, u.configFile())
		for k, v := range map[string]any{"acme": true, "listen": "0.0.0.0:8443", "acme-email": "alice@example.org", "public-url": "https://ocm.example.org"} {
			if m[k] != v {
				t.Errorf("written %s = %v, want %v", k, m[k], v)
			}
		}
		if m["trusted-proxies"] != nil || m["tls-cert"] != nil {
			t.Errorf("acme written with proxy or certificate settings: %v", m)
		}
		for _, want := range []string{"acme (the agent, Let's Encrypt)", "must listen beyond loopback", "port 443 of ocm.example.org must reach this machine's port 8443",
			"forward TCP 443", "setcap cap_net_bind_service=+ep", "Port 80 is not needed", "refuses to run as root"} {
			if !strings.Contains(out, want) {
				t.Errorf("the dialogue lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "Reverse proxy, nginx") {
			t.Errorf("a proxy configuration is printed for acme:\n%s", out)
		}
	})

	t.Run("port taken", func(t *testing.T) {
		u := newUserEnv(t)
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out, stderr, code := runInit(t, bin, u, "", "--non-interactive", "--user", "alice",
			"--public-url", "https://ocm.example.org", "--acme", "--listen", ln.Addr().String())
		if code != 0 || !strings.Contains(out, "Warning: "+ln.Addr().String()+" is in use") {
			t.Fatalf("exit %d, stderr %q, out:\n%s", code, stderr, out)
		}
	})

	t.Run("non-interactive on loopback", func(t *testing.T) {
		u := newUserEnv(t)
		_, stderr, code := runInit(t, bin, u, "", "--non-interactive", "--user", "alice",
			"--public-url", "https://ocm.example.org", "--acme", "--listen", "127.0.0.1:9200")
		if code == 0 || !strings.Contains(stderr, "beyond loopback") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}
