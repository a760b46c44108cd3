package ocmtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"time"
)

// Notification is a notification received at /ocm/notifications.
type Notification struct {
	Type         string
	ResourceType string
	ProviderID   string
	ShareID      string // our share with that providerId, "" when unknown
	Payload      json.RawMessage
	Body         []byte
	Signature    SignatureInfo
	Status       int // what the server answered
	RemoteAddr   string
	Time         time.Time
}

// Notifications returns every notification received, oldest first.
func (s *Server) Notifications() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.notifications)
}

// WaitNotification waits for a received notification that match accepts
// (nil accepts any), bounded by ctx (and a minute when ctx has no deadline).
func (s *Server) WaitNotification(ctx context.Context, match func(Notification) bool) (Notification, error) {
	return waitMatch(ctx, s, func() []Notification { return s.notifications }, match)
}

// waitMatch waits until list (read under the server's lock) holds an item
// that match accepts (nil accepts any), and returns the first such item.
func waitMatch[T any](ctx context.Context, s *Server, list func() []T, match func(T) bool) (T, error) {
	var found T
	err := s.waitFor(ctx, func() bool {
		for _, x := range list() {
			if match == nil || match(x) {
				found = x
				return true
			}
		}
		return false
	})
	return found, err
}

func (s *Server) serveNotifications(w http.ResponseWriter, r *http.Request) {
	body, ok := readPost(w, r)
	if !ok {
		return
	}
	n := Notification{Body: body, RemoteAddr: r.RemoteAddr, Time: time.Now()}
	n.Signature, _ = s.verify(r.Context(), r, body)
	status, answer := s.takeNotification(&n, body)
	n.Status = status
	s.mu.Lock()
	s.notifications = append(s.notifications, n)
	s.broadcast()
	s.mu.Unlock()
	writeJSON(w, status, answer)
}

func (s *Server) takeNotification(n *Notification, body []byte) (int, any) {
	if status, msg := s.signatureRefusal(n.Signature); msg != "" {
		return status, errorBody{Message: msg}
	}
	parsed, ve, err := parseNotification(body)
	if err != nil {
		return http.StatusBadRequest, errorBody{Message: err.Error()}
	}
	if len(ve) > 0 {
		return http.StatusBadRequest, errorBody{Message: "invalid notification", ValidationErrors: ve}
	}
	n.Type, n.ResourceType, n.ProviderID, n.Payload = parsed.NotificationType, parsed.ResourceType, parsed.ProviderID, parsed.Notification
	if !slices.Contains(knownNotifications, n.Type) {
		return http.StatusNotImplemented, errorBody{Message: "notification type " + n.Type + " is not supported"}
	}
	if st := s.faults.refuseNotify.Load(); st != 0 {
		return int(st), errorBody{Message: "refused: " + http.StatusText(int(st))}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.shares {
		if rec.ProviderID != n.ProviderID {
			continue
		}
		n.ShareID = rec.ID
		if s.opts.OCMGoNotifications && n.Type == ShareDeclined && rec.State == ShareStateAccepted {
			return http.StatusConflict, errorBody{Message: "SHARE_STATUS_CONFLICT"}
		}
		switch n.Type {
		case ShareAccepted:
			if rec.State == ShareStatePending {
				rec.State = ShareStateAccepted
			}
		case ShareDeclined:
			if rec.State == ShareStatePending || rec.State == ShareStateAccepted {
				rec.State = ShareStateDeclined
				s.dropTokensLocked(rec.ID)
			}
		}
		break
	}
	if s.opts.OCMGoNotifications {
		return http.StatusOK, map[string]string{"status": "ok"}
	}
	return http.StatusCreated, struct{}{}
}

type inviteRec struct {
	token   string
	user    string
	expires time.Time
	used    bool
}

// InviteOptions configure CreateInvite.
type InviteOptions struct {
	// TTL is how long the invite can be accepted, default a day; a
	// negative TTL makes an invite that has already expired.
	TTL time.Duration
}

// InviteAcceptance records one call of /ocm/invite-accepted.
type InviteAcceptance struct {
	Token             string // the invite token presented; String redacts it
	RecipientProvider string
	UserID            string
	Email             string
	Name              string
	Signature         SignatureInfo
	Status            int // 200, 400 (unknown or expired), 409 (used), ...
	Time              time.Time
}

// String describes the acceptance without its token.
func (a InviteAcceptance) String() string {
	return "invite acceptance by " + a.UserID + "@" + a.RecipientProvider + " (" + http.StatusText(a.Status) + ")"
}

// CreateInvite makes a single-use invite token for the server's user and
// returns it with its OCM 1.4 invite string, base64url("<token>@<host:port>")
// without padding.
func (s *Server) CreateInvite(opts InviteOptions) (token, inviteString string) {
	ttl := opts.TTL
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	token = newUUID()
	s.mu.Lock()
	s.invites[token] = &inviteRec{token: token, user: s.opts.User, expires: time.Now().Add(ttl)}
	s.mu.Unlock()
	return token, base64.RawURLEncoding.EncodeToString([]byte(token + "@" + s.host))
}

// InviteAcceptances returns every invite acceptance request received.
func (s *Server) InviteAcceptances() []InviteAcceptance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acceptances)
}

