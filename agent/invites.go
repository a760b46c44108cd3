package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ocm-agent/ocm-agent/discovery"
	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
)

// InviteDialogPath is the page on the public endpoint that invite links
// lead to, advertised as inviteAcceptDialog. It only shows what to do
// with the invite: accepting one is always the user's own gesture, made
// through the control socket (CLI or tray), never by loading a page.
const InviteDialogPath = "/ocm/accept-invite"

// Invite lifetimes.
const (
	DefaultInviteTTL = 7 * 24 * time.Hour
	MaxInviteTTL     = 365 * 24 * time.Hour
	MinInviteTTL     = time.Second
)

// inviteAcceptTimeout bounds accepting an invite (discovery and the
// request), below the control client's own 30 s.
const inviteAcceptTimeout = 25 * time.Second

// CreatedInvite is a new invite as its creator sees it once: the invite
// string and link carry the token, which is not kept anywhere else.
type CreatedInvite struct {
	Invite       store.Invite `json:"invite"`
	InviteString string       `json:"inviteString"`
	Link         string       `json:"link"`
}

// String describes the invite without its token.
func (c CreatedInvite) String() string { return "invite " + c.Invite.ID }

// LogValue keeps the token out of structured logs.
func (c CreatedInvite) LogValue() slog.Value { return slog.StringValue(c.String()) }

