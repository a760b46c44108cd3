package httpsig

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

// JWK is a public JSON Web Key (RFC 7517) of one of the types this package
// uses: OKP/Ed25519 (RFC 8037), EC/P-256 and RSA.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// JWKS is a JWK Set, the document at an OCM server's jwksUri.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// Limits on JWK Sets read from peers.
const (
	MaxJWKSSize = 256 << 10 // bytes
	maxJWKs     = 64
	maxJWKField = 4096 // characters in any one member (RSA n of 16384 bits is 2731)
)

var b64url = base64.RawURLEncoding

// PublicJWK describes pub as a JWK with key id kid. alg may be "" to derive
// it from the key type; the JWK's "alg" is the JOSE name of the algorithm
// ("Ed25519", "ES256", "PS512" or "RS256").
func PublicJWK(kid string, alg Algorithm, pub crypto.PublicKey) (JWK, error) {
	pub = normalizePublic(pub)
	if err := checkPublicKey(pub); err != nil {
		return JWK{}, err
	}
	if alg == "" {
		alg = candidateAlgorithms(pub)[0]
	}
	if !alg.Supported() || !keyFits(alg, pub) {
		return JWK{}, fmt.Errorf("httpsig: algorithm %q does not fit a %T key", alg, pub)
	}
	j := JWK{Kid: kid, Use: "sig", Alg: alg.JOSE()}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64url.EncodeToString(k)
	case *ecdsa.PublicKey:
		pt, err := k.Bytes()
		if err != nil {
			return JWK{}, fmt.Errorf("httpsig: encode EC key: %w", err)
		}
		n := (len(pt) - 1) / 2
		j.Kty, j.Crv = "EC", "P-256"
		j.X, j.Y = b64url.EncodeToString(pt[1:1+n]), b64url.EncodeToString(pt[1+n:])
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = b64url.EncodeToString(k.N.Bytes())
		j.E = b64url.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	}
	return j, nil
}

// usable reports whether the package can use j at all: a signing key of a
// supported type. Other keys in a set are ignored.
func (j JWK) usable() bool {
	if j.Use != "" && j.Use != "sig" {
		return false
	}
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519", j.Kty == "EC" && j.Crv == "P-256", j.Kty == "RSA":
		return true
	}
	return false
}

