package httpsig

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// verifyingServer is a real HTTP server on loopback that verifies every
// request it receives and answers 200 with the profile, or 401 with the
// error.
func verifyingServer(t *testing.T, r KeyResolver, targetURI string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		o := opts()
		o.TargetURI = targetURI
		v, err := Verify(req.Context(), req, body, r, o)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, v.Profile+" "+v.KeyID)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

func TestLoopbackBothProfiles(t *testing.T) {
	ed := testKeys(t)[0]
	rsaKey := cavageKey(t)
	srv := verifyingServer(t, resolverFor(ed, rsaKey), "")
	target := srv.URL + "/ocm/shares?lang=en"

	req := newRequest(t, http.MethodPost, target, nil)
	if err := SignRFC9421(req, testBody, ed, testNow); err != nil {
		t.Fatal(err)
	}
	if code, msg := send(t, req); code != http.StatusOK || msg != "rfc9421 "+ed.ID {
		t.Fatalf("rfc9421: %d %s", code, msg)
	}

	req = newRequest(t, http.MethodPost, target, nil)
	if err := SignCavage(req, testBody, rsaKey.ID, rsaPriv(rsaKey), testNow); err != nil {
		t.Fatal(err)
	}
	if code, msg := send(t, req); code != http.StatusOK || msg != "cavage "+rsaKey.ID {
		t.Fatalf("cavage: %d %s", code, msg)
	}

	// A POST with an empty body still covers its digest and length.
	req = newRequest(t, http.MethodPost, target, nil)
	if err := SignRFC9421(req, nil, ed, testNow.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if code, msg := send(t, req); code != http.StatusOK {
		t.Fatalf("empty POST: %d %s", code, msg)
	}

	// The body changed on the way.
	for _, sign := range []func(*http.Request) error{
		func(req *http.Request) error { return SignRFC9421(req, testBody, ed, testNow.Add(2*time.Second)) },
		func(req *http.Request) error { return SignCavage(req, testBody, rsaKey.ID, rsaPriv(rsaKey), testNow) },
	} {
		req = newRequest(t, http.MethodPost, target, nil)
		if err := sign(req); err != nil {
			t.Fatal(err)
		}
		forged := bytes.Replace(testBody, []byte("marie"), []byte("alice"), 1)
		req.Body = io.NopCloser(bytes.NewReader(forged))
		req.GetBody = nil
		if code, msg := send(t, req); code != http.StatusUnauthorized || !strings.Contains(msg, "digest mismatch") {
			t.Fatalf("forged body: %d %s", code, msg)
		}
	}
}

// TestLoopbackBehindProxy signs for the public URL and delivers to the
// agent's loopback listener, as a reverse proxy does: only a receiver that
// knows its public URL accepts the signature.
func TestLoopbackBehindProxy(t *testing.T) {
	ed := testKeys(t)[0]
	rsaKey := cavageKey(t)
	const public = "https://cloud.example.org/ocm/shares"
	configured := verifyingServer(t, resolverFor(ed, rsaKey), public)
	unconfigured := verifyingServer(t, resolverFor(ed, rsaKey), "")

	for i, sign := range []func(*http.Request) error{
		func(req *http.Request) error { return SignRFC9421(req, testBody, ed, testNow) },
		func(req *http.Request) error { return SignCavage(req, testBody, rsaKey.ID, rsaPriv(rsaKey), testNow) },
	} {
		for _, c := range []struct {
			srv  *httptest.Server
			want int
		}{{configured, http.StatusOK}, {unconfigured, http.StatusUnauthorized}} {
			req := newRequest(t, http.MethodPost, public, nil)
			if err := sign(req); err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(c.srv.URL)
			req.URL.Scheme, req.URL.Host, req.Host = u.Scheme, u.Host, u.Host
			if code, msg := send(t, req); code != c.want {
				t.Fatalf("profile %d: %d %s, want %d", i, code, msg, c.want)
			}
		}
	}
}