// EnableInvites advertises the invites capability and the invite dialog
// in the discovery document; call it before DiscoveryDocs.
func (a *Agent) EnableInvites() {
	a.mu.Lock()
	a.capabilities = appendUnique(a.capabilities, "invites")
	a.inviteDialog = a.cfg.PublicURL + InviteDialogPath
	a.mu.Unlock()
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func (a *Agent) displayName() string {
	if a.cfg.DisplayName != "" {
		return a.cfg.DisplayName
	}
	return a.cfg.User
}

// CreateInvite issues a single-use invite valid for ttl (0: the default).
// Only the token's SHA-256 is stored.
func (a *Agent) CreateInvite(ctx context.Context, note string, ttl time.Duration) (CreatedInvite, error) {
	if ttl == 0 {
		ttl = DefaultInviteTTL
	}
	if ttl < MinInviteTTL || ttl > MaxInviteTTL {
		return CreatedInvite{}, errorf(http.StatusBadRequest, fmt.Sprintf("an invite must expire between %s and %s from now", MinInviteTTL, formatTTL(MaxInviteTTL)))
	}
	if len(note) > 500 {
		return CreatedInvite{}, errorf(http.StatusBadRequest, "the note is longer than 500 bytes")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return CreatedInvite{}, fmt.Errorf("make an invite token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	inv, err := a.store.AddInvite(ctx, store.Invite{ID: newID(), TokenHash: hashToken(token), Note: note,
		ExpiresAt: time.Now().Add(ttl).UTC()})
	if err != nil {
		return CreatedInvite{}, a.unavailable("store invite", err)
	}
	host := a.cfg.PublicHost()
	link := a.cfg.PublicURL + InviteDialogPath + "?" + url.Values{"token": {token}, "providerDomain": {host}}.Encode()
	a.log.Info("invite created", "invite", inv.ID, "expires", inv.ExpiresAt)
	a.events.publish("invite", inv.ID, store.InviteOpen)
	return CreatedInvite{Invite: inv, InviteString: ocm.FormatInvite(token, host), Link: link}, nil
}

func formatTTL(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// Invites lists the invites the user issued.
func (a *Agent) Invites(ctx context.Context) ([]store.Invite, error) { return a.store.Invites(ctx) }

// RevokeInvite makes an unused invite unusable.
func (a *Agent) RevokeInvite(ctx context.Context, id string) (store.Invite, error) {
	inv, err := a.store.RevokeInvite(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return inv, fmt.Errorf("no invite with id %q: %w", id, ErrNotFound)
	case errors.Is(err, store.ErrConflict):
		return inv, fmt.Errorf("invite %s was already accepted by %s; remove the contact instead: %w", id, inv.AcceptedBy, ErrConflict)
	case err != nil:
		return inv, err
	}
	a.log.Info("invite revoked", "invite", id)
	a.events.publish("invite", id, store.InviteRevoked)
	return inv, nil
}

// InviteAccepted implements receiver.InviteHandler: someone accepted an
// invite the user issued. The receiver has authenticated the request
// (signed by recipientProvider's key, or unsigned where policy allows).
func (a *Agent) InviteAccepted(ctx context.Context, req *ocm.InviteAccepted, p Peer) (*ocm.InviteAcceptedResponse, error) {
	server := req.RecipientProvider
	if p.Host != "" && !ocm.SameProvider(p.Host, server) {
		return nil, errorf(http.StatusForbidden, "the request is signed by another server than recipientProvider")
	}
	if !a.serverAllowed(server) {
		return nil, errorf(http.StatusForbidden, "this server does not accept invites from "+server)
	}
	addr := ocm.Address{User: req.UserID, Host: server}
	c := store.Contact{ID: newID(), Address: addr.String(), UserID: req.UserID, Server: server,
		Name: req.Name, Email: req.Email, Source: store.SourceAcceptedOurInvite}
	inv, c, err := a.store.RedeemInvite(ctx, hashToken(req.Token), time.Now(), c)
	switch {
	case errors.Is(err, store.ErrInviteUnknown):
		a.log.Info("invite acceptance with an unknown token", "from", addr.String(), "signed", p.Signed)
		return nil, errorf(http.StatusBadRequest, "invalid or unknown invite token")
	case errors.Is(err, store.ErrInviteExpired):
		return nil, errorf(http.StatusBadRequest, "the invite has expired")
	case errors.Is(err, store.ErrInviteRevoked):
		return nil, errorf(http.StatusBadRequest, "the invite was withdrawn")
	case errors.Is(err, store.ErrInviteUsed):
		return nil, errorf(http.StatusConflict, "the invite was already accepted")
	case err != nil:
		return nil, a.unavailable("accept invite", err)
	}
	a.log.Info("invite accepted", "invite", inv.ID, "contact", c.Address, "signed", p.Signed)
	a.events.publish("invite", inv.ID, store.InviteAccepted)
	a.events.publish("contact", c.ID, "added")
	return &ocm.InviteAcceptedResponse{UserID: a.cfg.User, Email: a.cfg.Email, Name: a.displayName()}, nil
}

// AcceptInvite accepts an invite someone sent the user: it discovers the
// inviting server, sends it the signed Invite Acceptance Request and, on
// success, adds the inviter to the contacts. Every failure is an *Error
// whose status says what happened (400 invalid, 403 not trusted, 409
// already used, 502 the server failed, 504 it did not answer) and whose
// message a person understands.
func (a *Agent) AcceptInvite(ctx context.Context, inv ocm.Invite) (store.Contact, error) {
	if ocm.SameProvider(inv.Provider, a.cfg.PublicHost()) {
		return store.Contact{}, errorf(http.StatusBadRequest, "this invite was made by this agent: give it to the person you want to invite")
	}
	if !a.serverAllowed(inv.Provider) {
		return store.Contact{}, errorf(http.StatusForbidden, inv.Provider+" is blocked by your allow or deny list (allow-servers, deny-servers): shares from it would be refused")
	}
	dc, pc := a.Discovery(), a.PeerClient()
	if dc == nil || pc == nil {
		return store.Contact{}, errorf(http.StatusServiceUnavailable, "the agent is still starting; try again in a moment")
	}
	ctx, cancel := context.WithTimeout(ctx, inviteAcceptTimeout)
	defer cancel()
	res, err := dc.Discover(ctx, inv.Provider)
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return store.Contact{}, errorf(http.StatusGatewayTimeout, inv.Provider+" did not answer in time; try again later")
		}
		return store.Contact{}, errorf(http.StatusBadGateway, fmt.Sprintf("could not find an OCM server at %s: %v", inv.Provider, err))
	}
	endpoint, err := apiURL(res, "invite-accepted")
	if err != nil {
		return store.Contact{}, errorf(http.StatusBadGateway, inv.Provider+": "+err.Error())
	}
	body, err := json.Marshal(ocm.InviteAccepted{RecipientProvider: a.cfg.PublicHost(), Token: inv.Token,
		UserID: a.cfg.User, Email: a.cfg.Email, Name: a.displayName()})
	if err != nil {
		return store.Contact{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return store.Contact{}, errorf(http.StatusBadGateway, inv.Provider+" advertises an unusable OCM end point")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := pc.Do(req)
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return store.Contact{}, errorf(http.StatusGatewayTimeout, inv.Provider+" did not answer in time; try again later")
		}
		return store.Contact{}, errorf(http.StatusBadGateway, "could not reach "+inv.Provider+": "+scrub(redactURLError(err), inv.Token))
	}
	defer resp.Body.Close()
	data, rerr := discovery.ReadLimited(resp.Body, 64<<10)
	said := peerMessage(data, inv.Token)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if rerr != nil {
			return store.Contact{}, errorf(http.StatusBadGateway, inv.Provider+" accepted the invite but its answer could not be read")
		}
		return a.addInviter(ctx, inv, data)
	case resp.StatusCode == http.StatusBadRequest:
		return store.Contact{}, errorf(http.StatusBadRequest, inv.Provider+" says the invite is not valid (unknown, expired or withdrawn)"+said)
	case resp.StatusCode == http.StatusUnauthorized:
		return store.Contact{}, errorf(http.StatusForbidden, inv.Provider+" did not accept this agent's signature"+said)
	case resp.StatusCode == http.StatusForbidden:
		return store.Contact{}, errorf(http.StatusForbidden, inv.Provider+" does not accept invites from this server"+said)
	case resp.StatusCode == http.StatusConflict:
		return store.Contact{}, errorf(http.StatusConflict, "the invite was already accepted"+said)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		return store.Contact{}, errorf(http.StatusBadGateway, inv.Provider+" does not support accepting invites (it answered "+strings.ToLower(http.StatusText(resp.StatusCode))+")")
	case resp.StatusCode == http.StatusGatewayTimeout:
		return store.Contact{}, errorf(http.StatusGatewayTimeout, inv.Provider+" did not answer in time; try again later")
	default:
		return store.Contact{}, errorf(http.StatusBadGateway, fmt.Sprintf("%s failed to accept the invite (HTTP %d); try again later%s", inv.Provider, resp.StatusCode, said))
	}
}

