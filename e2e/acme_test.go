package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// pebbleModule is the ACME test server the agent is checked against,
// built through the module proxy at a pinned version.
const pebbleModule = "github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3"

// acmeName is the agent's public name: the test's DNS server resolves it
// to 127.0.0.1 for Pebble, the test's dialer for the peer.
const acmeName = "agent.test"

var (
	pebbleOnce sync.Once
	pebbleBin  string
	pebbleErr  error
)

// needPart fails under CI (where every part must be there) and skips
// elsewhere.
func needPart(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is needed: %v", what, err)
	}
	t.Skipf("%s is not available: %v", what, err)
}

func buildPebble(t *testing.T) string {
	t.Helper()
	pebbleOnce.Do(func() {
		dir := filepath.Dir(agentBin)
		cmd := exec.Command("go", "install", pebbleModule)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			pebbleErr = fmt.Errorf("go install %s: %v\n%s", pebbleModule, err, out)
			return
		}
		pebbleBin = filepath.Join(dir, "pebble")
	})
	needPart(t, "Pebble ("+pebbleModule+")", pebbleErr)
	return pebbleBin
}

// apiCert is a CA of the test's own and a certificate for 127.0.0.1 it
// signed, for Pebble's ACME and management APIs.
type apiCert struct{ caFile, certFile, keyFile string }

func newAPICert(t *testing.T) apiCert {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test API root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	c := apiCert{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	for path, blk := range map[string]*pem.Block{
		c.caFile: {Type: "CERTIFICATE", Bytes: caDER}, c.certFile: {Type: "CERTIFICATE", Bytes: der},
		c.keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c apiCert) client(t *testing.T) *http.Client {
	t.Helper()
	b, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// startNameServer answers A queries for acmeName with 127.0.0.1, and
// nothing else, over TCP (as Pebble asks) and UDP on one loopback port.
func startNameServer(t *testing.T) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qu := range q.Question {
			if !strings.EqualFold(strings.TrimSuffix(qu.Name, "."), acmeName) {
				m.SetRcode(q, dns.RcodeNameError)
				continue
			}
			if qu.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qu.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
					A: net.ParseIP("127.0.0.1").To4()})
			}
		}
		w.WriteMsg(m)
	})
	var ln net.Listener
	var pc net.PacketConn
	for i := 0; i < 20 && pc == nil; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if p, err := net.ListenPacket("udp", l.Addr().String()); err == nil {
			ln, pc = l, p
		} else {
			l.Close()
		}
	}
	if pc == nil {
		t.Fatal("no loopback port free for both TCP and UDP")
	}
	for _, srv := range []*dns.Server{{Listener: ln, Handler: handler}, {PacketConn: pc, Handler: handler}} {
		testenv.ServeDNS(t, srv)
	}
	return ln.Addr().String()
}

// pebbleProc is one run of Pebble on loopback.
type pebbleProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *testenv.Buffer
	dirURL string
	mgmt   string
	api    apiCert
}

// startPebble runs Pebble issuing certificates valid for validity seconds,
// validating HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort of whatever
// dnsAddr resolves the name to. Validation is real: no always-valid mode,
// no reuse of earlier authorizations.
func startPebble(t *testing.T, api apiCert, dnsAddr string, validity, httpPort, tlsPort int) *pebbleProc {
	t.Helper()
	bin := buildPebble(t)
	dir := t.TempDir()
	p := &pebbleProc{t: t, log: &testenv.Buffer{}, api: api}
	listen, mgmt := testenv.FreeAddr(t), testenv.FreeAddr(t)
	p.dirURL, p.mgmt = "https://"+listen+"/dir", "https://"+mgmt
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": api.certFile, "privateKey": api.keyFile,
		"httpPort": httpPort, "tlsPort": tlsPort, "ocspResponderURL": "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "test", "validityPeriod": validity}},
	}}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "-config", cfgPath, "-dnsserver", dnsAddr)
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	c := api.client(t)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(p.dirURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by the deadline
	}
	t.Fatalf("Pebble did not answer within 20 s; log:\n%s", p.log)
	return nil
}

func (p *pebbleProc) stop() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// orders counts the new-order requests Pebble received.
func (p *pebbleProc) orders() int {
	return strings.Count(p.log.String(), "POST /order-plz -> calling handler()")
}

// lastIssued is the serial (hex) of the last certificate Pebble issued.
func (p *pebbleProc) lastIssued() string {
	const mark = "Issued certificate serial "
	l := p.log.String()
	i := strings.LastIndex(l, mark)
	if i < 0 {
		return ""
	}
	serial, _, _ := strings.Cut(l[i+len(mark):], " ")
	return serial
}

