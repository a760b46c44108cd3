package vfs

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A file written from empty is uploaded while it is being written: once it
// holds streamMin bytes, a PUT starts whose body (chunked: its length is not
// known yet) follows the spool file behind the writer. The spool stays the
// copy that counts:
//
//   - close (FlushAt) lets the body end at the file's size and waits for
//     the server's answer. Like any copy never fsync'd (see Record.Boot),
//     the spool's is not fsync'd on the way: when the server answers 2xx
//     and holds the whole file, close returns and the data never has to
//     reach the disk (the server's disk is busy with its own copy); when
//     the upload fails, the data, its record and the directory are fsync'd
//     before close returns the error. A power cut before then sends the
//     copy to lost+found on the next start, never to the server; a killed
//     agent finds it whole in the page cache and uploads it. A copy that
//     was fsync'd once (or of an unknown boot) is fsync'd before the body
//     ends, its write-back started behind the body (writeBack), so that a
//     server never has more of the file than the disk;
//   - a write below what the body already took, or a truncation below it,
//     makes the stream stale: it still ends normally at close (a server
//     that keeps whatever a cut connection sent must not be left with a
//     piece), and the spool is uploaded over the version it left,
//     conditional on that version's ETag;
//   - a rename or an unlink of a file being streamed first flushes it
//     (SettleStreams), as close would;
//   - every failure of the stream (a server that refuses chunked bodies, a
//     reset, a timeout) leaves the upload to the spool at close, with its
//     retries, conditions and conflicted copies.
const (
	streamMin = 1 << 20
	// streamChunk is the most the body hands the connection at once.
	streamChunk = 1 << 20
)

// errStreamEnded ends a stream body whose data is no longer what the file
// holds (or whose request is over).
var errStreamEnded = errors.New("streamed upload abandoned")

// upStream is an upload running while the file is written.
type upStream struct {
	ws     *WriteSession
	file   *os.File
	queued int64 // the file's bytes whose write-back to disk was started
	cond   precondition
	ctx    context.Context
	cancel context.CancelFunc
	wake   *sync.Cond // on ws.mu
	done   chan struct{}

	// syncAhead: the data is fsync'd before the body ends (the copy is
	// not one of this boot never fsync'd). Set by next, under ws.mu.
	syncAhead bool

	// Guarded by ws.mu.
	claimed int64 // bytes of the file handed to the body (or being read for it)
	end     int64 // where the body ends; -1 while the file is being written
	sentAll bool  // the body returned EOF: the whole file went
	stale   bool  // the file changed below claimed: what went is not the file
	over    bool  // abandoned, or the request finished
	idle    *time.Timer
	idled   bool  // the writer gave nothing for the spool's streamIdle
	in      Info  // the server's answer (ETag) ...
	err     error // ... or why the upload failed

	shareID, url string // where the body goes
}

// streamable reports whether a stream may start now. ws.mu is held.
func (ws *WriteSession) streamable() bool {
	return ws.streamOK && ws.stream == nil && ws.size >= streamMin && ws.file != nil && !ws.unlinked &&
		!ws.sp.streamRefused(ws.shareID)
}

// startStreamLocked starts the upload of ws while it is written. ws.mu is held.
func (ws *WriteSession) startStreamLocked() {
	ws.streamOK = false // one stream from each empty start
	sh := ws.sp.share(ws.shareID)
	if sh == nil || sh.Gone() {
		return
	}
	ctx, cancel := context.WithCancel(ws.sp.ctx)
	// What the request names is taken now, under ws.mu.
	st := &upStream{ws: ws, file: ws.file, ctx: ctx, cancel: cancel, end: -1, done: make(chan struct{}),
		cond: precondition{ifNoneMatch: ws.created, ifMatch: ws.base}, shareID: sh.ID(), url: sh.FileURL(ws.segs)}
	st.wake = sync.NewCond(&ws.mu)
	ws.stream = st
	stop := context.AfterFunc(ctx, func() {
		ws.mu.Lock()
		st.wake.Broadcast()
		ws.mu.Unlock()
	})
	mtime := ws.mtime
	go func() {
		defer stop()
		st.run(mtime)
	}()
}

// staleLocked notes that the file changed below off: a stream that sent
// that part no longer sends the file. ws.mu is held.
func (ws *WriteSession) staleLocked(off int64) {
	if st := ws.stream; st != nil && off < st.claimed {
		st.stale = true
	}
}

