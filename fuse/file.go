package ocmfs

import (
	"context"
	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// fileNode is a remote file: a file inside a folder share, or a file share.
// What only an opened file needs is apart (st), allocated at its first open:
// the kernel looks up every entry of a folder listed with ls -l, most never
// opened.
type fileNode struct {
	fs.Inode
	remote
	st atomic.Pointer[openState]
}

// openState is what a file node keeps of its opens.
type openState struct {
	omu       sync.Mutex
	opened    bool
	lastValid string // validator at the last open, for FOPEN_KEEP_CACHE
	readers   int    // read handles open (passthrough.go)
	ptOpen    int    // of which passthrough
	ptETag    string // the version those read

	// pushMu and pushGen order what readers push into the kernel's page
	// cache (pagecache.go) against what changes the content there.
	pushMu  sync.RWMutex
	pushGen uint64
}

// state returns the node's open state, allocated the first time.
func (n *fileNode) state() *openState {
	if st := n.st.Load(); st != nil {
		return st
	}
	n.st.CompareAndSwap(nil, &openState{})
	return n.st.Load()
}

var (
	_ fs.NodeGetattrer = (*fileNode)(nil)
	_ fs.NodeSetattrer = (*fileNode)(nil)
	_ fs.NodeOpener    = (*fileNode)(nil)
)

// where returns the share-relative path of the file.
func (n *fileNode) where() ([]string, syscall.Errno) {
	if n.sh.isGone() {
		return nil, syscall.ESTALE
	}
	segs, ok := location(&n.Inode)
	if !ok {
		return nil, syscall.ENOENT
	}
	return segs, 0
}

// attrInfo is the info to show: the spool's size while a local copy differs.
func (n *fileNode) attrInfo(in vfs.Info) vfs.Info {
	if n.sh.f.spool.Idle() {
		in.Dir = false
		return in
	}
	if segs, ok := location(&n.Inode); ok {
		if ws := n.sh.f.spool.Lookup(n.sh.id, segs); ws != nil {
			st := ws.Stat()
			in.Size, in.Mtime = st.Size, st.Mtime
		}
	}
	in.Dir = false
	return in
}

// freshInfo returns the file's metadata, asking the server (through the
// parent's listing, or the share's root) when older than the TTL.
// While the share is offline, a file whose listing is not at hand has the
// version its cached copy holds.
func (n *fileNode) freshInfo(ctx context.Context) (vfs.Info, syscall.Errno) {
	in, errno := n.serverInfo(ctx)
	if errno != 0 && errno != syscall.ESTALE && errno != syscall.ENOENT {
		if segs, ok := location(&n.Inode); ok {
			if cin, ok := n.sh.f.storedInfo(n.sh, segs); ok {
				return cin, 0
			}
		}
	}
	return in, errno
}

func (n *fileNode) serverInfo(ctx context.Context) (vfs.Info, syscall.Errno) {
	f := n.sh.f
	in, at := n.getInfo()
	if time.Since(at) < f.o.MetadataTTL {
		return in, 0
	}
	if n.isRoot {
		fi, err := n.sh.fileInfo(f.ctx, f.o.MetadataTTL)
		if err != nil {
			return vfs.Info{}, f.errno(err)
		}
		n.setInfo(fi)
		return fi, 0
	}
	name, parent := n.Parent()
	if parent == nil {
		return in, 0 // unlinked but open: what we had
	}
	pd, ok := parent.Operations().(*dirNode)
	if !ok {
		return in, 0
	}
	fi, ok, errno := pd.child(name)
	if errno != 0 {
		return vfs.Info{}, errno
	}
	if !ok {
		return vfs.Info{}, syscall.ENOENT
	}
	n.setInfo(fi)
	return fi, 0
}

func (n *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) (errno syscall.Errno) {
	defer n.sh.f.trace("file.Getattr")(&errno)
	f := n.sh.f
	if wh, ok := fh.(*writeHandle); ok {
		f.fillAttr(&out.Attr, wh.ws.Stat(), n.sh.isWritable())
		return 0
	}
	in, errno := n.freshInfo(ctx)
	if errno != 0 {
		return errno
	}
	f.fillAttr(&out.Attr, n.attrInfo(in), n.sh.isWritable())
	out.SetTimeout(f.o.MetadataTTL)
	return 0
}

func (n *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) (errno syscall.Errno) {
	defer n.sh.f.trace("file.Setattr")(&errno)
	f := n.sh.f
	size, hasSize := in.GetSize()
	mtime, hasMtime := in.GetMTime()
	_, hasMode := in.GetMode()
	if (hasMtime || hasMode) && !n.sh.isWritable() {
		return f.refuseWrite(n.sh, "setattr")
	}
	if hasSize {
		if !n.sh.isWritable() {
			return f.refuseWrite(n.sh, "truncate")
		}
		n.changePages()
		if wh, ok := fh.(*writeHandle); ok && !wh.readOnly {
			if err := wh.ws.Truncate(int64(size)); err != nil {
				return f.errno(err)
			}
		} else {
			// truncate(2) on a path: through a session of its own, uploaded now.
			segs, errno := n.where()
			if errno != 0 {
				return errno
			}
			cur, _ := n.getInfo()
			ws, err := f.spool.Acquire(f.ctx, n.sh, segs, size == 0, false, cur)
			if err != nil {
				return f.errno(err)
			}
			err = ws.Truncate(int64(size))
			var up vfs.Info
			var moved []string
			if err == nil {
				up, moved, err = ws.FlushAt(f.ctx)
			}
			f.spool.Release(ws)
			if err != nil {
				f.log.Warn("truncate failed", "share", n.sh.id, "err", err)
				return f.errno(err)
			}
			if moved != nil {
				n.forget()
			} else {
				n.uploaded(up)
			}
		}
	}
	if hasMtime {
		if segs, ok := location(&n.Inode); ok {
			if ws := f.spool.Lookup(n.sh.id, segs); ws != nil {
				ws.SetMtime(mtime)
			}
		}
		cur, at := n.getInfo()
		cur.Mtime = mtime
		n.setInfoAt(cur, at)
	}
	var cur vfs.Info
	if wh, ok := fh.(*writeHandle); ok {
		cur = wh.ws.Stat()
	} else {
		c, _ := n.getInfo()
		cur = n.attrInfo(c)
	}
	f.fillAttr(&out.Attr, cur, n.sh.isWritable())
	return 0
}

// forget drops what is known of the file, after its local version went to a
// conflicted copy: the next stat asks the server.
func (n *fileNode) forget() {
	n.staleInfo()
	if n.isRoot {
		return
	}
	if _, parent := n.Parent(); parent != nil {
		if pd, ok := parent.Operations().(*dirNode); ok {
			pd.invalidate()
		}
	}
}

// uploaded records what the server now has after an upload from this node.
func (n *fileNode) uploaded(in vfs.Info) {
	in.Dir = false
	n.setInfo(in)
	if n.isRoot {
		n.sh.setFileInfo(in)
		return
	}
	name, parent := n.Parent()
	if parent == nil {
		return
	}
	if pd, ok := parent.Operations().(*dirNode); ok {
		pd.patch(name, &in)
	}
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (_ fs.FileHandle, _ uint32, errno syscall.Errno) {
	defer n.sh.f.trace("file.Open", "flags", flags)(&errno)
	f := n.sh.f
	segs, errno := n.where()
	if errno != 0 {
		return nil, 0, errno
	}
	if n.sh.unresolved() {
		f.log.Debug("open refused: the share's server has not been reached", "share", n.sh.id)
		return nil, 0, f.errno(vfs.ErrShareUnreachable)
	}
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
	if write {
		if !n.sh.isWritable() {
			return nil, 0, f.refuseWrite(n.sh, "open for writing")
		}
		n.changePages()
		cur, _ := n.getInfo()
		ws, err := f.spool.Acquire(f.ctx, n.sh, segs, flags&syscall.O_TRUNC != 0, false, cur)
		if err != nil {
			f.log.Warn("open for writing failed", "share", n.sh.id, "err", err)
			return nil, 0, f.errno(err)
		}
		return &writeHandle{n: n, ws: ws}, 0, 0
	}
	// A local copy newer than the server's is what must be read.
	if ws := f.spool.Lookup(n.sh.id, segs); ws != nil {
		f.spool.Hold(ws)
		return &writeHandle{n: n, ws: ws, readOnly: true}, 0, 0
	}
	in, cf, errno := n.readVersion(ctx, segs)
	if errno != 0 {
		return nil, 0, errno
	}
	v := validator(in)
	st := n.state()
	st.pushMu.Lock()
	st.omu.Lock()
	keep := st.opened && st.lastValid == v
	st.opened, st.lastValid = true, v
	st.omu.Unlock()
	if !keep {
		st.pushGen++ // the kernel drops the old content at this open
	}
	pt := &pageTarget{n: n, gen: st.pushGen, valid: v}
	st.pushMu.Unlock()
	var fuseFlags uint32
	if keep {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	if f.direct && in.Size >= f.o.DirectReadMin {
		// Through the page cache the kernel reads at most 128 KiB at a
		// time, one request after the other: a large file is read
		// direct, in requests of the program's size (up to MaxWrite),
		// copied once into the program's buffer, with this package's
		// read-ahead behind them.
		fuseFlags |= fuse.FOPEN_DIRECT_IO
	}
	h := &readHandle{n: n, r: newReader(f, n.sh, n.sh.fileURL(segs), in.Size, cf)}
	if ph := n.openPassthrough(h, cf, in.ETag); ph != nil {
		return ph, 0, 0
	}
	if fuseFlags&fuse.FOPEN_DIRECT_IO == 0 {
		h.r.pt = pt
	}
	return h, fuseFlags, 0
}

// readVersion returns the version of the file to read and, with a content
// cache, its cached copy (nil for a weak or missing ETag).
func (n *fileNode) readVersion(ctx context.Context, segs []string) (vfs.Info, *contentcache.File, syscall.Errno) {
	f := n.sh.f
	in, errno := n.freshInfo(ctx)
	if errno != 0 {
		return vfs.Info{}, nil, errno
	}
	c := f.o.Cache
	if c == nil {
		return in, nil, 0
	}
	in = n.settleVersion(ctx, segs, in)
	if !strongETag(in.ETag) {
		return in, nil, 0
	}
	cf, err := c.File(cacheKey(n.sh, segs), in.ETag, in.Size)
	if err != nil {
		f.log.Debug("content cache unavailable for a file", "share", n.sh.id, "err", err)
		return in, nil, 0
	}
	return in, cf, 0
}

// readHandle reads a remote file.
type readHandle struct {
	n *fileNode
	r *reader
}

var (
	_ fs.FileReader   = (*readHandle)(nil)
	_ fs.FileReleaser = (*readHandle)(nil)
)

func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (_ fuse.ReadResult, errno syscall.Errno) {
	defer h.r.f.trace("readh.Read", "off", off, "size", len(dest))(&errno)
	return h.r.read(ctx, dest, off)
}

func (h *readHandle) Release(ctx context.Context) (errno syscall.Errno) {
	defer h.r.f.trace("readh.Release")(&errno)
	h.r.release()
	st := h.n.state()
	st.omu.Lock()
	st.readers--
	st.omu.Unlock()
	return 0
}

// writeHandle reads and writes the spooled copy of a file. Flush (close),
// Fsync and the last Release upload it.
type writeHandle struct {
	n        *fileNode
	ws       *vfs.WriteSession
	readOnly bool
}

var (
	_ fs.FileReader    = (*writeHandle)(nil)
	_ fs.FileWriter    = (*writeHandle)(nil)
	_ fs.FileFlusher   = (*writeHandle)(nil)
	_ fs.FileFsyncer   = (*writeHandle)(nil)
	_ fs.FileReleaser  = (*writeHandle)(nil)
	_ fs.FileGetattrer = (*writeHandle)(nil)
)

func (h *writeHandle) Read(ctx context.Context, dest []byte, off int64) (_ fuse.ReadResult, errno syscall.Errno) {
	defer h.n.sh.f.trace("writeh.Read", "off", off)(&errno)
	n, err := h.ws.ReadAt(dest, off)
	if err != nil {
		return nil, h.n.sh.f.errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *writeHandle) Write(ctx context.Context, data []byte, off int64) (_ uint32, errno syscall.Errno) {
	defer h.n.sh.f.trace("writeh.Write", "off", off)(&errno)
	if h.readOnly {
		return 0, syscall.EBADF
	}
	n, err := h.ws.WriteAt(data, off)
	if err != nil {
		h.n.sh.f.log.Warn("spool write failed", "share", h.n.sh.id, "err", err)
		return uint32(n), syscall.EIO
	}
	return uint32(n), 0
}

func (h *writeHandle) Getattr(ctx context.Context, out *fuse.AttrOut) (errno syscall.Errno) {
	defer h.n.sh.f.trace("writeh.Getattr")(&errno)
	h.n.sh.f.fillAttr(&out.Attr, h.ws.Stat(), h.n.sh.isWritable())
	return 0
}

// upload sends the local copy; its error is what close(2) or fsync(2) return.
func (h *writeHandle) upload() syscall.Errno {
	if h.readOnly {
		return 0
	}
	f := h.n.sh.f
	// Writes racing with an upload leave the copy dirty: send again (bounded).
	for range 3 {
		in, moved, err := h.ws.FlushAt(f.ctx)
		if err != nil {
			errno := f.errno(err)
			f.log.Warn("upload failed; the data stays in the spool", "share", h.n.sh.id, "err", err, "errno", errno.Error())
			return errno
		}
		if moved != nil {
			// This handle now writes the conflicted copy; the file's own
			// name shows the server's version.
			h.n.forget()
			return 0
		}
		h.n.uploaded(in)
		if !h.ws.Unsent() {
			return 0
		}
	}
	return 0
}

func (h *writeHandle) Flush(ctx context.Context) (errno syscall.Errno) {
	defer h.n.sh.f.trace("writeh.Flush")(&errno)
	return h.upload()
}

func (h *writeHandle) Fsync(ctx context.Context, flags uint32) (errno syscall.Errno) {
	defer h.n.sh.f.trace("writeh.Fsync", "flags", flags)(&errno)
	if h.readOnly {
		return 0
	}
	// Durable on the server, or (when the upload fails) in the spool.
	return h.upload()
}

func (h *writeHandle) Release(ctx context.Context) (errno syscall.Errno) {
	defer h.n.sh.f.trace("writeh.Release")(&errno)
	h.n.sh.f.spool.Release(h.ws)
	return 0
}
