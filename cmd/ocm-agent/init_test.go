package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/doctor"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// runInit runs 'ocm-agent init args...' for the test user with stdin.
func runInit(t *testing.T, bin string, u *userEnv, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"init"}, args...)...)
	cmd.Env = u.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func (u *userEnv) configFile() string { return filepath.Join(u.configHome, "ocm-agent", "config.toml") }

func readWritten(t *testing.T, path string) map[string]any {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("init wrote no file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	var m map[string]any
	if _, err := toml.DecodeFile(path, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestInit(t *testing.T) {
	bin := buildAgent(t)

	t.Run("non-interactive, then serve", func(t *testing.T) {
		u := newUserEnv(t)
		listen := testenv.FreeAddr(t)
		out, stderr, code := runInit(t, bin, u, "", "--non-interactive", "--user", "alice", "--display-name", "Alice Example",
			"--public-url", "https://ocm.example.org/", "--listen", listen, "--mount", "")
		if code != 0 {
			t.Fatalf("init failed (%d): %s", code, stderr)
		}
		m := readWritten(t, u.configFile())
		for k, v := range map[string]any{"user": "alice", "display-name": "Alice Example", "public-url": "https://ocm.example.org", "listen": listen, "mount": ""} {
			if m[k] != v {
				t.Errorf("written %s = %v, want %v", k, m[k], v)
			}
		}
		for _, want := range []string{
			"OCM address       alice@ocm.example.org",
			"_ocm._tcp.ocm.example.org. 3600 IN SRV 10 10 443 ocm.example.org.",
			"server_name ocm.example.org;", "proxy_pass http://" + listen + ";",
			"ocm.example.org {\n      reverse_proxy " + listen,
			"systemctl --user enable --now ocm-agent",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		// The daemon accepts the file as written, with no flags.
		startAgent(t, bin, u)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := control.NewClient(u.socket()).Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Address != "alice@ocm.example.org" || st.Listen != listen || st.PublicURL != "https://ocm.example.org" || st.MountState != "disabled" {
			t.Errorf("the agent runs with %+v", st)
		}
	})

	t.Run("interactive through a pipe", func(t *testing.T) {
		u := newUserEnv(t)
		listen := testenv.FreeAddr(t)
		answers := strings.Join([]string{
			"a@b",                      // refused: asked again
			"alice",                    // user
			"Alice Example",            // display name
			"http://ocm.example.org",   // refused: http on a public host
			"https://ocm.example.org/", // public URL
			listen,                     // listen
			"~/Shares",                 // mount
			"proxy",                    // HTTPS by a reverse proxy, not acme
			"",                         // no TLS certificate: a reverse proxy
		}, "\n") + "\n"
		out, stderr, code := runInit(t, bin, u, answers)
		if code != 0 {
			t.Fatalf("init failed (%d): %s\n%s", code, stderr, out)
		}
		for _, want := range []string{"Your OCM user id", "the user id must be", "other servers require https", "Let's Encrypt", "TLS certificate file", "Wrote "} {
			if !strings.Contains(out, want) {
				t.Errorf("the dialogue lacks %q:\n%s", want, out)
			}
		}
		m := readWritten(t, u.configFile())
		want := map[string]any{"user": "alice", "display-name": "Alice Example", "public-url": "https://ocm.example.org",
			"listen": listen, "mount": filepath.Join(u.home, "Shares")}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("written %s = %v, want %v", k, m[k], v)
			}
		}
		if tp, _ := m["trusted-proxies"].([]any); len(tp) != 2 {
			t.Errorf("a reverse proxy on this machine should be trusted: %v", m["trusted-proxies"])
		}
	})

	t.Run("input ends early", func(t *testing.T) {
		u := newUserEnv(t)
		_, stderr, code := runInit(t, bin, u, "alice\n")
		if code == 0 || !strings.Contains(stderr, "input ended") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if _, err := os.Stat(u.configFile()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a file was written: %v", err)
		}
	})

	t.Run("refuses to overwrite without --force", func(t *testing.T) {
		u := newUserEnv(t)
		args := []string{"--non-interactive", "--user", "alice", "--mount", ""}
		if _, stderr, code := runInit(t, bin, u, "", args...); code != 0 {
			t.Fatal(stderr)
		}
		first, _ := os.ReadFile(u.configFile())
		_, stderr, code := runInit(t, bin, u, "", "--non-interactive", "--user", "bob")
		if code == 0 || !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "--force") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if now, _ := os.ReadFile(u.configFile()); !bytes.Equal(now, first) {
			t.Fatal("the file changed without --force")
		}
		if _, stderr, code := runInit(t, bin, u, "", "--non-interactive", "--force", "--user", "bob"); code != 0 {
			t.Fatal(stderr)
		}
		if m := readWritten(t, u.configFile()); m["user"] != "bob" {
			t.Fatalf("--force did not replace the file: %v", m)
		}
		if bak, _ := os.ReadFile(u.configFile() + ".bak"); !bytes.Equal(bak, first) {
			t.Fatal("the old file was not kept as config.toml.bak")
		}
	})

	t.Run("bad values are refused", func(t *testing.T) {
		u := newUserEnv(t)
		for _, c := range []struct {
			args []string
			why  string
		}{
			{[]string{"--public-url", "http://ocm.example.org"}, "require https"},
			{[]string{"--public-url", "https://ocm.example.org/path"}, "no path"},
			{[]string{"--user", "a b"}, "user"},
			{[]string{"--listen", "nohost"}, "listen"},
			{[]string{"--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"}, "cannot read"},
			{[]string{"--tls-cert", "/etc/hostname"}, "tls-cert and tls-key go together"},
		} {
			_, stderr, code := runInit(t, bin, u, "", append([]string{"--non-interactive", "--mount", ""}, c.args...)...)
			if code == 0 || !strings.Contains(stderr, c.why) {
				t.Errorf("init %v: exit %d, stderr %q; want an error about %q", c.args, code, stderr, c.why)
			}
			if _, err := os.Stat(u.configFile()); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("init %v wrote a file", c.args)
			}
		}
	})
}

