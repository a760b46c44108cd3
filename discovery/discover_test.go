package discovery

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDiscoverWellKnown(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": serveDoc(fixture(t, "opencloudmesh-go-1.4.json")),
	}))
	c := New(loopbackOptions(t, z, clk))
	res, err := c.Discover(context.Background(), p.host())
	if err != nil {
		t.Fatal(err)
	}
	if res.Via != ViaWellKnown || res.Host != p.host() || res.BaseURL != p.URL || res.DocURL != p.URL+"/.well-known/ocm" {
		t.Fatalf("result: %+v", res)
	}
	if !res.FetchedAt.Equal(clk.Now()) || !res.Expires.Equal(clk.Now().Add(DefaultTTL)) {
		t.Fatalf("times: %v %v", res.FetchedAt, res.Expires)
	}
	if p.hits.get("/ocm-provider") != 0 {
		t.Fatal("fell back although /.well-known/ocm answered")
	}
	// The caller's spelling does not matter: scheme, case, trailing slash.
	res2, err := c.Discover(context.Background(), "HTTPS://"+strings.ToUpper(p.host())+"/")
	if err != nil || res2 != res {
		t.Fatalf("normalised lookup: %v %+v", err, res2)
	}
	if n := p.hits.total(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestDiscoverFallbackOCMProvider(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/ocm-provider": serveDoc(fixture(t, "nextcloud-27.json")),
	}))
	res, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), p.host())
	if err != nil {
		t.Fatal(err)
	}
	if res.Via != ViaOCMProvider || res.DocURL != p.URL+"/ocm-provider" {
		t.Fatalf("result: %+v", res)
	}
	if p.hits.get("/.well-known/ocm") != 1 || p.hits.get("/ocm-provider/") != 0 {
		t.Fatalf("paths tried: %v", p.hits.n)
	}
}

func TestDiscoverFallbackOCMProviderSlash(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/ocm-provider/": serveDoc(fixture(t, "owncloud-10.json")),
	}))
	res, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), p.host())
	if err != nil {
		t.Fatal(err)
	}
	if res.Via != ViaOCMProvider || res.DocURL != p.URL+"/ocm-provider/" {
		t.Fatalf("result: %+v", res)
	}
	if got := res.Doc.WebDAVRoot(); got != p.URL+"/public.php/webdav/" {
		t.Fatalf("WebDAVRoot = %q", got)
	}
	for _, path := range []string{"/.well-known/ocm", "/ocm-provider", "/ocm-provider/"} {
		if p.hits.get(path) != 1 {
			t.Fatalf("%s asked %d times", path, p.hits.get(path))
		}
	}
}

