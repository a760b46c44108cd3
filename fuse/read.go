package ocmfs

import (
	"context"
	"errors"
	"fmt"
	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Reads are served with HTTP Range requests: a read at a random offset asks
// for exactly what the kernel asked for, so a program reading the first 64 KiB
// of a large file transfers about that much. Reads that follow each other are
// detected as sequential and a read-ahead window opens and doubles as the
// program keeps going (up to raMax), fetched as several ranged GETs in
// parallel over the transport's pool of keep-alive connections.
//
// With a content cache, a file with a strong ETag is read through it: a
// READ the cache holds (verified) is answered from it at once; chunks are
// cut on the cache's block boundaries, serve from the cache the blocks it
// holds, fetch the rest and store it.

const (
	raInitial   = 256 << 10
	raMax       = 32 << 20
	chunkMin    = 128 << 10
	chunkMax    = 8 << 20
	maxInflight = 4
	keepBehind  = 2 << 20 // kernel reads may arrive slightly out of order
	// raBudget bounds the memory of all read-ahead buffers of the mount.
	raBudget = 512 << 20
)

var raInUse atomic.Int64

// chunk is one ranged GET, filled as bytes arrive. buf is written only by
// the fetching goroutine and only beyond avail. Its buffer goes back to the
// pool when the reader dropped it, the fetch ended and the kernel has every
// reply that pointed into it (refs).
type chunk struct {
	off    int64
	n      int64
	buf    []byte
	ahead  bool            // counted in raInUse
	ctx    context.Context // the fetch's
	cancel context.CancelFunc
	refs   atomic.Int32
	// READs waiting on the chunk: a chunk dropped from the reader's list
	// while one waits (another READ, out of order or from another thread,
	// moved on) is fetched to its end for it, cancelled when the last
	// leaves (see leave).
	waiters atomic.Int32
	dropped atomic.Bool
	// abandoned: the READ fetching the chunk itself gave up (fetchHere);
	// the fetch goes on while other READs wait on it.
	abandoned atomic.Bool

	mu    sync.Mutex
	cond  *sync.Cond
	avail int64
	done  bool
	eof   bool // the file ended before off+n
	err   error
}

func (c *chunk) end() int64 { return c.off + c.n }

// leave ends a READ's wait on the chunk; the last to leave a dropped or
// abandoned chunk stops its fetch.
func (c *chunk) leave() {
	if c.waiters.Add(-1) == 0 && (c.dropped.Load() || c.abandoned.Load()) {
		c.cancel()
	}
}

func (c *chunk) unref() {
	if c.refs.Add(-1) == 0 {
		putBuf(c.buf)
		c.buf = nil
	}
}

// chunkReply is a READ reply pointing into a chunk. Slices makes go-fuse
// write it with one writev, after which it calls Done: without it go-fuse
// tries a splice first (a pipe resize and a write per reply, and a logged
// failure for replies over the pipe's 1 MiB).
type chunkReply struct {
	c    *chunk
	data []byte
	sl   [1][]byte
}

func (r *chunkReply) Slices() ([][]byte, fuse.Status) {
	r.sl[0] = r.data
	return r.sl[:], fuse.OK
}

func (r *chunkReply) Bytes([]byte) ([]byte, fuse.Status) { return r.data, fuse.OK }
func (r *chunkReply) Size() int                          { return len(r.data) }
func (r *chunkReply) Done()                              { r.c.unref() }

// Chunk buffers come from pools by power-of-two size, so that sequential
// reads do not allocate (and clear) megabytes per request.
const minBufShift, maxBufShift = 16, 23 // 64 KiB .. 8 MiB

var bufPools [maxBufShift + 1]sync.Pool

func bufClass(n int64) int {
	for s := minBufShift; s <= maxBufShift; s++ {
		if n <= 1<<s {
			return s
		}
	}
	return -1
}

func getBuf(n int64) []byte {
	s := bufClass(n)
	if s < 0 {
		return make([]byte, n)
	}
	if b, ok := bufPools[s].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<s)
}

func putBuf(b []byte) {
	s := bufClass(int64(cap(b)))
	if s < 0 || cap(b) != 1<<s {
		return
	}
	b = b[:cap(b)]
	bufPools[s].Put(&b)
}

