package vfs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
)

func TestKindOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Kind
	}{
		{fmt.Errorf("webdav GET: %w", ErrTimeout), KindTimeout},
		{context.DeadlineExceeded, KindTimeout},
		{ErrShareGone, KindGone},
		{ErrShareUnreachable, KindUnreachable},
		{&StatusError{Method: "GET", Code: http.StatusForbidden}, KindDenied},
		{&StatusError{Method: "GET", Code: http.StatusNotFound}, KindNotFound},
		{&StatusError{Method: "PUT", Code: http.StatusPreconditionFailed}, KindExists},
		{&StatusError{Method: "PUT", Code: http.StatusInsufficientStorage}, KindNoSpace},
		{&StatusError{Method: "GET", Code: http.StatusTeapot}, KindIO},
		{&AuthError{Err: errors.New("no token")}, KindDenied},
		{fmt.Errorf("list: %w", ErrTooManyEntries), KindIO},
		{ErrShortBody, KindIO},
		{errors.New("something new"), KindUnknown},
	} {
		if got := KindOf(c.err); got != c.want {
			t.Errorf("KindOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("webdav GET: %w", refused), true},
		{fmt.Errorf("webdav GET: %w", ErrTimeout), true},
		{context.DeadlineExceeded, true},
		{&StatusError{Method: "PROPFIND", Code: http.StatusServiceUnavailable}, true},
		{&AuthError{Err: fmt.Errorf("token exchange: %w", refused)}, true},
		{&AuthError{Err: errors.New("no token")}, false},
		{&StatusError{Method: "GET", Code: http.StatusNotFound}, false},
		{&StatusError{Method: "GET", Code: http.StatusForbidden}, false},
		{context.Canceled, false},
		{ErrShareUnreachable, false},
	} {
		if got := Unreachable(c.err); got != c.want {
			t.Errorf("Unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
