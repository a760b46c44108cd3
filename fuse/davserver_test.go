package ocmfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/webdav"
)

// davServer is a real WebDAV server on 127.0.0.1 (golang.org/x/net/webdav over
// a temporary directory) with a bearer-token check, a log of every request
// with the bytes it sent, and switches for the failures the mount must
// survive.
type davServer struct {
	t    *testing.T
	dir  string
	addr string

	mu         sync.Mutex
	srv        *http.Server
	token      string
	reqs       []*davReq
	putStatus  int             // answer PUTs with this status
	putReset   bool            // drop the connection in the middle of PUT bodies
	putBlock   chan struct{}   // PUTs read a little, then wait for this to close
	putStarted chan struct{}   // closed when a blocked PUT started
	refuse     map[string]bool // method+" "+path answered 405
	hang       chan struct{}   // requests wait for this to close (or the client to go)

	putMu     sync.Mutex          // a conditional PUT checks and writes as one step
	onRequest func(*http.Request) // called as each request arrives
	// intercept, if set, sees each authorized request first and answers it
	// itself (true) or lets it through (false), possibly changed.
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

type davReq struct {
	Method string
	Path   string
	Depth  string
	Range  string
	Status int
	Sent   int64 // body bytes sent
	Mtime  string
	Cond   string // If-Match or If-None-Match sent with a PUT
}

func newDAVServer(t *testing.T) *davServer {
	t.Helper()
	s := &davServer{t: t, dir: t.TempDir(), token: "test-token", refuse: map[string]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.stop)
	return s
}

func (s *davServer) serve(ln net.Listener) {
	h := &webdav.Handler{FileSystem: webdav.Dir(s.dir), LockSystem: webdav.NewMemLS()}
	srv := &http.Server{Handler: s.wrap(h), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection: the peer is down.
func (s *davServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// start listens again on the same address.
func (s *davServer) start() {
	s.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		ln, err = net.Listen("tcp", s.addr)
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling for the port to be free again, at most 50 times
	}
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *davServer) url(p string) string { return "http://" + s.addr + p }

func (s *davServer) set(fn func(s *davServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

// write puts a file into the served tree.
func (s *davServer) write(p string, data []byte) {
	s.t.Helper()
	full := filepath.Join(s.dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(full, data, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *davServer) read(p string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, filepath.FromSlash(p)))
}

func (s *davServer) log() []davReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := make([]davReq, len(s.reqs))
	for i, r := range s.reqs {
		l[i] = *r
	}
	return l
}

func (s *davServer) resetLog() {
	s.mu.Lock()
	s.reqs = nil
	s.mu.Unlock()
}

// count returns how many requests matched method and (if set) path, and the
// body bytes they sent.
func (s *davServer) count(method, path string) (int, int64) {
	n, b := 0, int64(0)
	for _, r := range s.log() {
		if r.Method == method && (path == "" || r.Path == path) {
			n++
			b += r.Sent
		}
	}
	return n, b
}

// countingWriter notes an answer's status and body bytes in its log entry.
type countingWriter struct {
	http.ResponseWriter
	s *davServer
	e *davReq
}

func (w *countingWriter) note(fn func(e *davReq)) {
	w.s.mu.Lock()
	fn(w.e)
	w.s.mu.Unlock()
}

func (w *countingWriter) WriteHeader(code int) {
	w.note(func(e *davReq) {
		if e.Status == 0 {
			e.Status = code
		}
	})
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.note(func(e *davReq) {
		if e.Status == 0 {
			e.Status = http.StatusOK
		}
		e.Sent += int64(len(p))
	})
	n, err := w.ResponseWriter.Write(p)
	if n < len(p) {
		w.note(func(e *davReq) { e.Sent -= int64(len(p) - n) })
	}
	return n, err
}

// Unwrap lets http.ResponseController flush the answer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("no hijacker")
	}
	return hj.Hijack()
}

func (s *davServer) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Logged as it comes, its status and bytes counted before they
		// go: a client that has the answer finds its request in the log.
		e := &davReq{
			Method: r.Method, Path: r.URL.Path, Depth: r.Header.Get("Depth"), Range: r.Header.Get("Range"),
			Mtime: r.Header.Get("X-OC-Mtime"), Cond: r.Header.Get("If-Match") + r.Header.Get("If-None-Match"),
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, e)
		s.mu.Unlock()
		cw := &countingWriter{ResponseWriter: w, s: s, e: e}
		s.mu.Lock()
		token, hang, refuse, onRequest := s.token, s.hang, s.refuse[r.Method+" "+r.URL.Path], s.onRequest
		putStatus, putReset, putBlock, putStarted := s.putStatus, s.putReset, s.putBlock, s.putStarted
		s.mu.Unlock()
		if onRequest != nil {
			onRequest(r)
		}
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			cw.Header().Set("WWW-Authenticate", `Bearer realm="test"`)
			http.Error(cw, "unauthorized", http.StatusUnauthorized)
			return
		}
		if refuse {
			http.Error(cw, "not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.mu.Lock()
		intercept := s.intercept
		s.mu.Unlock()
		if intercept != nil && intercept(cw, r) {
			return
		}
		if r.Method == http.MethodPut {
			switch {
			case putStatus != 0:
				_, _ = io.Copy(io.Discard, r.Body)
				http.Error(cw, "refused", putStatus)
				return
			case putReset:
				_, _ = io.CopyN(io.Discard, r.Body, 1)
				if conn, _, err := cw.Hijack(); err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						_ = tc.SetLinger(0)
					}
					_ = conn.Close()
				}
				return
			case putBlock != nil:
				_, _ = io.CopyN(io.Discard, r.Body, 1)
				if putStarted != nil {
					s.mu.Lock()
					if s.putStarted != nil {
						close(s.putStarted)
						s.putStarted = nil
					}
					s.mu.Unlock()
				}
				select {
				case <-putBlock:
				case <-r.Context().Done():
				}
				return
			}
		}
		if r.Method == http.MethodPut {
			// golang.org/x/net/webdav ignores If-Match and If-None-Match on
			// PUT; real servers (Nextcloud, reva) honour them.
			s.putMu.Lock()
			defer s.putMu.Unlock()
			if !s.preconditionHolds(r) {
				_, _ = io.Copy(io.Discard, r.Body)
				http.Error(cw, "precondition failed", http.StatusPreconditionFailed)
				return
			}
		}
		h.ServeHTTP(cw, r)
	})
}

// preconditionHolds checks If-Match and If-None-Match: * against the file's
// ETag as golang.org/x/net/webdav computes it.
func (s *davServer) preconditionHolds(r *http.Request) bool {
	im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if im == "" && inm == "" {
		return true
	}
	fi, err := os.Stat(filepath.Join(s.dir, filepath.FromSlash(r.URL.Path)))
	if inm == "*" {
		return err != nil
	}
	if err != nil {
		return false
	}
	return im == "*" || im == s.etagOf(fi)
}

func (s *davServer) etagOf(fi os.FileInfo) string {
	return fmt.Sprintf(`"%x%x"`, fi.ModTime().UnixNano(), fi.Size())
}

// testAuth is an Authorizer handing out bearer tokens; after Invalidate it
// hands out next (when set).
type testAuth struct {
	mu          sync.Mutex
	token       string
	next        string
	invalidated int
	authorized  int
}

func (a *testAuth) Authorize(ctx context.Context, shareID string, req *http.Request) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.authorized++
	req.Header.Set("Authorization", "Bearer "+a.token)
	return nil
}

func (a *testAuth) Invalidate(shareID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.invalidated++
	if a.next != "" {
		a.token = a.next
	}
}

func (a *testAuth) invalidations() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.invalidated
}
