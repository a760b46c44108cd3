package doctor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

func baseConfig(t *testing.T, publicURL string) config.Config {
	t.Helper()
	c := config.Default()
	c.User = "alice"
	c.PublicURL = publicURL
	c.Mount = ""
	c.StateDir = t.TempDir()
	c.Socket = filepath.Join(c.StateDir, "s.sock")
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	return c
}

func daemonDown(context.Context) (control.Status, error) {
	return control.Status{}, fmt.Errorf("%w (no socket)", control.ErrNotRunning)
}

func statusOf(st control.Status) func(context.Context) (control.Status, error) {
	return func(context.Context) (control.Status, error) { return st, nil }
}

func runOne(t *testing.T, o Options, id string) Result {
	t.Helper()
	rep := Run(context.Background(), o)
	res, ok := rep.Get(id)
	if !ok {
		t.Fatalf("no result for %s in %+v", id, rep)
	}
	return res
}

func expect(t *testing.T, res Result, want Outcome, detail string) {
	t.Helper()
	if res.Outcome != want || !strings.Contains(res.Detail, detail) {
		t.Fatalf("%s: got %s %q (fix %q), want %s containing %q", res.ID, res.Outcome, res.Detail, res.Fix, want, detail)
	}
	if (want == Fail || want == Warn) && res.Fix == "" {
		t.Fatalf("%s: %s without a fix", res.ID, want)
	}
}

// fileInfo is a stat result for prepared cases the machine cannot produce
// on demand (a missing /dev/fuse).
type fileInfo struct {
	name string
	mode fs.FileMode
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return 0 }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fileInfo) Sys() any           { return nil }

func TestFUSE(t *testing.T) {
	cfg := baseConfig(t, "http://127.0.0.1:9")
	cfg.Mount = filepath.Join(t.TempDir(), "OCM")
	status := statusOf(control.Status{Mount: cfg.Mount, MountState: "mounted", Listen: "127.0.0.1:9", PublicURL: cfg.PublicURL})

	t.Run("real machine", func(t *testing.T) {
		testenv.FUSE(t)
		expect(t, runOne(t, Options{Config: cfg, Status: status}, CheckFUSE), Pass, "fusermount3")
	})
	t.Run("no device", func(t *testing.T) {
		stat := func(name string) (os.FileInfo, error) {
			if name == "/dev/fuse" {
				return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
			}
			return os.Stat(name)
		}
		expect(t, runOne(t, Options{Config: cfg, Status: status, Stat: stat}, CheckFUSE), Fail, "/dev/fuse does not exist")
		// With mounting disabled the same problem is only a warning.
		st := control.Status{Mount: "", MountState: "disabled", Listen: "127.0.0.1:9"}
		expect(t, runOne(t, Options{Config: cfg, Status: statusOf(st), Stat: stat}, CheckFUSE), Warn, "mounting is disabled")
	})
	t.Run("not a device", func(t *testing.T) {
		stat := func(name string) (os.FileInfo, error) { return fileInfo{name: name, mode: 0o644}, nil }
		expect(t, runOne(t, Options{Config: cfg, Status: status, Stat: stat}, CheckFUSE), Fail, "not a character device")
	})
	t.Run("no permission", func(t *testing.T) {
		stat := func(name string) (os.FileInfo, error) {
			return fileInfo{name: name, mode: fs.ModeDevice | fs.ModeCharDevice | 0o600}, nil
		}
		access := func(string, uint32) error { return syscall.EACCES }
		expect(t, runOne(t, Options{Config: cfg, Status: status, Stat: stat, Access: access}, CheckFUSE), Fail, "not readable and writable")
	})
	t.Run("no fusermount3", func(t *testing.T) {
		stat := func(name string) (os.FileInfo, error) {
			return fileInfo{name: name, mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}, nil
		}
		access := func(string, uint32) error { return nil }
		look := func(string) (string, error) { return "", exec.ErrNotFound }
		expect(t, runOne(t, Options{Config: cfg, Status: status, Stat: stat, Access: access, LookPath: look}, CheckFUSE), Fail, "fusermount3 is not in PATH")
	})
}