// minReadRate is the slowest transfer a read waits for: a READ of n bytes
// fails after Timeout + n/minReadRate, however steadily bytes trickle in.
const minReadRate = 16 << 10

// errReadTooSlow fails a READ whose bytes did not arrive in time.
var errReadTooSlow = fmt.Errorf("read: the data did not arrive in time: %w", vfs.ErrTimeout)

// wait blocks until the chunk holds want bytes (from its start) or is done,
// or until deadline, or until the program of the FUSE request ctx is killed.
// A short count with a nil error is the end of the file.
func (c *chunk) wait(ctx context.Context, want int64, deadline time.Time) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	killed := false
	if c.avail < want && !c.done {
		wake := func() {
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
		}
		t := time.AfterFunc(time.Until(deadline), wake)
		defer t.Stop()
		stop := onKill(ctx, func() {
			c.mu.Lock()
			killed = true
			c.cond.Broadcast()
			c.mu.Unlock()
		})
		defer stop()
	}
	for c.avail < want && !c.done {
		if killed {
			return c.avail, errCallerKilled
		}
		if !time.Now().Before(deadline) {
			return c.avail, errReadTooSlow
		}
		c.cond.Wait()
	}
	if c.avail >= want {
		return want, nil
	}
	return c.avail, c.err
}

func (c *chunk) state() (done, eof, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done, c.eof, c.err != nil
}

// reader is the read side of one open file.
type reader struct {
	f      *FS
	sh     *share
	url    string
	size   int64
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	chunks  []*chunk // sorted by offset, not overlapping
	lastEnd int64
	window  int64
	seqRun  int64
	whole   *vfs.WholeFile // set once the server would not serve a range
	logged  bool           // a failed read was logged

	cf     *contentcache.File // nil without a cache
	blk    int64              // cf's block size
	cfRefs atomic.Int32       // the handle's and each fetch's: the last releases cf

	pmu        sync.Mutex
	pieces     []piece // see keepPiece
	pieceBytes int64

	// Pushing into the page cache (pagecache.go), under mu.
	pt      *pageTarget // nil: not pushed
	pushing bool        // pushAhead runs
	pushed  int64       // bytes below are pushed
}

// newReader reads the file at u of the size given, through cf when not nil
// (which it releases).
func newReader(f *FS, sh *share, u string, size int64, cf *contentcache.File) *reader {
	ctx, cancel := context.WithCancel(f.ctx)
	r := &reader{f: f, sh: sh, url: u, size: size, ctx: ctx, cancel: cancel, lastEnd: -1, cf: cf}
	if cf != nil {
		r.blk = cf.BlockSize()
		r.cfRefs.Store(1)
	}
	return r
}

// unrefCache drops a reference on the cached file: fetches still running
// when the file is closed store what they got first.
func (r *reader) unrefCache() {
	if r.cf != nil && r.cfRefs.Add(-1) == 0 {
		r.cf.Release()
	}
}

func (r *reader) release() {
	r.cancel()
	r.mu.Lock()
	for _, c := range r.chunks {
		r.dropChunk(c)
	}
	r.chunks = nil
	if r.whole != nil {
		r.whole.Unuse()
		r.whole = nil
	}
	r.mu.Unlock()
	r.unrefCache()
}

func (r *reader) dropChunk(c *chunk) {
	c.dropped.Store(true)
	if c.waiters.Load() == 0 {
		c.cancel()
	}
	if c.ahead {
		raInUse.Add(-c.n)
		c.ahead = false
	}
	c.unref()
}

// start returns a new chunk of [off, off+n) with its fetch running.
func (r *reader) start(off, n int64, ahead bool) *chunk {
	c := r.newChunk(off, n, ahead)
	go func() { r.fetchChunk(c)() }()
	return c
}

// newChunk returns a chunk of [off, off+n) whose fetch is to be run
// (fetchChunk) at once, by start or by the READ that asked for it.
func (r *reader) newChunk(off, n int64, ahead bool) *chunk {
	ctx, cancel := context.WithCancel(r.ctx)
	c := &chunk{off: off, n: n, buf: getBuf(n), ahead: ahead, ctx: ctx, cancel: cancel}
	c.cond = sync.NewCond(&c.mu)
	c.refs.Store(2) // the reader's, the fetch's
	if ahead {
		raInUse.Add(n)
	}
	r.f.wg.Add(1)
	if r.cf != nil {
		r.cfRefs.Add(1)
	}
	return c
}

