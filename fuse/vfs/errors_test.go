package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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
		// a kept-alive connection closed or reset by a server gone
		{fmt.Errorf("webdav PROPFIND: Propfind: %w", io.EOF), true},
		{fmt.Errorf("webdav PROPFIND: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("webdav PROPFIND: %w", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), true},
		{fmt.Errorf("webdav PROPFIND: %w", syscall.ECONNRESET), true},
	} {
		if got := Unreachable(c.err); got != c.want {
			t.Errorf("Unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// A server that drops a kept-alive connection when the next PROPFIND
// comes (it stopped, or restarted): Go does not send a PROPFIND again,
// and what it returns counts as the server's absence.
func TestUnreachableOnDroppedKeptAliveConnection(t *testing.T) {
	for name, reset := range map[string]bool{"closed": false, "reset": true} {
		t.Run(name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					w.WriteHeader(http.StatusMultiStatus)
					io.WriteString(w, `<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/</d:href>`+
						`<d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop>`+
						`<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>`)
					return
				}
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				if tc, ok := conn.(*net.TCPConn); ok && reset {
					tc.SetLinger(0)
				}
				conn.Close()
			}))
			defer srv.Close()
			c := NewClient(nil, bearer{}, 10*time.Second, DefaultMaxEntries, nil)
			if _, _, err := c.Propfind(context.Background(), "s", srv.URL+"/", "0", nil); err != nil {
				t.Fatalf("first PROPFIND: %v", err)
			}
			_, _, err := c.Propfind(context.Background(), "s", srv.URL+"/", "0", nil)
			if err == nil {
				t.Fatal("a PROPFIND on a dropped connection succeeded")
			}
			if !Unreachable(err) {
				t.Fatalf("Unreachable(%v) = false", err)
			}
		})
	}
}