func TestMount(t *testing.T) {
	cfg := baseConfig(t, "http://127.0.0.1:9")
	dir := t.TempDir()
	withMount := func(mount, state string) func(context.Context) (control.Status, error) {
		return statusOf(control.Status{Mount: mount, MountState: state, Listen: "127.0.0.1:9", PublicURL: cfg.PublicURL})
	}
	t.Run("disabled", func(t *testing.T) {
		expect(t, runOne(t, Options{Config: cfg, Status: withMount("", "disabled")}, CheckMount), Skip, "disabled")
	})
	t.Run("mounted", func(t *testing.T) {
		expect(t, runOne(t, Options{Config: cfg, Status: withMount(dir, "mounted")}, CheckMount), Pass, "is mounted")
	})
	t.Run("mount error", func(t *testing.T) {
		expect(t, runOne(t, Options{Config: cfg, Status: withMount(dir, "error: fusermount3: permission denied")}, CheckMount), Fail, "permission denied")
	})
	t.Run("not mounted yet", func(t *testing.T) {
		expect(t, runOne(t, Options{Config: cfg, Status: withMount(dir, "not mounted")}, CheckMount), Warn, "has not mounted")
	})
	t.Run("missing but creatable", func(t *testing.T) {
		expect(t, runOne(t, Options{Config: cfg, Status: withMount(filepath.Join(dir, "a", "OCM"), "not mounted")}, CheckMount), Pass, "creates it")
	})
	t.Run("a file", func(t *testing.T) {
		f := filepath.Join(dir, "file")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		expect(t, runOne(t, Options{Config: cfg, Status: withMount(f, "error: not a directory")}, CheckMount), Fail, "not a directory")
		expect(t, runOne(t, Options{Config: cfg, Status: withMount(filepath.Join(f, "OCM"), "not mounted")}, CheckMount), Fail, "cannot be created")
	})
	t.Run("daemon down, from the config", func(t *testing.T) {
		c := cfg
		c.Mount = dir
		expect(t, runOne(t, Options{Config: c, Status: daemonDown}, CheckMount), Pass, "exists and is writable")
	})
}

// TestStaleMount makes a real stale FUSE mount: a child process mounts a
// file system and is killed without unmounting, which leaves the kernel
// answering "transport endpoint is not connected".
func TestStaleMount(t *testing.T) {
	testenv.FUSE(t)

	dir := t.TempDir()
	mnt := filepath.Join(dir, "OCM")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "DOCTOR_TEST_FUSE_MOUNT="+mnt)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("fusermount3", "-u", "-z", mnt).Run()
	})
	ready := make(chan string, 1)
	go func() {
		buf := make([]byte, 256)
		n, _ := out.Read(buf)
		ready <- string(buf[:n])
	}()
	select {
	case s := <-ready:
		if !strings.Contains(s, "mounted") {
			cmd.Process.Kill()
			cmd.Wait()
			testenv.Need(t, "a FUSE mount", fmt.Errorf("helper said %q", s))
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the FUSE helper did not mount within 15s")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("expected a stale mount after killing the server, stat says %v", err)
	}
	cfg := baseConfig(t, "http://127.0.0.1:9")
	st := statusOf(control.Status{Mount: mnt, MountState: "mounted", Listen: "127.0.0.1:9"})
	res := runOne(t, Options{Config: cfg, Status: st}, CheckMount)
	expect(t, res, Fail, "stale FUSE mount")
	if !strings.Contains(res.Fix, "fusermount3 -u") {
		t.Fatalf("fix %q does not say how to unmount", res.Fix)
	}
}

