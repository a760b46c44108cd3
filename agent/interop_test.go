package agent

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/store"
)

// Captured real traffic (testdata/captures, recorded from Nextcloud 34.0.1),
// replayed against the real receiver.

type capturedExchange struct {
	Request struct {
		Method  string      `json:"method"`
		URL     string      `json:"url"`
		Headers [][2]string `json:"headers"`
		Body    struct {
			Encoding string `json:"encoding"`
			Data     string `json:"data"`
		} `json:"body"`
	} `json:"request"`
	Response struct {
		Status  int         `json:"status"`
		Headers [][2]string `json:"headers"`
		Body    struct {
			Encoding string `json:"encoding"`
			Data     string `json:"data"`
		} `json:"body"`
	} `json:"response"`
}

func loadExchange(t *testing.T, name string) capturedExchange {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "captures", name))
	if err != nil {
		t.Fatal(err)
	}
	var c capturedExchange
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if c.Request.Body.Encoding == "base64" || c.Response.Body.Encoding == "base64" {
		t.Fatalf("%s: binary bodies are not used here", name)
	}
	return c
}

// rawRequest is the captured request as it was on the wire.
func (c capturedExchange) rawRequest(t *testing.T) []byte {
	t.Helper()
	u, err := url.Parse(c.Request.URL)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString(c.Request.Method + " " + u.RequestURI() + " HTTP/1.1\r\n")
	for _, h := range c.Request.Headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(c.Request.Body.Data)
	return b.Bytes()
}

