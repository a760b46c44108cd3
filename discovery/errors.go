package discovery

import (
	"errors"
	"fmt"
)

// Errors returned (wrapped) by this package; test them with errors.Is.
var (
	// ErrForbiddenAddress: the peer (or a redirect, or an SRV target)
	// resolved to a loopback, private, link-local, multicast or other
	// special address and AllowInsecure is off.
	ErrForbiddenAddress = errors.New("address not allowed for an OCM peer")
	// ErrInsecureScheme: a URL (or a redirect) is not https and
	// AllowInsecure is off.
	ErrInsecureScheme = errors.New("only https is allowed towards OCM peers")
	// ErrTooManyRedirects: more than Options.MaxRedirects redirects.
	ErrTooManyRedirects = errors.New("too many redirects")
	// ErrBodyTooLarge: a response body exceeded its size limit.
	ErrBodyTooLarge = errors.New("response body too large")
	// ErrTooManyPeers: too many peers never seen before were looked up in
	// the last minute (Options.MaxNewPeersPerMinute).
	ErrTooManyPeers = errors.New("too many new peers looked up in the last minute")
	// ErrNotFound: no discovery document could be found for the peer.
	ErrNotFound = errors.New("no OCM discovery document found")
	// ErrBadHost: the peer name is not a valid host[:port].
	ErrBadHost = errors.New("invalid peer host")

	// ErrKeyNotFound: the peer does not publish a key with that id.
	ErrKeyNotFound = errors.New("signing key not published by the peer")
	// ErrKeyDomainMismatch: the key id names a host other than the peer
	// the request claims to come from.
	ErrKeyDomainMismatch = errors.New("signing key id does not belong to the peer's domain")
	// ErrBadKeyID: the key id names no host at all.
	ErrBadKeyID = errors.New("key id names no host")

	// ErrBadDirectory: a Directory Service document cannot be read.
	ErrBadDirectory = errors.New("invalid directory service document")
	// ErrDirectoryUnverified: directory keys are configured but the
	// document carries no signature valid under any of them.
	ErrDirectoryUnverified = errors.New("directory service document not signed by a configured key")
)

// StatusError is a non-200 answer to a GET.
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP status %d", e.URL, e.Code)
}