// fetchChunk fills c and returns what is left once the READs waiting have
// their bytes: storing them in the cache, releasing the fetch's references.
func (r *reader) fetchChunk(c *chunk) (finish func()) {
	var err error
	var got int
	var keep func()
	if r.sh.isGone() {
		err = vfs.ErrShareGone
	} else {
		got, keep, err = r.fetchThrough(c.ctx, c.off, c.buf, func(k int) {
			c.mu.Lock()
			c.avail = int64(k)
			c.mu.Unlock()
			c.cond.Broadcast()
		})
		if err == nil && int64(got) < c.n {
			// Chunks never reach beyond the size the file had at
			// open: less is data that cannot be had, not the end.
			err = vfs.ErrShortBody
		}
	}
	c.mu.Lock()
	c.avail = int64(got)
	c.err = err
	c.eof = err == nil && int64(got) < c.n
	c.done = true
	c.mu.Unlock()
	c.cond.Broadcast()
	return func() {
		if keep != nil {
			// Stored once the chunk is done: it no longer counts as a
			// fetch in flight, and read-ahead goes on meanwhile (the
			// buffer is the fetch's until it returns).
			keep()
		}
		c.cancel()
		c.unref()
		r.unrefCache()
		r.f.wg.Done()
	}
}

// fetchHere runs the fetch of c, a chunk the READ of ctx asked for alone,
// in the READ's goroutine: a random read waits for no other goroutine to
// be scheduled. As in wait, the READ gives up at deadline or when its
// program is killed: it leaves the chunk then (an error returned means it
// has), whose fetch stops unless other READs wait on it, until the last
// of them leaves.
func (r *reader) fetchHere(ctx context.Context, c *chunk, deadline time.Time) error {
	var mu sync.Mutex
	var cause error
	ended := false
	abandon := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if !ended && cause == nil {
			cause = err
			c.abandoned.Store(true)
			c.leave()
		}
	}
	t := time.AfterFunc(time.Until(deadline), func() { abandon(errReadTooSlow) })
	stop := onKill(ctx, func() { abandon(errCallerKilled) })
	finish := r.fetchChunk(c)
	stop()
	t.Stop()
	mu.Lock()
	ended = true // a late timer or kill changes nothing now
	err := cause
	mu.Unlock()
	if r.cf != nil {
		go finish() // storing in the cache is not the READ's to wait for
	} else {
		finish()
	}
	return err
}

// fetchThrough is fetch behind the content cache: the leading blocks it
// holds are served from it, the rest is fetched; keep, when not nil, stores
// what was fetched (whole blocks only: chunks start on a block boundary).
func (r *reader) fetchThrough(ctx context.Context, off int64, buf []byte, progress func(int)) (_ int, keep func(), _ error) {
	cf := r.cf
	if cf == nil {
		n, err := r.fetch(ctx, off, buf, progress)
		return n, nil, err
	}
	n := 0
	for n < len(buf) {
		k := min(len(buf)-n, int(r.blk-(off+int64(n))%r.blk))
		got, ok := cf.ReadAt(buf[n:n+k], off+int64(n))
		if !ok {
			break
		}
		n += got
		if got < k {
			return n, nil, nil // the end of the file
		}
	}
	if n > 0 {
		progress(n)
	}
	if n == len(buf) {
		return n, nil, nil
	}
	// What the server sends is stored only if it is the version the
	// cached copy holds (a GET answering with another ETag means the file
	// changed since it was opened).
	var served string
	fctx := vfs.WithResponseETag(ctx, func(etag string) { served = etag })
	got, err := r.fetch(fctx, off+int64(n), buf[n:], func(k int) { progress(n + k) })
	if got > 0 {
		if served == "" || sameETag(served, cf.ETag()) {
			keep = func() { r.store(buf[n:n+got], off+int64(n)) }
		} else {
			r.f.log.Debug("the file changed on the server since it was opened: not cached", "share", r.sh.id)
		}
	}
	return n + got, keep, err
}

