package vfs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes a connection is given.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A PROPFIND goes out in one write, its body with its headers (not the
// headers first, then the body: two writes, and the server woken twice).
func TestPropfindOneWrite(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusMultiStatus)
		io.WriteString(w, `<d:multistatus xmlns:d="DAV:"><d:response><d:href>/a/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>`)
	}))
	defer srv.Close()
	var writes atomic.Int64
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &writes}, nil
	}}
	defer tr.CloseIdleConnections()
	c := NewClient(&http.Client{Transport: tr}, bearer{}, 10*time.Second, DefaultMaxEntries, nil)
	for i := range 3 {
		before := writes.Load()
		if _, _, err := c.Propfind(context.Background(), "s", srv.URL+"/a/", "1", nil); err != nil {
			t.Fatal(err)
		}
		if n := writes.Load() - before; n != 1 {
			t.Fatalf("PROPFIND %d went out in %d writes", i, n)
		}
	}
}

// Once a small upload is sent, the server gets the longer wait an upload's
// answer gets (answerFactor timeouts), as with any body.
func TestSmallBodyAnswerWait(t *testing.T) {
	const timeout = time.Second
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		// Storing takes a while; less than answerFactor timeouts.
		time.Sleep(2 * timeout)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c := NewClient(nil, bearer{}, timeout, DefaultMaxEntries, nil)
	resp, err := c.Do(context.Background(), Request{Method: http.MethodPut, URL: srv.URL + "/a.txt", ShareID: "s",
		Body: func() (io.Reader, int64, error) { return strings.NewReader("small"), 5, nil }})
	if err != nil {
		t.Fatalf("an answer within %d timeouts of the body sent: %v", answerFactor, err)
	}
	DrainClose(resp)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// Content-Range as Nextcloud 34 and opencloudmesh-go send it (captured), and
// answers for another range than asked.
func TestRangeStartsAt(t *testing.T) {
	for _, c := range []struct {
		header string
		off    int64
		want   bool
	}{
		{"bytes 0-65535/200000", 0, true},
		{"bytes 199990-199999/200000", 199990, true},
		{"", 42, true},
		{"bytes 0-65535/200000", 65536, false},
		{"bytes */200000", 0, false},
		{"items 0-1/2", 0, false},
	} {
		if got := RangeStartsAt(c.header, c.off); got != c.want {
			t.Errorf("RangeStartsAt(%q, %d) = %v", c.header, c.off, got)
		}
	}
}

// A PROPFIND sent on a kept-alive connection that the server closes instead
// of answering (its keep-alive ended as the request came) is sent again on a
// new connection: a listing does not fail for it.
func TestPropfindAgainAfterKeptAliveConnectionLost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const body = `<d:multistatus xmlns:d="DAV:"><d:response><d:href>/a/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>`
	answer := fmt.Sprintf("HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if n == 1 && i == 1 {
						return // the first connection's second request: closed unanswered
					}
					io.WriteString(c, answer)
				}
			}()
		}
	}()
	c := NewClient(nil, bearer{}, 10*time.Second, DefaultMaxEntries, nil)
	for i := range 3 {
		if _, _, err := c.Propfind(context.Background(), "s", "http://"+ln.Addr().String()+"/a/", "1", nil); err != nil {
			t.Fatalf("PROPFIND %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the lost one, then a new one)", n)
	}
}
