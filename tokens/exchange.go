package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ocm-agent/ocm-agent/ocm"
)

// RequestSigner signs an outgoing request (RFC 9421 for the 1.4 contract);
// the agent implements it over httpsig with its own key.
type RequestSigner interface {
	SignRequest(req *http.Request, body []byte) error
}

// Defaults of an Exchanger.
const (
	DefaultExchangeTimeout = 15 * time.Second
	maxTokenResponse       = 64 << 10
	maxTokenLen            = 8192
	maxTokenLifetime       = 365 * 24 * time.Hour
	maxErrorDescription    = 200
)

// Grant types of the two token contracts.
const (
	GrantAuthorizationCode = "authorization_code"     // 1.4, form-encoded
	GrantLegacyCode        = "ocm_authorization_code" // older drafts, JSON
	GrantRefreshToken      = "refresh_token"
)

// Errors of the token endpoint (OAuth 2.0 error codes, RFC 6749 5.2); a
// *TokenError matches the one its code names.
var (
	ErrInvalidRequest       = errors.New("invalid_request")
	ErrInvalidClient        = errors.New("invalid_client")
	ErrInvalidGrant         = errors.New("invalid_grant")
	ErrUnauthorizedClient   = errors.New("unauthorized_client")
	ErrUnsupportedGrantType = errors.New("unsupported_grant_type")
	// ErrTokenEndpoint matches every *TokenError.
	ErrTokenEndpoint = errors.New("token endpoint error")
	// ErrBadTokenResponse: a 200 answer that is not a valid token.
	ErrBadTokenResponse = errors.New("malformed token response")
	// ErrInsecureEndpoint: the endpoint is not https (and insecure peers
	// are not allowed), or carries credentials.
	ErrInsecureEndpoint = errors.New("refusing to send a code to this endpoint")
)

var oauthErrors = map[string]error{
	"invalid_request":        ErrInvalidRequest,
	"invalid_client":         ErrInvalidClient,
	"invalid_grant":          ErrInvalidGrant,
	"unauthorized_client":    ErrUnauthorizedClient,
	"unsupported_grant_type": ErrUnsupportedGrantType,
}

// TokenError is a refusal from a token endpoint. It never holds the code.
type TokenError struct {
	Endpoint    string // scheme://host/path
	Status      int
	Code        string // OAuth error code; invalid_grant for a Nextcloud 401
	Description string // the peer's error_description, cleaned
}

