package ocmtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strings"
)

// KeyID is the kid of the current Ed25519 signing key, absolute:
// "<base>/ocm#key1" (the number grows with RotateSigningKey).
func (s *Server) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyIDLocked()
}

func (s *Server) keyIDLocked() string { return fmt.Sprintf("%s%s#key%d", s.base, pathEndPoint, s.kidN) }

// CavageKeyID is the keyId of the legacy RSA key,
// "https://<host>/ocm#signature": like Nextcloud, it says https even when
// the server runs on plain http.
func (s *Server) CavageKeyID() string { return "https://" + s.host + pathEndPoint + "#signature" }

// PublicKey is the current Ed25519 public key.
func (s *Server) PublicKey() ed25519.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.edKey.Public().(ed25519.PublicKey)
}

// RSAPublicKey is the legacy draft-cavage public key.
func (s *Server) RSAPublicKey() *rsa.PublicKey { return &s.rsaKey.PublicKey }

// RotateSigningKey replaces the Ed25519 signing key with a new one under a
// new kid. When keepOld is true the old key stays in the JWK Set.
func (s *Server) RotateSigningKey(keepOld bool) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("ocmtest: ed25519 key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if keepOld {
		s.oldKeys = append(s.oldKeys, publishedKey{kid: s.keyIDLocked(), pub: s.edKey.Public().(ed25519.PublicKey)})
	} else {
		s.oldKeys = nil
	}
	s.edKey = priv
	s.kidN++
	return nil
}

// signingKey is the current RFC 9421 key and its kid.
func (s *Server) signingKey() (string, ed25519.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyIDLocked(), s.edKey
}

// DiscoveryDocument is the document served at /.well-known/ocm, before
// Options.DiscoveryHook.
func (s *Server) DiscoveryDocument() map[string]any {
	pemKey, err := publicKeyPEM(&s.rsaKey.PublicKey)
	if err != nil {
		s.log.Error("ocmtest: public key PEM", "err", err)
	}
	apiVersion := s.opts.APIVersion
	if apiVersion == "" {
		apiVersion = APIVersion
	}
	protocols := func() map[string]any { return map[string]any{"webdav": WebDAVRoot} }
	doc := map[string]any{
		"enabled":    true,
		"apiVersion": apiVersion,
		"endPoint":   s.base + pathEndPoint,
		"provider":   s.opts.Provider,
		"resourceTypes": []any{
			map[string]any{"name": "file", "shareTypes": []string{"user"}, "protocols": protocols()},
			map[string]any{"name": "folder", "shareTypes": []string{"user"}, "protocols": protocols()},
		},
		"capabilities":       append([]string{}, s.opts.Capabilities...),
		"jwksUri":            s.base + pathJWKS,
		"tokenEndPoint":      s.base + pathToken,
		"inviteAcceptDialog": pathAcceptDialog,
		"publicKey":          map[string]any{"keyId": s.CavageKeyID(), "publicKeyPem": pemKey},
	}
	if len(s.opts.Criteria) > 0 {
		doc["criteria"] = append([]string{}, s.opts.Criteria...)
	}
	return doc
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "use GET"})
		return
	}
	doc := s.DiscoveryDocument()
	if s.opts.DiscoveryHook != nil {
		s.opts.DiscoveryHook(doc)
	}
	writeJSON(w, http.StatusOK, doc)
}

// JWKS is the JWK Set served at jwksUri.
func (s *Server) JWKS() JWKSet {
	s.mu.Lock()
	keys := append([]publishedKey{{kid: s.keyIDLocked(), pub: s.edKey.Public().(ed25519.PublicKey)}}, s.oldKeys...)
	s.mu.Unlock()
	var set JWKSet
	for _, k := range keys {
		set.Keys = append(set.Keys, ed25519JWK(k.kid, k.pub))
	}
	return set
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	set := s.JWKS()
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(set)
}

// serveAcceptDialog is a minimal invite acceptance page, so that the
// inviteAcceptDialog of discovery leads somewhere.
func (s *Server) serveAcceptDialog(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	provider := r.URL.Query().Get("providerDomain")
	var b strings.Builder
	b.WriteString("<!doctype html><title>Accept invite</title><p>Invite from ")
	b.WriteString(html.EscapeString(s.Address()))
	if provider != "" {
		b.WriteString(" for a user at ")
		b.WriteString(html.EscapeString(provider))
	}
	b.WriteString(".</p>\n")
	_, _ = w.Write([]byte(b.String()))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"message":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
