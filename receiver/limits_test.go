package receiver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/ocm"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t *testing.T, l Limits) (*Limiter, *clock) {
	t.Helper()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	if l.Now == nil {
		l.Now = c.now
	}
	l.Logger = slog.New(slog.DiscardHandler)
	lim, err := NewLimiter(l)
	if err != nil {
		t.Fatal(err)
	}
	return lim, c
}

func do(h http.Handler, method, path, remote string, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = remote
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func retryAfter(t *testing.T, w *httptest.ResponseRecorder) int {
	t.Helper()
	n, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("429 without a valid Retry-After: %q", w.Header().Get("Retry-After"))
	}
	return n
}

var ok201 = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusCreated)
})

func TestLimiterRatePerClient(t *testing.T) {
	lim, clk := newLimiter(t, Limits{Rate: 2, Burst: 3})
	h := lim.Wrap(ok201)
	for i := 0; i < 3; i++ {
		if w := do(h, "POST", "/ocm/shares", "192.0.2.1:1000", "{}"); w.Code != 201 {
			t.Fatalf("request %d within the burst: %d", i, w.Code)
		}
	}
	w := do(h, "POST", "/ocm/shares", "192.0.2.1:1001", "{}")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("request beyond the burst: %d", w.Code)
	}
	if n := retryAfter(t, w); n != 1 {
		t.Errorf("Retry-After %d, want 1 at 2 requests/s", n)
	}
	if !strings.Contains(w.Body.String(), `"message"`) || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("429 body is not an OCM error: %s", w.Body)
	}
	// Every limited route shares the client's bucket.
	if w := do(h, "POST", "/ocm/notifications", "192.0.2.1:1000", "{}"); w.Code != 429 {
		t.Errorf("notifications beyond the burst: %d", w.Code)
	}
	// Others are not affected, nor are the cached documents.
	if w := do(h, "POST", "/ocm/shares", "192.0.2.2:1000", "{}"); w.Code != 201 {
		t.Errorf("another client: %d", w.Code)
	}
	for i := 0; i < 50; i++ {
		if w := do(h, "GET", "/.well-known/ocm", "192.0.2.1:1000", ""); w.Code != 201 {
			t.Fatalf("discovery is rate limited: %d", w.Code)
		}
	}
	clk.add(time.Second)
	if w := do(h, "POST", "/ocm/shares", "192.0.2.1:1000", "{}"); w.Code != 201 {
		t.Errorf("after the bucket refilled: %d", w.Code)
	}
	if r := lim.Refused(); r.Rate != 2 {
		t.Errorf("refusals counted: %+v", r)
	}
}

func TestLimiterRetryAfterReflectsRate(t *testing.T) {
	lim, _ := newLimiter(t, Limits{Rate: 0.1, Burst: 1})
	h := lim.Wrap(ok201)
	do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{}")
	w := do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{}")
	if w.Code != 429 {
		t.Fatalf("status %d", w.Code)
	}
	if n := retryAfter(t, w); n < 9 || n > 10 {
		t.Errorf("Retry-After %d, want 10 at one request per 10 s", n)
	}
}

