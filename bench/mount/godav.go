package main

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/net/webdav"
)

// goDAV serves the data directory with golang.org/x/net/webdav, behind the
// same bearer token, for the cache workloads: nginx's dav-ext module lists
// no ETags, and without an ETag the mount keeps nothing in its cache (it
// could not tell a changed file). Nextcloud, ownCloud and reva list them.
type goDAV struct {
	srv  *http.Server
	addr string
	gets atomic.Int64 // GET requests answered
}

func startGoDAV(dataDir, token string) (*goDAV, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &webdav.Handler{FileSystem: webdav.Dir(dataDir), LockSystem: webdav.NewMemLS()}
	want := "Bearer " + token
	s := &goDAV{addr: ln.Addr().String()}
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet {
			s.gets.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *goDAV) url(p string) string { return "http://" + s.addr + p }

func (s *goDAV) stop() { _ = s.srv.Close() }
