package vfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WebDAV requests are made with plain net/http, not gowebdav, for everything on
// the hot path: gowebdav builds requests without a context (so nothing can be
// bounded or cancelled), asks for more properties than needed, reads whole
// multistatus documents without a size limit, skips the "self" entry of a
// listing by position only, buffers request bodies for its auth retry (a whole
// upload in memory), and turns a MOVE answered 409 into MkdirAll. gowebdav is
// used for MKCOL and DELETE only (see gowebdav.go), through the same transport.

const (
	maxErrorBody = 64 << 10 // read (and dropped) from error answers to reuse the connection
	// maxListings bounds the folder listings (PROPFIND Depth 1) in flight in
	// the mount, and with the cap on entries, the memory they take; one
	// share gets at most maxShareListings of them, so that a server that
	// answers slowly cannot take every turn.
	maxListings      = 4
	maxShareListings = 2
	// maxSelfEntries caps a Depth 0 answer, which should hold one entry.
	maxSelfEntries = 1000
)

// Client sends authorized WebDAV requests for shares.
type Client struct {
	hc         *http.Client
	auth       Authorizer
	timeout    time.Duration
	log        *slog.Logger
	OnRefused  func(shareID, url string, status int) // see noteRefusal; set before use
	maxEntries int
	listings   *listingSlots

	// OnReach, when set, hears of each request whether the share's server
	// answered (reached: any status below 500) or could not be had (a
	// network failure or no answer in time; not a request its caller
	// cancelled). Set before use; called on the request's goroutine.
	OnReach func(shareID string, reached bool)
}

// listingSlots are the turns of listings in flight, in all and per share.
type listingSlots struct {
	all chan struct{}

	mu    sync.Mutex
	share map[string]chan struct{}
	users map[string]int
}

func newListingSlots() *listingSlots {
	return &listingSlots{all: make(chan struct{}, maxListings), share: map[string]chan struct{}{}, users: map[string]int{}}
}

// count returns the listings of shareID in flight or waiting for a turn.
func (s *listingSlots) count(shareID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[shareID]
}

// acquire waits (until ctx ends) for a turn of shareID; release gives it back.
func (s *listingSlots) acquire(ctx context.Context, shareID string) (release func(), err error) {
	s.mu.Lock()
	per := s.share[shareID]
	if per == nil {
		per = make(chan struct{}, maxShareListings)
		s.share[shareID] = per
	}
	s.users[shareID]++
	s.mu.Unlock()
	done := func() {
		s.mu.Lock()
		if s.users[shareID]--; s.users[shareID] == 0 {
			delete(s.users, shareID)
			delete(s.share, shareID)
		}
		s.mu.Unlock()
	}
	select {
	case per <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
	select {
	case s.all <- struct{}{}:
	case <-ctx.Done():
		<-per
		done()
		return nil, ctx.Err()
	}
	return func() {
		<-s.all
		<-per
		done()
	}, nil
}

func NewClient(base *http.Client, auth Authorizer, timeout time.Duration, maxEntries int, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rt http.RoundTripper
	if base != nil && base.Transport != nil {
		rt = base.Transport
	} else {
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   timeout,
			ExpectContinueTimeout: time.Second,
			ReadBufferSize:        64 << 10,
			WriteBufferSize:       64 << 10,
		}
	}
	hc := &http.Client{
		Transport: rt,
		// Redirects are followed for GET and HEAD only, and only on the same
		// host (credentials are never sent elsewhere). For other methods the
		// 3xx comes back to the caller.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if m := via[0].Method; m != http.MethodGet && m != http.MethodHead {
				return http.ErrUseLastResponse
			}
			if req.URL.Host != via[0].URL.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return &Client{hc: hc, auth: auth, timeout: timeout, log: log, maxEntries: maxEntries, listings: newListingSlots()}
}

// watchdog cancels a request context when no progress was made for d: no
// answer headers, no body bytes read, no upload bytes consumed.
type watchdog struct {
	t      *time.Timer
	d      time.Duration
	cancel context.CancelCauseFunc
	once   sync.Once
}

