package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address src (127.0.0.0/8 is all ours), so that one test can play several
// client addresses.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, DialContext: d.DialContext, MaxIdleConnsPerHost: 8, DisableCompression: true,
	}}
}

// post sends body and returns the status, the Retry-After header and the
// body of the answer.
func post(t *testing.T, c *http.Client, url string, body []byte, hdr ...string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header.Get("Retry-After"), b
}

// rssKiB reads the resident memory of a process.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// checkRetryAfter fails unless a 429 carries a whole number of seconds.
func checkRetryAfter(t *testing.T, ra string, body []byte) {
	t.Helper()
	n, err := strconv.Atoi(ra)
	if err != nil || n < 1 {
		t.Errorf("429 with Retry-After %q", ra)
	}
	var e struct{ Message string }
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		t.Errorf("429 body is not an OCM error: %s", body)
	}
}

// dnsRecorder is a DNS server on loopback that knows no names (NXDOMAIN)
// and records which were asked for.
type dnsRecorder struct {
	mu    sync.Mutex
	names map[string]bool
	addr  string
}

func startDNSRecorder(t *testing.T) *dnsRecorder {
	t.Helper()
	d := &dnsRecorder{names: map[string]bool{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeNameError)
		d.mu.Lock()
		for _, qu := range q.Question {
			name := strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(qu.Name), "_ocm._tcp."), ".")
			d.names[name] = true
		}
		d.mu.Unlock()
		w.WriteMsg(m)
	})}
	testenv.ServeDNS(t, srv)
	d.addr = pc.LocalAddr().String()
	return d
}

// asked counts the distinct names asked for that end in suffix.
func (d *dnsRecorder) asked(suffix string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for name := range d.names {
		if strings.HasSuffix(name, suffix) {
			n++
		}
	}
	return n
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestSlowlorisDoesNotStarveOthers holds 200 connections open the slow way
// (100 trickling their headers a byte at a time, 100 sending headers and a
// body that never ends), from several addresses, while a well-behaved
// client is served; the tricklers are cut off by the server.
func TestSlowlorisDoesNotStarveOthers(t *testing.T) {
	a := newAgent(t)
	a.start()
	peer := keylessPeer(t)
	host := a.listen
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		wg         sync.WaitGroup
		connected  atomic.Int64
		cutOff     atomic.Int64 // tricklers the server hung up on
		conns      sync.Mutex
		stallConns []net.Conn
	)
	dial := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			t.Errorf("dial from %s: %v", src, err)
			return nil
		}
		connected.Add(1)
		return c
	}
	// Header tricklers: one byte every 100 ms, for at most 20 s.
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := dial(fmt.Sprintf("127.0.0.%d", 2+i%4))
			if c == nil {
				return
			}
			defer c.Close()
			msg := "POST /ocm/shares HTTP/1.1\r\nHost: " + host + "\r\nX-Padding: " + strings.Repeat("a", 400)
			for j := 0; j < 200 && ctx.Err() == nil; j++ {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte{msg[j%len(msg)]}); err != nil {
					cutOff.Add(1)
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}(i)
	}
	// Body stallers: whole headers, ten bytes of a 4,000-byte body, then
	// nothing. They ask for a 100 Continue, which the server sends when it
	// starts reading the body: then the staller holds what it can.
	for i := 0; i < 100; i++ {
		c := dial(fmt.Sprintf("127.0.0.%d", 6+i%4))
		if c == nil {
			continue
		}
		fmt.Fprintf(c, "POST /ocm/shares HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 4000\r\nExpect: 100-continue\r\n\r\n{\"name\": ", host)
		conns.Lock()
		stallConns = append(stallConns, c)
		conns.Unlock()
	}
	defer func() {
		for _, c := range stallConns {
			c.Close()
		}
	}()
	if !eventually(5*time.Second, func() bool { return connected.Load() >= 200 }) {
		t.Fatalf("only %d slow connections were opened", connected.Load())
	}
	// Every staller is inside the server, reading its body; the tricklers,
	// dialled before the well-behaved client, are accepted before it (the
	// listen queue is first in, first out).
	for i, c := range stallConns {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("body staller %d: the server answered %q (%v), want 100 Continue", i, line, err)
		}
		c.SetReadDeadline(time.Time{})
	}

	good := clientFrom("127.0.0.1")
	for i := 0; i < 5; i++ {
		resp, err := good.Get(a.base + "/.well-known/ocm")
		if err != nil {
			t.Fatalf("discovery while under slowloris: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("discovery while under slowloris: %d", resp.StatusCode)
		}
		id := fmt.Sprintf("good-%d", i)
		if st, _, b := post(t, good, a.base+"/ocm/shares", shareBody(a.address(), peer, id)); st != 201 {
			t.Fatalf("share from a well-behaved client while under slowloris: %d %s\n%s", st, b, a.log)
		}
	}
	a.mustCLI("status")
	if rss := rssKiB(t, a.cmd.Process.Pid); rss > 128<<10 {
		t.Errorf("agent RSS %d KiB with 200 slow connections", rss)
	}

	// The tricklers never finish their headers: the server hangs up on
	// every one of them (ReadHeaderTimeout), well before they give up.
	if !eventually(15*time.Second, func() bool { return cutOff.Load() >= 100 }) {
		t.Errorf("the server hung up on %d of 100 header tricklers", cutOff.Load())
	}
	cancel()
	wg.Wait()
	if l := a.shares(true); len(l) != 5 {
		t.Errorf("%d shares stored, want the 5 of the well-behaved client", len(l))
	}
}