func (a *Agent) addInviter(ctx context.Context, inv ocm.Invite, data []byte) (store.Contact, error) {
	var r ocm.InviteAcceptedResponse
	if err := ocm.CheckJSON(data); err != nil || json.Unmarshal(data, &r) != nil {
		return store.Contact{}, errorf(http.StatusBadGateway, inv.Provider+" accepted the invite but answered with something that is not the expected JSON")
	}
	r.UserID, r.Name, r.Email = strings.TrimSpace(r.UserID), cleanText(r.Name, 256), cleanText(r.Email, 320)
	if r.UserID == "" || len(r.UserID) > 512 || strings.ContainsFunc(r.UserID, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return store.Contact{}, errorf(http.StatusBadGateway, inv.Provider+" accepted the invite but did not say who invited you (no usable userID)")
	}
	addr := ocm.Address{User: r.UserID, Host: inv.Provider}
	// Some servers answer with a whole OCM address; keep it when it is on
	// the inviting server.
	if full, err := ocm.ParseAddress(r.UserID); err == nil && ocm.SameProvider(full.Host, inv.Provider) {
		addr = ocm.Address{User: full.User, Host: inv.Provider}
	}
	c, err := a.store.PutContact(ctx, store.Contact{ID: newID(), Address: addr.String(), UserID: addr.User,
		Server: inv.Provider, Name: r.Name, Email: r.Email, Source: store.SourceAcceptedTheirInvite})
	if err != nil {
		return store.Contact{}, a.unavailable("store contact", err)
	}
	a.log.Info("invite accepted at its server", "contact", c.Address, "server", inv.Provider)
	a.events.publish("contact", c.ID, "added")
	return c, nil
}