// roots is the root Pebble issues under, from its management API.
func (p *pebbleProc) roots() *x509.CertPool {
	p.t.Helper()
	resp, err := p.api.client(p.t).Get(p.mgmt + "/roots/0")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if resp.StatusCode != 200 || !pool.AppendCertsFromPEM(b) {
		p.t.Fatalf("Pebble's root: %s %q", resp.Status, b)
	}
	return pool
}

// useACME makes a serve https://agent.test:<port> with a certificate from p.
func (a *agentProc) useACME(p *pebbleProc, extra ...string) {
	_, port, _ := net.SplitHostPort(a.listen)
	a.args = append(a.args, "--acme", "--acme-ca", p.dirURL, "--acme-ca-root", p.api.caFile,
		"--public-url", "https://"+acmeName+":"+port, "--allow-root")
	a.args = append(a.args, extra...)
}

func (a *agentProc) status() control.Status {
	a.t.Helper()
	var st control.Status
	if err := json.Unmarshal([]byte(a.mustCLI("status", "--json")), &st); err != nil {
		a.t.Fatal(err)
	}
	return st
}

// waitStatus polls the status until ok says so, for at most limit.
func (a *agentProc) waitStatus(what string, limit time.Duration, ok func(control.Status) bool, more ...fmt.Stringer) control.Status {
	a.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := a.status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			var extra string
			for _, m := range more {
				extra += "\n" + m.String()
			}
			a.t.Fatalf("%s: not within %s; status %+v\nagent log:\n%s%s", what, limit, st, a.log, extra)
		}
		time.Sleep(200 * time.Millisecond) // polling, bounded by the deadline
	}
}

// stopGracefully ends the daemon with SIGTERM, as systemd does.
func (a *agentProc) stopGracefully() {
	a.t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		a.cmd.Process.Kill()
		a.t.Fatalf("agent did not stop on SIGTERM; log:\n%s", a.log)
	}
}

// servedCert is the certificate the agent presents for acmeName; with
// roots it must verify.
func servedCert(t *testing.T, listen string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	cfg := &tls.Config{ServerName: acmeName, RootCAs: roots, InsecureSkipVerify: roots == nil} //nolint:gosec // compared by serial
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", listen, cfg)
	if err != nil {
		t.Fatalf("TLS handshake with the agent: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// peerClient trusts only roots and reaches acmeName at loopback.
func peerClient(roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}}
}

func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v: others may read it", path, fi.Mode().Perm())
		}
		n++
		return nil
	})
	if err != nil || n < 3 {
		t.Fatalf("ACME state in %s: %v (%d entries)", dir, err, n)
	}
}

// TestACMEObtainServeRestart: the agent gets a certificate from a real
// ACME server (TLS-ALPN-01 validated against its own listener), a peer
// trusting only that CA posts a share over HTTPS, the state is private,
// and a restart serves the stored certificate without a new order.
func TestACMEObtainServeRestart(t *testing.T) {
	api := newAPICert(t)
	dnsAddr := startNameServer(t)
	a := newAgent(t)
	_, port, _ := net.SplitHostPort(a.listen)
	tlsPort, _ := strconv.Atoi(port)
	closed, _ := strconv.Atoi(strings.Split(testenv.FreeAddr(t), ":")[1])
	p := startPebble(t, api, dnsAddr, 90*24*3600, closed, tlsPort)
	a.useACME(p)
	a.start()
	st := a.waitStatus("certificate obtained", 90*time.Second, func(s control.Status) bool { return !s.CertNotAfter.IsZero() }, p.log)
	if st.CertName != acmeName || st.CertError != "" || time.Until(st.CertNotAfter) < 80*24*time.Hour {
		t.Fatalf("status after obtaining: %+v", st)
	}
	roots := p.roots()
	first := servedCert(t, a.listen, roots)

	peer := keylessPeer(t)
	base := "https://" + acmeName + ":" + port
	resp, err := peerClient(roots).Post(base+"/ocm/shares", "application/json",
		bytes.NewReader(shareBody("bob@"+acmeName+":"+port, peer, "acme-1")))
	if err != nil {
		t.Fatalf("POST over HTTPS with the CA's root: %v\nagent log:\n%s", err, a.log)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /ocm/shares over HTTPS: %s", resp.Status)
	}
	checkPrivate(t, filepath.Join(a.dir, "state", "acme"))

	orders := p.orders()
	if orders != 1 {
		t.Fatalf("Pebble saw %d orders for one certificate", orders)
	}
	a.stopGracefully()
	a.start()
	a.waitStatus("stored certificate loaded", 30*time.Second, func(s control.Status) bool { return !s.CertNotAfter.IsZero() })
	again := servedCert(t, a.listen, roots)
	if again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("after a restart the agent serves serial %x, not the stored %x", again.SerialNumber, first.SerialNumber)
	}
	if !strings.Contains(a.log.String(), "serving the stored certificate") {
		t.Errorf("the log does not say the stored certificate is used:\n%s", a.log)
	}
	if n := p.orders(); n != orders {
		t.Fatalf("the restart asked Pebble for a new certificate (%d orders, was %d)\n%s", n, orders, p.log)
	}
}

