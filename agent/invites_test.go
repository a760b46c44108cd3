package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
)

// insecurePeers lets the daemon talk to loopback peers over plain HTTP.
func insecurePeers(more ...func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		c.AllowInsecurePeers = true
		c.Email = "bob@mail.example.org"
		for _, f := range more {
			f(c)
		}
	}
}

// startPeer runs the reference OCM server with one file to share.
func startPeer(t *testing.T, opts ocmtest.Options) *ocmtest.Server {
	t.Helper()
	if opts.Email == "" {
		opts.Email = "alice@mail.example.org"
	}
	p := ocmtest.StartForTest(t, opts)
	if err := os.WriteFile(filepath.Join(p.Dir(), "doc.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func acceptBody(t *testing.T, provider, token, user, name string) []byte {
	t.Helper()
	b, err := json.Marshal(ocm.InviteAccepted{RecipientProvider: provider, Token: token, UserID: user, Email: user + "@mail.example.org", Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tokenOf(t *testing.T, ci CreatedInvite) string {
	t.Helper()
	inv, err := ocm.ParseInvite(ci.InviteString)
	if err != nil {
		t.Fatal(err)
	}
	return inv.Token
}

// An invite the agent made is accepted by a peer once: 200 with our
// details and a new contact, then 409; unknown, expired and withdrawn
// invites get 400, and nothing is added for them.
func TestInviteAcceptedByPeer(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	peer := startPeer(t, ocmtest.Options{})
	ctx := context.Background()

	ci, err := td.Agent.CreateInvite(ctx, "for carol", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Invite.State != store.InviteOpen || time.Until(ci.Invite.ExpiresAt) < DefaultInviteTTL-time.Minute {
		t.Fatalf("new invite %+v", ci.Invite)
	}
	token := tokenOf(t, ci)
	if strings.Contains(fmt.Sprint(ci), token) || strings.Contains(td.logs.String(), token) {
		t.Fatal("the invite token shows in a log or String")
	}
	link, err := ocm.ParseInvite(ci.Link)
	if err != nil || link.Token != token || link.Provider != td.cfg.PublicHost() {
		t.Fatalf("the link reads as %+v, %v", link, err)
	}

	resp, body, err := peer.SendRaw(ctx, td.base, "/ocm/invite-accepted", acceptBody(t, peer.Host(), token, "carol", "Carol"), ocmtest.SignRFC9421)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("accepting: %v %s", err, body)
	}
	var got ocm.InviteAcceptedResponse
	if err := json.Unmarshal(body, &got); err != nil || got != (ocm.InviteAcceptedResponse{UserID: "bob", Email: "bob@mail.example.org", Name: "Bob Receiver"}) {
		t.Fatalf("answer %s", body)
	}
	contacts, _ := td.Agent.Contacts(ctx)
	if len(contacts) != 1 || contacts[0].Address != "carol@"+peer.Host() || contacts[0].Name != "Carol" ||
		contacts[0].Source != store.SourceAcceptedOurInvite || contacts[0].InviteID != ci.Invite.ID {
		t.Fatalf("contacts %+v", contacts)
	}
	if inv, _ := td.Agent.store.Invite(ctx, ci.Invite.ID); inv.State != store.InviteAccepted || inv.AcceptedBy != "carol@"+peer.Host() {
		t.Fatalf("invite after acceptance %+v", inv)
	}

	// Used again (a different body, so not a replayed signature): 409.
	resp, body, _ = peer.SendRaw(ctx, td.base, "/ocm/invite-accepted", acceptBody(t, peer.Host(), token, "mallory", "Mallory"), ocmtest.SignRFC9421)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("reuse: %d %s", resp.StatusCode, body)
	}

	expiredToken := "expired-token-value-1234"
	if _, err := td.Agent.store.AddInvite(ctx, store.Invite{ID: "expired", TokenHash: hashToken(expiredToken), ExpiresAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	withdrawn, _ := td.Agent.CreateInvite(ctx, "", time.Hour)
	if _, err := td.Agent.RevokeInvite(ctx, withdrawn.Invite.ID); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"unknown": "no-such-token", "expired": expiredToken, "withdrawn": tokenOf(t, withdrawn)} {
		resp, body, _ := peer.SendRaw(ctx, td.base, "/ocm/invite-accepted", acceptBody(t, peer.Host(), tok, "dave-"+name, "Dave"), ocmtest.SignRFC9421)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s token: %d %s", name, resp.StatusCode, body)
		}
	}
	if contacts, _ := td.Agent.Contacts(ctx); len(contacts) != 1 {
		t.Fatalf("refused acceptances added contacts: %+v", contacts)
	}
}

// A server on the deny list cannot accept an invite, even with a good token.
func TestInviteAcceptanceFromDeniedServer(t *testing.T) {
	peer := startPeer(t, ocmtest.Options{})
	td := startDaemon(t, insecurePeers(func(c *config.Config) { c.DenyServers = []string{peer.Host()} }))
	ctx := context.Background()
	ci, _ := td.Agent.CreateInvite(ctx, "", 0)
	resp, body, err := peer.SendRaw(ctx, td.base, "/ocm/invite-accepted", acceptBody(t, peer.Host(), tokenOf(t, ci), "carol", "Carol"), ocmtest.SignRFC9421)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied server: %v %d %s", err, resp.StatusCode, body)
	}
	if inv, _ := td.Agent.store.Invite(ctx, ci.Invite.ID); inv.State != store.InviteOpen {
		t.Fatalf("a refused acceptance used the invite: %s", inv.State)
	}
}

// The agent accepts a peer's invite in every pasted form; the request is
// signed and carries our details, and the inviter becomes a contact.
func TestAcceptPeerInviteEveryForm(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	peer := startPeer(t, ocmtest.Options{DisplayName: "Alice Sender"})
	ctx := context.Background()
	forms := map[string]func(token, str string) control.AcceptInviteRequest{
		"invite string": func(_, s string) control.AcceptInviteRequest { return control.AcceptInviteRequest{Invite: s} },
		"token@provider": func(tok, _ string) control.AcceptInviteRequest {
			return control.AcceptInviteRequest{Invite: tok + "@" + peer.Host()}
		},
		"dialog link": func(tok, _ string) control.AcceptInviteRequest {
			return control.AcceptInviteRequest{Invite: td.base + InviteDialogPath + "?token=" + url.QueryEscape(tok) + "&providerDomain=" + peer.Host()}
		},
		"WAYF link": func(tok, _ string) control.AcceptInviteRequest {
			return control.AcceptInviteRequest{Invite: peer.URL() + "/wayf?token=" + tok}
		},
		"token + provider": func(tok, _ string) control.AcceptInviteRequest {
			return control.AcceptInviteRequest{Token: tok, Provider: peer.Host()}
		},
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			tok, str := peer.CreateInvite(ocmtest.InviteOptions{})
			var c store.Contact
			if err := td.client.Do(ctx, http.MethodPost, "/v1/invites/accept", form(tok, str), &c); err != nil {
				t.Fatal(err)
			}
			if c.Address != "alice@"+peer.Host() || c.Name != "Alice Sender" || c.Email != "alice@mail.example.org" || c.Source != store.SourceAcceptedTheirInvite {
				t.Fatalf("contact %+v", c)
			}
			acc, err := peer.WaitInviteAcceptance(ctx, func(a ocmtest.InviteAcceptance) bool { return a.Token == tok })
			if err != nil {
				t.Fatal(err)
			}
			if acc.Status != 200 || !acc.Signature.Verified || acc.UserID != "bob" || acc.Name != "Bob Receiver" ||
				acc.Email != "bob@mail.example.org" || acc.RecipientProvider != td.cfg.PublicHost() {
				t.Fatalf("the peer saw %+v (signature %+v)", acc, acc.Signature)
			}
		})
	}
	if l, _ := td.Agent.Contacts(ctx); len(l) != 1 {
		t.Fatalf("one inviter accepted five times is one contact, got %+v", l)
	}
}

// What goes wrong accepting an invite reaches the user as the status the
// tray tells apart, with a message, and adds no contact.
func TestAcceptInviteFailures(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	peer := startPeer(t, ocmtest.Options{})
	ctx := context.Background()
	accept := func(req control.AcceptInviteRequest) *control.APIError {
		t.Helper()
		err := td.client.Do(ctx, http.MethodPost, "/v1/invites/accept", req, nil)
		var ae *control.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("accepting %v: %v, want an API error", req, err)
		}
		return ae
	}
	tok, str := peer.CreateInvite(ocmtest.InviteOptions{})
	if err := td.client.Do(ctx, http.MethodPost, "/v1/invites/accept", control.AcceptInviteRequest{Invite: str}, nil); err != nil {
		t.Fatal(err)
	}
	if ae := accept(control.AcceptInviteRequest{Invite: str}); ae.Status != 409 || !strings.Contains(ae.Message, "already accepted") {
		t.Errorf("reuse: %d %s", ae.Status, ae.Message)
	}
	_, expired := peer.CreateInvite(ocmtest.InviteOptions{TTL: -time.Minute})
	if ae := accept(control.AcceptInviteRequest{Invite: expired}); ae.Status != 400 || !strings.Contains(ae.Message, "not valid") {
		t.Errorf("expired: %d %s", ae.Status, ae.Message)
	}
	if ae := accept(control.AcceptInviteRequest{Invite: "certainly not an invite"}); ae.Status != 400 || !strings.Contains(ae.Message, "expected an invite code") {
		t.Errorf("garbage: %d %s", ae.Status, ae.Message)
	}
	if ae := accept(control.AcceptInviteRequest{}); ae.Status != 400 {
		t.Errorf("empty: %d %s", ae.Status, ae.Message)
	}
	own, _ := td.Agent.CreateInvite(ctx, "", 0)
	if ae := accept(control.AcceptInviteRequest{Invite: own.InviteString}); ae.Status != 400 || !strings.Contains(ae.Message, "made by this agent") {
		t.Errorf("own invite: %d %s", ae.Status, ae.Message)
	}
	// Nothing listens at a closed port: 502. (The daemon remembers a
	// failed discovery for a minute: the port must not be given to a test
	// server started later.)
	dead := testenv.ClosedAddr(t)
	if ae := accept(control.AcceptInviteRequest{Token: "t0k", Provider: dead}); ae.Status != 502 {
		t.Errorf("unreachable server: %d %s", ae.Status, ae.Message)
	}
	if strings.Contains(td.logs.String(), tok) {
		t.Error("an invite token was logged")
	}

	// Answers the reference server never gives, from a small loopback OCM
	// server that answers invite-accepted with a fixed status.
	for status, want := range map[int]struct {
		code int
		text string
	}{
		401: {403, "signature"}, 403: {403, "does not accept invites"}, 404: {502, "does not support"},
		501: {502, "does not support"}, 500: {502, "HTTP 500"}, 503: {502, "try again later"},
	} {
		host := fixedStatusPeer(t, status)
		ae := accept(control.AcceptInviteRequest{Token: "secret-token-x", Provider: host})
		if ae.Status != want.code || !strings.Contains(ae.Message, want.text) || strings.Contains(ae.Message, "secret-token-x") {
			t.Errorf("peer answering %d: %d %q, want %d mentioning %q", status, ae.Status, ae.Message, want.code, want.text)
		}
	}
	if l, _ := td.Agent.Contacts(ctx); len(l) != 1 {
		t.Fatalf("failures added contacts: %+v", l)
	}
}