func newWatchdog(parent context.Context, d time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{d: d, cancel: cancel}
	w.t = time.AfterFunc(d, func() { cancel(ErrTimeout) })
	return ctx, w
}

func (w *watchdog) kick() { w.t.Reset(w.d) }

func (w *watchdog) stop() {
	w.once.Do(func() {
		w.t.Stop()
		w.cancel(context.Canceled)
	})
}

// wdBody is a response body that kicks the watchdog on progress and stops it
// when closed.
type wdBody struct {
	rc io.ReadCloser
	w  *watchdog
}

func (b *wdBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.w.kick()
	}
	return n, err
}

func (b *wdBody) Close() error {
	err := b.rc.Close()
	b.w.stop()
	return err
}

// wdReader is an upload body that kicks the watchdog as the transport reads
// it. Once the whole body is sent, the server gets longer to answer: storing
// a large file (Nextcloud assembles, scans, moves it) takes time.
type wdReader struct {
	r io.Reader
	w *watchdog
}

// SmallBody is the largest request body sent from memory with its headers,
// in one write (within the transport's 64 KiB write buffer).
const SmallBody = 60 << 10

// smallInMemory reports whether a request body is a small one in memory.
func smallInMemory(r io.Reader, n int64) bool {
	switch r.(type) {
	case *bytes.Reader, *strings.Reader:
		return n >= 0 && n <= SmallBody
	}
	return false
}

// answerFactor is how many timeouts a server may take to answer an upload
// it has received completely.
const answerFactor = 6

func (r *wdReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.kick()
	}
	if err == io.EOF {
		r.w.t.Reset(r.w.d * answerFactor)
	}
	return n, err
}

// WriteTo lets a body that writes large pieces itself (a stream) do so,
// still kicking the watchdog.
func (r *wdReader) WriteTo(w io.Writer) (int64, error) {
	wt, ok := r.r.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	n, err := wt.WriteTo(kickWriter{w: w, wd: r.w})
	if err == nil {
		r.w.t.Reset(r.w.d * answerFactor)
	}
	return n, err
}

// kickWriter kicks a watchdog on every write that went through.
type kickWriter struct {
	w  io.Writer
	wd *watchdog
}

func (k kickWriter) Write(p []byte) (int, error) {
	n, err := k.w.Write(p)
	if n > 0 {
		k.wd.kick()
	}
	return n, err
}

// Request describes one WebDAV call; body, if set, is called for each attempt.
type Request struct {
	Method  string
	URL     string
	Header  http.Header
	Body    func() (io.Reader, int64, error)
	ShareID string
}

// Do sends r with credentials from the Authorizer. A 401 invalidates the
// credentials and the request is sent once more; a second 401 is returned as
// a StatusError. The returned body must be closed; it is bounded in time by
// the watchdog (no progress for the client timeout cancels it).
func (c *Client) Do(ctx context.Context, r Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL, UnresolvedURL) {
		return nil, ErrShareUnreachable
	}
	retried := false
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, r)
		if err != nil && !retried && ctx.Err() == nil && keptAliveLost(r.Method, err) {
			retried = true
			c.log.Debug("webdav: a kept-alive connection was closed under the request; sending it again", "share", r.ShareID, "method", r.Method)
			resp, err = c.once(ctx, r)
		}
		if err != nil {
			if c.OnReach != nil && !errors.Is(ctx.Err(), context.Canceled) && Unreachable(err) {
				c.OnReach(r.ShareID, false)
			}
			return nil, err
		}
		if c.OnReach != nil && resp.StatusCode < 500 {
			c.OnReach(r.ShareID, true)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			DrainClose(resp)
			invalidate(c.auth, r.ShareID, resp)
			c.log.Debug("webdav answered 401, credentials renewed", "share", r.ShareID, "method", r.Method)
			continue
		}
		c.noteRefusal(r, resp.StatusCode, attempt)
		return resp, nil
	}
}

