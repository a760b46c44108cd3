package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/ocm-agent/ocm-agent/ocm"
)

// Body limits: a share is a few KiB even from the chattiest peer.
const (
	maxShareBody        = 64 << 10
	maxNotificationBody = 32 << 10
	maxInviteBody       = 16 << 10
)

// Peer is who sent a request, as established by authentication.
type Peer struct {
	Host    string // provider host[:port] the request is attributed to
	Signed  bool
	KeyID   string
	Profile string // "rfc9421" or "cavage" when signed
}

// Handler receives what the API accepted.
type Handler interface {
	ReceiveShare(ctx context.Context, s *ocm.NewShare, p Peer) (recipientDisplayName string, err error)
	ReceiveNotification(ctx context.Context, n *ocm.Notification, p Peer) error
	// UnsignedAllowed says whether an unsigned request from host is acceptable.
	UnsignedAllowed(ctx context.Context, host string) (bool, error)
}

// InviteHandler is implemented by handlers that take invite acceptances.
type InviteHandler interface {
	InviteAccepted(ctx context.Context, inv *ocm.InviteAccepted, p Peer) (*ocm.InviteAcceptedResponse, error)
}

// ErrNoSignature is what an Authenticator returns for an unsigned request.
var ErrNoSignature = errors.New("request is not signed")

// Authenticator verifies a request's HTTP message signature. With
// expectHost set, the signing key must belong to that provider; without,
// the provider is the one the key belongs to. It returns ErrNoSignature
// (wrapped or not) when the request carries no signature.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, body []byte, expectHost string) (Peer, error)
}

// Server is the public OCM API.
type Server struct {
	handler Handler
	auth    Authenticator
	log     *slog.Logger
	docs    atomic.Pointer[docs]
	mux     *http.ServeMux
}

type docs struct {
	current, legacy, jwks []byte
}

// New builds the API. auth may be nil, in which case signed requests are
// refused (nothing could verify them) and unsigned ones go to policy.
func New(h Handler, auth Authenticator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{handler: h, auth: auth, log: log, mux: http.NewServeMux()}
	s.docs.Store(&docs{})
	s.mux.HandleFunc("GET /.well-known/ocm", s.discovery)
	s.mux.HandleFunc("GET /ocm-provider", s.discovery)
	s.mux.HandleFunc("GET /ocm-provider/", s.discovery)
	s.mux.HandleFunc("GET /ocm/jwks", s.jwks)
	s.mux.HandleFunc("POST /ocm/shares", s.shares)
	s.mux.HandleFunc("POST /ocm/notifications", s.notifications)
	s.mux.HandleFunc("POST /ocm/invite-accepted", s.inviteAccepted)
	s.mux.HandleFunc("POST /ocm/token", s.token)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", nil)
	})
	return s
}

// SetDiscovery publishes the discovery document; legacy is the variant
// with a 1.x apiVersion for peers that refuse newer documents.
func (s *Server) SetDiscovery(current, legacy *ocm.Discovery) error {
	c, err := json.Marshal(current)
	if err != nil {
		return fmt.Errorf("receiver: encode discovery document: %w", err)
	}
	l, err := json.Marshal(legacy)
	if err != nil {
		return fmt.Errorf("receiver: encode discovery document: %w", err)
	}
	old := s.docs.Load()
	s.docs.Store(&docs{current: c, legacy: l, jwks: old.jwks})
	return nil
}

// SetJWKS publishes the JWK Set served at /ocm/jwks.
func (s *Server) SetJWKS(jwks []byte) {
	old := s.docs.Load()
	s.docs.Store(&docs{current: old.current, legacy: old.legacy, jwks: jwks})
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// wantsLegacy reports whether the client only understands 1.x discovery
// documents: Nextcloud's crawler checks apiVersion against a fixed list.
func wantsLegacy(r *http.Request) bool {
	return strings.Contains(r.UserAgent(), "Nextcloud Server Crawler")
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ocm-provider/" || r.URL.Path == "/ocm-provider" || r.URL.Path == "/.well-known/ocm" {
		d := s.docs.Load()
		body := d.current
		if wantsLegacy(r) {
			body = d.legacy
		}
		if body == nil {
			writeError(w, http.StatusServiceUnavailable, "discovery document not ready", nil)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(body)
		return
	}
	writeError(w, http.StatusNotFound, "NOT_FOUND", nil)
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	d := s.docs.Load()
	if d.jwks == nil {
		writeError(w, http.StatusNotFound, "this server publishes no keys", nil)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(d.jwks)
}

// readBody reads at most max bytes; a larger body is an error the caller
// answers with 413.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	// The Content-Type is not checked: peers label JSON variously, and the
	// body is parsed strictly as JSON whatever its label.
	if r.ContentLength > max {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", max), nil)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", max), nil)
		} else {
			writeError(w, http.StatusBadRequest, "could not read the body", nil)
		}
		return nil, false
	}
	return body, true
}