func (e *TokenError) Error() string {
	s := fmt.Sprintf("token endpoint %s answered %d", e.Endpoint, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Is matches ErrTokenEndpoint and the sentinel of the OAuth code.
func (e *TokenError) Is(target error) bool {
	if target == ErrTokenEndpoint {
		return true
	}
	s, ok := oauthErrors[e.Code]
	return ok && s == target
}

// Temporary reports whether trying again later may help (5xx, 429).
func (e *TokenError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// Token is an access token from a token endpoint.
type Token struct {
	AccessToken  string
	TokenType    string
	ExpiresIn    time.Duration // zero when the endpoint did not say
	RefreshToken string        // legacy contract only
}

// String describes the token without its values.
func (t Token) String() string {
	return fmt.Sprintf("%s token (expires in %s, refresh token: %t)", t.TokenType, t.ExpiresIn, t.RefreshToken != "")
}

// LogValue logs the token without its values.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", t.TokenType), slog.Duration("expires_in", t.ExpiresIn),
		slog.Bool("refresh_token", t.RefreshToken != ""))
}

// Exchanger talks to token endpoints.
type Exchanger struct {
	// Client sends the requests; redirects are never followed. A client
	// with no timeout of its own is fine: every call is bounded by Timeout.
	Client *http.Client
	// Signer signs each request; nil sends them unsigned.
	Signer RequestSigner
	// Timeout bounds one exchange; DefaultExchangeTimeout when zero.
	Timeout time.Duration
	// AllowInsecure permits http:// endpoints (tests, labs).
	AllowInsecure bool
	UserAgent     string
	Logger        *slog.Logger
}

// Exchange performs the 1.4 contract: a signed, form-encoded
// grant_type=authorization_code request at the sender's tokenEndPoint.
func (e *Exchanger) Exchange(ctx context.Context, endpoint, clientID, code string) (Token, error) {
	form := url.Values{"grant_type": {GrantAuthorizationCode}, "client_id": {clientID}, "code": {code}}
	return e.do(ctx, endpoint, "application/x-www-form-urlencoded", []byte(form.Encode()), clientID, false, code)
}

// ExchangeLegacy performs the older contract: JSON
// {"grant_type":"ocm_authorization_code","client_id":...,"code":...} at
// <endPoint>/token; the answer may carry a refresh token.
func (e *Exchanger) ExchangeLegacy(ctx context.Context, endpoint, clientID, code string) (Token, error) {
	body, err := json.Marshal(map[string]string{"grant_type": GrantLegacyCode, "client_id": clientID, "code": code})
	if err != nil {
		return Token{}, err
	}
	return e.do(ctx, endpoint, "application/json", body, clientID, true, code)
}

// RefreshLegacy asks the legacy endpoint for a new token with a refresh
// token (JSON {"grant_type":"refresh_token","client_id":...,"refresh_token":...}).
func (e *Exchanger) RefreshLegacy(ctx context.Context, endpoint, clientID, refreshToken string) (Token, error) {
	body, err := json.Marshal(map[string]string{"grant_type": GrantRefreshToken, "client_id": clientID, "refresh_token": refreshToken})
	if err != nil {
		return Token{}, err
	}
	return e.do(ctx, endpoint, "application/json", body, clientID, true, refreshToken)
}

func (e *Exchanger) do(ctx context.Context, endpoint, contentType string, body []byte, clientID string, legacy bool, secret string) (Token, error) {
	defer clear(body)
	u, err := e.checkEndpoint(endpoint)
	if err != nil {
		return Token{}, err
	}
	if clientID == "" {
		return Token{}, errors.New("token exchange: no client_id (our host[:port]) known")
	}
	if secret == "" {
		return Token{}, errors.New("token exchange: no code to exchange")
	}
	where := redactURL(u)
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultExchangeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Token{}, fmt.Errorf("token endpoint %s: %w", where, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if e.UserAgent != "" {
		req.Header.Set("User-Agent", e.UserAgent)
	}
	if e.Signer != nil {
		if err := e.Signer.SignRequest(req, body); err != nil {
			return Token{}, fmt.Errorf("token endpoint %s: signing the request: %w", where, err)
		}
	}
	start := time.Now()
	resp, err := e.client().Do(req)
	if err != nil {
		return Token{}, fmt.Errorf("token endpoint %s: %w", where, scrubURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return Token{}, fmt.Errorf("token endpoint %s: reading the answer: %w", where, err)
	}
	e.logger().Debug("token endpoint answered", "endpoint", where, "status", resp.StatusCode,
		"legacy", legacy, "duration", time.Since(start))
	if len(raw) > maxTokenResponse {
		return Token{}, fmt.Errorf("token endpoint %s: %w: answer larger than %d bytes", where, ErrBadTokenResponse, maxTokenResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return Token{}, tokenError(where, resp.StatusCode, raw, secret)
	}
	tok, err := parseToken(raw, legacy)
	if err != nil {
		return Token{}, fmt.Errorf("token endpoint %s: %w", where, err)
	}
	return tok, nil
}

func (e *Exchanger) client() *http.Client {
	var c http.Client
	if e.Client != nil {
		c = *e.Client
	}
	// A redirect would carry the code to wherever the peer points.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (e *Exchanger) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

func (e *Exchanger) checkEndpoint(endpoint string) (*url.URL, error) {
	if endpoint == "" {
		return nil, ErrNoTokenEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: not an absolute URL", ErrInsecureEndpoint)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: the URL carries credentials", ErrInsecureEndpoint)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && e.AllowInsecure:
	default:
		return nil, fmt.Errorf("%w: %s is not https", ErrInsecureEndpoint, redactURL(u))
	}
	u.Fragment = ""
	return u, nil
}

// redactURL names an endpoint in errors and logs: scheme, host and path.
func redactURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// scrubURLError drops the *url.Error wrapper (whose text repeats the URL)
// and keeps its cause.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// tokenError maps a non-200 answer. Nextcloud answers 401 for a rejected
// code where the spec says 400 invalid_grant, and the older contract
// answers 403 "Token denied": both count as invalid_grant unless the body
// names another OAuth error.
func tokenError(where string, status int, raw []byte, secret string) error {
	te := &TokenError{Endpoint: where, Status: status}
	var body ocm.TokenError
	if ocm.CheckJSON(raw) == nil && json.Unmarshal(raw, &body) == nil {
		te.Code = cleanText(body.Error, 64, secret)
		te.Description = cleanText(body.ErrorDescription, maxErrorDescription, secret)
	}
	if _, known := oauthErrors[te.Code]; !known && te.Code != "" {
		te.Description = strings.TrimSpace(te.Code + " " + te.Description)
		te.Code = ""
	}
	if te.Code == "" && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		te.Code = "invalid_grant"
	}
	return te
}

// cleanText keeps printable ASCII of a peer's text, at most n bytes, with
// the secret we sent removed should the peer echo it.
func cleanText(s string, n int, secret string) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[redacted]")
		s = strings.ReplaceAll(s, url.QueryEscape(secret), "[redacted]")
	}
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if c := s[i]; c >= ' ' && c < 0x7f {
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

// parseToken reads a 200 answer strictly: one JSON object without
// duplicate keys or trailing data, typed fields, a bearer token made of
// visible ASCII, a non-negative integer lifetime.
func parseToken(raw []byte, legacy bool) (Token, error) {
	if err := ocm.CheckJSON(raw); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrBadTokenResponse, err)
	}
	var r ocm.TokenResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrBadTokenResponse, scrubJSONError(err))
	}
	if !headerSafe(r.AccessToken) {
		return Token{}, fmt.Errorf("%w: access_token missing, too long or not visible ASCII", ErrBadTokenResponse)
	}
	switch {
	case strings.EqualFold(r.TokenType, "bearer"):
	case r.TokenType == "" && legacy:
	default:
		return Token{}, fmt.Errorf("%w: token_type %q is not Bearer", ErrBadTokenResponse, cleanText(r.TokenType, 32, r.AccessToken))
	}
	if r.ExpiresIn < 0 {
		return Token{}, fmt.Errorf("%w: negative expires_in", ErrBadTokenResponse)
	}
	life := time.Duration(r.ExpiresIn) * time.Second
	if r.ExpiresIn > int64(maxTokenLifetime/time.Second) {
		life = maxTokenLifetime
	}
	if r.RefreshToken != "" && !headerSafe(r.RefreshToken) {
		return Token{}, fmt.Errorf("%w: refresh_token too long or not visible ASCII", ErrBadTokenResponse)
	}
	if !legacy {
		// The 1.4 contract issues no refresh tokens; repeat the exchange.
		r.RefreshToken = ""
	}
	return Token{AccessToken: r.AccessToken, TokenType: "Bearer", ExpiresIn: life, RefreshToken: r.RefreshToken}, nil
}

// scrubJSONError keeps the kind of a decoding error without the value that
// caused it.
func scrubJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q: want %s, got %s", te.Field, te.Type, te.Value)
	}
	return errors.New("not a token object")
}

// headerSafe reports whether s can be sent in an Authorization header:
// 1 to maxTokenLen bytes of visible ASCII.
func headerSafe(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