func (c *Client) once(ctx context.Context, r Request) (*http.Response, error) {
	wctx, w := newWatchdog(ctx, c.timeout)
	rctx := wctx
	var body io.Reader
	var length int64
	if r.Body != nil {
		b, n, err := r.Body()
		if err != nil {
			w.stop()
			return nil, err
		}
		body, length = &wdReader{r: b, w: w}, n
		if smallInMemory(b, n) {
			// net/http writes such a body with the headers, in one
			// piece (any other body after flushing the headers: two
			// writes, and a server woken twice, for every PROPFIND).
			// The answer's longer wait starts once it is written, as
			// wdReader's does.
			body = b
			rctx = httptrace.WithClientTrace(wctx, &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { w.t.Reset(w.d * answerFactor) },
			})
		}
	}
	req, err := http.NewRequestWithContext(rctx, r.Method, r.URL, body)
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("webdav %s: %w", r.Method, err)
	}
	if body != nil {
		req.ContentLength = length
		if length == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if err := c.auth.Authorize(wctx, r.ShareID, req); err != nil {
		w.stop()
		return nil, &AuthError{Err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		w.stop()
		if cause := context.Cause(wctx); errors.Is(cause, ErrTimeout) {
			return nil, fmt.Errorf("webdav %s: %w", r.Method, ErrTimeout)
		}
		return nil, fmt.Errorf("webdav %s: %w", r.Method, scrubURLError(err))
	}
	w.kick()
	resp.Body = &wdBody{rc: resp.Body, w: w}
	return resp, nil
}

// scrubURLError drops the URL from a *url.Error: share URLs can carry
// secrets in their path with some servers, and they must not reach logs.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// DrainClose reads a little of an unwanted body so that the connection can be
// reused, then closes it.
func DrainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
}

// ReadErr maps an error from reading a body, noting a watchdog timeout.
func ReadErr(method string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("webdav %s: read body: %w", method, ErrTimeout)
	}
	return fmt.Errorf("webdav %s: read body: %w", method, err)
}

const propfindBody = `<?xml version="1.0" encoding="utf-8"?>` +
	`<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>` +
	`<d:resourcetype/><d:getcontentlength/><d:getlastmodified/><d:getetag/><oc:fileid/><oc:permissions/>` +
	`</d:prop></d:propfind>`

// WithDeadline bounds a whole operation (all its requests, every byte of
// their answers) by the client timeout: a server that sends a byte now and
// then must not hold a program in the mount for longer.
func (c *Client) WithDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.timeout, ErrTimeout)
}

// Propfind lists u (depth "0" or "1"), telling onChild (if set) of each child
// as it arrives. A 3xx to the same URL with a slash added (a collection asked
// for without one) is followed once. The whole listing is bounded by the
// client timeout, and by the cap on entries; at most maxListings Depth 1
// listings run at once, the others wait (within their time) for a turn.
func (c *Client) Propfind(ctx context.Context, shareID, u, depth string, onChild func(string, Info)) (*Listing, string, error) {
	ctx, cancel := c.WithDeadline(ctx)
	defer cancel()
	maxEntries := c.maxEntries
	if depth == "0" {
		maxEntries = min(maxEntries, maxSelfEntries)
	} else {
		release, err := c.listings.acquire(ctx, shareID)
		if err != nil {
			return nil, u, fmt.Errorf("webdav PROPFIND: wait for a turn: %w", ErrTimeout)
		}
		defer release()
	}
	for hop := 0; hop < 2; hop++ {
		resp, err := c.Do(ctx, Request{
			Method:  "PROPFIND",
			URL:     u,
			ShareID: shareID,
			Header: http.Header{
				"Depth":        {depth},
				"Content-Type": {"application/xml; charset=utf-8"},
			},
			Body: func() (io.Reader, int64, error) {
				return strings.NewReader(propfindBody), int64(len(propfindBody)), nil
			},
		})
		if err != nil {
			return nil, u, err
		}
		switch {
		case resp.StatusCode == http.StatusMultiStatus:
			l, err := ParseStreamMax(resp.Body, u, maxEntries, onChild)
			_ = resp.Body.Close()
			if errors.Is(err, ErrTooManyEntries) {
				return nil, u, fmt.Errorf("webdav PROPFIND: more than %d entries: %w", maxEntries, err)
			}
			if err != nil {
				if context.Cause(ctx) == ErrTimeout {
					return nil, u, fmt.Errorf("webdav PROPFIND: read body: %w", ErrTimeout)
				}
				return nil, u, ReadErr("PROPFIND", err)
			}
			return l, u, nil
		case resp.StatusCode >= 300 && resp.StatusCode < 400 && hop == 0:
			loc, lerr := resp.Location()
			DrainClose(resp)
			if lerr != nil || loc.Host != mustHost(u) || strings.TrimSuffix(loc.Path, "/") != strings.TrimSuffix(mustPath(u), "/") {
				return nil, u, &StatusError{Method: "PROPFIND", Code: resp.StatusCode}
			}
			u = loc.String()
			continue
		default:
			DrainClose(resp)
			return nil, u, &StatusError{Method: "PROPFIND", Code: resp.StatusCode}
		}
	}
	return nil, u, &StatusError{Method: "PROPFIND", Code: http.StatusLoopDetected}
}

func mustHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

func mustPath(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Path
}

// Stat asks for the metadata of the file at u: PROPFIND Depth 0, or HEAD
// from a server that refuses PROPFIND on it (405, 501, or 400 as seen in
// the wild for a file share served by GET and HEAD only).
func (c *Client) Stat(ctx context.Context, shareID, u string) (Info, error) {
	l, _, err := c.Propfind(ctx, shareID, u, "0", nil)
	if err == nil {
		return l.Self, nil
	}
	var se *StatusError
	if errors.As(err, &se) && (se.Code == http.StatusMethodNotAllowed || se.Code == http.StatusNotImplemented || se.Code == http.StatusBadRequest) {
		return c.Head(ctx, shareID, u)
	}
	return Info{}, err
}

// Head asks for the metadata of a file with HEAD, for servers that refuse
// PROPFIND on a single-file share.
func (c *Client) Head(ctx context.Context, shareID, u string) (Info, error) {
	ctx, cancel := c.WithDeadline(ctx)
	defer cancel()
	resp, err := c.Do(ctx, Request{Method: http.MethodHead, URL: u, ShareID: shareID})
	if err != nil {
		return Info{}, err
	}
	DrainClose(resp)
	if resp.StatusCode != http.StatusOK {
		return Info{}, &StatusError{Method: "HEAD", Code: resp.StatusCode}
	}
	in := Info{Size: resp.ContentLength, ETag: resp.Header.Get("ETag")}
	if in.Size < 0 {
		in.Size = 0
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		in.Mtime = t
	}
	return in, nil
}

// ErrRangeRefused means the server answered a Range request inside the
// file with 416: reva does so for every range although its HEAD says
// "Accept-Ranges: bytes".
var ErrRangeRefused = errors.New("webdav GET: the server refused a byte range")

// RangeIgnored is returned by getRange when the server answered with the
// whole file (200). resp is that answer, body unread, for the caller to use
// or close.
type RangeIgnored struct{ Resp *http.Response }

func (e *RangeIgnored) Error() string { return "webdav GET: the server ignored a byte range" }

type etagSinkKey struct{}

// WithResponseETag returns ctx for GetRange calls that tell fn the ETag of
// their answer ("" when it has none), before its body is read: a caller
// that keeps what it reads under a version checks it is that version.
func WithResponseETag(ctx context.Context, fn func(etag string)) context.Context {
	return context.WithValue(ctx, etagSinkKey{}, fn)
}

// ResponseETagSink is the function WithResponseETag put in ctx, or nil.
func ResponseETagSink(ctx context.Context) func(string) {
	fn, _ := ctx.Value(etagSinkKey{}).(func(string))
	return fn
}