// sameETag compares ETags as versions: W/ and quotes aside (servers send
// the same ETag to PROPFIND and GET, some weakened by a proxy).
func sameETag(a, b string) bool {
	norm := func(e string) string { return strings.Trim(strings.TrimPrefix(e, "W/"), `"`) }
	return norm(a) == norm(b)
}

// Pieces of blocks (a fetch that began or ended inside one) are kept per
// open file until the rest of their block comes, at most this much.
const maxPieceBytes = 4 << 20

// piece is fetched bytes of one block.
type piece struct {
	off int64 // in the file
	b   []byte
}

// store puts the whole blocks of p (at off) in the cache, and keeps the
// pieces at its edges, storing their blocks once complete.
func (r *reader) store(p []byte, off int64) {
	if err := r.cf.WriteAt(p, off); err != nil {
		r.f.log.Debug("cannot store in the content cache", "share", r.sh.id, "err", err)
		return
	}
	end := off + int64(len(p))
	if off%r.blk != 0 {
		r.keepPiece(p[:min(int64(len(p)), r.blk-off%r.blk)], off)
	}
	if last := end / r.blk * r.blk; end%r.blk != 0 && end < r.size && last >= off && (last > off || off%r.blk == 0) {
		r.keepPiece(p[last-off:], last)
	}
}

// keepPiece adds p (at off, inside one block) to the pieces of its block
// and stores the block once its pieces cover it.
func (r *reader) keepPiece(p []byte, off int64) {
	blk := off / r.blk
	bstart := blk * r.blk
	blen := min(r.blk, r.size-bstart)
	r.pmu.Lock()
	defer r.pmu.Unlock()
	r.pieces = append(r.pieces, piece{off: off, b: append([]byte(nil), p...)})
	r.pieceBytes += int64(len(p))
	for r.pieceBytes > maxPieceBytes && len(r.pieces) > 1 {
		r.pieceBytes -= int64(len(r.pieces[0].b))
		r.pieces = r.pieces[1:]
	}
	// Is the block covered? Pieces of it, in order of offset.
	var mine []piece
	for _, q := range r.pieces {
		if q.off/r.blk == blk {
			mine = append(mine, q)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].off < mine[j].off })
	pos := bstart
	for _, q := range mine {
		if q.off > pos {
			return
		}
		pos = max(pos, q.off+int64(len(q.b)))
	}
	if pos < bstart+blen {
		return
	}
	buf := getBuf(blen)
	for _, q := range mine {
		copy(buf[q.off-bstart:], q.b)
	}
	if err := r.cf.WriteAt(buf, bstart); err != nil {
		r.f.log.Debug("cannot store in the content cache", "share", r.sh.id, "err", err)
	}
	putBuf(buf)
	kept := r.pieces[:0]
	for _, q := range r.pieces {
		if q.off/r.blk != blk {
			kept = append(kept, q)
		} else {
			r.pieceBytes -= int64(len(q.b))
		}
	}
	clear(r.pieces[len(kept):])
	r.pieces = kept
}

// fetch fills buf with the file from off: with a ranged GET, or from the
// plain GET of the whole file once the server would not serve a range.
func (r *reader) fetch(ctx context.Context, off int64, buf []byte, progress func(int)) (int, error) {
	r.mu.Lock()
	w := r.whole
	r.mu.Unlock()
	if w != nil && !w.Failed() {
		return w.ReadInto(ctx, off, buf, progress)
	}
	// The request's context follows the chunk's, unless its answer is
	// adopted as the stream of the whole file, which lives as long as the
	// open file.
	reqCtx, reqCancel := context.WithCancel(r.ctx)
	if sink := vfs.ResponseETagSink(ctx); sink != nil {
		reqCtx = vfs.WithResponseETag(reqCtx, sink)
	}
	detach := context.AfterFunc(ctx, reqCancel)
	got, err := r.f.dav.GetRange(reqCtx, r.sh.id, r.url, off, buf, progress)
	var ign *vfs.RangeIgnored
	switch {
	case errors.As(err, &ign):
		if detach() {
			w, err = r.fallback(ign.Resp, reqCancel)
		} else {
			// The chunk was dropped meanwhile: its answer went with it.
			_ = ign.Resp.Body.Close()
			reqCancel()
			w, err = r.fallback(nil, nil)
		}
	case errors.Is(err, vfs.ErrRangeRefused):
		detach()
		reqCancel()
		w, err = r.fallback(nil, nil)
	default:
		detach()
		reqCancel()
		return got, err
	}
	if err != nil {
		return 0, err
	}
	return w.ReadInto(ctx, off, buf, progress)
}

