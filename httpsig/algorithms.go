package httpsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// Algorithm names a signature algorithm as registered in the IANA "HTTP
// Signature Algorithms" registry.
type Algorithm string

// The algorithms this package signs and verifies.
const (
	AlgEd25519         Algorithm = "ed25519"
	AlgECDSAP256SHA256 Algorithm = "ecdsa-p256-sha256"
	AlgRSAPSSSHA512    Algorithm = "rsa-pss-sha512"
	AlgRSAV15SHA256    Algorithm = "rsa-v1_5-sha256"
)

// AlgCavageRSASHA512 is draft-cavage's "rsa-sha512" (RSASSA-PKCS1-v1_5
// with SHA-512), which Nextcloud signs with by default. It is not in the
// RFC 9421 registry: only draft-cavage signatures may use it.
const AlgCavageRSASHA512 Algorithm = "rsa-sha512"

// RSA key sizes accepted anywhere in the package.
const (
	minRSABits = 2048
	maxRSABits = 16384
)

// rsaPSSSaltLength is the salt length RFC 9421 section 3.3.1 prescribes.
const rsaPSSSaltLength = 64

// Supported reports whether the package implements a.
func (a Algorithm) Supported() bool {
	switch a {
	case AlgEd25519, AlgECDSAP256SHA256, AlgRSAPSSSHA512, AlgRSAV15SHA256:
		return true
	}
	return false
}

// JOSE returns the JSON Web Algorithm name of a for the "alg" member of a
// JWK (RFC 7518, RFC 9864), or "" when a is not supported.
func (a Algorithm) JOSE() string {
	switch a {
	case AlgEd25519:
		return "Ed25519"
	case AlgECDSAP256SHA256:
		return "ES256"
	case AlgRSAPSSSHA512:
		return "PS512"
	case AlgRSAV15SHA256:
		return "RS256"
	}
	return ""
}

// checkPublicKey accepts the key types and sizes the package works with.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: ed25519 key of %d bytes", ErrMalformed, len(k))
		}
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: only P-256 ECDSA keys are supported", ErrMalformed)
		}
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return fmt.Errorf("%w: empty RSA key", ErrMalformed)
		}
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return fmt.Errorf("%w: RSA key of %d bits (need %d to %d)", ErrMalformed, n, minRSABits, maxRSABits)
		}
	default:
		return fmt.Errorf("%w: unsupported key type %T", ErrMalformed, pub)
	}
	return nil
}

// candidateAlgorithms lists, in order of preference, the algorithms that
// may be used with pub when a message does not name one.
func candidateAlgorithms(pub crypto.PublicKey) []Algorithm {
	switch pub.(type) {
	case ed25519.PublicKey:
		return []Algorithm{AlgEd25519}
	case *ecdsa.PublicKey:
		return []Algorithm{AlgECDSAP256SHA256}
	case *rsa.PublicKey:
		return []Algorithm{AlgRSAPSSSHA512, AlgRSAV15SHA256}
	}
	return nil
}

// keyFits reports whether pub is a key of the kind alg uses.
func keyFits(alg Algorithm, pub crypto.PublicKey) bool {
	if alg == AlgCavageRSASHA512 {
		_, ok := pub.(*rsa.PublicKey)
		return ok
	}
	for _, a := range candidateAlgorithms(pub) {
		if a == alg {
			return true
		}
	}
	return false
}

// normalizePublic turns pointer forms of ed25519 keys into values.
func normalizePublic(pub crypto.PublicKey) crypto.PublicKey {
	if p, ok := pub.(*ed25519.PublicKey); ok && p != nil {
		return *p
	}
	return pub
}

func digestSHA256(b []byte) []byte { h := sha256.Sum256(b); return h[:] }
func digestSHA512(b []byte) []byte { h := sha512.Sum512(b); return h[:] }

// signMessage signs msg with priv using alg, producing the encoding RFC 9421
// section 3.3 prescribes (raw r||s for ECDSA).
func signMessage(alg Algorithm, priv crypto.Signer, msg []byte) ([]byte, error) {
	if priv == nil {
		return nil, errors.New("httpsig: no private key")
	}
	pub := normalizePublic(priv.Public())
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	if !keyFits(alg, pub) {
		return nil, fmt.Errorf("httpsig: a %T key cannot sign with %s", pub, alg)
	}
	switch alg {
	case AlgEd25519:
		return priv.Sign(rand.Reader, msg, crypto.Hash(0))
	case AlgECDSAP256SHA256:
		der, err := priv.Sign(rand.Reader, digestSHA256(msg), crypto.SHA256)
		if err != nil {
			return nil, err
		}
		return ecdsaDERToRaw(der)
	case AlgRSAPSSSHA512:
		return priv.Sign(rand.Reader, digestSHA512(msg), &rsa.PSSOptions{SaltLength: rsaPSSSaltLength, Hash: crypto.SHA512})
	case AlgRSAV15SHA256:
		return priv.Sign(rand.Reader, digestSHA256(msg), crypto.SHA256)
	case AlgCavageRSASHA512:
		return priv.Sign(rand.Reader, digestSHA512(msg), crypto.SHA512)
	}
	return nil, fmt.Errorf("httpsig: unsupported algorithm %q", alg)
}

// verifyMessage checks sig over msg with pub using alg.
func verifyMessage(alg Algorithm, pub crypto.PublicKey, msg, sig []byte) error {
	pub = normalizePublic(pub)
	if err := checkPublicKey(pub); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	if !keyFits(alg, pub) {
		return fmt.Errorf("%w: a %T key cannot verify %s", ErrInvalidSignature, pub, alg)
	}
	ok := false
	switch alg {
	case AlgEd25519:
		ok = ed25519.Verify(pub.(ed25519.PublicKey), msg, sig)
	case AlgECDSAP256SHA256:
		der, err := ecdsaRawToDER(sig)
		ok = err == nil && ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digestSHA256(msg), der)
	case AlgRSAPSSSHA512:
		ok = rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA512, digestSHA512(msg), sig,
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA512}) == nil
	case AlgRSAV15SHA256:
		ok = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digestSHA256(msg), sig) == nil
	case AlgCavageRSASHA512:
		ok = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA512, digestSHA512(msg), sig) == nil
	}
	if !ok {
		return fmt.Errorf("%w: %s signature does not verify", ErrInvalidSignature, alg)
	}
	return nil
}

type ecdsaSig struct{ R, S *big.Int }

const p256ScalarLen = 32

func ecdsaDERToRaw(der []byte) ([]byte, error) {
	var s ecdsaSig
	rest, err := asn1.Unmarshal(der, &s)
	if err != nil || len(rest) > 0 || s.R == nil || s.S == nil || s.R.Sign() <= 0 || s.S.Sign() <= 0 ||
		s.R.BitLen() > 8*p256ScalarLen || s.S.BitLen() > 8*p256ScalarLen {
		return nil, errors.New("httpsig: bad ECDSA signature from signer")
	}
	out := make([]byte, 2*p256ScalarLen)
	s.R.FillBytes(out[:p256ScalarLen])
	s.S.FillBytes(out[p256ScalarLen:])
	return out, nil
}

func ecdsaRawToDER(raw []byte) ([]byte, error) {
	if len(raw) != 2*p256ScalarLen {
		return nil, fmt.Errorf("%w: ECDSA P-256 signature must be %d bytes", ErrInvalidSignature, 2*p256ScalarLen)
	}
	return asn1.Marshal(ecdsaSig{
		R: new(big.Int).SetBytes(raw[:p256ScalarLen]),
		S: new(big.Int).SetBytes(raw[p256ScalarLen:]),
	})
}