// A peer whose invite-accepted end point redirects the POST (307) to
// another server does not get the invite's token sent there.
func TestAcceptInviteRedirectElsewhereNotFollowed(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(other.Close)
	host := discoveringPeer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	err := td.client.Do(context.Background(), http.MethodPost, "/v1/invites/accept",
		control.AcceptInviteRequest{Token: "secret-token-r", Provider: host}, nil)
	var ae *control.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || !strings.Contains(ae.Message, "another server") || strings.Contains(ae.Message, "secret-token-r") {
		t.Fatalf("accepting through a redirect elsewhere: %v, want a 502 saying it was not followed", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the other server got %d requests", n)
	}
}

// fixedStatusPeer serves a discovery document and answers every other
// request with status and an OCM error body that echoes the request's
// token (which must not reach the user's messages).
func fixedStatusPeer(t *testing.T, status int) string {
	t.Helper()
	return discoveringPeer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		var req ocm.InviteAccepted
		json.Unmarshal(b, &req)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(ocm.Error{Message: "refused token " + req.Token})
	})
}

// discoveringPeer is a loopback OCM server: a discovery document naming
// its own /ocm end point, and rest for every other request. It returns
// its host:port.
func discoveringPeer(t *testing.T, rest http.HandlerFunc) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/ocm" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"enabled":true,"apiVersion":"1.1.0","endPoint":"%s/ocm","resourceTypes":[{"name":"file","shareTypes":["user"],"protocols":{"webdav":"/webdav/"}}]}`, srv.URL)
			return
		}
		rest(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestControlInviteRoutes(t *testing.T) {
	td := startDaemon(t, nil)
	ctx := context.Background()
	var ci CreatedInvite
	if err := td.client.Do(ctx, http.MethodPost, "/v1/invites", control.InviteRequest{Note: "for dave", Expires: "2d"}, &ci); err != nil {
		t.Fatal(err)
	}
	if d := time.Until(ci.Invite.ExpiresAt); d < 47*time.Hour || d > 49*time.Hour || ci.Invite.Note != "for dave" || ci.InviteString == "" {
		t.Fatalf("created %+v", ci.Invite)
	}
	for _, bad := range []string{"0d", "-5m", "forever", "400d"} {
		err := td.client.Do(ctx, http.MethodPost, "/v1/invites", control.InviteRequest{Expires: bad}, nil)
		if !errors.Is(err, control.ErrInvalid) {
			t.Errorf("expires %q: %v, want 400", bad, err)
		}
	}
	var list []store.Invite
	if err := td.client.Do(ctx, http.MethodGet, "/v1/invites", nil, &list); err != nil || len(list) != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), "oken") {
		t.Fatalf("the invite list shows token material: %s", raw)
	}
	var inv store.Invite
	if err := td.client.Do(ctx, http.MethodDelete, "/v1/invites/"+ci.Invite.ID, nil, &inv); err != nil || inv.State != store.InviteRevoked {
		t.Fatalf("revoke: %+v %v", inv, err)
	}
	if err := td.client.Do(ctx, http.MethodDelete, "/v1/invites/nope", nil, nil); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	var contacts []store.Contact
	if err := td.client.Do(ctx, http.MethodGet, "/v1/contacts", nil, &contacts); err != nil || len(contacts) != 0 {
		t.Fatalf("contacts: %+v %v", contacts, err)
	}
	if err := td.client.Do(ctx, http.MethodDelete, "/v1/contacts/nope", nil, nil); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("remove unknown contact: %v", err)
	}
}