// replay sends raw to addr over one connection and reads the answer.
func replay(t *testing.T, addr string, raw []byte) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// serveCapturedPeer serves the captured answers of a peer at the address
// its signatures name (the port is part of the signed key id), waiting a
// bounded time if another test holds the port.
func serveCapturedPeer(t *testing.T, addr string, answers map[string]capturedExchange) {
	t.Helper()
	var ln net.Listener
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatalf("the captured peer needs %s: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond) // polling for a free port, not synchronising
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := answers[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		for _, h := range c.Response.Headers {
			if strings.EqualFold(h[0], "Content-Type") {
				w.Header().Set("Content-Type", h[1])
			}
		}
		w.WriteHeader(c.Response.Status)
		_, _ = io.WriteString(w, c.Response.Body.Data)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// TestNextcloudSignedShareAccepted replays the share Nextcloud 34 sent
// with its default signature (draft-cavage rsa-sha512, Digest SHA-512,
// keyId naming https on an http server), with Nextcloud's discovery
// document served where the key id points, at the time it was signed.
func TestNextcloudSignedShareAccepted(t *testing.T) {
	serveCapturedPeer(t, "127.0.0.1:28080", map[string]capturedExchange{
		"/.well-known/ocm": loadExchange(t, "01-discovery-well-known-ocm.json"),
	})
	var clock atomic.Int64
	td := startDaemon(t, func(c *config.Config) {
		c.User = "alice"
		c.PublicURL = "http://127.0.0.1:29200" // the receiver Nextcloud signed for
		c.AllowInsecurePeers = true
	})
	td.trust.now = func() time.Time { return time.Unix(clock.Load(), 0) }

	for _, tc := range []struct {
		file, name string
		signedAt   string
	}{
		{"06-share-file-signed-rsa-sha512.json", "signed.txt", "2026-12-03T10:31:40Z"},
		{"09-share-folder-signed-rsa-sha512.json", "", "2026-12-03T10:35:52Z"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			at, err := time.Parse(time.RFC3339, tc.signedAt)
			if err != nil {
				t.Fatal(err)
			}
			clock.Store(at.Add(3 * time.Second).Unix())
			c := loadExchange(t, tc.file)
			raw := c.rawRequest(t)

			// One bit of the signature changed: refused.
			if code, body := replay(t, td.cfg.Listen, forgeSignature(t, raw)); code != http.StatusUnauthorized {
				t.Fatalf("a forged signature got %d: %s", code, body)
			}

			code, body := replay(t, td.cfg.Listen, raw)
			if code != http.StatusCreated {
				t.Fatalf("Nextcloud's signed share got %d: %s", code, body)
			}
			shares := mustShares(t, td)
			var found bool
			for _, sh := range shares {
				if sh.Peer == "127.0.0.1:28080" && strings.Contains(c.Request.Body.Data, `"providerId":"`+sh.ProviderID+`"`) {
					found = true
					if !strings.HasSuffix(sh.SignedBy, "https://127.0.0.1:28080/ocm#signature") {
						t.Errorf("signedBy = %q", sh.SignedBy)
					}
					if tc.name != "" && sh.Name != tc.name {
						t.Errorf("name = %q", sh.Name)
					}
				}
			}
			if !found {
				t.Fatalf("the share is not listed: %+v", shares)
			}

			// The same request again is a replay.
			if code, body := replay(t, td.cfg.Listen, raw); code == http.StatusCreated {
				t.Fatalf("a replayed signature was accepted again: %s", body)
			}
		})
	}

	// Its signed SHARE_UNSHARED (for a share this receiver never had):
	// the signature is accepted; the unknown share is answered as such.
	clock.Store(time.Date(2026, 12, 3, 10, 33, 57, 0, time.UTC).Unix())
	c := loadExchange(t, "13-notification-share-unshared-signed-rsa-sha512.json")
	if code, body := replay(t, td.cfg.Listen, forgeSignature(t, c.rawRequest(t))); code != http.StatusUnauthorized {
		t.Fatalf("a forged SHARE_UNSHARED got %d: %s", code, body)
	}
	if code, body := replay(t, td.cfg.Listen, c.rawRequest(t)); code == http.StatusUnauthorized || code >= 500 {
		t.Fatalf("Nextcloud's signed SHARE_UNSHARED got %d: %s", code, body)
	}
}

// forgeSignature flips one bit of the draft-cavage signature in raw.
func forgeSignature(t *testing.T, raw []byte) []byte {
	t.Helper()
	const marker = `signature="`
	i := bytes.LastIndex(raw, []byte(marker))
	if i < 0 {
		t.Fatal("no signature in the request")
	}
	start := i + len(marker)
	end := start + bytes.IndexByte(raw[start:], '"')
	sig, err := base64.StdEncoding.DecodeString(string(raw[start:end]))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 0x01
	out := append(bytes.Clone(raw[:start]), base64.StdEncoding.EncodeToString(sig)...)
	return append(out, raw[end:]...)
}

// TestNotifyNextcloudAfterItTurnedSigningOn: the agent discovered a
// Nextcloud while its signing was off (publicKey null), then Nextcloud
// turned signing on. The cached document says nothing about keys, so the
// agent signs RFC 9421, which Nextcloud reads as draft-cavage and answers
// 400 "Invalid signature". The agent must try draft-cavage at once, and
// the notification is delivered in its first attempt.
func TestNotifyNextcloudAfterItTurnedSigningOn(t *testing.T) {
	var signing atomic.Bool
	peer := startPeer(t, ocmtest.Options{
		ReadSignaturesAsCavage: true,
		DiscoveryHook: func(doc map[string]any) {
			delete(doc, "jwksUri") // Nextcloud publishes no JWK Set
			if !signing.Load() {
				doc["publicKey"] = nil
			}
		},
	})
	td := startDaemon(t, insecurePeers())
	ctx := waitCtx(t)
	ps, sh := td.share(t, peer, ocmtest.ShareRequest{Dialect: ocmtest.DialectNextcloudSender, Signing: ocmtest.SignNone})
	if _, err := td.Agent.Discovery().Discover(ctx, peer.Host()); err != nil {
		t.Fatal(err)
	}
	signing.Store(true)

	if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	n, err := peer.WaitNotification(ctx, func(n ocmtest.Notification) bool {
		return n.ProviderID == ps.ProviderID && n.Status == http.StatusCreated
	})
	if err != nil {
		t.Fatalf("Nextcloud never took SHARE_ACCEPTED: %v (%d notifications arrived)", err, len(peer.Notifications()))
	}
	if n.Type != ocmtest.ShareAccepted || !n.Signature.Verified || n.Signature.Profile != ocmtest.SignCavage {
		t.Fatalf("delivered as %+v", n)
	}
	eventually(t, 10*time.Second, "the outbox recording the delivery", func() bool {
		l := td.outbox(t, sh.ID)
		return len(l) == 1 && l[0].State == store.OutboxSent
	})
	if l := td.outbox(t, sh.ID); l[0].Attempts != 1 {
		t.Fatalf("delivered after %d attempts, want the first", l[0].Attempts)
	}

	// Now that its document is known to publish only a draft-cavage key,
	// Nextcloud gets draft-cavage at once.
	ps2, sh2 := td.share(t, peer, ocmtest.ShareRequest{Dialect: ocmtest.DialectNextcloudSender})
	if _, err := td.client.ShareAction(ctx, sh2.ID, "decline"); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.WaitNotification(ctx, notificationAbout(ps2.ProviderID, ocmtest.ShareDeclined)); err != nil {
		t.Fatal(err)
	}
	for _, n := range peer.Notifications() {
		if n.ProviderID == ps2.ProviderID && (n.Status != http.StatusCreated || n.Signature.Profile != ocmtest.SignCavage) {
			t.Fatalf("SHARE_DECLINED to a Nextcloud publishing a draft-cavage key arrived as %d, %+v", n.Status, n.Signature)
		}
	}
}

// TestRemoveAcceptedTellsOCMGoUnshared: opencloudmesh-go refuses a
// SHARE_DECLINED for a share it saw accepted (409 SHARE_STATUS_CONFLICT).
// Removing an accepted share sends SHARE_UNSHARED, delivered at once.
func TestRemoveAcceptedTellsOCMGoUnshared(t *testing.T) {
	peer := startPeer(t, ocmtest.Options{OCMGoNotifications: true})
	td := startDaemon(t, insecurePeers())
	ctx := waitCtx(t)
	ps, sh := td.share(t, peer, ocmtest.ShareRequest{Dialect: ocmtest.DialectOCMGo})
	if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the acceptance delivered", func() bool {
		s, _ := td.client.Share(ctx, sh.ID)
		return s.NotifyState == store.NotifySent
	})
	if _, err := td.client.ShareAction(ctx, sh.ID, "remove"); err != nil {
		t.Fatal(err)
	}
	n, err := peer.WaitNotification(ctx, notificationAbout(ps.ProviderID, ocmtest.ShareUnshared))
	if err != nil || n.Status != http.StatusOK {
		t.Fatalf("SHARE_UNSHARED: %+v %v (all: %d)", n, err, len(peer.Notifications()))
	}
	eventually(t, 10*time.Second, "the removal's notification recorded as sent", func() bool {
		s, _ := td.client.Share(ctx, sh.ID)
		return s.NotifyState == store.NotifySent
	})
	for _, n := range peer.Notifications() {
		if n.Type == ocmtest.ShareDeclined {
			t.Fatalf("sent SHARE_DECLINED (answered %d) for an accepted share", n.Status)
		}
	}
}

