package ocmfs

import (
	"sync/atomic"
	"syscall"
	"time"
)

// Through the page cache the kernel reads a file in requests of at most
// 128 KiB (the FUSE device's read-ahead, which only root can raise), one
// after the other: each a round trip to this process whatever the
// read-ahead behind it. Once reads are sequential, what read-ahead fetched
// is pushed into the kernel's page cache (FUSE_NOTIFY_STORE, in pushUnit
// pieces), where the program finds it without a request. Pushing stays
// half a read-ahead window ahead of the last READ, and leaves out one page
// every pushProbeEvery bytes: the program's READ of that page (served at once
// from what was fetched) tells how far it got, which moves read-ahead and
// pushing on, so that a program that stops reading stops the fetching.
// The pages after a probe are in the cache already: the kernel asks for
// the probe alone, and pushing has no READs to race with.

const (
	pushUnit       = 1 << 20 // the most pushed in one notification
	pushProbeEvery = 2 << 20
	pageSize       = 4 << 10
)

// noPush is set once the kernel refused a push for lack of support.
var noPush atomic.Bool

// pageTarget is where a reader pushes: the open file's node, at the
// generation of its content at open, of the version read.
type pageTarget struct {
	n     *fileNode
	gen   uint64
	valid string // validator of the version
}

// push stores b at off in the node's page cache, unless its content
// changed (another version opened, a write open, a truncate) since the
// reader's open, or the node learned of another version (whose size the
// kernel may have: a push past it would grow the file).
func (t *pageTarget) push(off int64, b []byte) bool {
	n, st := t.n, t.n.state()
	st.pushMu.RLock()
	defer st.pushMu.RUnlock()
	if cur, _ := n.getInfo(); st.pushGen != t.gen || validator(cur) != t.valid {
		return false
	}
	errno := n.WriteCache(off, b)
	if errno == syscall.ENOSYS {
		noPush.Store(true)
	}
	return errno == 0
}

// changePages marks the node's page-cache content as changed: readers
// opened before push no more. It waits for a push in progress.
func (n *fileNode) changePages() {
	st := n.state()
	st.pushMu.Lock()
	st.pushGen++
	st.pushMu.Unlock()
}

// startPush starts the pusher unless it runs or pushing is off. r.mu is held.
func (r *reader) startPush() {
	if r.pt == nil || r.pushing || noPush.Load() {
		return
	}
	r.pushing = true
	r.f.wg.Add(1)
	go r.pushAhead()
}

// pushAhead pushes the bytes fetched from max(pushed, lastEnd) up to half
// a window beyond lastEnd, in order, then ends (the next READ starts it
// again).
func (r *reader) pushAhead() {
	defer r.f.wg.Done()
	for {
		r.mu.Lock()
		pos := max(r.pushed, r.lastEnd)
		limit := min(r.lastEnd+r.window/2, r.size)
		var c *chunk
		for _, x := range r.chunks {
			if x.off <= pos && pos < x.end() {
				c = x
				break
			}
		}
		if c == nil || pos >= limit || r.window == 0 || r.pt == nil || r.ctx.Err() != nil {
			r.pushing = false
			r.mu.Unlock()
			return
		}
		c.refs.Add(1)
		c.waiters.Add(1)
		pt := r.pt
		r.mu.Unlock()

		want := min(c.end(), limit, pos+pushUnit) - c.off
		avail, err := c.wait(r.ctx, want, time.Now().Add(r.f.o.Timeout+pushUnit*time.Second/minReadRate))
		c.leave()
		if err != nil || avail <= pos-c.off {
			c.unref()
			r.mu.Lock()
			r.pushing = false // a failed fetch: READs meet the error
			r.mu.Unlock()
			return
		}
		end := c.off + avail
		if end < r.size {
			end &^= pageSize - 1 // a page pushed in part is not usable
		}
		ok := true
		for p := pos; p < end && ok; {
			q := min(end, (p/pushProbeEvery+1)*pushProbeEvery)
			if p%pushProbeEvery == 0 {
				p += pageSize // the probe
			}
			if p < q {
				ok = pt.push(p, c.buf[p-c.off:q-c.off])
			}
			p = q
		}
		c.unref()
		r.mu.Lock()
		if ok {
			r.pushed = max(r.pushed, end)
		} else {
			r.pt = nil // stale or refused: the kernel asks for the rest
		}
		r.mu.Unlock()
	}
}
