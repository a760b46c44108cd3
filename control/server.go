package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Server serves the API on a unix socket.
type Server struct {
	b    Backend
	log  *slog.Logger
	mux  *http.ServeMux
	http *http.Server
	path string
	ln   net.Listener
	// Heartbeat is how often an idle event stream gets a comment line.
	Heartbeat time.Duration
	// closing ends event streams on Shutdown, which would otherwise wait
	// for their clients (the tray keeps one open) until its deadline.
	closing     chan struct{}
	closingOnce sync.Once
}

// NewServer builds the API over b.
func NewServer(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{b: b, log: log, mux: http.NewServeMux(), Heartbeat: 15 * time.Second, closing: make(chan struct{})}
	for _, rt := range Routes() {
		if rt.call == nil {
			s.mux.HandleFunc(rt.Pattern(), s.events)
			continue
		}
		s.mux.HandleFunc(rt.Pattern(), func(w http.ResponseWriter, r *http.Request) {
			v, err := rt.call(b, r)
			reply(w, v, err)
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorBody{Message: "no such API: " + r.Method + " " + r.URL.Path})
	})
	return s
}

// ServeHTTP serves the API (also used by tests without a socket).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Listen creates the socket at path, mode 0600, in a directory only the
// user can enter. A stale socket left by a killed agent is replaced; a
// live one means another agent runs, which is an error.
func (s *Server) Listen(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("another ocm-agent is already running (its control socket %s answers)", path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove stale control socket %s: %w", path, err)
		}
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	s.ln, s.path = ln, path
	s.http = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// Serve answers on the socket until Shutdown.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server and removes the socket.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closingOnce.Do(func() { close(s.closing) })
	if s.http == nil {
		return nil
	}
	err := s.http.Shutdown(ctx)
	os.Remove(s.path)
	return err
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, ErrorBody{Message: "streaming unsupported"})
		return
	}
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after, _ = strconv.ParseUint(id, 10, 64)
	}
	past, next, cancel := s.b.Subscribe(after)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(ev Event) bool {
		b, _ := json.Marshal(ev)
		_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, b)
		fl.Flush()
		return err == nil
	}
	// A first comment tells the client the stream is up.
	fmt.Fprint(w, ": ok\n\n")
	fl.Flush()
	for _, ev := range past {
		if !send(ev) {
			return
		}
	}
	tick := time.NewTicker(s.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case ev, ok := <-next:
			if !ok || !send(ev) {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// writeError answers err with the status its kind maps to.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	default:
		var se interface{ HTTPStatus() int }
		if errors.As(err, &se) {
			code = se.HTTPStatus()
		}
	}
	writeJSON(w, code, ErrorBody{Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
