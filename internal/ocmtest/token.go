package ocmtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// Token contracts.
const (
	// ContractForm is OCM 1.4: form-encoded grant_type=authorization_code,
	// answered without a refresh token.
	ContractForm = "form"
	// ContractJSON is the older JSON body with grant_type
	// ocm_authorization_code, answered with a refresh token.
	ContractJSON = "json"
)

const maxTokenBody = 64 << 10

type tokenRec struct {
	shareID  string
	clientID string
	expires  time.Time
}

// TokenRequest records one call of the token endpoint (never the code).
type TokenRequest struct {
	Contract  string // ContractForm | ContractJSON | "" when unreadable
	GrantType string
	ClientID  string
	ShareID   string // the share the code or refresh token belonged to
	Signature SignatureInfo
	Status    int
	Error     string // the OAuth error code answered, "" on success
	Time      time.Time
}

// TokenRequests returns the token endpoint calls received so far.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenRequest(nil), s.tokenRequests...)
}

// ExpireTokensNow makes every access token issued so far expire; refresh
// tokens stay valid.
func (s *Server) ExpireTokensNow() {
	past := time.Now().Add(-time.Second)
	s.mu.Lock()
	for _, t := range s.tokens {
		t.expires = past
	}
	s.mu.Unlock()
}

// RevokeShare ends a share without telling the receiver: its code becomes
// an invalid grant and its tokens and secret stop opening WebDAV.
func (s *Server) RevokeShare(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.shares[id]
	if !ok {
		return false
	}
	rec.State = ShareStateRevoked
	s.dropTokensLocked(id)
	s.broadcast()
	return true
}

// RestoreShare serves a revoked share again (its secret and code work
// again; tokens issued before stay gone).
func (s *Server) RestoreShare(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.shares[id]
	if !ok || rec.State != ShareStateRevoked {
		return false
	}
	rec.State = ShareStateAccepted
	s.broadcast()
	return true
}

func (s *Server) dropTokensLocked(shareID string) {
	for k, t := range s.tokens {
		if t.shareID == shareID {
			delete(s.tokens, k)
		}
	}
	for k, t := range s.refresh {
		if t.shareID == shareID {
			delete(s.refresh, k)
		}
	}
}

type tokenError struct {
	status int
	code   string
	desc   string
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	rec := TokenRequest{Time: time.Now()}
	resp, terr := s.token(r, &rec)
	if terr != nil {
		rec.Status, rec.Error = terr.status, terr.code
	} else {
		rec.Status = http.StatusOK
	}
	s.mu.Lock()
	s.tokenRequests = append(s.tokenRequests, rec)
	s.broadcast()
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if terr != nil {
		writeJSON(w, terr.status, tokenErrorBody{Error: terr.code, ErrorDescription: terr.desc})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(r *http.Request, rec *TokenRequest) (*tokenAnswer, *tokenError) {
	bad := func(code, desc string) *tokenError {
		return &tokenError{status: http.StatusBadRequest, code: code, desc: desc}
	}
	if r.Method != http.MethodPost {
		return nil, &tokenError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenBody+1))
	if err != nil || len(body) > maxTokenBody {
		return nil, bad("invalid_request", "unreadable or oversized body")
	}
	var grantType, clientID, code, refreshToken string
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		rec.Contract = ContractForm
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, bad("invalid_request", "malformed form body")
		}
		grantType, clientID = vals.Get("grant_type"), vals.Get("client_id")
		code, refreshToken = vals.Get("code"), vals.Get("refresh_token")
	case "application/json":
		rec.Contract = ContractJSON
		var req struct {
			GrantType    string `json:"grant_type"`
			ClientID     string `json:"client_id"`
			Code         string `json:"code"`
			RefreshToken string `json:"refresh_token"`
		}
		if err := checkJSON(body); err != nil {
			return nil, bad("invalid_request", "malformed JSON body")
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, bad("invalid_request", "malformed JSON body")
		}
		grantType, clientID, code, refreshToken = req.GrantType, req.ClientID, req.Code, req.RefreshToken
	default:
		return nil, bad("invalid_request", "content type must be application/x-www-form-urlencoded or application/json")
	}
	rec.GrantType, rec.ClientID = grantType, clientID

	info, verified := s.verify(r.Context(), r, body)
	rec.Signature = info
	if info.Present && !info.Verified {
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "the request signature does not verify"}
	}
	if !info.Present && s.opts.RequireSignedTokenRequests {
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "token requests must be signed"}
	}
	invalidGrant := func(desc string) *tokenError {
		st := http.StatusBadRequest
		if s.opts.NextcloudStyleErrors {
			st = http.StatusUnauthorized
		}
		return &tokenError{status: st, code: "invalid_grant", desc: desc}
	}

	switch {
	case grantType == "":
		return nil, bad("invalid_request", "grant_type is required")
	case grantType == "authorization_code" || (grantType == "ocm_authorization_code" && rec.Contract == ContractJSON):
		if clientID == "" || code == "" {
			return nil, bad("invalid_request", "client_id and code are required")
		}
		if verified != nil {
			kh, err := keyHost(verified.KeyID)
			if err != nil || !sameProvider(kh, clientID) {
				return nil, bad("invalid_client", "the signing key does not belong to client_id")
			}
		}
		now := time.Now()
		s.mu.Lock()
		sh := s.byCode[code]
		if sh == nil {
			sh = s.bySecret[code]
		}
		if sh == nil || !sh.live(now) {
			s.mu.Unlock()
			return nil, invalidGrant("unknown, revoked or expired code")
		}
		rec.ShareID = sh.ID
		if !sameProvider(clientID, sh.To.Host) {
			s.mu.Unlock()
			return nil, bad("invalid_client", "client_id is not the provider the share was sent to")
		}
		resp := s.issueLocked(sh.ID, clientID, rec.Contract == ContractJSON, now)
		s.mu.Unlock()
		return resp, nil
	case grantType == "refresh_token":
		if refreshToken == "" {
			return nil, bad("invalid_request", "refresh_token is required")
		}
		now := time.Now()
		s.mu.Lock()
		old, ok := s.refresh[refreshToken]
		var sh *shareRec
		if ok {
			sh = s.shares[old.shareID]
		}
		if !ok || sh == nil || !sh.live(now) {
			s.mu.Unlock()
			return nil, invalidGrant("unknown or revoked refresh token")
		}
		if clientID != "" && !sameProvider(clientID, old.clientID) {
			s.mu.Unlock()
			return nil, bad("invalid_client", "client_id does not match the refresh token")
		}
		delete(s.refresh, refreshToken)
		rec.ShareID = sh.ID
		resp := s.issueLocked(sh.ID, old.clientID, true, now)
		s.mu.Unlock()
		return resp, nil
	default:
		return nil, bad("unsupported_grant_type", "grant_type "+grantType+" is not supported")
	}
}

// issueLocked makes an access token (and a refresh token for the legacy
// contract). s.mu must be held.
func (s *Server) issueLocked(shareID, clientID string, withRefresh bool, now time.Time) *tokenAnswer {
	life := s.tokenLifetime
	t := &tokenRec{shareID: shareID, clientID: clientID, expires: now.Add(life)}
	access := randomToken()
	s.tokens[access] = t
	resp := &tokenAnswer{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64((life + time.Second - 1) / time.Second)}
	if withRefresh {
		resp.TokenType = "bearer"
		rt := randomToken()
		s.refresh[rt] = &tokenRec{shareID: shareID, clientID: clientID}
		resp.RefreshToken = rt
	}
	return resp
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails: crypto/rand aborts the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}