// fallback returns the stream of the whole file, starting it (from resp, a
// 200 answer to a Range request, when set) unless one runs or succeeded.
func (r *reader) fallback(resp *http.Response, cancel context.CancelFunc) (*vfs.WholeFile, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.ctx.Err(); err != nil {
		if resp != nil {
			_ = resp.Body.Close()
			cancel()
		}
		return nil, err
	}
	if w := r.whole; w != nil && !w.Failed() {
		if resp != nil {
			_ = resp.Body.Close()
			cancel()
		}
		return w, nil
	}
	w, err := vfs.NewWholeFile(r.f.o.SpoolDir, r.size)
	if err != nil {
		if resp != nil {
			_ = resp.Body.Close()
			cancel()
		}
		return nil, err
	}
	if r.whole != nil {
		r.whole.Unuse()
	}
	r.whole = w
	r.sh.noteRangesRefused(resp != nil)
	w.Use() // the stream's
	r.f.wg.Add(1)
	go func() {
		defer r.f.wg.Done()
		if cancel != nil {
			defer cancel()
		}
		w.Fill(r.ctx, r.f.dav, r.sh.id, r.url, resp)
	}()
	return w, nil
}

// track updates the access pattern with a read of [off, end) and reports
// whether it is sequential. r.mu is held.
func (r *reader) track(off, end int64) bool {
	// A read starting where the last one ended makes the pattern
	// sequential; once it is, reads arriving a little out of order (the
	// kernel's asynchronous read-ahead) keep it so.
	seq := r.lastEnd >= 0 && (off == r.lastEnd ||
		(r.window > 0 && off >= r.lastEnd-r.window && off <= r.lastEnd+r.window))
	if seq {
		// A READ past the last one counts the jump too: the program read
		// what lay between from the page cache (pagecache.go).
		r.seqRun += end - off + max(off-r.lastEnd, 0)
		switch {
		case r.window == 0:
			r.window = raInitial
		case r.seqRun >= r.window/2 && r.window < raMax:
			r.window *= 2
			r.seqRun = 0
		}
		r.lastEnd = max(r.lastEnd, end)
	} else {
		r.window, r.seqRun = 0, 0
		r.lastEnd = end
	}
	return seq
}

// plan decides the access pattern, starts the fetches needed for [off, end)
// plus read-ahead, and returns the chunks covering [off, end) in order. A
// random read's first new chunk is not started: it is returned as here, for
// the READ to fetch itself (fetchHere).
func (r *reader) plan(off, end int64) (cover []*chunk, here *chunk) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.track(off, end)

	kept := r.chunks[:0]
	inflight := 0
	for _, c := range r.chunks {
		done, _, failed := c.state()
		var drop bool
		if seq {
			drop = c.end() <= off-keepBehind
		} else {
			drop = c.end() <= off || c.off >= end
		}
		if failed || drop {
			r.dropChunk(c)
			continue
		}
		if !done {
			inflight++
		}
		kept = append(kept, c)
	}
	clear(r.chunks[len(kept):])
	r.chunks = kept

	target := end
	if seq {
		target = max(end, min(end+r.window, r.size))
	}
	chunkLen := min(max(r.window/2, chunkMin), chunkMax)
	pos := off
	i := 0
	for pos < target {
		for i < len(r.chunks) && r.chunks[i].end() <= pos {
			i++
		}
		if i < len(r.chunks) && r.chunks[i].off <= pos {
			if _, eof, _ := r.chunks[i].state(); eof {
				break
			}
			pos = r.chunks[i].end()
			continue
		}
		next := target
		if i < len(r.chunks) {
			next = min(next, r.chunks[i].off)
		}
		n := next - pos
		if pos < end {
			// Needed now: what the kernel asked for, rounded up to a chunk
			// when reading sequentially.
			if seq {
				n = min(max(end-pos, chunkLen), next-pos)
			} else {
				n = min(n, end-pos)
			}
		} else {
			if inflight >= maxInflight || raInUse.Load()+chunkLen > raBudget {
				break
			}
			// A whole chunk, even past the window's end: cut there, every
			// small read would add its own small GET at the window's end.
			n = min(chunkLen, r.size-pos)
			if i < len(r.chunks) {
				n = min(n, r.chunks[i].off-pos)
			}
		}
		if n <= 0 {
			break
		}
		start := pos
		if r.blk > 0 && seq {
			// Sequential reads go by whole blocks, so that they reach the
			// cache as they come; random ones fetch what was asked (their
			// pieces are kept until blocks fill, see keepPieces).
			floor := pos / r.blk * r.blk
			if i == 0 || r.chunks[i-1].end() <= floor {
				start = floor
			}
			stop := min((pos+n+r.blk-1)/r.blk*r.blk, r.size)
			if i < len(r.chunks) {
				stop = min(stop, r.chunks[i].off)
			}
			n = stop - start
		}
		var c *chunk
		if !seq && here == nil {
			c = r.newChunk(start, n, start+n > end)
			here = c
		} else {
			c = r.start(start, n, start+n > end)
		}
		inflight++
		r.chunks = append(r.chunks, nil)
		copy(r.chunks[i+1:], r.chunks[i:])
		r.chunks[i] = c
		pos = start + n
	}
	if seq {
		r.startPush()
	}
	for _, c := range r.chunks {
		if c.end() > off && c.off < end {
			c.refs.Add(1) // released by read
			c.waiters.Add(1)
			cover = append(cover, c)
		}
	}
	return cover, here
}