// GetRange fetches [off, off+n) of u into buf[:n] (buf may be filled partly
// when the file is shorter). progress, if set, is told how many bytes of buf
// are valid as they arrive. It returns the number of bytes read; a short count
// with a nil error means the file ended early. A server that will not serve
// the range gives ErrRangeRefused or a *RangeIgnored.
func (c *Client) GetRange(ctx context.Context, shareID, u string, off int64, buf []byte, progress func(int)) (int, error) {
	n := len(buf)
	resp, err := c.Do(ctx, Request{
		Method:  http.MethodGet,
		URL:     u,
		ShareID: shareID,
		Header:  http.Header{"Range": {"bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+int64(n)-1, 10)}},
	})
	if err != nil {
		return 0, err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !RangeStartsAt(resp.Header.Get("Content-Range"), off) {
			DrainClose(resp)
			return 0, ErrRangeRefused
		}
		if sink := ResponseETagSink(ctx); sink != nil {
			sink(resp.Header.Get("ETag"))
		}
	case http.StatusOK:
		return 0, &RangeIgnored{Resp: resp}
	case http.StatusRequestedRangeNotSatisfiable:
		DrainClose(resp)
		return 0, ErrRangeRefused
	default:
		DrainClose(resp)
		return 0, &StatusError{Method: "GET", Code: resp.StatusCode}
	}
	defer resp.Body.Close()
	got := 0
	for got < n {
		m, err := resp.Body.Read(buf[got:n])
		got += m
		if m > 0 && progress != nil {
			progress(got)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return got, ReadErr("GET", err)
		}
	}
	return got, nil
}

// RangeStartsAt reports whether a Content-Range header ("bytes 10-19/100")
// starts at off. A missing header is taken as the range asked for.
func RangeStartsAt(cr string, off int64) bool {
	if cr == "" {
		return true
	}
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	return err == nil && v == off
}

// GetWhole starts a plain GET of u, for servers that do not serve ranges.
func (c *Client) GetWhole(ctx context.Context, shareID, u string) (*http.Response, error) {
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, URL: u, ShareID: shareID})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		DrainClose(resp)
		return nil, &StatusError{Method: "GET", Code: resp.StatusCode}
	}
	return resp, nil
}

// Move renames the resource at src to dst (URLs) with MOVE, never creating
// missing parents (unlike gowebdav's Rename).
func (c *Client) Move(ctx context.Context, shareID, src, dst string, overwrite bool) error {
	ow := "F"
	if overwrite {
		ow = "T"
	}
	// The server may move a large tree before it answers: it gets as long
	// as for storing an upload it has received.
	mctx, cancel := context.WithTimeoutCause(ctx, c.timeout*answerFactor, ErrTimeout)
	defer cancel()
	resp, err := c.Do(mctx, Request{
		Method:  "MOVE",
		URL:     src,
		ShareID: shareID,
		Header:  http.Header{"Destination": {dst}, "Overwrite": {ow}},
	})
	if err != nil {
		return err
	}
	DrainClose(resp)
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusNoContent, http.StatusOK:
		return nil
	}
	return &StatusError{Method: "MOVE", Code: resp.StatusCode}
}

// Listings returns the listings of shareID in flight or waiting for a turn.
func (c *Client) Listings(shareID string) int { return c.listings.count(shareID) }

// keptAliveLost reports whether a request failed because the server closed
// the kept-alive connection it was sent on, and may be sent again on a new
// one: a connection closed while idle, before the request went (any
// method: the server saw nothing), or an end of connection instead of the
// answer to a PROPFIND (it changes nothing). net/http sends such requests
// again only for GET, HEAD, OPTIONS and TRACE. A server that is gone then
// refuses the new connection, which says so.
func keptAliveLost(method string, err error) bool {
	if strings.Contains(err.Error(), "http: server closed idle connection") {
		return true
	}
	return method == "PROPFIND" && connectionEnded(err)
}
