package httpsig

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// KeyResolver finds the public key for a key id taken from a signature. It
// is called only after the cheap checks (freshness, body digest) passed.
type KeyResolver interface {
	ResolveKey(ctx context.Context, keyID string) (crypto.PublicKey, error)
}

// AlgorithmResolver is a KeyResolver that also knows the algorithm the key
// is published for (the "alg" of its JWK). Verify then accepts only that
// algorithm for RFC 9421 signatures, as the OCM specification requires. An
// algorithm of "" means: any algorithm that fits the key.
type AlgorithmResolver interface {
	KeyResolver
	ResolveKeyAlgorithm(ctx context.Context, keyID string) (crypto.PublicKey, Algorithm, error)
}

// KeyResolverFunc adapts a function to KeyResolver.
type KeyResolverFunc func(ctx context.Context, keyID string) (crypto.PublicKey, error)

// ResolveKey calls f.
func (f KeyResolverFunc) ResolveKey(ctx context.Context, keyID string) (crypto.PublicKey, error) {
	return f(ctx, keyID)
}

// DefaultMaxSkew is the freshness window used when VerifyOptions.MaxSkew is
// zero.
const DefaultMaxSkew = 5 * time.Minute

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// TargetURI is the absolute public URL of the request (scheme, host,
	// path and query), used for "@target-uri", "(request-target)" and
	// "host" when the server sits behind a proxy; typically the configured
	// public base URL joined with the public path and req.URL.RawQuery.
	// Empty: rebuilt from the request (req.TLS, req.Host, req.URL).
	TargetURI string
	// MaxSkew bounds how old, or how far in the future, "created" (RFC
	// 9421) or Date (draft-cavage) may be. Zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Replay, when set, rejects a signature seen before.
	Replay *ReplayCache
}

// Profiles reported in Verified.Profile.
const (
	ProfileRFC9421 = "rfc9421"
	ProfileCavage  = "cavage"
)

// Verified describes a signature that verified.
type Verified struct {
	KeyID   string
	Profile string // ProfileRFC9421 or ProfileCavage
	Alg     Algorithm
	Created time.Time // "created" (RFC 9421) or Date (draft-cavage)
}

// Verify checks the signature on req, whose body the caller has already
// read (with a size limit) into body. A request with a Signature-Input
// field is held to the RFC 9421 OCM profile; otherwise a Signature field
// with a keyId is held to the draft-cavage profile; otherwise the error is
// ErrNoSignature, which the caller's policy decides about. Every error wraps
// one of the package's sentinel errors.
func Verify(ctx context.Context, req *http.Request, body []byte, r KeyResolver, o VerifyOptions) (*Verified, error) {
	if req == nil || req.URL == nil {
		return nil, fmt.Errorf("%w: no request", ErrMalformed)
	}
	if r == nil {
		return nil, fmt.Errorf("%w: no key resolver", ErrUnknownKey)
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = DefaultMaxSkew
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(req.Header.Values("Signature-Input")) > 0 {
		return verifyRFC9421(ctx, req, body, r, o)
	}
	if sig := req.Header.Get("Signature"); sig != "" && looksCavage(sig) {
		return verifyCavage(ctx, req, body, r, o)
	}
	return nil, fmt.Errorf("%w: neither Signature-Input nor a draft-cavage Signature field", ErrNoSignature)
}

// requestMethod is req.Method, with Go's "" meaning GET.
func requestMethod(req *http.Request) string {
	if req.Method == "" {
		return http.MethodGet
	}
	return req.Method
}

// targetURI is the absolute target URI of an incoming request.
func targetURI(req *http.Request, override string) string {
	if override != "" {
		return override
	}
	if req.URL.IsAbs() && req.URL.Host != "" {
		return absoluteURI(req.URL.Scheme, hostOf(req), req.URL)
	}
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	return absoluteURI(scheme, req.Host, req.URL)
}

// hostOf is the host a client sends in the Host header.
func hostOf(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

// methodHasBody reports whether requests with method carry a body (and so
// a Content-Length) even when it is empty.
func methodHasBody(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return false
}

// joinedField combines the field lines of name as RFC 9110 section 5.3 does.
func joinedField(h http.Header, name string) string {
	return strings.Join(h.Values(name), ", ")
}

// checkFreshness applies the skew window to a creation time.
func checkFreshness(what string, created, now time.Time, skew time.Duration) error {
	if created.After(now.Add(skew)) {
		return fmt.Errorf("%w: %s is %s in the future", ErrExpired, what, created.Sub(now).Round(time.Second))
	}
	if now.Sub(created) > skew {
		return fmt.Errorf("%w: %s is %s old", ErrExpired, what, now.Sub(created).Round(time.Second))
	}
	return nil
}

// resolve calls the resolver and checks what it returns.
func resolve(ctx context.Context, r KeyResolver, keyID string, wantAlg bool) (crypto.PublicKey, Algorithm, error) {
	var (
		pub crypto.PublicKey
		alg Algorithm
		err error
	)
	if ar, ok := r.(AlgorithmResolver); ok && wantAlg {
		pub, alg, err = ar.ResolveKeyAlgorithm(ctx, keyID)
	} else {
		pub, err = r.ResolveKey(ctx, keyID)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: keyid %q: %w", ErrUnknownKey, keyID, err)
	}
	pub = normalizePublic(pub)
	if pub == nil {
		return nil, "", fmt.Errorf("%w: keyid %q: resolver returned no key", ErrUnknownKey, keyID)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, "", fmt.Errorf("%w: keyid %q: %w", ErrUnknownKey, keyID, err)
	}
	if alg != "" && (!alg.Supported() || !keyFits(alg, pub)) {
		return nil, "", fmt.Errorf("%w: keyid %q: algorithm %q does not fit the key", ErrUnknownKey, keyID, alg)
	}
	return pub, alg, nil
}

// verifyAny checks sig with the first of algs that verifies.
func verifyAny(algs []Algorithm, pub crypto.PublicKey, msg, sig []byte) (Algorithm, error) {
	err := fmt.Errorf("%w: no algorithm fits the key", ErrInvalidSignature)
	for _, a := range algs {
		if err = verifyMessage(a, pub, msg, sig); err == nil {
			return a, nil
		}
	}
	return "", err
}
