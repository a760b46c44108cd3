package ocmtest

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// faults are the fault injection switches; all are safe to flip while
// requests are being served.
type faults struct {
	latency  atomic.Int64  // nanoseconds added before answering
	failNext atomic.Int64  // the next N requests answer 503
	failRate atomic.Uint64 // math.Float64bits of the probability of a 503
	reset    atomic.Bool   // cut responses after half their body
	hang     atomic.Bool   // never answer (until Close or the client gives up)
	prefix   atomic.Pointer[string]
	injected atomic.Int64
	// refuseNotify: notifications are answered with this status (0: off)
	refuseNotify atomic.Int64
}

// RefuseNotifications makes /notifications answer status with an OCM
// error body (0 turns it off); the notification is still recorded.
func (s *Server) RefuseNotifications(status int) { s.faults.refuseNotify.Store(int64(status)) }

// SetLatency delays every (matching) request by d before it is handled.
func (s *Server) SetLatency(d time.Duration) { s.faults.latency.Store(int64(d)) }

// FailNext makes the next n (matching) requests answer 503.
func (s *Server) FailNext(n int) { s.faults.failNext.Store(int64(n)) }

// SetFailRate makes each (matching) request answer 503 with probability p
// (0 turns it off, 1 fails every request).
func (s *Server) SetFailRate(p float64) {
	s.faults.failRate.Store(math.Float64bits(min(max(p, 0), 1)))
}

// SetResetMidBody makes responses end abruptly: the connection is closed
// after the headers (with the full Content-Length) and half of the body.
func (s *Server) SetResetMidBody(on bool) { s.faults.reset.Store(on) }

// SetHang makes (matching) requests never be answered, until the client
// gives up or the server is closed.
func (s *Server) SetHang(on bool) { s.faults.hang.Store(on) }

// SetFaultPrefix limits the faults to requests whose path starts with
// prefix (e.g. WebDAVRoot); "" applies them to every request.
func (s *Server) SetFaultPrefix(prefix string) { s.faults.prefix.Store(&prefix) }

// ClearFaults turns every fault switch off.
func (s *Server) ClearFaults() {
	s.SetLatency(0)
	s.FailNext(0)
	s.SetFailRate(0)
	s.SetResetMidBody(false)
	s.SetHang(false)
	s.SetFaultPrefix("")
	s.RefuseNotifications(0)
}

// FaultsInjected counts the requests a fault was applied to.
func (s *Server) FaultsInjected() int64 { return s.faults.injected.Load() }

func (s *Server) withFaults(w http.ResponseWriter, r *http.Request, next http.Handler) {
	f := &s.faults
	if p := f.prefix.Load(); p != nil && *p != "" && !strings.HasPrefix(r.URL.Path, *p) {
		next.ServeHTTP(w, r)
		return
	}
	if f.hang.Load() {
		f.injected.Add(1)
		select {
		case <-s.closing:
		case <-r.Context().Done():
		}
		// Never answer: drop the connection instead of letting net/http
		// send an empty 200 when the handler returns.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
			}
		}
		return
	}
	if d := time.Duration(f.latency.Load()); d > 0 {
		f.injected.Add(1)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
			return
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if s.takeFailure() {
		f.injected.Add(1)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"message": "injected fault: service unavailable"})
		return
	}
	if f.reset.Load() {
		f.injected.Add(1)
		s.serveCut(w, r, next)
		return
	}
	next.ServeHTTP(w, r)
}

func (s *Server) takeFailure() bool {
	f := &s.faults
	for i := 0; i < 100; i++ {
		n := f.failNext.Load()
		if n <= 0 {
			break
		}
		if f.failNext.CompareAndSwap(n, n-1) {
			return true
		}
	}
	if p := math.Float64frombits(f.failRate.Load()); p > 0 {
		return rand.Float64() < p
	}
	return false
}

// serveCut runs next into a buffer, then writes the head and half of the
// body on the raw connection and closes it.
func (s *Server) serveCut(w http.ResponseWriter, r *http.Request, next http.Handler) {
	bw := &bufferWriter{header: http.Header{}}
	next.ServeHTTP(bw, r)
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "connection cannot be hijacked", http.StatusInternalServerError)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	body := bw.body.Bytes()
	bw.header.Del("Transfer-Encoding")
	bw.header.Set("Content-Length", strconv.Itoa(len(body)))
	bw.header.Set("Connection", "close")
	out := bufio.NewWriter(conn)
	fmt.Fprintf(out, "HTTP/1.1 %d %s\r\n", bw.status, http.StatusText(bw.status))
	_ = bw.header.Write(out)
	_, _ = out.WriteString("\r\n")
	if r.Method != http.MethodHead {
		_, _ = out.Write(body[:len(body)/2])
	}
	_ = out.Flush()
}

type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }

func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.body.Len()+len(p) > 64<<20 {
		return 0, fmt.Errorf("ocmtest: response too large to cut")
	}
	return b.body.Write(p)
}