func TestDiscoverFallbackOnInvalidDocument(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": serveDoc(`<html>welcome</html>`),
		"/ocm-provider":    serveDoc(fixture(t, "nextcloud-27.json")),
	}))
	res, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), p.host())
	if err != nil || res.Via != ViaOCMProvider {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestDiscoverDialects(t *testing.T) {
	z, clk := startDNS(t), newClock()
	redirect := func(to string) http.Handler { return http.RedirectHandler(to, http.StatusMovedPermanently) }
	cases := []struct {
		fixture string
		routes  func(doc string) map[string]http.Handler
		check   func(t *testing.T, p *peer, res *Result)
	}{
		{"nextcloud-32.json", func(doc string) map[string]http.Handler {
			// Nextcloud rewrites /.well-known/ocm into its front controller.
			return map[string]http.Handler{
				"/.well-known/ocm":           redirect("/index.php/.well-known/ocm"),
				"/index.php/.well-known/ocm": serveDoc(doc),
			}
		}, func(t *testing.T, p *peer, res *Result) {
			d := res.Doc
			if res.Via != ViaWellKnown || res.DocURL != p.URL+"/index.php/.well-known/ocm" || res.BaseURL != p.URL {
				t.Fatalf("result: %+v", res)
			}
			if d.APIVersion != "1.0-proposal1" || d.Version != "1.1.0" || d.EndPoint != p.URL+"/index.php/ocm" {
				t.Fatalf("versions/endPoint: %q %q %q", d.APIVersion, d.Version, d.EndPoint)
			}
			if d.PublicKey == nil || d.PublicKey.KeyID != p.URL+"/ocm#signature" {
				t.Fatalf("publicKey: %+v", d.PublicKey)
			}
			if !d.HasCapability("invites") || !d.HasCapability("notifications") || d.HasCapability("http-sig") {
				t.Fatalf("capabilities: %v", d.Capabilities)
			}
			if d.WebDAVRoot() != p.URL+"/public.php/webdav/" {
				t.Fatalf("WebDAVRoot: %q", d.WebDAVRoot())
			}
		}},
		{"nextcloud-27.json", func(doc string) map[string]http.Handler {
			return map[string]http.Handler{"/ocm-provider": serveDoc(doc)}
		}, func(t *testing.T, p *peer, res *Result) {
			if res.Via != ViaOCMProvider || res.Doc.PublicKey != nil || len(res.Doc.Capabilities) != 0 {
				t.Fatalf("result: %+v doc %+v", res, res.Doc)
			}
		}},
		{"owncloud-10.json", func(doc string) map[string]http.Handler {
			return map[string]http.Handler{"/ocm-provider/": serveDoc(doc)}
		}, func(t *testing.T, p *peer, res *Result) {
			if len(res.Doc.ResourceTypes) != 1 || res.Doc.WebDAVRoot() != p.URL+"/public.php/webdav/" {
				t.Fatalf("resourceTypes: %+v", res.Doc.ResourceTypes)
			}
		}},
		{"reva-1.3.json", func(doc string) map[string]http.Handler {
			return map[string]http.Handler{"/.well-known/ocm": serveDoc(doc)}
		}, func(t *testing.T, p *peer, res *Result) {
			d := res.Doc
			if d.APIVersion != "1.3.0" || d.Provider != "reva" || d.TokenEndPoint != p.URL+"/ocm/token" ||
				!d.HasCapability("exchange-token") || !d.HasCriterion("must-invite") || d.JWKSURI != "" {
				t.Fatalf("doc: %+v", d)
			}
			if len(d.ResourceTypes) != 2 || d.WebDAVRoot() != p.URL+"/remote.php/dav/ocm" {
				t.Fatalf("resourceTypes: %+v", d.ResourceTypes)
			}
		}},
		{"opencloudmesh-go-1.4.json", func(doc string) map[string]http.Handler {
			return map[string]http.Handler{"/.well-known/ocm": serveDoc(doc)}
		}, func(t *testing.T, p *peer, res *Result) {
			d := res.Doc
			if d.APIVersion != "1.4.0" || d.JWKSURI != p.URL+"/ocm/jwks" || d.TokenEndPoint != p.URL+"/ocm/token" ||
				!d.HasCapability("http-sig") || !d.HasCriterion("must-use-http-sig") {
				t.Fatalf("doc: %+v", d)
			}
			if d.WebDAVRoot() != p.URL+"/webdav/ocm/" {
				t.Fatalf("WebDAVRoot: %q", d.WebDAVRoot())
			}
		}},
	}
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.fixture, ".json"), func(t *testing.T) {
			p := startPeer(t, "", false, routes(tc.routes(fixture(t, tc.fixture))))
			res, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), p.host())
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p, res)
		})
	}
}