func TestSecrets(t *testing.T) {
	cfg := baseConfig(t, "http://127.0.0.1:9")
	cases := []struct {
		name   string
		st     control.Status
		want   Outcome
		detail string
	}{
		{"keyring unlocked", control.Status{SecretsBackend: "keyring", KeyringUnlocked: true}, Pass, "unlocked"},
		{"keyring locked", control.Status{SecretsBackend: "keyring", SecretsReason: "collection locked"}, Fail, "locked"},
		{"file as configured", control.Status{SecretsBackend: "file", SecretsReason: `configured (secrets = "file")`}, Pass, "as configured"},
		{"file as fallback", control.Status{SecretsBackend: "file", SecretsReason: "no usable keyring: org.freedesktop.secrets not provided"}, Warn, "org.freedesktop.secrets"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.st.Listen = "127.0.0.1:9"
			expect(t, runOne(t, Options{Config: cfg, Status: statusOf(c.st)}, CheckSecrets), c.want, c.detail)
		})
	}
	t.Run("daemon down", func(t *testing.T) {
		expect(t, runOne(t, Options{Config: cfg, Status: daemonDown}, CheckSecrets), Skip, "not running")
	})
}

func TestEndpoint(t *testing.T) {
	cfg := baseConfig(t, "http://127.0.0.1:9")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	up := control.Status{Version: "v1", Listen: ln.Addr().String()}
	expect(t, runOne(t, Options{Config: cfg, Status: statusOf(up)}, CheckEndpoint), Pass, "listens on "+ln.Addr().String())

	closed := freeAddr(t)
	expect(t, runOne(t, Options{Config: cfg, Status: statusOf(control.Status{Listen: closed})}, CheckEndpoint), Fail, "nothing accepts connections")
	expect(t, runOne(t, Options{Config: cfg, Status: daemonDown}, CheckEndpoint), Fail, "does not answer")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// dialTo sends connections for host:port names to a loopback server, as
// DNS would for a public name.
func dialTo(names map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := names[addr]; ok {
			addr = to
		}
		return d.DialContext(ctx, network, addr)
	}
}

func discoveryHandler(endpoint string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/ocm" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"enabled":true,"apiVersion":"1.4.0","endPoint":%q,"resourceTypes":[{"name":"file","shareTypes":["user"],"protocols":{"webdav":"/dav/"}}]}`, endpoint)
	})
}

func TestPublicURL(t *testing.T) {
	t.Run("loopback, valid", func(t *testing.T) {
		srv := httptest.NewServer(nil)
		defer srv.Close()
		srv.Config.Handler = discoveryHandler(srv.URL + "/ocm")
		cfg := baseConfig(t, srv.URL)
		expect(t, runOne(t, Options{Config: cfg, Status: statusOf(control.Status{PublicURL: srv.URL, Listen: srv.Listener.Addr().String()})}, CheckPublicURL),
			Warn, "reachable from this machine only")
	})
	t.Run("public name, valid", func(t *testing.T) {
		ca := newCA(t)
		srv := ca.tlsServer(t, discoveryHandler("https://ocm.test/ocm"), "ocm.test", time.Now().Add(90*24*time.Hour))
		cfg := baseConfig(t, "https://ocm.test")
		o := Options{Config: cfg, Status: daemonDown, RootCAs: ca.pool, DialContext: dialTo(map[string]string{"ocm.test:443": srv.Listener.Addr().String()})}
		expect(t, runOne(t, o, CheckPublicURL), Pass, "valid discovery document")
		expect(t, runOne(t, o, CheckTLS), Pass, "valid until")
	})
	t.Run("endpoint of another server", func(t *testing.T) {
		srv := httptest.NewServer(discoveryHandler("https://elsewhere.example/ocm"))
		defer srv.Close()
		cfg := baseConfig(t, srv.URL)
		expect(t, runOne(t, Options{Config: cfg, Status: daemonDown}, CheckPublicURL), Fail, "names the endpoint https://elsewhere.example/ocm")
	})
	t.Run("not a discovery document", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<html>Welcome to nginx!</html>"))
		}))
		defer srv.Close()
		cfg := baseConfig(t, srv.URL)
		expect(t, runOne(t, Options{Config: cfg, Status: daemonDown}, CheckPublicURL), Fail, "not a valid OCM discovery document")
	})
	t.Run("404", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		cfg := baseConfig(t, srv.URL)
		expect(t, runOne(t, Options{Config: cfg, Status: daemonDown}, CheckPublicURL), Fail, "404")
	})
	t.Run("nothing listening", func(t *testing.T) {
		cfg := baseConfig(t, "http://"+freeAddr(t))
		res := runOne(t, Options{Config: cfg, Status: daemonDown}, CheckPublicURL)
		expect(t, res, Fail, "connection refused")
		if !strings.Contains(res.Fix, "start the daemon") {
			t.Fatalf("fix %q should say to start the daemon", res.Fix)
		}
	})
}