func TestDiscoveryAdvertisesInvites(t *testing.T) {
	td := startDaemon(t, nil)
	resp, err := http.Get(td.base + "/.well-known/ocm")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	d, err := ocm.ParseDiscovery(b)
	if err != nil {
		t.Fatal(err)
	}
	if !d.HasCapability("invites") || d.InviteAcceptDialog != td.base+InviteDialogPath {
		t.Fatalf("capabilities %v, inviteAcceptDialog %q", d.Capabilities, d.InviteAcceptDialog)
	}
}

// The page behind invite links shows the code and changes nothing.
func TestInviteDialogPage(t *testing.T) {
	td := startDaemon(t, nil)
	ctx := context.Background()
	ci, _ := td.Agent.CreateInvite(ctx, "", 0)
	get := func(u string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, h, body := get(ci.Link)
	if code != 200 || !strings.Contains(body, ci.InviteString) || !strings.Contains(body, td.cfg.Address()) {
		t.Fatalf("own invite page: %d\n%s", code, body)
	}
	if h.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", h)
	}
	code, _, body = get(td.base + InviteDialogPath + "?token=abc%3Cscript%3E&providerDomain=cloud.example.org")
	if code != 200 || !strings.Contains(body, "cloud.example.org") || strings.Contains(body, "<script>") ||
		!strings.Contains(body, ocm.FormatInvite("abc<script>", "cloud.example.org")) {
		t.Fatalf("someone else's invite: %d\n%s", code, body)
	}
	if code, _, _ = get(td.base + InviteDialogPath + "?providerDomain=cloud.example.org"); code != 400 {
		t.Fatalf("no token: %d", code)
	}
	resp, err := http.Post(ci.Link, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if inv, _ := td.Agent.store.Invite(ctx, ci.Invite.ID); inv.State != store.InviteOpen {
		t.Fatalf("viewing the page changed the invite to %s", inv.State)
	}
	if strings.Contains(td.logs.String(), tokenOf(t, ci)) {
		t.Fatal("the token was logged")
	}
}
