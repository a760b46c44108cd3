package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/studio-b12/gowebdav"
)

// ErrTimeout is the cause set on a request context whose watchdog fired: the
// peer made no progress for the timeout.
var ErrTimeout = errors.New("webdav peer made no progress in time")

// ErrShareGone is returned for operations on a share that has left the mount.
var ErrShareGone = errors.New("share is no longer mounted")

// ErrShareUnreachable is returned for operations on a share whose server
// the agent has not reached yet (its WebDAV URL is unknown).
var ErrShareUnreachable = errors.New("the share's server could not be reached yet; the agent keeps trying")

// UnresolvedURL stands for the URL of a share whose server has not been
// reached: requests to it fail with ErrShareUnreachable, without a network.
const UnresolvedURL = "ocm-unresolved:"

// StatusError is a WebDAV answer with an unexpected status.
type StatusError struct {
	Method string
	Code   int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("webdav %s: %d %s", e.Method, e.Code, http.StatusText(e.Code))
}

// AuthError wraps a failure of the Authorizer itself.
type AuthError struct{ Err error }

func (e *AuthError) Error() string { return "authorize webdav request: " + e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

// Kind says what went wrong in the terms a filesystem reports, without
// naming an errno: the mount maps each kind to one.
type Kind int

// Kinds of failure.
const (
	// KindUnknown is an error this package cannot classify; the mount
	// reports it as an I/O error and logs it.
	KindUnknown      Kind = iota
	KindIO                // the peer failed or answered something unusable
	KindTimeout           // the peer made no progress in time
	KindNotFound          // no such file on the server
	KindGone              // the share left the mount
	KindUnreachable       // the share's server has not been reached yet
	KindDenied            // the server or the credentials refuse access
	KindExists            // a precondition failed: the target exists or changed
	KindBusy              // locked on the server
	KindTooLarge          // the server refuses the size
	KindNoSpace           // the server is out of space
	KindNotSupported      // the server does not implement the method
)

var kindNames = [...]string{"unknown", "io", "timeout", "not-found", "gone", "unreachable",
	"denied", "exists", "busy", "too-large", "no-space", "not-supported"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// knownIO are this package's own failures of a peer's answer.
var knownIO = []error{ErrNoResponse, ErrTooManyEntries, ErrShortBody, ErrRangeRefused, ErrRemoteChanged}

// KindOf classifies an error of this package (nil is KindUnknown too; the
// caller checks for nil first).
func KindOf(err error) Kind {
	if errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	if errors.Is(err, ErrShareGone) {
		return KindGone
	}
	if errors.Is(err, ErrShareUnreachable) {
		return KindUnreachable
	}
	code := 0
	var se *StatusError
	var pe *os.PathError
	var gse gowebdav.StatusError
	switch {
	case errors.As(err, &se):
		code = se.Code
	case errors.As(err, &pe) && errors.As(pe.Err, &gse):
		code = gse.Status
	}
	if code != 0 {
		switch code {
		case http.StatusUnauthorized, http.StatusForbidden:
			return KindDenied
		case http.StatusNotFound, http.StatusGone, http.StatusConflict:
			return KindNotFound
		case http.StatusPreconditionFailed:
			return KindExists
		case http.StatusLocked:
			return KindBusy
		case http.StatusRequestEntityTooLarge:
			return KindTooLarge
		case http.StatusInsufficientStorage:
			return KindNoSpace
		case http.StatusMethodNotAllowed, http.StatusNotImplemented:
			return KindNotSupported
		}
		return KindIO
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		var ne net.Error
		if errors.As(ae.Err, &ne) && ne.Timeout() {
			return KindTimeout
		}
		if errors.As(ae.Err, &ne) {
			return KindIO
		}
		return KindDenied
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return KindTimeout
		}
		return KindIO
	}
	var ri *RangeIgnored
	if errors.As(err, &ri) {
		return KindIO
	}
	for _, k := range knownIO {
		if errors.Is(err, k) {
			return KindIO
		}
	}
	return KindUnknown
}

// Transient reports whether retrying the same request may succeed.
func Transient(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return false
	}
	if errors.Is(err, ErrShareGone) || errors.Is(err, ErrShareUnreachable) {
		return false
	}
	return true // network errors, resets, timeouts
}

// Unreachable reports whether err means that the server could not be had:
// no connection, no answer in time, a connection closed or reset without
// an answer, or a server error (5xx). Other answers (a refusal, a missing
// file) are the server's word, not its absence.
func Unreachable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code >= 500
	}
	if errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// A server gone while a kept-alive connection waited: Go sends a
	// request that is not idempotent (PROPFIND) once only, and returns
	// EOF or the reset.
	if connectionEnded(err) {
		return true
	}
	// A credential that could not be had for want of a network (a token
	// exchange with the same server) counts; a refused one does not.
	var ne net.Error
	return errors.As(err, &ne)
}

// connectionEnded reports whether err is the connection ending instead of
// an answer: EOF, or a reset.
func connectionEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}
