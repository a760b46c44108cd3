package httpsig

import "errors"

// Errors returned by Verify and the parsers, always wrapped with detail;
// test them with errors.Is.
var (
	// ErrNoSignature: the request carries no signature of a known profile
	// (for RFC 9421, none tagged "ocm").
	ErrNoSignature = errors.New("httpsig: no signature")
	// ErrInvalidSignature: the signature does not verify, uses an algorithm
	// the key does not allow, or the request carries more than one OCM
	// signature.
	ErrInvalidSignature = errors.New("httpsig: invalid signature")
	// ErrDigestMismatch: Content-Digest, Digest or Content-Length does not
	// match the body.
	ErrDigestMismatch = errors.New("httpsig: body digest mismatch")
	// ErrExpired: the signature is too old, too far in the future, or past
	// its expiry.
	ErrExpired = errors.New("httpsig: signature expired or not yet valid")
	// ErrReplay: the same signature was already accepted within the window.
	ErrReplay = errors.New("httpsig: replayed signature")
	// ErrUnknownKey: the key resolver could not produce a usable key.
	ErrUnknownKey = errors.New("httpsig: unknown key")
	// ErrMissingComponent: a component the profile requires is not covered
	// or not present in the request.
	ErrMissingComponent = errors.New("httpsig: missing signed component")
	// ErrMalformed: a header, key or document could not be parsed.
	ErrMalformed = errors.New("httpsig: malformed input")
)
