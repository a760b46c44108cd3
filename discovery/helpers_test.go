package discovery

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// fakeClock drives cache expiry and rate limits.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testCert is one self-signed certificate for every name the tests use.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ocm-agent discovery tests"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"*.test", "*.vanity.test", "localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
})

func testRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return pool
}

// hits counts requests per path.
type hits struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *hits) add(path string) {
	h.mu.Lock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[path]++
	h.mu.Unlock()
}

func (h *hits) get(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[path]
}

func (h *hits) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, v := range h.n {
		n += v
	}
	return n
}

// peer is a real HTTP(S) server on loopback that counts its requests.
type peer struct {
	*httptest.Server
	hits *hits
}

// host is host:port of the server.
func (p *peer) host() string {
	return strings.TrimPrefix(strings.TrimPrefix(p.URL, "https://"), "http://")
}

func (p *peer) port() string {
	_, port, _ := net.SplitHostPort(p.host())
	return port
}

// startPeer starts a server on addr ("127.0.0.1:0" when empty), with TLS
// unless plain.
func startPeer(t *testing.T, addr string, plain bool, h http.Handler) *peer {
	t.Helper()
	p := &peer{hits: &hits{}}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.add(r.URL.Path)
		h.ServeHTTP(w, r)
	}))
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		testenv.Need(t, "listening on "+addr, err)
		_ = p.Listener.Close()
		p.Listener = l
	}
	p.Config.ErrorLog = nil
	if plain {
		p.Start()
	} else {
		cert, err := testCert()
		if err != nil {
			t.Fatal(err)
		}
		p.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		p.StartTLS()
	}
	t.Cleanup(p.Close)
	return p
}

// serveDoc answers GET path with body, {{BASE}} replaced by the origin
// the request was made to, and extra headers.
func serveDoc(body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, strings.ReplaceAll(body, "{{BASE}}", scheme+"://"+r.Host))
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// routes maps exact paths to handlers; everything else is 404.
func routes(m map[string]http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := m[r.URL.Path]; ok {
			h.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

// dnsZone is a real DNS server on loopback, serving A, AAAA and SRV
// records; names it does not know get NXDOMAIN.
type dnsZone struct {
	mu      sync.Mutex
	addrs   map[string][]netip.Addr
	srvs    map[string][]*dns.SRV
	queries map[string]int
	Addr    string
}

func startDNS(t *testing.T) *dnsZone {
	t.Helper()
	z := &dnsZone{addrs: map[string][]netip.Addr{}, srvs: map[string][]*dns.SRV{}, queries: map[string]int{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	testenv.Need(t, "UDP on loopback", err)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve)}
	testenv.ServeDNS(t, srv)
	z.Addr = pc.LocalAddr().String()
	return z
}

// A adds address records for name.
func (z *dnsZone) A(name string, addrs ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, a := range addrs {
		z.addrs[dns.Fqdn(name)] = append(z.addrs[dns.Fqdn(name)], netip.MustParseAddr(a))
	}
}

// SRV adds an _ocm._tcp record for domain.
func (z *dnsZone) SRV(domain string, prio, weight uint16, target string, port int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	name := dns.Fqdn("_ocm._tcp." + domain)
	z.srvs[name] = append(z.srvs[name], &dns.SRV{
		Hdr:      dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60},
		Priority: prio, Weight: weight, Port: uint16(port), Target: dns.Fqdn(target),
	})
}

func (z *dnsZone) count(name string, qtype uint16) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[dns.TypeToString[qtype]+" "+dns.Fqdn(name)]
}

func (z *dnsZone) serve(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	z.mu.Lock()
	for _, qu := range q.Question {
		name := strings.ToLower(qu.Name)
		z.queries[dns.TypeToString[qu.Qtype]+" "+name]++
		addrs, knownA := z.addrs[name]
		srvs, knownSRV := z.srvs[name]
		if !knownA && !knownSRV {
			m.Rcode = dns.RcodeNameError
			continue
		}
		hdr := dns.RR_Header{Name: qu.Name, Class: dns.ClassINET, Ttl: 60}
		switch qu.Qtype {
		case dns.TypeA:
			for _, a := range addrs {
				if a.Is4() {
					h := hdr
					h.Rrtype = dns.TypeA
					m.Answer = append(m.Answer, &dns.A{Hdr: h, A: a.AsSlice()})
				}
			}
		case dns.TypeAAAA:
			for _, a := range addrs {
				if a.Is6() {
					h := hdr
					h.Rrtype = dns.TypeAAAA
					m.Answer = append(m.Answer, &dns.AAAA{Hdr: h, AAAA: a.AsSlice()})
				}
			}
		case dns.TypeSRV:
			for _, s := range srvs {
				m.Answer = append(m.Answer, s)
			}
		}
	}
	z.mu.Unlock()
	_ = w.WriteMsg(m)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// safeOptions is the production setting pointed at the test rig: https
// only, loopback not allowed, the test DNS server, the test CA.
func safeOptions(t *testing.T, z *dnsZone, clk *fakeClock) Options {
	t.Helper()
	return Options{
		RootCAs:     testRoots(t),
		DNSServer:   z.Addr,
		Now:         clk.Now,
		Logger:      quiet,
		PathTimeout: 3 * time.Second,
	}
}

// loopbackOptions allows 127.0.0.1 (where the test servers run) without
// allowing plain http.
func loopbackOptions(t *testing.T, z *dnsZone, clk *fakeClock) Options {
	o := safeOptions(t, z, clk)
	o.AllowedNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	return o
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}