// PublicKey decodes j. The algorithm is taken from the JWK's "alg"; it is ""
// when "alg" is absent on an RSA key (either RSA algorithm may then be used).
func (j JWK) PublicKey() (crypto.PublicKey, Algorithm, error) {
	if !j.usable() {
		return nil, "", fmt.Errorf("%w: JWK kty %q crv %q use %q is not a supported signing key", ErrMalformed, j.Kty, j.Crv, j.Use)
	}
	var pub crypto.PublicKey
	switch j.Kty {
	case "OKP":
		x, err := b64url.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("%w: bad Ed25519 JWK x", ErrMalformed)
		}
		pub = ed25519.PublicKey(x)
	case "EC":
		x, err1 := b64url.DecodeString(j.X)
		y, err2 := b64url.DecodeString(j.Y)
		if err1 != nil || err2 != nil || len(x) != p256ScalarLen || len(y) != p256ScalarLen {
			return nil, "", fmt.Errorf("%w: bad P-256 JWK coordinates", ErrMalformed)
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, "", fmt.Errorf("%w: P-256 JWK is not a point on the curve", ErrMalformed)
		}
		pub = k
	case "RSA":
		n, err1 := b64url.DecodeString(j.N)
		e, err2 := b64url.DecodeString(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 || len(n) == 0 || n[0] == 0 {
			return nil, "", fmt.Errorf("%w: bad RSA JWK n or e", ErrMalformed)
		}
		ev := new(big.Int).SetBytes(e).Int64()
		if ev < 3 || ev%2 == 0 || ev > 1<<31-1 {
			return nil, "", fmt.Errorf("%w: bad RSA public exponent", ErrMalformed)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, "", err
	}
	alg, err := joseAlgorithm(j.Alg, pub)
	if err != nil {
		return nil, "", err
	}
	return pub, alg, nil
}

// joseAlgorithm maps a JWK "alg" to the HTTP signature algorithm it denotes
// and checks that it fits the key.
func joseAlgorithm(jose string, pub crypto.PublicKey) (Algorithm, error) {
	var alg Algorithm
	switch jose {
	case "":
		if c := candidateAlgorithms(pub); len(c) == 1 {
			return c[0], nil
		}
		return "", nil
	case "Ed25519", "EdDSA":
		alg = AlgEd25519
	case "ES256":
		alg = AlgECDSAP256SHA256
	case "PS512":
		alg = AlgRSAPSSSHA512
	case "RS256":
		alg = AlgRSAV15SHA256
	default:
		return "", fmt.Errorf("%w: unsupported JWK alg %q", ErrMalformed, jose)
	}
	if !keyFits(alg, pub) {
		return "", fmt.Errorf("%w: JWK alg %q does not fit its key type", ErrMalformed, jose)
	}
	return alg, nil
}

// ParseJWKS reads a JWK Set. It refuses documents over MaxJWKSSize, more
// than 64 keys, oversized members, and any usable signing key that does not
// decode (including RSA keys under 2048 bits). Keys of other types are kept
// but never returned by Lookup.
func ParseJWKS(data []byte) (JWKS, error) {
	if len(data) > MaxJWKSSize {
		return JWKS{}, fmt.Errorf("%w: JWK Set of %d bytes is too large", ErrMalformed, len(data))
	}
	var doc struct {
		Keys *[]JWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return JWKS{}, fmt.Errorf("%w: JWK Set: %w", ErrMalformed, err)
	}
	if doc.Keys == nil {
		return JWKS{}, fmt.Errorf("%w: JWK Set has no keys member", ErrMalformed)
	}
	keys := *doc.Keys
	if len(keys) > maxJWKs {
		return JWKS{}, fmt.Errorf("%w: JWK Set has %d keys (max %d)", ErrMalformed, len(keys), maxJWKs)
	}
	for i, k := range keys {
		for _, f := range []string{k.Kty, k.Kid, k.Use, k.Alg, k.Crv, k.X, k.Y, k.N, k.E} {
			if len(f) > maxJWKField {
				return JWKS{}, fmt.Errorf("%w: JWK %d has a member of %d characters", ErrMalformed, i, len(f))
			}
		}
		if !k.usable() {
			continue
		}
		if _, _, err := k.PublicKey(); err != nil {
			return JWKS{}, fmt.Errorf("JWK %d (kid %q): %w", i, k.Kid, err)
		}
	}
	return JWKS{Keys: keys}, nil
}

// Lookup finds the signing key whose kid is kid and returns it with the
// algorithm its JWK names ("" for an RSA key without "alg"). Errors wrap
// ErrUnknownKey.
func (s JWKS) Lookup(kid string) (crypto.PublicKey, Algorithm, error) {
	var found *JWK
	for i := range s.Keys {
		if s.Keys[i].Kid != kid || !s.Keys[i].usable() {
			continue
		}
		if found != nil {
			return nil, "", fmt.Errorf("%w: kid %q appears more than once", ErrUnknownKey, kid)
		}
		found = &s.Keys[i]
	}
	if found == nil {
		return nil, "", fmt.Errorf("%w: no signing key with kid %q", ErrUnknownKey, kid)
	}
	pub, alg, err := found.PublicKey()
	if err != nil {
		return nil, "", fmt.Errorf("%w: kid %q: %w", ErrUnknownKey, kid, err)
	}
	return pub, alg, nil
}

// ResolveKey lets a JWKS serve as a KeyResolver.
func (s JWKS) ResolveKey(_ context.Context, keyID string) (crypto.PublicKey, error) {
	pub, _, err := s.Lookup(keyID)
	return pub, err
}

// ResolveKeyAlgorithm lets a JWKS serve as an AlgorithmResolver, so that
// Verify holds signatures to the algorithm the JWK names.
func (s JWKS) ResolveKeyAlgorithm(_ context.Context, keyID string) (crypto.PublicKey, Algorithm, error) {
	return s.Lookup(keyID)
}