// TestFloodOfJunkStoresNothing floods the endpoint with invalid, oversized,
// deeply nested and duplicate-key JSON, and with shares from senders that
// do not exist, from several addresses at once, while a prober checks that
// the agent still answers. Nothing of the flood is stored, nothing gets a
// 2xx or a 500, memory stays bounded, and the hundreds of made-up senders
// cause at most 60 look-ups (the cap on new peers per minute): the agent
// cannot be used to flood others.
func TestFloodOfJunkStoresNothing(t *testing.T) {
	names := startDNSRecorder(t)
	// Limits lifted, so that every request reaches the parsers and the
	// sender checks instead of being turned away at the door.
	a := newAgent(t, "--rate-limit", "100000", "--rate-burst", "100000", "--dns-server", names.addr)
	a.start()
	peer := keylessPeer(t)
	to := a.address()
	base := a.base
	rssBefore := rssKiB(t, a.cmd.Process.Pid)

	valid := string(shareBody(to, peer, "dup"))
	kinds := []struct {
		name, path string
		body       func(i int) []byte
		want       []int
	}{
		{"truncated JSON", "/ocm/shares", func(int) []byte { return []byte(valid[:len(valid)/2]) }, []int{400}},
		{"not JSON", "/ocm/shares", func(int) []byte { return []byte(randHex(200)) }, []int{400}},
		{"oversized", "/ocm/shares", func(int) []byte {
			return []byte(`{"name":"` + strings.Repeat("x", 1<<20) + `"}`)
		}, []int{413}},
		{"deeply nested", "/ocm/shares", func(int) []byte { return []byte(strings.Repeat("[", 30000) + strings.Repeat("]", 30000)) }, []int{400}},
		{"deeply nested object", "/ocm/notifications", func(int) []byte {
			return []byte(strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000))
		}, []int{400}},
		{"duplicate keys", "/ocm/shares", func(i int) []byte {
			return []byte(strings.Replace(valid, `"shareWith":`, `"shareWith":"evil@elsewhere","shareWith":`, 1))
		}, []int{400}},
		{"unknown sender by name", "/ocm/shares", func(i int) []byte {
			return shareBody(to, fmt.Sprintf("h%d-%s.flood.test", i, randHex(4)), fmt.Sprintf("n%d", i))
		}, []int{401, 503}},
		{"unknown sender by address", "/ocm/shares", func(i int) []byte {
			return shareBody(to, fmt.Sprintf("127.%d.%d.%d:1", 1+i%200, i/200%250, 1+i%250), fmt.Sprintf("a%d", i))
		}, []int{401, 503}},
		{"invite with a bad token", "/ocm/invite-accepted", func(i int) []byte {
			return fmt.Appendf(nil, `{"recipientProvider":"h%d.flood.test","token":%q,"userID":"u%d"}`, i, randHex(16), i)
		}, []int{400, 401, 429, 503}},
	}

	var (
		mu       sync.Mutex
		bad      []string
		statuses = map[string]map[int]int{}
	)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.0.0.%d", 2+w))
			for i := w; i < 1200 && ctx.Err() == nil; i += 4 {
				k := kinds[i%len(kinds)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+k.path, bytes.NewReader(k.body(i)))
				req.Header.Set("Content-Type", "application/json")
				if k.name == "unknown sender by name" && i%2 == 0 {
					// A signature claiming a key of the unknown server.
					req.Header.Set("Signature-Input", fmt.Sprintf(`ocm=("@method" "@target-uri");created=%d;keyid="https://h%d.flood.test/ocm#k";alg="ed25519"`, time.Now().Unix(), i))
					req.Header.Set("Signature", "ocm=:"+strings.Repeat("A", 86)+"==:")
				}
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("%s: %v", k.name, err))
						mu.Unlock()
					}
					continue
				}
				io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				mu.Lock()
				if statuses[k.name] == nil {
					statuses[k.name] = map[int]int{}
				}
				statuses[k.name][resp.StatusCode]++
				ok := false
				for _, s := range k.want {
					ok = ok || s == resp.StatusCode
				}
				if !ok {
					bad = append(bad, fmt.Sprintf("%s: status %d", k.name, resp.StatusCode))
				}
				mu.Unlock()
			}
		}(w)
	}

	// The prober: discovery and real shares from a keyless peer, from its
	// own address, throughout the flood. Its shares start only once the
	// flood has been refused look-ups (the agent logs it), so that the real
	// peer's first share always meets a spent budget, whatever the
	// machine's speed.
	floodSpentItsBudget := func() bool {
		return strings.Contains(a.log.String(), "lookups of new peers refused by the rate limit")
	}
	probe := clientFrom("127.0.0.1")
	var probeAcked []string
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for i := 0; ; i++ {
		select {
		case <-done:
		case <-time.After(200 * time.Millisecond):
			resp, err := probe.Get(base + "/.well-known/ocm")
			if err != nil {
				t.Fatalf("discovery during the flood: %v", err)
			}
			resp.Body.Close()
			if i%3 == 0 && floodSpentItsBudget() {
				id := fmt.Sprintf("probe-%d", i)
				if st, _, b := post(t, probe, base+"/ocm/shares", shareBody(to, peer, id)); st != 201 {
					t.Fatalf("a real share during the flood: %d %s", st, b)
				}
				probeAcked = append(probeAcked, id)
			}
			continue
		}
		break
	}
	if len(probeAcked) == 0 {
		if !floodSpentItsBudget() {
			t.Fatal("the flood never spent the look-up budget: the test proves nothing")
		}
		if st, _, b := post(t, probe, base+"/ocm/shares", shareBody(to, peer, "probe-last")); st != 201 {
			t.Fatalf("a real share after the flood: %d %s", st, b)
		}
		probeAcked = append(probeAcked, "probe-last")
	}
	t.Logf("flood answers by kind: %v", statuses)
	if len(bad) > 0 {
		t.Errorf("%d unexpected answers, first ones: %v", len(bad), bad[:min(len(bad), 10)])
	}
	if len(statuses) != len(kinds) {
		t.Errorf("only %d of %d kinds were sent", len(statuses), len(kinds))
	}

	// Responsive afterwards, nothing of the flood stored, memory bounded.
	a.mustCLI("status")
	stored := a.shares(true)
	if len(stored) != len(probeAcked) {
		t.Errorf("%d shares stored, want only the %d real ones", len(stored), len(probeAcked))
	}
	for _, s := range stored {
		if !strings.HasPrefix(s.ProviderID, "probe-") {
			t.Errorf("flood share stored: %+v", s)
		}
	}
	looked := names.asked(".flood.test")
	t.Logf("%d distinct made-up sender names looked up in DNS", looked)
	if looked == 0 || looked > 60 {
		t.Errorf("%d made-up senders looked up, want between 1 and the cap of 60", looked)
	}
	rss := rssKiB(t, a.cmd.Process.Pid)
	t.Logf("agent RSS %d KiB before the flood, %d KiB after", rssBefore, rss)
	if rss > 160<<10 {
		t.Errorf("agent RSS grew to %d KiB under the flood", rss)
	}
	if strings.Contains(a.log.String(), "panic") {
		t.Errorf("the agent logged a panic:\n%s", a.log)
	}
}