// WaitInviteAcceptance waits for a recorded acceptance that match accepts
// (nil accepts any), bounded by ctx.
func (s *Server) WaitInviteAcceptance(ctx context.Context, match func(InviteAcceptance) bool) (InviteAcceptance, error) {
	return waitMatch(ctx, s, func() []InviteAcceptance { return s.acceptances }, match)
}

func (s *Server) serveInviteAccepted(w http.ResponseWriter, r *http.Request) {
	body, ok := readPost(w, r)
	if !ok {
		return
	}
	a := InviteAcceptance{Time: time.Now()}
	a.Signature, _ = s.verify(r.Context(), r, body)
	status, answer := s.acceptInvite(&a, body)
	a.Status = status
	s.mu.Lock()
	s.acceptances = append(s.acceptances, a)
	s.broadcast()
	s.mu.Unlock()
	writeJSON(w, status, answer)
}

func (s *Server) acceptInvite(a *InviteAcceptance, body []byte) (int, any) {
	if status, msg := s.signatureRefusal(a.Signature); msg != "" {
		return status, errorBody{Message: msg}
	}
	var req inviteAccepted
	if err := checkJSON(body); err != nil {
		return http.StatusBadRequest, errorBody{Message: err.Error()}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, errorBody{Message: "invalid JSON: " + err.Error()}
	}
	a.Token, a.RecipientProvider, a.UserID, a.Email, a.Name = req.Token, req.RecipientProvider, req.UserID, req.Email, req.Name
	var ve []validationError
	for _, f := range []validationError{{"recipientProvider", req.RecipientProvider}, {"token", req.Token}, {"userID", req.UserID}} {
		if f.Message == "" {
			ve = append(ve, validationError{f.Name, "is required"})
		}
	}
	if len(ve) > 0 {
		return http.StatusBadRequest, errorBody{Message: "invalid invite acceptance", ValidationErrors: ve}
	}
	if _, err := normalizeHost(req.RecipientProvider); err != nil {
		return http.StatusBadRequest, errorBody{Message: "invalid invite acceptance",
			ValidationErrors: []validationError{{Name: "recipientProvider", Message: err.Error()}}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invites[req.Token]
	switch {
	case !ok:
		return http.StatusBadRequest, errorBody{Message: "invalid or unknown invite token"}
	case inv.used:
		return http.StatusConflict, errorBody{Message: "invite already accepted"}
	case !time.Now().Before(inv.expires):
		return http.StatusBadRequest, errorBody{Message: "invite token expired"}
	}
	inv.used = true
	return http.StatusOK, inviteAcceptedAnswer{UserID: s.opts.User, Email: s.opts.Email, Name: s.opts.DisplayName}
}

// readPost reads the body of a POST, bounded by maxBody; it answers the
// request itself when it cannot.
func readPost(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Message: "use POST"})
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Message: "body unreadable or too large"})
		return nil, false
	}
	return body, true
}

// signatureRefusal says why a request with this signature is refused,
// with the status to answer ("" when it is not): a bad signature always,
// none when required. Reading signatures as Nextcloud does, the answer is
// Nextcloud's 400 "Invalid signature".
func (s *Server) signatureRefusal(sig SignatureInfo) (int, string) {
	switch {
	case sig.Present && !sig.Verified && s.opts.ReadSignaturesAsCavage:
		return http.StatusBadRequest, "Invalid signature"
	case sig.Present && !sig.Verified:
		return http.StatusUnauthorized, "the request signature does not verify"
	case !sig.Present && s.opts.RequireSignedRequests:
		return http.StatusUnauthorized, "requests must be signed"
	}
	return 0, ""
}