// apiURL is <endPoint>/<name> of a discovered server; a relative endPoint
// is taken against the URL discovery found the server at.
func apiURL(res *discovery.Result, name string) (string, error) {
	ep := strings.TrimSpace(res.Doc.EndPoint)
	u, err := url.Parse(ep)
	if err != nil || ep == "" {
		return "", errors.New("its discovery document has an unusable endPoint")
	}
	if !u.IsAbs() {
		base, err := url.Parse(res.BaseURL)
		if err != nil {
			return "", errors.New("its discovery document has an unusable endPoint")
		}
		u = base.ResolveReference(u)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", errors.New("its endPoint is not an http(s) URL")
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/") + "/" + name, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// redactURLError drops the URL from a client error (it names only the
// endpoint, but keep the message short and to the point).
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// peerMessage is ": <the peer's message>" from an OCM error body, cleaned
// for showing to a person, or "".
func peerMessage(data []byte, secret string) string {
	var e ocm.Error
	if json.Unmarshal(data, &e) != nil || strings.TrimSpace(e.Message) == "" {
		return ""
	}
	m := cleanText(scrub(e.Message, secret), 200)
	if m == "" {
		return ""
	}
	return " (the server said: " + m + ")"
}

// scrub removes a secret from text that came from elsewhere.
func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// cleanText trims s, replaces control characters and cuts it to max bytes
// (on a character boundary).
func cleanText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > max {
		cut := max
		for cut > 0 && (s[cut]&0xc0) == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

var inviteDialogPage = template.Must(template.New("dialog").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>Open Cloud Mesh invite</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em;line-height:1.5}code{display:block;word-break:break-all;background:#eee;padding:.5em}</style>
</head><body>
{{if .Own}}
<h1>{{.Name}} invites you</h1>
<p>{{.Name}} (<b>{{.Address}}</b>) would like to share files with you over Open Cloud Mesh.</p>
<p>To accept, open the "accept invite" page of your own OCM server (Nextcloud, ownCloud, CERNBox, ocm-agent…) and paste this invite code:</p>
<code>{{.Code}}</code>
<p>The invite works once, and only until it expires.</p>
{{else if .Code}}
<h1>An invite from {{.Provider}}</h1>
<p>To accept it, choose "Accept an invite…" in the OCM tray menu, or run <b>ocm-agent invites accept</b> and paste this invite code:</p>
<code>{{.Code}}</code>
<p>Accept it only if you know who sent it: whoever it is can then share files with you.</p>
{{else}}
<h1>Not an invite</h1>
<p>This link does not hold a valid invite ({{.Problem}}). Ask the sender for a new one.</p>
{{end}}
</body></html>
`))

// InviteDialogHandler serves InviteDialogPath: invite links the user (or
// someone the user invited) opens in a browser. It changes nothing: it
// shows the invite code and how to accept it.
func (a *Agent) InviteDialogHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		data := struct {
			Own                                    bool
			Name, Address, Provider, Code, Problem string
		}{}
		q := r.URL.Query()
		token, provider := q.Get("token"), q.Get("providerDomain")
		if provider == "" {
			provider = a.cfg.PublicHost()
		}
		inv, err := ocm.ParseInviteParts(token, provider)
		if err != nil {
			data.Problem = strings.TrimPrefix(err.Error(), ocm.ErrBadInvite.Error()+": ")
			w.WriteHeader(http.StatusBadRequest)
		} else {
			data.Code, data.Provider = ocm.FormatInvite(inv.Token, inv.Provider), inv.Provider
			if ocm.SameProvider(inv.Provider, a.cfg.PublicHost()) {
				data.Own, data.Name, data.Address = true, a.displayName(), a.cfg.Address()
			}
		}
		if err := inviteDialogPage.Execute(w, data); err != nil {
			a.log.Debug("invite page not written", "err", err)
		}
	})
}