// Streaming reports whether an upload runs while the file is written.
func (ws *WriteSession) Streaming() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.stream != nil
}

// SettleStreams flushes the files at or below segs whose upload runs while
// they are written, before they are renamed or removed: the stream goes to
// their current name.
func (s *Spool) SettleStreams(ctx context.Context, shareID string, segs []string) error {
	if s.count.Load() == 0 {
		return nil
	}
	prefix := pathKey(shareID, segs)
	s.mu.Lock()
	var wss []*WriteSession
	for k, ws := range s.byPath {
		if k == prefix || strings.HasPrefix(k, prefix+"\x00") {
			wss = append(wss, ws)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, ws := range wss {
		if ws.Streaming() {
			if _, err := ws.Flush(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// abortStreamLocked abandons the running stream, if any: the connection is
// dropped before the body's end. ws.mu is held.
func (ws *WriteSession) abortStreamLocked() {
	st := ws.stream
	if st == nil {
		return
	}
	ws.stream = nil
	st.over = true
	st.wake.Broadcast()
	st.cancel()
}

// run sends the PUT and keeps its answer.
func (st *upStream) run(mtime time.Time) {
	defer close(st.done)
	defer st.cancel()
	sp := st.ws.sp
	// The modification time is sent before the last write came: the
	// server's copy is dated when the stream started (to the second).
	h := http.Header{
		"Content-Type": {"application/octet-stream"},
		"X-Oc-Mtime":   {strconv.FormatInt(mtime.Unix(), 10)},
	}
	st.cond.set(h)
	given := false
	resp, err := sp.dav.Do(st.ctx, Request{
		Method:  http.MethodPut,
		URL:     st.url,
		ShareID: st.shareID,
		Header:  h,
		Body: func() (io.Reader, int64, error) {
			if given {
				// A body that followed the writer cannot be sent twice.
				return nil, 0, errStreamEnded
			}
			given = true
			return streamBody{st}, -1, nil
		},
	})
	var in Info
	if err == nil {
		DrainClose(resp)
		switch resp.StatusCode {
		case http.StatusOK, http.StatusCreated, http.StatusNoContent:
			in.ETag = responseETag(resp)
		case http.StatusPreconditionFailed:
			err = ErrRemoteChanged
		case http.StatusBadRequest, http.StatusLengthRequired, http.StatusNotImplemented:
			// A server that wants a Content-Length: no more streams to it.
			sp.refuseStreams(st.shareID)
			err = &StatusError{Method: "PUT", Code: resp.StatusCode}
		default:
			err = &StatusError{Method: "PUT", Code: resp.StatusCode}
		}
	}
	ws := st.ws
	ws.mu.Lock()
	st.in, st.err, st.over = in, err, true
	if st.idle != nil {
		st.idle.Stop()
	}
	if err == nil && (st.stale || !st.sentAll) && !ws.unlinked {
		// The server keeps a version of ours that is not the file: the
		// spool's upload replaces that version, even after a restart.
		ws.created, ws.base = false, in.ETag
		if werr := sp.writeMetaLocked(ws); werr != nil {
			ws.metaStale = true // written again before the next upload
			sp.log.Warn("spool record not updated", "share", ws.shareID, "err", werr)
		}
	}
	st.wake.Broadcast()
	ws.mu.Unlock()
}

// next claims the next piece of the file for the body: up to max bytes at
// off; io.EOF once the body reached its end.
func (st *upStream) next(max int) (off int64, n int, err error) {
	ws := st.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	st.syncAhead = ws.boot == ""
	for {
		if st.over || st.ctx.Err() != nil {
			return 0, 0, errStreamEnded
		}
		avail := ws.size
		if st.end >= 0 {
			avail = st.end
		}
		if st.claimed < avail {
			if st.idle != nil {
				st.idle.Stop()
				st.idle, st.idled = nil, false
			}
			off = st.claimed
			n = int(min(int64(max), avail-off))
			st.claimed += int64(n)
			return off, n, nil
		}
		if st.end < 0 && st.idled {
			// The writer paused: the body ends here rather than be cut
			// by a timeout (a server may keep what a cut connection
			// sent); the server's version is then a piece of the file,
			// and close uploads the spool over it.
			st.end, st.stale = st.claimed, true
		}
		if st.end >= 0 {
			st.sentAll = true
			return 0, 0, io.EOF
		}
		if st.idle == nil {
			st.idle = time.AfterFunc(ws.sp.streamIdle, func() {
				ws.mu.Lock()
				st.idled = true
				st.wake.Broadcast()
				ws.mu.Unlock()
			})
		}
		st.wake.Wait()
	}
}

// writeBackStep is how far behind the body the spool file's write-back is
// started: close then fsyncs only the last of it.
const writeBackStep = 8 << 20

// StartWriteBack starts writing n bytes of f at off to disk (a variable so
// that tests can see when the spool's data is pushed to the disk).
var StartWriteBack = startWriteBack

// writeBack starts writing the spool file to disk up to end, in steps,
// without waiting, when close will fsync it: the fsync finds most of it
// done. A copy that close does not fsync is left to the page cache.
func (st *upStream) writeBack(end int64) {
	if !st.syncAhead || end-st.queued < writeBackStep {
		return
	}
	StartWriteBack(st.file, st.queued, end-st.queued)
	st.queued = end
}

// streamBody is the body of a stream: the spool file, as it grows.
type streamBody struct{ st *upStream }

func (b streamBody) Read(p []byte) (int, error) {
	off, n, err := b.st.next(len(p))
	if err != nil {
		return 0, err
	}
	m, err := b.st.file.ReadAt(p[:n], off)
	b.st.writeBack(off + int64(m))
	if m < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return m, err
	}
	return m, nil
}

// WriteTo hands the connection large pieces (one chunk each).
func (b streamBody) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, streamChunk)
	var total int64
	for {
		n, err := b.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// finish ends the body at size (the data is in the spool) and waits
// for the server's answer. used is false when the stream did not deliver the
// file and the spool must be uploaded; then cond is what that upload must be
// conditional on (the stream may have left a version of its own).
func (st *upStream) finish(ctx context.Context, size int64, cond precondition) (in Info, next precondition, used bool, err error) {
	ws := st.ws
	ws.mu.Lock()
	if !st.over {
		st.end = size
		st.wake.Broadcast()
	}
	ws.mu.Unlock()
	select {
	case <-st.done:
	case <-ctx.Done():
		st.cancel()
		<-st.done
	}
	ws.mu.Lock()
	delivered := st.err == nil && st.sentAll && st.end == size && !st.stale
	in = st.in
	ws.mu.Unlock()
	if delivered {
		if st.keptAll(ctx, size) {
			return in, cond, true, nil
		}
		// The server answered 2xx but kept less than the body (PHP
		// behind FastCGI, nginx without request buffering): no more
		// streams to it, and the spool's upload, with a length,
		// replaces the version the stream left.
		ws.sp.refuseStreams(st.shareID)
		return Info{}, precondition{ifMatch: in.ETag}, false, nil
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	switch {
	case errors.Is(st.err, ErrRemoteChanged):
		return Info{}, cond, true, st.err
	case st.err == nil:
		// The server kept a version that is not the file (stale, or
		// answered before the body ended): it is ours, and the spool's
		// upload replaces it (unconditionally when it has no ETag).
		return Info{}, precondition{ifMatch: st.in.ETag}, false, nil
	}
	if st.err != nil {
		ws.sp.log.Debug("streamed upload failed; uploading from the spool", "share", ws.shareID, "err", st.err)
	}
	return Info{}, cond, false, nil
}

// keptAll asks the server for what the stream left and reports whether it
// is the whole file: some servers answer a chunked PUT with success and
// store nothing of its body. Another size is uploaded again from the spool,
// conditional on the PUT's ETag, so that a write of someone else's that came
// in between still makes a conflicted copy rather than being overwritten.
// An unanswered check counts as a failure: the spool's upload then counts.
func (st *upStream) keptAll(ctx context.Context, size int64) bool {
	got, err := st.ws.sp.dav.Stat(ctx, st.shareID, st.url)
	if err != nil {
		st.ws.sp.log.Debug("a streamed upload could not be checked; uploading from the spool", "share", st.shareID, "err", err)
		return false
	}
	if got.Size == size {
		return true
	}
	st.ws.sp.log.Warn("the server kept less than a streamed upload sent; uploading again with a length",
		"share", st.shareID, "sent", size, "kept", got.Size)
	return false
}

// refuseStreams notes that a share's server refused a chunked upload.
func (s *Spool) refuseStreams(shareID string) {
	s.smu.Lock()
	if s.noStream == nil {
		s.noStream = map[string]bool{}
	}
	s.noStream[shareID] = true
	s.smu.Unlock()
}

func (s *Spool) streamRefused(shareID string) bool {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.noStream[shareID]
}
