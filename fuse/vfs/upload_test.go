package vfs

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// smallFileSpool is a spool uploading to srv through a transport that counts
// its writes, and a new file in it holding data.
func smallFileSpool(t *testing.T, srv *httptest.Server, timeout time.Duration, data string) (*WriteSession, *atomic.Int64) {
	t.Helper()
	writes := &atomic.Int64{}
	var d net.Dialer
	tr := &http.Transport{WriteBufferSize: 64 << 10, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, writes}, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	sh := testShare{url: srv.URL + "/dav"}
	sp, err := OpenSpool(SpoolOptions{Dir: t.TempDir(), LostFoundDir: t.TempDir(),
		Client: NewClient(&http.Client{Transport: tr}, bearer{}, timeout, DefaultMaxEntries, nil),
		Share:  func(string) Share { return sh }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Close)
	ws, err := sp.Acquire(context.Background(), sh, []string{"small.bin"}, true, true, Info{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Release(ws) })
	if _, err := ws.WriteAt([]byte(data), 0); err != nil {
		t.Fatal(err)
	}
	return ws, writes
}

// A small file goes to the server in one write, its body with the headers:
// net/http sends the headers of any other body on their own first, and the
// server then reads twice.
func TestSmallUploadOneWrite(t *testing.T) {
	files, srv := newFileServer(t)
	data := strings.Repeat("0123456789abcdef", 256)
	ws, writes := smallFileSpool(t, srv, 5*time.Second, data)
	if _, _, err := ws.FlushAt(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, _ := files.get("/dav/small.bin"); c != data {
		t.Fatalf("server has %d bytes, want %d", len(c), len(data))
	}
	if n := writes.Load(); n != 1 {
		t.Errorf("%d writes for the upload of %d bytes, want 1", n, len(data))
	}
}

// Once a small upload is written, the server has longer than the client's
// timeout to answer, as for any upload (storing a file can take time).
func TestSmallUploadAnswerTime(t *testing.T) {
	const timeout = 500 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(3 * timeout) // a server slow to store the file (the client allows answerFactor timeouts)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	ws, _ := smallFileSpool(t, srv, timeout, "small")
	if _, _, err := ws.FlushAt(context.Background()); err != nil {
		t.Fatalf("upload answered after 3 timeouts: %v", err)
	}
}