func TestDiscoverCacheControl(t *testing.T) {
	z, clk := startDNS(t), newClock()
	var mu sync.Mutex
	cc := "public, max-age=120"
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			h := cc
			mu.Unlock()
			serveDoc(fixture(t, "reva-1.3.json"), "Cache-Control", h)(w, r)
		}),
	}))
	c := New(loopbackOptions(t, z, clk))
	get := func() *Result {
		t.Helper()
		res, err := c.Discover(context.Background(), p.host())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := get()
	if want := clk.Now().Add(120 * time.Second); !res.Expires.Equal(want) {
		t.Fatalf("Expires %v, want %v", res.Expires, want)
	}
	clk.Advance(119 * time.Second)
	get()
	if n := p.hits.total(); n != 1 {
		t.Fatalf("%d requests within max-age, want 1", n)
	}
	mu.Lock()
	cc = "max-age=5" // clamped up to MinTTL
	mu.Unlock()
	clk.Advance(2 * time.Second)
	res = get()
	if n := p.hits.total(); n != 2 {
		t.Fatalf("%d requests after max-age, want 2", n)
	}
	if want := clk.Now().Add(MinTTL); !res.Expires.Equal(want) {
		t.Fatalf("max-age=5: Expires %v, want %v (clamped)", res.Expires, want)
	}
	mu.Lock()
	cc = "max-age=31536000" // clamped down to MaxTTL
	mu.Unlock()
	clk.Advance(MinTTL)
	if res = get(); !res.Expires.Equal(clk.Now().Add(MaxTTL)) {
		t.Fatalf("max-age=1y: Expires %v", res.Expires)
	}
	if n := p.hits.total(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestCacheTTL(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                       DefaultTTL,
		"max-age=600":            10 * time.Minute,
		"no-cache":               MinTTL,
		"private, no-store":      MinTTL,
		"max-age=0":              MinTTL,
		"max-age=999999999999":   MaxTTL,
		"max-age=junk":           DefaultTTL,
		`max-age="300", private`: 5 * time.Minute,
	} {
		h := http.Header{}
		if cc != "" {
			h.Set("Cache-Control", cc)
		}
		if got := cacheTTL(h, DefaultTTL); got != want {
			t.Errorf("Cache-Control %q: %v, want %v", cc, got, want)
		}
	}
}

func TestDiscoverSingleFlight(t *testing.T) {
	z, clk := startDNS(t), newClock()
	release := make(chan struct{})
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			serveDoc(fixture(t, "reva-1.3.json"))(w, r)
		}),
	}))
	c := New(loopbackOptions(t, z, clk))
	const n = 16
	var joined sync.WaitGroup
	joined.Add(n)
	c.joinedFlight = func(string) { joined.Done() }
	var started, done sync.WaitGroup
	results := make([]*Result, n)
	errs := make([]error, n)
	for i := range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			results[i], errs[i] = c.Discover(context.Background(), p.host())
		}()
	}
	started.Wait()
	joined.Wait() // every caller waits on the one lookup, held by the peer
	close(release)
	done.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Fatalf("caller %d got another result", i)
		}
	}
	if got := p.hits.total(); got != 1 {
		t.Fatalf("%d concurrent lookups made %d requests, want 1", n, got)
	}
}

func TestDiscoverCallerCancel(t *testing.T) {
	z, clk := startDNS(t), newClock()
	release := make(chan struct{})
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			serveDoc(fixture(t, "reva-1.3.json"))(w, r)
		}),
	}))
	c := New(loopbackOptions(t, z, clk))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Discover(ctx, p.host())
		errc <- err
	}()
	for i := 0; p.hits.total() == 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond) // polling for the request, at most 5 s
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v", err)
	}
	// The lookup itself went on and serves the next caller.
	close(release)
	res, err := c.Discover(context.Background(), p.host())
	if err != nil || res.Doc.Provider != "reva" {
		t.Fatalf("%v %+v", err, res)
	}
	if n := p.hits.total(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestDiscoverNegativeCache(t *testing.T) {
	z, clk := startDNS(t), newClock()
	p := startPeer(t, "", false, routes(nil))
	c := New(loopbackOptions(t, z, clk))
	_, err := c.Discover(context.Background(), p.host())
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("err = %v, want the 404 inside", err)
	}
	if n := p.hits.total(); n != 3 {
		t.Fatalf("%d requests, want 3 (every path once)", n)
	}
	_, err2 := c.Discover(context.Background(), p.host())
	if !errors.Is(err2, ErrNotFound) || p.hits.total() != 3 {
		t.Fatalf("second lookup: %v, %d requests; want the cached failure", err2, p.hits.total())
	}
	clk.Advance(DefaultNegativeTTL)
	_, _ = c.Discover(context.Background(), p.host())
	if n := p.hits.total(); n != 6 {
		t.Fatalf("%d requests after the negative TTL, want 6", n)
	}
}