func TestLimiterXForwardedFor(t *testing.T) {
	lim, _ := newLimiter(t, Limits{Rate: 1, Burst: 2, TrustedProxies: []string{"10.0.0.1"}})
	h := lim.Wrap(ok201)
	// An untrusted client cannot escape its bucket with made-up headers.
	codes := ""
	for i := 0; i < 4; i++ {
		w := do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{}", "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		codes += strconv.Itoa(w.Code) + " "
	}
	if codes != "201 201 429 429 " {
		t.Errorf("untrusted client with X-Forwarded-For: %s", codes)
	}
	// Behind the trusted proxy, each forwarded client has its own bucket.
	for i := 0; i < 10; i++ {
		w := do(h, "POST", "/ocm/shares", "10.0.0.1:1", "{}", "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		if w.Code != 201 {
			t.Fatalf("forwarded client %d: %d", i, w.Code)
		}
	}
	codes = ""
	for i := 0; i < 3; i++ {
		w := do(h, "POST", "/ocm/shares", "10.0.0.1:1", "{}", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d, 198.51.100.200", i))
		codes += strconv.Itoa(w.Code) + " "
	}
	if codes != "201 201 429 " {
		t.Errorf("one forwarded client spoofing left-hand entries: %s", codes)
	}
}

func TestLimiterConcurrency(t *testing.T) {
	lim, _ := newLimiter(t, Limits{Rate: 1000, Burst: 1000, MaxConcurrent: 2})
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	h := lim.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ocm/shares" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(201)
	}))
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			do(h, "POST", "/ocm/shares", fmt.Sprintf("192.0.2.%d:1", i+1), "{}")
		}(i)
	}
	<-entered
	<-entered
	w := do(h, "POST", "/ocm/notifications", "192.0.2.9:1", "{}")
	if w.Code != 429 {
		t.Errorf("third request with two slots busy: %d", w.Code)
	}
	retryAfter(t, w)
	if w := do(h, "GET", "/ocm/jwks", "192.0.2.9:1", ""); w.Code != 201 {
		t.Errorf("JWKS while busy: %d", w.Code)
	}
	close(release)
	wg.Wait()
	if w := do(h, "POST", "/ocm/notifications", "192.0.2.9:1", "{}"); w.Code != 201 {
		t.Errorf("after the slots were released: %d", w.Code)
	}
	if r := lim.Refused(); r.Busy != 1 {
		t.Errorf("refusals: %+v", r)
	}
}

// TestLimiterSlowBodyHoldsNoSlot: a client that sends headers and then
// trickles (or never finishes) its body does not take a concurrency slot.
func TestLimiterSlowBodyHoldsNoSlot(t *testing.T) {
	lim, _ := newLimiter(t, Limits{Rate: 1000, Burst: 1000, MaxConcurrent: 1, Now: time.Now})
	srv := httptest.NewServer(lim.Wrap(ok201))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /ocm/shares HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n{\"shareWith\":")
	// The server says 100 Continue when it starts reading the body.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("the server answered %q (%v), want 100 Continue", line, err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 3; i++ {
		resp, err := client.Post(srv.URL+"/ocm/shares", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("well-behaved request %d while a body trickles: %d", i, resp.StatusCode)
		}
	}
}

func TestLimiterFailures(t *testing.T) {
	lim, clk := newLimiter(t, Limits{Rate: 1000, Burst: 1000})
	status := 400
	h := lim.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
	}))
	guess := func(remote string) int {
		return do(h, "POST", "/ocm/invite-accepted", remote, `{"token":"x"}`).Code
	}
	for i := 0; i < 10; i++ {
		if c := guess("192.0.2.1:1"); c != 400 {
			t.Fatalf("guess %d: %d", i, c)
		}
	}
	w := do(h, "POST", "/ocm/invite-accepted", "192.0.2.1:1", `{}`)
	if w.Code != 429 {
		t.Fatalf("guess after the failure burst: %d", w.Code)
	}
	if n := retryAfter(t, w); n < 29 || n > 30 {
		t.Errorf("Retry-After %d, want 30", n)
	}
	// Other routes and other clients are not affected.
	if w := do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{}"); w.Code != 400 {
		t.Errorf("shares from the guessing client: %d", w.Code)
	}
	if c := guess("192.0.2.2:1"); c != 400 {
		t.Errorf("another client: %d", c)
	}
	// One failure is forgiven every 30 s.
	clk.add(30 * time.Second)
	if c := guess("192.0.2.1:1"); c != 400 {
		t.Errorf("after 30 s: %d", c)
	}
	if c := guess("192.0.2.1:1"); c != 429 {
		t.Errorf("second guess after 30 s: %d", c)
	}
	// Successes do not count.
	status = 200
	for i := 0; i < 30; i++ {
		if c := guess("192.0.2.3:1"); c != 200 {
			t.Fatalf("successful acceptance %d: %d", i, c)
		}
	}
	// The hook counts failures established elsewhere.
	for i := 0; i < 10; i++ {
		lim.NoteFailure("/ocm/invite-accepted", netip.MustParseAddr("192.0.2.4"))
	}
	if c := guess("192.0.2.4:1"); c != 429 {
		t.Errorf("after NoteFailure: %d", c)
	}
	if r := lim.Refused(); r.Failures != 3 {
		t.Errorf("refusals %+v", r)
	}
}