// TestDeclinePendingAndFinalRefusal: declining a pending share sends
// SHARE_DECLINED; a 4xx answer (here opencloudmesh-go's 409) is final:
// one attempt, the reason on the share and in status. While a 5xx is
// retried, the share says how many attempts failed and why.
func TestDeclinePendingAndFinalRefusal(t *testing.T) {
	peer := startPeer(t, ocmtest.Options{OCMGoNotifications: true})
	td := startDaemon(t, insecurePeers())
	td.Agent.SetNotifyRetry(RetryPolicy{First: 50 * time.Millisecond, Max: 100 * time.Millisecond})
	ctx := waitCtx(t)

	// While failing with 503: retried, and the share says so.
	ps1, s1 := td.share(t, peer, ocmtest.ShareRequest{Dialect: ocmtest.DialectOCMGo})
	peer.SetFaultPrefix("/ocm/notifications")
	peer.SetFailRate(1)
	if _, err := td.client.ShareAction(ctx, s1.ID, "decline"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "two failed attempts shown on the share", func() bool {
		s, _ := td.client.Share(ctx, s1.ID)
		return strings.Contains(s.NotifyState, "attempt 2 failed") && strings.Contains(s.NotifyState, "503")
	})
	peer.ClearFaults()
	if n, err := peer.WaitNotification(ctx, notificationAbout(ps1.ProviderID, ocmtest.ShareDeclined)); err != nil || n.Status != http.StatusOK {
		t.Fatalf("SHARE_DECLINED after the 503s: %+v %v", n, err)
	}

	// A 409: final.
	_, s2 := td.share(t, peer, ocmtest.ShareRequest{Dialect: ocmtest.DialectOCMGo})
	peer.RefuseNotifications(http.StatusConflict)
	if _, err := td.client.ShareAction(ctx, s2.ID, "decline"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the refusal shown on the share", func() bool {
		s, _ := td.client.Share(ctx, s2.ID)
		return strings.HasPrefix(s.NotifyState, store.NotifyFailed+":") && strings.Contains(s.NotifyState, "409")
	})
	l := td.outbox(t, s2.ID)
	if len(l) != 1 || l[0].Attempts != 1 || l[0].State != store.OutboxFailed {
		t.Fatalf("outbox %+v", l)
	}
	if st := td.Agent.Status(ctx); !strings.Contains(strings.Join(st.Errors, "\n"), "409") {
		t.Fatalf("status errors %v", st.Errors)
	}
}

// TestStatusAddressCarriesHTTPScheme: an agent served over plain http
// tells its address with the scheme, the form Nextcloud needs (it puts
// https:// in front of a bare address and never falls back to http).
func TestStatusAddressCarriesHTTPScheme(t *testing.T) {
	td := startDaemon(t, nil)
	st := td.Agent.Status(waitCtx(t))
	if want := "bob@http://" + td.cfg.PublicHost(); st.Address != want {
		t.Fatalf("status address %q, want %q", st.Address, want)
	}
}