// TestRateLimitAnswers429 checks the per-address limit: beyond the burst a
// client gets 429 with Retry-After, others are not affected, the
// discovery document is not limited, and after waiting as told the client
// is served again.
func TestRateLimitAnswers429(t *testing.T) {
	a := newAgent(t, "--rate-limit", "2", "--rate-burst", "5")
	a.start()
	flooder, other := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	url := a.base + "/ocm/shares"
	junk := []byte(`{"not":"a share"}`)
	got := map[int]int{}
	retry := ""
	for i := 0; i < 20; i++ {
		st, ra, body := post(t, flooder, url, junk)
		got[st]++
		if st == 429 {
			checkRetryAfter(t, ra, body)
			retry = ra
		}
	}
	if got[429] < 10 || got[400] < 5 || got[400]+got[429] != 20 {
		t.Fatalf("20 quick requests with a burst of 5: %v", got)
	}
	if st, _, _ := post(t, other, url, junk); st != 400 {
		t.Errorf("another address was limited too: %d", st)
	}
	for i := 0; i < 10; i++ {
		resp, err := flooder.Get(a.base + "/.well-known/ocm")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("discovery from a limited address: %d", resp.StatusCode)
		}
	}
	n, _ := strconv.Atoi(retry)
	time.Sleep(time.Duration(n) * time.Second) // not synchronisation: the limit is over when this much real time has passed
	if st, _, _ := post(t, flooder, url, junk); st != 400 {
		t.Errorf("after waiting Retry-After (%s s): %d", retry, st)
	}
}