// testCA issues certificates for TLS servers on loopback.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ocm-agent test CA"},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// tlsServer starts an https server on loopback whose certificate names
// host and ends at notAfter.
func (ca *testCA) tlsServer(t *testing.T, h http.Handler, host string, notAfter time.Time) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    notAfter.Add(-120 * 24 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the checks refuse
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestTLS(t *testing.T) {
	ca := newCA(t)
	h := discoveryHandler("https://ocm.test/ocm")
	check := func(t *testing.T, srv *httptest.Server, pool *x509.CertPool) Result {
		cfg := baseConfig(t, "https://ocm.test")
		o := Options{Config: cfg, Status: daemonDown, RootCAs: pool,
			DialContext: dialTo(map[string]string{"ocm.test:443": srv.Listener.Addr().String()})}
		return runOne(t, o, CheckTLS)
	}
	t.Run("valid", func(t *testing.T) {
		expect(t, check(t, ca.tlsServer(t, h, "ocm.test", time.Now().Add(60*24*time.Hour)), ca.pool), Pass, "valid until")
	})
	t.Run("expiring soon", func(t *testing.T) {
		expect(t, check(t, ca.tlsServer(t, h, "ocm.test", time.Now().Add(5*24*time.Hour)), ca.pool), Warn, "expires in")
	})
	t.Run("expired", func(t *testing.T) {
		notAfter := time.Now().Add(-24 * time.Hour)
		res := check(t, ca.tlsServer(t, h, "ocm.test", notAfter), ca.pool)
		expect(t, res, Fail, "expired on "+notAfter.UTC().Format(time.DateOnly))
		// The public URL check fails too, as a peer's would.
		cfg := baseConfig(t, "https://ocm.test")
		srv := ca.tlsServer(t, h, "ocm.test", notAfter)
		o := Options{Config: cfg, Status: daemonDown, RootCAs: ca.pool, DialContext: dialTo(map[string]string{"ocm.test:443": srv.Listener.Addr().String()})}
		expect(t, runOne(t, o, CheckPublicURL), Fail, "expired")
	})
	t.Run("other name", func(t *testing.T) {
		expect(t, check(t, ca.tlsServer(t, h, "other.test", time.Now().Add(60*24*time.Hour)), ca.pool), Fail, "not valid for ocm.test")
	})
	t.Run("unknown authority", func(t *testing.T) {
		expect(t, check(t, ca.tlsServer(t, h, "ocm.test", time.Now().Add(60*24*time.Hour)), x509.NewCertPool()), Fail, "not signed by an authority")
	})
	t.Run("plain http", func(t *testing.T) {
		cfg := baseConfig(t, "http://127.0.0.1:9")
		expect(t, runOne(t, Options{Config: cfg, Status: daemonDown}, CheckTLS), Skip, "plain http on loopback")
		cfg.AllowInsecurePeers = true
		cfg.PublicURL = "http://ocm.lab.test"
		expect(t, runOne(t, Options{Config: cfg, Status: daemonDown}, CheckTLS), Warn, "plain http")
	})
}

// dnsServer answers SRV questions from records on a loopback UDP port.
func dnsServer(t *testing.T, records map[string][]dns.RR) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		rrs, ok := records[strings.ToLower(q.Question[0].Name)]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		m.Answer = rrs
		w.WriteMsg(m)
	})}
	testenv.ServeDNS(t, srv)
	return pc.LocalAddr().String()
}

func srvRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func TestSRV(t *testing.T) {
	server := dnsServer(t, map[string][]dns.RR{
		"_ocm._tcp.here.test.":      {srvRR(t, "_ocm._tcp.here.test. 60 IN SRV 10 10 443 here.test.")},
		"_ocm._tcp.elsewhere.test.": {srvRR(t, "_ocm._tcp.elsewhere.test. 60 IN SRV 10 10 443 cloud.example.org.")},
		"_ocm._tcp.port.test.":      {srvRR(t, "_ocm._tcp.port.test. 60 IN SRV 10 10 8443 port.test.")},
	})
	run := func(publicURL, dnsAddr string) Result {
		cfg := baseConfig(t, publicURL)
		return runOne(t, Options{Config: cfg, Status: daemonDown, DNSServer: dnsAddr, Timeout: 2 * time.Second}, CheckSRV)
	}
	expect(t, run("https://here.test", server), Pass, "points here (here.test:443)")
	res := run("https://elsewhere.test", server)
	expect(t, res, Fail, "points to cloud.example.org:443")
	if !strings.Contains(res.Fix, "_ocm._tcp.elsewhere.test. 3600 IN SRV 10 10 443 elsewhere.test.") {
		t.Fatalf("fix %q does not give the record to publish", res.Fix)
	}
	expect(t, run("https://port.test", server), Fail, "port.test:8443")
	expect(t, run("https://port.test:8443", server), Pass, "points here")
	expect(t, run("https://none.test", server), Skip, "no _ocm._tcp.none.test. record")
	expect(t, run("http://127.0.0.1:9", server), Skip, "not a DNS domain")

	// A DNS server that does not answer: a closed UDP port.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	expect(t, run("https://here.test", dead), Warn, "cannot look up")

	// Without a server, /etc/resolv.conf (here: a missing file) names them.
	cfg := baseConfig(t, "https://here.test")
	res = runOne(t, Options{Config: cfg, Status: daemonDown, ResolvConf: filepath.Join(t.TempDir(), "resolv.conf")}, CheckSRV)
	expect(t, res, Warn, "resolv.conf")
}

func TestClock(t *testing.T) {
	at := func(d time.Duration) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", time.Now().Add(d).UTC().Format(http.TimeFormat))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	cfg := baseConfig(t, "http://127.0.0.1:9")
	run := func(peer string) Result {
		return runOne(t, Options{Config: cfg, Status: daemonDown, ClockPeer: peer}, CheckClock)
	}
	expect(t, run(at(0).URL), Pass, "agrees")
	expect(t, run(at(-2*time.Minute).URL), Warn, "differs")
	expect(t, run(at(10*time.Minute).URL), Fail, "more than max-clock-skew")
	expect(t, run("http://"+freeAddr(t)), Warn, "cannot ask")

	// Without a peer, an answer from this machine is no reference.
	srv := httptest.NewServer(nil)
	defer srv.Close()
	srv.Config.Handler = discoveryHandler(srv.URL + "/ocm")
	c := baseConfig(t, srv.URL)
	expect(t, runOne(t, Options{Config: c, Status: daemonDown}, CheckClock), Skip, "served from this machine")
	// Seen as another machine, its Date header is compared.
	notLocal := func(net.IP) bool { return false }
	expect(t, runOne(t, Options{Config: c, Status: daemonDown, LocalAddr: notLocal}, CheckClock), Pass, "agrees with the public URL")
}

