package ocmfs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/studio-b12/gowebdav"
)

// errTimeout is the cause set on a request context whose watchdog fired: the
// peer made no progress for Options.Timeout.
var errTimeout = errors.New("webdav peer made no progress in time")

// errShareGone is returned for operations on a share that has left the mount.
var errShareGone = errors.New("share is no longer mounted")

// errShareUnreachable is returned for operations on a share whose server
// the agent has not reached yet (its WebDAV URL is unknown).
var errShareUnreachable = errors.New("the share's server could not be reached yet; the agent keeps trying")

// unresolvedURL stands for the URL of a share whose server has not been
// reached: requests to it fail with errShareUnreachable, without a network.
const unresolvedURL = "ocm-unresolved:"

// statusError is a WebDAV answer with an unexpected status.
type statusError struct {
	Method string
	Code   int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("webdav %s: %d %s", e.Method, e.Code, http.StatusText(e.Code))
}

// authError wraps a failure of the Authorizer itself.
type authError struct{ err error }

func (e *authError) Error() string { return "authorize webdav request: " + e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// toErrno maps an error from the WebDAV layer to what a program sees.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	// Only errno values of this package's own making pass through; those
	// found deeper (ECONNREFUSED from a dial) are network failures.
	if errno, ok := err.(syscall.Errno); ok {
		return errno
	}
	if errors.Is(err, errTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return syscall.ETIMEDOUT
	}
	if errors.Is(err, errShareGone) {
		return syscall.ENOENT
	}
	if errors.Is(err, errShareUnreachable) {
		return syscall.EHOSTUNREACH
	}
	code := 0
	var se *statusError
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
			return syscall.EACCES
		case http.StatusNotFound, http.StatusGone, http.StatusConflict:
			return syscall.ENOENT
		case http.StatusPreconditionFailed:
			return syscall.EEXIST
		case http.StatusLocked:
			return syscall.EBUSY
		case http.StatusRequestEntityTooLarge:
			return syscall.EFBIG
		case http.StatusInsufficientStorage:
			return syscall.ENOSPC
		case http.StatusMethodNotAllowed, http.StatusNotImplemented:
			return syscall.ENOTSUP
		}
		return syscall.EIO
	}
	var ae *authError
	if errors.As(err, &ae) {
		var ne net.Error
		if errors.As(ae.err, &ne) && ne.Timeout() {
			return syscall.ETIMEDOUT
		}
		if errors.As(ae.err, &ne) {
			return syscall.EIO
		}
		return syscall.EACCES
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return syscall.ETIMEDOUT
	}
	return syscall.EIO
}

// transient reports whether retrying the same request may succeed.
func transient(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var ae *authError
	if errors.As(err, &ae) {
		return false
	}
	if errors.Is(err, errShareGone) || errors.Is(err, errShareUnreachable) {
		return false
	}
	return true // network errors, resets, timeouts
}
