package httpsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Key is a private signing key with its key id and algorithm. Its String,
// GoString and LogValue never show the private half.
type Key struct {
	ID      string        // keyid sent with signatures, the kid in the JWK Set
	Alg     Algorithm     // "" means: derived from the key type
	Private crypto.Signer // ed25519.PrivateKey, *ecdsa.PrivateKey (P-256) or *rsa.PrivateKey
}

// String describes k without its private half.
func (k Key) String() string {
	return fmt.Sprintf("httpsig.Key{ID: %q, Alg: %q, Private: [redacted]}", k.ID, k.algorithm())
}

// GoString is String, so that %#v does not print the private key either.
func (k Key) GoString() string { return k.String() }

// LogValue implements slog.LogValuer.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("alg", string(k.algorithm())))
}

// Public returns the public half of k, or nil when k has no private key.
func (k Key) Public() crypto.PublicKey {
	if k.Private == nil {
		return nil
	}
	return normalizePublic(k.Private.Public())
}

// algorithm is k.Alg, or the algorithm derived from the key type.
func (k Key) algorithm() Algorithm {
	if k.Alg != "" {
		return k.Alg
	}
	if c := candidateAlgorithms(k.Public()); len(c) > 0 {
		return c[0]
	}
	return ""
}

// check verifies that k can sign: a supported key type and size, an
// algorithm that fits it, and a key id that can travel in a header.
func (k Key) check() (Algorithm, error) {
	if k.Private == nil {
		return "", errors.New("httpsig: key has no private half")
	}
	if k.ID == "" || len(k.ID) > maxKeyIDLen || !validSFString(k.ID) || strings.ContainsRune(k.ID, '"') {
		return "", errors.New("httpsig: key id must be 1 to 1024 printable ASCII characters without quotes")
	}
	pub := k.Public()
	if err := checkPublicKey(pub); err != nil {
		return "", err
	}
	alg := k.algorithm()
	if !alg.Supported() || !keyFits(alg, pub) {
		return "", fmt.Errorf("httpsig: algorithm %q does not fit a %T key", alg, pub)
	}
	return alg, nil
}

const maxKeyIDLen = 1024

// GenerateEd25519 makes a new Ed25519 key, the default for RFC 9421.
func GenerateEd25519(id string) (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("httpsig: generate ed25519 key: %w", err)
	}
	return Key{ID: id, Alg: AlgEd25519, Private: priv}, nil
}

// GenerateRSA makes a new RSA key of bits bits (at least 2048), for the
// draft-cavage profile; its RFC 9421 algorithm is rsa-pss-sha512.
func GenerateRSA(id string, bits int) (Key, error) {
	if bits < minRSABits || bits > maxRSABits {
		return Key{}, fmt.Errorf("httpsig: RSA key size %d outside %d..%d", bits, minRSABits, maxRSABits)
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return Key{}, fmt.Errorf("httpsig: generate RSA key: %w", err)
	}
	return Key{ID: id, Alg: AlgRSAPSSSHA512, Private: priv}, nil
}

// MarshalPrivate returns the private key of k in PKCS #8 DER form, for the
// secret store.
func MarshalPrivate(k Key) ([]byte, error) {
	if k.Private == nil {
		return nil, errors.New("httpsig: key has no private half")
	}
	priv := any(k.Private)
	if p, ok := priv.(*ed25519.PrivateKey); ok && p != nil {
		priv = *p
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("httpsig: marshal private key: %w", err)
	}
	return der, nil
}

// ParsePrivate reads a PKCS #8 DER private key made by MarshalPrivate. alg
// may be "" to derive it from the key type; otherwise it must fit the key.
func ParsePrivate(id string, alg Algorithm, der []byte) (Key, error) {
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// Do not wrap: the parser's message might quote key material.
		return Key{}, fmt.Errorf("%w: not a PKCS #8 private key", ErrMalformed)
	}
	var signer crypto.Signer
	switch p := raw.(type) {
	case ed25519.PrivateKey:
		signer = p
	case *ecdsa.PrivateKey:
		signer = p
	case *rsa.PrivateKey:
		signer = p
	default:
		return Key{}, fmt.Errorf("%w: unsupported private key type %T", ErrMalformed, raw)
	}
	k := Key{ID: id, Alg: alg, Private: signer}
	if _, err := k.check(); err != nil {
		return Key{}, err
	}
	return k, nil
}

const maxPEMLen = 64 << 10

// ParsePublicKeyPEM reads a public key from PEM, as published in the legacy
// publicKey.publicKeyPem of an OCM discovery document: a PKIX "PUBLIC KEY"
// block or a PKCS #1 "RSA PUBLIC KEY" block.
func ParsePublicKeyPEM(s string) (crypto.PublicKey, error) {
	if len(s) > maxPEMLen {
		return nil, fmt.Errorf("%w: PEM of %d bytes is too long", ErrMalformed, len(s))
	}
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrMalformed)
	}
	var (
		pub any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a public key", ErrMalformed, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, block.Type, err)
	}
	pub = normalizePublic(pub)
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// PublicKeyPEM renders pub as a PKIX "PUBLIC KEY" PEM block.
func PublicKeyPEM(pub crypto.PublicKey) (string, error) {
	pub = normalizePublic(pub)
	if err := checkPublicKey(pub); err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("httpsig: marshal public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
