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

	"github.com/ocm-agent/ocm-agent/httpsig"
	"github.com/ocm-agent/ocm-agent/ocm"
)

// AlgEd25519 is the httpsig algorithm of the server's signing key.
const AlgEd25519 = httpsig.AlgEd25519

// KeyID is the kid of the current Ed25519 signing key, absolute:
// "<base>/ocm#key1" (the number grows with RotateSigningKey).
func (s *Server) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyIDLocked()
}

func (s *Server) keyIDLocked() string { return fmt.Sprintf("%s%s#key%d", s.base, pathEndPoint, s.kidN) }

// CavageKeyID is the keyId of the legacy RSA key, "<base>/ocm#signature".
func (s *Server) CavageKeyID() string { return s.base + pathEndPoint + "#signature" }

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

// signingKey is the current RFC 9421 key.
func (s *Server) signingKey() httpsig.Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return httpsig.Key{ID: s.keyIDLocked(), Alg: AlgEd25519, Private: s.edKey}
}

// DiscoveryDocument is the document served at /.well-known/ocm, before
// Options.DiscoveryHook.
func (s *Server) DiscoveryDocument() map[string]any {
	pemKey, err := httpsig.PublicKeyPEM(&s.rsaKey.PublicKey)
	if err != nil {
		s.log.Error("ocmtest: public key PEM", "err", err)
	}
	apiVersion := s.opts.APIVersion
	if apiVersion == "" {
		apiVersion = ocm.APIVersion
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
func (s *Server) JWKS() (httpsig.JWKS, error) {
	s.mu.Lock()
	keys := append([]publishedKey{{kid: s.keyIDLocked(), pub: s.edKey.Public().(ed25519.PublicKey)}}, s.oldKeys...)
	s.mu.Unlock()
	var set httpsig.JWKS
	for _, k := range keys {
		jwk, err := httpsig.PublicJWK(k.kid, AlgEd25519, k.pub)
		if err != nil {
			return httpsig.JWKS{}, fmt.Errorf("ocmtest: JWK: %w", err)
		}
		set.Keys = append(set.Keys, jwk)
	}
	return set, nil
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	set, err := s.JWKS()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
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