func TestDiscoverServesStaleWhenRefreshFails(t *testing.T) {
	z, clk := startDNS(t), newClock()
	var mu sync.Mutex
	up := true
	p := startPeer(t, "", false, routes(map[string]http.Handler{
		"/.well-known/ocm": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			ok := up
			mu.Unlock()
			if !ok {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			serveDoc(fixture(t, "reva-1.3.json"), "Cache-Control", "max-age=60")(w, r)
		}),
	}))
	c := New(loopbackOptions(t, z, clk))
	first, err := c.Discover(context.Background(), p.host())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	up = false
	mu.Unlock()
	clk.Advance(2 * time.Minute)
	res, err := c.Discover(context.Background(), p.host())
	if err != nil || res != first {
		t.Fatalf("stale document not served: %v", err)
	}
	clk.Advance(DefaultMaxStale + time.Minute)
	if _, err := c.Discover(context.Background(), p.host()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("document served past MaxStale: %v", err)
	}
}

func TestDiscoverNewPeerCap(t *testing.T) {
	z, clk := startDNS(t), newClock()
	doc := routes(map[string]http.Handler{"/.well-known/ocm": serveDoc(fixture(t, "reva-1.3.json"))})
	p1, p2, p3 := startPeer(t, "", false, doc), startPeer(t, "", false, doc), startPeer(t, "", false, doc)
	o := loopbackOptions(t, z, clk)
	o.MaxNewPeersPerMinute = 2
	c := New(o)
	ctx := context.Background()
	for _, p := range []*peer{p1, p2} {
		if _, err := c.Discover(ctx, p.host()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Discover(ctx, p3.host()); !errors.Is(err, ErrTooManyPeers) {
		t.Fatalf("third new peer: %v, want ErrTooManyPeers", err)
	}
	if p3.hits.total() != 0 {
		t.Fatal("the refused peer was contacted")
	}
	// Known peers are still served, also when they must be fetched again.
	if _, err := c.Refresh(ctx, p1.host()); err != nil {
		t.Fatalf("known peer refused: %v", err)
	}
	if p1.hits.total() != 2 {
		t.Fatalf("known peer not fetched again: %d requests", p1.hits.total())
	}
	// The budget refills at MaxNewPeersPerMinute: one more after 30 s.
	clk.Advance(30 * time.Second)
	if _, err := c.Discover(ctx, p3.host()); err != nil {
		t.Fatalf("after 30 s: %v", err)
	}
}

func TestDiscoverBadHost(t *testing.T) {
	c := New(Options{Logger: quiet})
	for _, h := range []string{"", "a/b", "user@host", "x y", "host:99999"} {
		if _, err := c.Discover(context.Background(), h); !errors.Is(err, ErrBadHost) {
			t.Errorf("Discover(%q): %v, want ErrBadHost", h, err)
		}
	}
}

func TestDiscoverBodyTooLarge(t *testing.T) {
	z, clk := startDNS(t), newClock()
	big := `{"endPoint":"{{BASE}}/ocm","pad":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
	p := startPeer(t, "", false, routes(map[string]http.Handler{"/.well-known/ocm": serveDoc(big)}))
	_, err := New(loopbackOptions(t, z, clk)).Discover(context.Background(), p.host())
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("err = %v, want ErrBodyTooLarge", err)
	}
}

func TestDiscoverEvictsWhenFull(t *testing.T) {
	z, clk := startDNS(t), newClock()
	o := loopbackOptions(t, z, clk)
	o.MaxCacheEntries = 2
	c := New(o)
	for range 4 {
		host := "127.0.0.1:" + strconv.Itoa(closedPort(t))
		if _, err := c.Discover(context.Background(), host); !errors.Is(err, ErrNotFound) {
			t.Fatalf("closed port: %v", err)
		}
		c.mu.Lock()
		n := len(c.cache)
		c.mu.Unlock()
		if n > 2 {
			t.Fatalf("cache holds %d entries, max 2", n)
		}
	}
}