func TestLimiterRejectsBadConfig(t *testing.T) {
	if _, err := NewLimiter(Limits{TrustedProxies: []string{"proxy.example"}}); err == nil {
		t.Error("a host name as trusted proxy was accepted")
	}
	if _, err := NewLimiter(Limits{Failures: []FailureLimit{{Path: "/ocm/shares"}}}); err == nil {
		t.Error("an empty failure limit was accepted")
	}
}

func TestLimiterForgetsClients(t *testing.T) {
	lim, clk := newLimiter(t, Limits{Rate: 10, Burst: 5, MaxClients: 100})
	h := lim.Wrap(ok201)
	for i := 0; i < 1000; i++ {
		do(h, "POST", "/ocm/shares", fmt.Sprintf("10.%d.%d.1:1", i/256, i%256), "{}")
		if n := lim.Clients(); n > 100 {
			t.Fatalf("%d clients remembered, limit 100", n)
		}
	}
	// Once their buckets are full again, clients are forgotten.
	clk.add(2 * time.Minute)
	do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{}")
	if n := lim.Clients(); n != 1 {
		t.Errorf("%d clients remembered after all went idle", n)
	}
	// A recently refused client is kept while others are evicted.
	for i := 0; i < 6; i++ {
		do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{}")
	}
	if w := do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{}"); w.Code != 429 {
		t.Fatalf("client not limited: %d", w.Code)
	}
	for i := 0; i < 50; i++ {
		do(h, "POST", "/ocm/shares", fmt.Sprintf("10.9.%d.1:1", i), "{}")
	}
	if w := do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{}"); w.Code != 429 {
		t.Errorf("limited client forgotten while below MaxClients: %d", w.Code)
	}
}

func TestLimiterConnectionsPerClient(t *testing.T) {
	lim, _ := newLimiter(t, Limits{MaxConnsPerClient: 3, TrustedProxies: []string{"127.0.0.2"}, Now: time.Now})
	srv := httptest.NewUnstartedServer(ok201)
	srv.Config.ConnState = lim.ConnState
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	dial := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alive := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(c, "GET /.well-known/ocm HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return false
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}
	var held []net.Conn
	for i := 0; i < 3; i++ {
		held = append(held, dial("127.0.0.1"))
	}
	for _, c := range held {
		if !alive(c) {
			t.Fatal("a connection within the cap was closed")
		}
	}
	if alive(dial("127.0.0.1")) {
		t.Error("a fourth connection from one address was served")
	}
	if !alive(dial("127.0.0.3")) {
		t.Error("another address was refused")
	}
	for i := 0; i < 5; i++ {
		if !alive(dial("127.0.0.2")) {
			t.Fatal("a trusted proxy was held to the per-client cap")
		}
	}
	held[0].Close()
	ok := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !ok; time.Sleep(20 * time.Millisecond) { // polling, at most 5 s
		ok = alive(dial("127.0.0.1"))
	}
	if !ok {
		t.Error("closing a connection did not make room for another")
	}
	if lim.Refused().Conns < 1 {
		t.Error("refused connection not counted")
	}
}

type stubHandler struct{ got int }