// TestForwardedForTrust: X-Forwarded-For is ignored from addresses that
// are not trusted proxies and used from those that are.
func TestForwardedForTrust(t *testing.T) {
	a := newAgent(t, "--rate-limit", "0.5", "--rate-burst", "3", "--trusted-proxies", "127.0.0.2")
	a.start()
	url := a.base + "/ocm/shares"
	junk := []byte(`{}`)
	codes := func(c *http.Client, n int, xff func(i int) string) string {
		var s []string
		for i := 0; i < n; i++ {
			st, ra, body := post(t, c, url, junk, "X-Forwarded-For", xff(i))
			if st == 429 {
				checkRetryAfter(t, ra, body)
			}
			s = append(s, strconv.Itoa(st))
		}
		return strings.Join(s, " ")
	}
	// An untrusted client naming a new address each time is still one client.
	if got := codes(clientFrom("127.0.0.3"), 5, func(i int) string { return fmt.Sprintf("198.51.100.%d", i) }); got != "400 400 400 429 429" {
		t.Errorf("untrusted client with X-Forwarded-For: %s", got)
	}
	proxy := clientFrom("127.0.0.2")
	// Through the trusted proxy every forwarded address has its own bucket.
	if got := codes(proxy, 8, func(i int) string { return fmt.Sprintf("198.51.100.%d", 10+i) }); strings.Contains(got, "429") {
		t.Errorf("distinct clients behind the trusted proxy were limited: %s", got)
	}
	// One client behind the proxy is limited, whatever it writes on the left.
	if got := codes(proxy, 5, func(i int) string { return fmt.Sprintf("10.9.%d.1, 203.0.113.7", i) }); got != "400 400 400 429 429" {
		t.Errorf("one client behind the trusted proxy: %s", got)
	}
	// The proxy itself is not limited on that client's account.
	if got := codes(proxy, 1, func(int) string { return "203.0.113.8" }); got != "400" {
		t.Errorf("next client behind the proxy: %s", got)
	}
}

// TestInviteGuessesLimited: failed invite acceptances from one address are
// limited (429 with Retry-After after ten), without affecting other
// addresses.
func TestInviteGuessesLimited(t *testing.T) {
	a := newAgent(t, "--rate-limit", "1000", "--rate-burst", "1000")
	a.start()
	peer := keylessPeer(t)
	url := a.base + "/ocm/invite-accepted"
	guess := func(c *http.Client) (int, string, []byte) {
		body := fmt.Appendf(nil, `{"recipientProvider":%q,"token":%q,"userID":"mallory","email":"m@example.org","name":"M"}`, peer, randHex(16))
		return post(t, c, url, body)
	}
	guesser := clientFrom("127.0.0.2")
	got := map[int]int{}
	for i := 0; i < 15; i++ {
		st, ra, body := guess(guesser)
		got[st]++
		if st == 429 {
			checkRetryAfter(t, ra, body)
		} else if st != 400 {
			t.Fatalf("guess %d: %d %s\n%s", i, st, body, a.log)
		}
	}
	if got[400] != 10 || got[429] != 5 {
		t.Errorf("15 wrong invite tokens from one address: %v (want 10×400, 5×429)", got)
	}
	if st, _, body := guess(clientFrom("127.0.0.3")); st != 400 {
		t.Errorf("a first guess from another address: %d %s", st, body)
	}
	// Shares from the guessing address are not affected.
	if st, _, _ := post(t, guesser, a.base+"/ocm/shares", shareBody(a.address(), peer, "after-guessing")); st != 201 {
		t.Errorf("a share from the guessing address: %d", st)
	}
}