// TestACMERenewsAndSurvivesCAOutage: with certificates valid for 30 seconds,
// the agent renews before expiry (HTTP-01 or TLS-ALPN-01, both real); with
// the CA stopped it keeps serving its last certificate and reports the
// failure in status and log.
func TestACMERenewsAndSurvivesCAOutage(t *testing.T) {
	api := newAPICert(t)
	dnsAddr := startNameServer(t)
	a := newAgent(t)
	_, port, _ := net.SplitHostPort(a.listen)
	httpAddr := testenv.FreeAddr(t)
	tlsPort, _ := strconv.Atoi(port)
	httpPort, _ := strconv.Atoi(strings.Split(httpAddr, ":")[1])
	p := startPebble(t, api, dnsAddr, 30, httpPort, tlsPort)
	a.useACME(p, "--acme-http-listen", httpAddr)
	a.start()
	st := a.waitStatus("certificate obtained", 90*time.Second, func(s control.Status) bool { return !s.CertNotAfter.IsZero() }, p.log)
	roots := p.roots()
	first := servedCert(t, a.listen, roots)
	// Port 80's listener sends plain http visitors to the https URL.
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + httpAddr + "/.well-known/ocm?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://" + acmeName + ":" + port + "/.well-known/ocm?x=1"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("plain http: %s to %q, want 301 to %q", resp.Status, resp.Header.Get("Location"), want)
	}
	if first.NotAfter.Sub(first.NotBefore) > 2*time.Minute {
		t.Fatalf("Pebble issued a certificate valid %s, not short-lived", first.NotAfter.Sub(first.NotBefore))
	}

	// Renewal: a new certificate is served before the first one expires.
	deadline := first.NotAfter.Add(30 * time.Second)
	var renewed *x509.Certificate
	for renewed == nil {
		if c := servedCert(t, a.listen, roots); c.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = c
		} else if time.Now().After(deadline) {
			t.Fatalf("no renewal by %s; status %+v\nagent log:\n%s\npebble log:\n%s", deadline, a.status(), a.log, p.log)
		}
		time.Sleep(200 * time.Millisecond) // polling, bounded by the deadline
	}
	if p.orders() < 2 {
		t.Fatalf("a new certificate without a new order?\n%s", p.log)
	}
	st = a.waitStatus("renewed certificate in status", 10*time.Second, func(s control.Status) bool { return !s.CertNotAfter.Before(renewed.NotAfter) })
	if st.CertError != "" {
		t.Errorf("status after renewal still has an error: %q", st.CertError)
	}

	// CA outage: the next renewal fails; the agent says so and keeps
	// serving the last certificate the CA issued.
	p.stop()
	st = a.waitStatus("renewal failure reported", 2*time.Minute, func(s control.Status) bool { return s.CertError != "" })
	got := servedCert(t, a.listen, nil)
	if last := p.lastIssued(); hex.EncodeToString(got.SerialNumber.Bytes()) != last || !got.NotAfter.Equal(st.CertNotAfter) {
		t.Fatalf("with the CA down the agent serves serial %x (until %s), not the last certificate issued, %s (status: until %s)",
			got.SerialNumber, got.NotAfter, last, st.CertNotAfter)
	}
	if !strings.Contains(a.log.String(), "still serving the last one") {
		t.Errorf("the log does not say the last certificate is still served:\n%s", a.log)
	}
	out := a.mustCLI("status")
	if !strings.Contains(out, "Certificate error:") || !strings.Contains(out, acmeName) {
		t.Errorf("'ocm-agent status' does not show the certificate and its error:\n%s", out)
	}
	t.Logf("status with the CA down:\n%s", out)
}

// TestServeRefusesRootWhenExposed: as root, serve with acme stops at once
// and says how to do without root, unless allow-root.
func TestServeRefusesRootWhenExposed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root is refused; CI runs this as root")
	}
	a := newAgent(t, "--acme", "--public-url", "https://"+acmeName, "--acme-ca", "https://127.0.0.1:9/dir")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBin, a.args...)
	cmd.Env = a.env()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to run as root") || !strings.Contains(string(out), "cap_net_bind_service") {
		t.Fatalf("serve --acme as root: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "state")); err == nil {
		t.Error("the refused agent created its state directory")
	}
}
