package ocmfs

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
)

// A complete cached file is read by the kernel from the cache's data file
// itself (FUSE passthrough), not through the mount: at the speed of a
// local file. The kernel's rules shape when: while an open of a node is
// passthrough, every other open of it must be too, sharing its backing
// file (go-fuse hands that file to each later open whose handle can be
// passthrough, ptReadHandle), and an open that is not fails; a node open
// otherwise cannot go passthrough. Hence only on read-only shares (a write
// open could not be had), only for an open that is alone, and later opens
// of the same version share it. An open of another version waits for the
// closed passthrough opens to be released (the kernel tells of a close
// after the fact) so that it does not read the old backing file.

// noPassthrough keeps the kernel from reading cached files itself (for
// tests that compare).
var noPassthrough atomic.Bool

// ptReleaseWait bounds how long an open of a new version waits for the
// passthrough opens of the old one to be released.
const ptReleaseWait = 2 * time.Second

// ptReadHandle is a read handle whose reads the kernel may do itself.
type ptReadHandle struct {
	*readHandle
	pt *os.File // the cache's data file, or nil when sharing the node's
}

var _ fs.FilePassthroughFder = (*ptReadHandle)(nil)

// PassthroughFd hands the kernel the cached copy to read. go-fuse asks
// only when the node has no backing file yet.
func (h *ptReadHandle) PassthroughFd() (int, bool) {
	if h.pt == nil {
		return 0, false
	}
	return int(h.pt.Fd()), true
}

func (h *ptReadHandle) Release(ctx context.Context) (errno syscall.Errno) {
	defer h.r.f.trace("readh.Release", "passthrough", true)(&errno)
	h.r.release()
	if h.pt != nil {
		h.pt.Close()
	}
	st := h.n.state()
	st.omu.Lock()
	st.readers--
	st.ptOpen--
	st.omu.Unlock()
	return 0
}

// openPassthrough counts h among the node's read handles and returns it
// as a passthrough handle when the kernel may (or must) read the file
// itself; nil when h is to be used as it is. etag is the version opened.
func (n *fileNode) openPassthrough(h *readHandle, cf *contentcache.File, etag string) *ptReadHandle {
	st := n.state()
	st.omu.Lock()
	defer st.omu.Unlock()
	for deadline := time.Now().Add(ptReleaseWait); st.ptOpen > 0 && st.ptETag != etag && time.Now().Before(deadline); {
		st.omu.Unlock()
		time.Sleep(5 * time.Millisecond) // polling for a Release the kernel sends after close(2)
		st.omu.Lock()
	}
	st.readers++
	switch {
	case st.ptOpen > 0:
		// The kernel takes only passthrough opens now; go-fuse gives
		// this one the node's backing file.
		st.ptOpen++
		return &ptReadHandle{readHandle: h}
	case st.readers == 1:
		pt := n.passthroughFile(cf)
		if pt == nil {
			return nil
		}
		st.ptOpen++
		st.ptETag = etag
		return &ptReadHandle{readHandle: h, pt: pt}
	}
	return nil
}

// passthroughFile opens the cache's data file of cf for the kernel: only
// for a file complete in the cache with every block verified, on a
// read-only share. Nil when not.
func (n *fileNode) passthroughFile(cf *contentcache.File) *os.File {
	if noPassthrough.Load() || cf == nil || cf.Size() == 0 || n.sh.isWritable() || !cf.Complete() || !cf.Verify() {
		return nil
	}
	fd, err := cf.OpenData()
	if err != nil {
		return nil
	}
	return fd
}