// TestInitNginxSnippetServesTheAgent puts a real nginx, configured with
// the snippet 'init' prints, in front of a real agent, and runs doctor
// through it: the discovery document and the certificate must check out.
func TestInitNginxSnippetServesTheAgent(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx, err = exec.LookPath("/usr/sbin/nginx")
	}
	testenv.Need(t, "nginx (apt-get install nginx-light)", err)
	bin := buildAgent(t)
	u := newUserEnv(t)
	u.linkTool(t, "fusermount3")
	listen, proxyAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	_, proxyPort, _ := net.SplitHostPort(proxyAddr)
	public := "https://localhost:" + proxyPort

	out, stderr, code := runInit(t, bin, u, "", "--non-interactive", "--user", "alice", "--public-url", public, "--listen", listen, "--mount", "")
	if code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	block := regexp.MustCompile(`(?s)\n  server \{\n.*?\n  \}\n`).FindString(out)
	if block == "" {
		t.Fatalf("no nginx server block in:\n%s", out)
	}
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestPKI(t, dir, "localhost")
	block = strings.NewReplacer(
		"/etc/letsencrypt/live/localhost/fullchain.pem", certFile,
		"/etc/letsencrypt/live/localhost/privkey.pem", keyFile,
	).Replace(block)
	conf := func(server string) string {
		return "daemon off;\nmaster_process off;\npid " + filepath.Join(dir, "nginx.pid") + ";\nerror_log stderr;\n" +
			"events {}\nhttp {\n  access_log off;\n" + server + "}\n"
	}
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf(block)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", confFile, "-e", "stderr").CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects the snippet: %v\n%s\n%s", err, out, block)
	}
	// To run it, listen on loopback only (the test machine may lack IPv6).
	running := regexp.MustCompile(`\n *listen \[::\]:`+proxyPort+` ssl;`).ReplaceAllString(block, "")
	running = strings.Replace(running, "listen "+proxyPort+" ssl;", "listen 127.0.0.1:"+proxyPort+" ssl;", 1)
	if err := os.WriteFile(confFile, []byte(conf(running)), 0o600); err != nil {
		t.Fatal(err)
	}
	ng := exec.Command(nginx, "-p", dir, "-c", confFile, "-e", "stderr")
	var ngErr bytes.Buffer
	ng.Stderr = &ngErr
	if err := ng.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ng.Process.Kill(); ng.Wait() })

	startAgent(t, bin, u)
	u.extra = []string{"SSL_CERT_FILE=" + caFile}
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", proxyAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("nginx does not listen on %s: %v\n%s", proxyAddr, err, ngErr.String())
		}
		time.Sleep(50 * time.Millisecond) // polling, at most 100 times
	}
	rep, code, dstderr := runDoctor(t, bin, u)
	checkReport(t, rep, map[string]want{
		doctor.CheckEndpoint:  {doctor.Pass, "listens on " + listen},
		doctor.CheckPublicURL: {doctor.Warn, "valid discovery document (endpoint " + public + "/ocm)"},
		doctor.CheckTLS:       {doctor.Pass, "certificate of localhost is valid until"},
	})
	if code != 0 {
		t.Errorf("doctor exit %d: %s\n%s", code, dstderr, ngErr.String())
	}
}

// writeTestPKI writes a CA certificate and a server certificate and key
// for host, as PEM files in dir.
func writeTestPKI(t *testing.T, dir, host string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ocm-agent test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(60 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}