// authenticate establishes the peer. expectHost is the provider the body
// claims to come from ("" when it names none).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, body []byte, expectHost string) (Peer, bool) {
	var p Peer
	var err error
	if s.auth != nil {
		p, err = s.auth.Authenticate(r.Context(), r, body, expectHost)
	} else {
		err = ErrNoSignature
		if r.Header.Get("Signature") != "" || r.Header.Get("Signature-Input") != "" {
			err = errors.New("signature verification is not available")
		}
	}
	switch {
	case err == nil:
		p.Signed = true
		if expectHost != "" {
			p.Host = expectHost
		}
		return p, true
	case errors.Is(err, ErrNoSignature):
		if expectHost == "" {
			return Peer{}, true // the handler matches unsigned requests itself
		}
		ok, perr := s.handler.UnsignedAllowed(r.Context(), expectHost)
		if perr != nil {
			s.log.Warn("could not decide whether an unsigned request is acceptable", "peer", expectHost, "err", perr)
			writeError(w, http.StatusServiceUnavailable, "could not reach the sending server to check its keys", nil)
			return Peer{}, false
		}
		if !ok {
			writeError(w, http.StatusUnauthorized, "this request must be signed (HTTP message signature)", nil)
			return Peer{}, false
		}
		return Peer{Host: expectHost}, true
	default:
		s.log.Info("request signature refused", "path", r.URL.Path, "claimed", expectHost, "err", err)
		writeError(w, http.StatusUnauthorized, "signature verification failed: "+err.Error(), nil)
		return Peer{}, false
	}
}

func (s *Server) shares(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, maxShareBody)
	if !ok {
		return
	}
	share, err := ocm.ParseNewShare(body)
	if err != nil {
		s.fail(w, err)
		return
	}
	peer, ok := s.authenticate(w, r, body, share.Sender.Host)
	if !ok {
		return
	}
	name, err := s.handler.ReceiveShare(r.Context(), share, peer)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"recipientDisplayName": name})
}

func (s *Server) notifications(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, maxNotificationBody)
	if !ok {
		return
	}
	n, err := ocm.ParseNotification(body)
	if err != nil {
		s.fail(w, err)
		return
	}
	peer, ok := s.authenticate(w, r, body, "")
	if !ok {
		return
	}
	if err := s.handler.ReceiveNotification(r.Context(), n, peer); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{})
}

func (s *Server) inviteAccepted(w http.ResponseWriter, r *http.Request) {
	ih, ok := s.handler.(InviteHandler)
	if !ok {
		writeError(w, http.StatusNotImplemented, "invites are not supported", nil)
		return
	}
	body, ok := readBody(w, r, maxInviteBody)
	if !ok {
		return
	}
	inv, err := ocm.ParseInviteAccepted(body)
	if err != nil {
		s.fail(w, err)
		return
	}
	peer, ok := s.authenticate(w, r, body, inv.RecipientProvider)
	if !ok {
		return
	}
	resp, err := ih.InviteAccepted(r.Context(), inv, peer)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// token is the token endpoint. The agent only receives shares, so it
// holds no codes and every grant is invalid; the endpoint exists because
// some senders (opencloudmesh-go) only send must-exchange-token shares to
// receivers that advertise exchange-token with a tokenEndPoint.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, io.LimitReader(r.Body, 16<<10))
	writeJSON(w, http.StatusBadRequest, ocm.TokenError{Error: "invalid_grant", ErrorDescription: "this agent shares nothing, so it has no codes to exchange"})
}

// fail answers err with the status it maps to.
func (s *Server) fail(w http.ResponseWriter, err error) {
	var ve ocm.ValidationErrors
	var ue *ocm.UnsupportedError
	var se interface {
		HTTPStatus() int
		ValidationErrors() []ocm.ValidationError
	}
	switch {
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, "INVALID_PARAMETERS", ve)
	case errors.Is(err, ocm.ErrBadJSON):
		writeError(w, http.StatusBadRequest, err.Error(), nil)
	case errors.As(err, &ue):
		writeError(w, http.StatusNotImplemented, ue.Error(), nil)
	case errors.As(err, &se):
		code := se.HTTPStatus()
		switch code {
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "30")
		case http.StatusTooManyRequests:
			// A full list of pending shares empties at the person's pace.
			w.Header().Set("Retry-After", "3600")
		}
		writeError(w, code, err.Error(), se.ValidationErrors())
	default:
		s.log.Error("request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error", nil)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string, ve []ocm.ValidationError) {
	writeJSON(w, code, ocm.Error{Message: msg, ValidationErrors: ve})
}