// stubSystemctl puts a systemctl in a fresh PATH that answers is-active
// and is-enabled as given. A real systemd user manager cannot run in the
// test environment (no systemd as PID 1), so this stand-in is the only
// way to exercise the states; the real command is still run through exec.
func stubSystemctl(t *testing.T, active string, activeCode int, enabled string) {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
case "$2" in
is-active) echo %q; exit %d ;;
is-enabled) echo %q; exit 0 ;;
esac
exit 1
`, active, activeCode, enabled)
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
}

func TestSystemd(t *testing.T) {
	cfg := baseConfig(t, "http://127.0.0.1:9")
	up := statusOf(control.Status{Listen: "127.0.0.1:9"})
	run := func(status func(context.Context) (control.Status, error)) Result {
		return runOne(t, Options{Config: cfg, Status: status}, CheckSystemd)
	}
	t.Run("active", func(t *testing.T) {
		stubSystemctl(t, "active", 0, "enabled")
		expect(t, run(up), Pass, "active and enabled")
	})
	t.Run("active, not enabled", func(t *testing.T) {
		stubSystemctl(t, "active", 0, "disabled")
		expect(t, run(up), Warn, "not enabled")
	})
	t.Run("failed", func(t *testing.T) {
		stubSystemctl(t, "failed", 3, "enabled")
		expect(t, run(daemonDown), Fail, "has failed")
	})
	t.Run("inactive, daemon elsewhere", func(t *testing.T) {
		stubSystemctl(t, "inactive", 3, "disabled")
		expect(t, run(up), Warn, "not as the systemd user service")
	})
	t.Run("inactive, nothing runs", func(t *testing.T) {
		stubSystemctl(t, "inactive", 3, "disabled")
		expect(t, run(daemonDown), Fail, "inactive")
	})
	t.Run("no systemctl", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		expect(t, run(up), Warn, "not in PATH")
	})
	t.Run("no user manager", func(t *testing.T) {
		dir := t.TempDir()
		script := "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n"
		if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", dir)
		expect(t, run(up), Warn, "Failed to connect to bus")
	})
}

func TestConfigCheck(t *testing.T) {
	cfg := baseConfig(t, "http://127.0.0.1:9")
	// Served over http: the address carries the scheme, or Nextcloud
	// would put https:// in front of it and never reach the agent.
	expect(t, runOne(t, Options{Config: cfg, ConfigSource: "/x/config.toml", Status: daemonDown}, CheckConfig), Pass, "alice@http://127.0.0.1:9")
	bad := errors.New("unknown key(s) lisen")
	expect(t, runOne(t, Options{Config: cfg, ConfigSource: "/x/config.toml", ConfigErr: bad, Status: daemonDown}, CheckConfig), Fail, "lisen")
}

func TestReportOutput(t *testing.T) {
	cfg := baseConfig(t, "http://"+freeAddr(t))
	rep := Run(context.Background(), Options{Config: cfg, Status: daemonDown, Timeout: 2 * time.Second})
	if len(rep.Checks) != len(Checks()) {
		t.Fatalf("%d results for %d checks", len(rep.Checks), len(Checks()))
	}
	for i, id := range Checks() {
		if rep.Checks[i].ID != id || rep.Checks[i].Name == "" {
			t.Fatalf("result %d is %+v, want check %s", i, rep.Checks[i], id)
		}
	}
	if rep.Failed < 2 {
		t.Fatalf("daemon down and public URL unreachable should fail at least 2 checks: %+v", rep)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{"FAIL  Endpoint", "fix: start it: 'systemctl --user start ocm-agent'", fmt.Sprintf("%d failed", rep.Failed)} {
		if !strings.Contains(text, want) {
			t.Fatalf("text output lacks %q:\n%s", want, text)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Failed != rep.Failed || len(back.Checks) != len(rep.Checks) {
		t.Fatalf("JSON round trip: %v %+v", err, back)
	}
	// Text from the network cannot move the cursor.
	r := Report{Checks: []Result{{Name: "X", Outcome: Fail, Detail: "a\x1b[2Jb", Fix: "c\rd"}}}
	buf.Reset()
	r.WriteText(&buf)
	if strings.ContainsAny(buf.String(), "\x1b\r") {
		t.Fatalf("control characters reached the output: %q", buf.String())
	}
}
