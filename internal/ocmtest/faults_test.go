package ocmtest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

func get(t *testing.T, ctx context.Context, s *Server, url, auth string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestFaultFailNext(t *testing.T) {
	s := newPeer(t, Options{})
	s.FailNext(2)
	for i, want := range []int{503, 503, 200} {
		if st, _, _ := do(t, s, http.MethodGet, s.URL()+"/.well-known/ocm", "", nil, nil); st != want {
			t.Fatalf("request %d: %d, want %d", i, st, want)
		}
	}
	if s.FaultsInjected() != 2 {
		t.Fatalf("FaultsInjected %d", s.FaultsInjected())
	}
}

func TestFaultFailRateAndPrefix(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "file.txt"})
	s.SetFaultPrefix(WebDAVRoot)
	s.SetFailRate(1)
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath(), bearer(sh.Secret), nil, nil); st != http.StatusServiceUnavailable {
		t.Fatalf("WebDAV with fail rate 1: %d", st)
	}
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+"/.well-known/ocm", "", nil, nil); st != http.StatusOK {
		t.Fatalf("discovery outside the fault prefix: %d", st)
	}
	s.ClearFaults()
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath(), bearer(sh.Secret), nil, nil); st != http.StatusOK {
		t.Fatalf("after ClearFaults: %d", st)
	}
}

func TestFaultResetMidBody(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "file.txt"})
	s.SetResetMidBody(true)
	resp, body, err := get(t, testContext(t), s, s.URL()+sh.WebDAVPath(), bearer(sh.Secret))
	if err == nil {
		t.Fatalf("read a whole body (%q) through a reset", body)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v, want unexpected EOF", err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 20 || string(body) != "0123456789" {
		t.Fatalf("head %d length %d, got %q before the cut", resp.StatusCode, resp.ContentLength, body)
	}
	s.SetResetMidBody(false)
	if _, body, err := get(t, testContext(t), s, s.URL()+sh.WebDAVPath(), bearer(sh.Secret)); err != nil || len(body) != 20 {
		t.Fatalf("after switching off: %q %v", body, err)
	}
}

func TestFaultLatency(t *testing.T) {
	s := newPeer(t, Options{})
	s.SetLatency(10 * time.Second)
	ctx, cancel := context.WithTimeout(testContext(t), 100*time.Millisecond)
	defer cancel()
	if _, _, err := get(t, ctx, s, s.URL()+"/.well-known/ocm", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request slower than the client's deadline: %v", err)
	}
	s.SetLatency(time.Millisecond)
	if resp, _, err := get(t, testContext(t), s, s.URL()+"/.well-known/ocm", ""); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("with a small latency: %v", err)
	}
}

func TestFaultHangReleasedByClose(t *testing.T) {
	s := newPeer(t, Options{})
	s.SetHang(true)
	ctx, cancel := context.WithTimeout(testContext(t), 100*time.Millisecond)
	defer cancel()
	if _, _, err := get(t, ctx, s, s.URL()+"/.well-known/ocm", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung request: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := get(t, testContext(t), s, s.URL()+"/.well-known/ocm", "")
		done <- err
	}()
	// Wait until the request is inside the server, then close it.
	for i := 0; i < 500 && s.Hits("/.well-known/ocm") < 2; i++ {
		time.Sleep(10 * time.Millisecond) // polling, at most 5 s
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a hung request got an answer")
		}
	case <-testContext(t).Done():
		t.Fatal("Close did not release a hung request")
	}
}

func TestExpireTokensNowIsObservable(t *testing.T) {
	s := newPeer(t, Options{})
	sh := register(t, s, ShareRequest{Path: "file.txt", To: "bob@127.0.0.1:9200"})
	tok := exchange(t, s, "127.0.0.1:9200", sh.Secret)
	s.ExpireTokensNow()
	if st, _, _ := do(t, s, http.MethodGet, s.URL()+sh.WebDAVPath(), bearer(tok), nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("%d, want 401", st)
	}
}