func (s *stubHandler) ReceiveShare(ctx context.Context, sh *ocm.NewShare, p Peer) (string, error) {
	s.got++
	return "Bob", nil
}
func (s *stubHandler) ReceiveNotification(context.Context, *ocm.Notification, Peer) error { return nil }
func (s *stubHandler) UnsignedAllowed(context.Context, string) (bool, error)              { return true, nil }

// TestLimiterKeepsBodies: bodies read ahead by the limiter reach the API
// whole, and too-large ones are still refused by it with 413.
func TestLimiterKeepsBodies(t *testing.T) {
	lim, _ := newLimiter(t, Limits{Rate: 1000, Burst: 1000})
	stub := &stubHandler{}
	h := lim.Wrap(New(stub, nil, slog.New(slog.DiscardHandler)))
	share := `{"shareWith":"bob@example.org","name":"x","providerId":"1","owner":"alice@peer.example","sender":"alice@peer.example",` +
		`"shareType":"user","resourceType":"file","protocol":{"name":"webdav","options":{"sharedSecret":"s"}},"description":"` +
		strings.Repeat("d", 3000) + `"}`
	if w := do(h, "POST", "/ocm/shares", "192.0.2.1:1", share); w.Code != 201 || stub.got != 1 {
		t.Fatalf("share through the limiter: %d %s", w.Code, w.Body)
	}
	big := `{"name":"` + strings.Repeat("x", maxShareBody) + `"}`
	for _, chunked := range []bool{false, true} {
		r := httptest.NewRequest("POST", "/ocm/shares", io.MultiReader(strings.NewReader(big)))
		if chunked {
			r.ContentLength = -1
		}
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized body (chunked %v): %d", chunked, w.Code)
		}
	}
	// A body exactly at the limit still parses (and fails validation, not size).
	exact := append([]byte(`{"x":"`), bytes.Repeat([]byte("y"), maxShareBody-8)...)
	exact = append(exact, '"', '}')
	if w := do(h, "POST", "/ocm/shares", "192.0.2.1:1", string(exact)); w.Code != 400 {
		t.Errorf("body at the limit: %d", w.Code)
	}
}

func BenchmarkLimiterWrapShares(b *testing.B) {
	lim, err := NewLimiter(Limits{Rate: 1e9, Burst: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	h := lim.Wrap(ok201)
	body := []byte(strings.Repeat("x", 2000))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/ocm/shares", bytes.NewReader(body))
		r.RemoteAddr = "192.0.2.1:1"
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}

// TestPublicLogsDocumentsAtDebug: the public chain logs API requests at
// info, the cached documents at debug only, and keeps the limits.
func TestPublicLogsDocumentsAtDebug(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	lim, _ := newLimiter(t, Limits{Rate: 1, Burst: 1})
	api := New(&stubHandler{}, nil, log)
	if err := api.SetDiscovery(&ocm.Discovery{Enabled: true}, &ocm.Discovery{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	h := Public(api, lim, log)
	for i := 0; i < 3; i++ {
		if w := do(h, "GET", "/.well-known/ocm", "192.0.2.1:1", ""); w.Code != 200 {
			t.Fatalf("discovery: %d", w.Code)
		}
	}
	if strings.Contains(buf.String(), "/.well-known/ocm") {
		t.Errorf("discovery requests logged at info:\n%s", &buf)
	}
	do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{")
	if !strings.Contains(buf.String(), "path=/ocm/shares") {
		t.Errorf("API request not logged:\n%s", &buf)
	}
	if w := do(h, "POST", "/ocm/shares", "192.0.2.1:1", "{"); w.Code != 429 {
		t.Errorf("the limits are not applied: %d", w.Code)
	}

	buf.Reset()
	debug := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	do(Public(api, lim, debug), "GET", "/ocm/jwks", "192.0.2.1:1", "")
	if !strings.Contains(buf.String(), "level=DEBUG") || !strings.Contains(buf.String(), "path=/ocm/jwks") {
		t.Errorf("JWKS request not logged at debug:\n%s", &buf)
	}
}