// read serves a kernel READ; ctx is the request's (for its interrupt only).
func (r *reader) read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= r.size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), r.size)
	if r.cf != nil {
		if n, ok := r.cf.ReadAt(dest[:end-off], off); ok {
			r.mu.Lock()
			r.track(off, end)
			r.mu.Unlock()
			return fuse.ReadResultData(dest[:n]), 0
		}
	}
	deadline := time.Now().Add(r.f.o.Timeout + time.Duration(end-off)*time.Second/minReadRate)
	cover, here := r.plan(off, end)
	if here != nil {
		if err := r.fetchHere(ctx, here, deadline); err != nil {
			for _, c := range cover {
				if c != here {
					c.leave()
				}
				c.unref()
			}
			return nil, r.fail(err)
		}
	}
	if len(cover) == 1 && cover[0].off <= off {
		c := cover[0]
		want := min(end, c.end()) - c.off
		avail, err := c.wait(ctx, want, deadline)
		c.leave()
		if err != nil {
			c.unref()
			return nil, r.fail(err)
		}
		if avail <= off-c.off {
			c.unref()
			return fuse.ReadResultData(nil), 0
		}
		// Bytes below avail are never written again: the reply points into
		// the chunk, whose reference it keeps until the kernel has it.
		return &chunkReply{c: c, data: c.buf[off-c.off : avail]}, 0
	}
	defer func() {
		for _, c := range cover {
			c.leave()
			c.unref()
		}
	}()
	n := int64(0)
	pos := off
	for _, c := range cover {
		if c.off > pos {
			break // a gap after a chunk that met the end of the file
		}
		want := min(end, c.end()) - c.off
		avail, err := c.wait(ctx, want, deadline)
		if err != nil {
			return nil, r.fail(err)
		}
		if avail > pos-c.off {
			k := int64(copy(dest[n:end-off], c.buf[pos-c.off:avail]))
			n += k
			pos += k
		}
		if avail < want {
			break // end of file
		}
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// fail maps a failed read. The first failure of an open file is logged at
// the default level: the program sees only EIO.
func (r *reader) fail(err error) syscall.Errno {
	if errors.Is(err, vfs.ErrShareGone) {
		return syscall.ESTALE
	}
	if errors.Is(err, errCallerKilled) {
		return syscall.EINTR
	}
	errno := r.f.errno(err)
	if r.cf != nil {
		errno = offlineErrno(r.sh, err, errno)
	}
	r.mu.Lock()
	first := !r.logged
	r.logged = true
	r.mu.Unlock()
	if first {
		r.f.log.Warn("read failed", "share", r.sh.id, "entry", r.sh.name, "size", r.size, "err", err, "errno", errno.Error())
	} else {
		r.f.log.Debug("read failed", "share", r.sh.id, "err", err)
	}
	return errno
}
