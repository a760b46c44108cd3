package ocmfs

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirNode is a remote directory: a folder share's root or a folder in it.
// One PROPFIND Depth 1 answers both readdir and the lookups of its children;
// the answer is kept for the TTL. After that, servers of the ownCloud lineage
// (which change a folder's ETag whenever anything below it changes) are asked
// with a Depth 0 PROPFIND whether the folder's ETag moved, and the listing is
// kept when it did not; other servers are listed again.
type dirNode struct {
	fs.Inode
	remote

	lmu    sync.Mutex
	list   *listing
	listAt time.Time
	flight *flight
}

// flight is one listing request in progress. Children are added as the
// answer arrives, so that a readdir can hand them to the kernel before the
// whole (possibly large) answer is in; lookups wait for done.
type flight struct {
	done chan struct{}
	l    *listing
	err  error

	mu   sync.Mutex
	cond *sync.Cond
	ents []dent
	over bool
}

func newFlight() *flight {
	fl := &flight{done: make(chan struct{})}
	fl.cond = sync.NewCond(&fl.mu)
	return fl
}

func (fl *flight) add(name string, in info) {
	fl.mu.Lock()
	fl.ents = append(fl.ents, dent{name: name, in: in})
	fl.mu.Unlock()
	fl.cond.Broadcast()
}

// finish ends the flight; all, if not nil, replaces what was streamed (a
// listing that came whole).
func (fl *flight) finish(l *listing, err error, all []dent) {
	fl.mu.Lock()
	if all != nil {
		fl.ents = all
	}
	fl.l, fl.err, fl.over = l, err, true
	fl.mu.Unlock()
	fl.cond.Broadcast()
	close(fl.done)
}

var (
	_ fs.NodeLookuper       = (*dirNode)(nil)
	_ fs.NodeGetattrer      = (*dirNode)(nil)
	_ fs.NodeSetattrer      = (*dirNode)(nil)
	_ fs.NodeOpendirHandler = (*dirNode)(nil)
	_ fs.NodeMkdirer        = (*dirNode)(nil)
	_ fs.NodeCreater        = (*dirNode)(nil)
	_ fs.NodeUnlinker       = (*dirNode)(nil)
	_ fs.NodeRmdirer        = (*dirNode)(nil)
	_ fs.NodeRenamer        = (*dirNode)(nil)
	_ fs.NodeSymlinker      = (*dirNode)(nil)
	_ fs.NodeMknoder        = (*dirNode)(nil)
	_ fs.NodeLinker         = (*dirNode)(nil)
	_ fs.FileReaddirenter   = (*dirHandle)(nil)
	_ fs.FileLookuper       = (*dirHandle)(nil)
	_ fs.FileSeekdirer      = (*dirHandle)(nil)
)

func (d *dirNode) where() ([]string, syscall.Errno) {
	if d.sh.isGone() {
		return nil, syscall.ESTALE
	}
	segs, ok := location(&d.Inode)
	if !ok {
		return nil, syscall.ENOENT
	}
	return segs, 0
}

// listing returns the directory's listing, from the cache while younger than
// maxAge. Concurrent callers share one request, which runs on its own: a
// caller whose program is killed (ctx is its FUSE request's) stops waiting.
func (d *dirNode) listing(ctx context.Context, maxAge time.Duration) (*listing, error) {
	d.lmu.Lock()
	if d.list != nil && time.Since(d.listAt) < maxAge {
		l := d.list
		d.lmu.Unlock()
		return l, nil
	}
	fl := d.flight
	if fl == nil {
		fl = newFlight()
		d.flight = fl
		old := d.list
		d.sh.f.wg.Add(1)
		go func() {
			defer d.sh.f.wg.Done()
			d.run(fl, old)
		}()
	}
	d.lmu.Unlock()
	select {
	case <-fl.done:
	default:
		killed := make(chan struct{})
		stop := onKill(ctx, func() { close(killed) })
		defer stop()
		select {
		case <-fl.done:
		case <-killed:
			return nil, errCallerKilled
		}
	}
	return fl.l, fl.err
}

// run performs a flight and caches its result.
func (d *dirNode) run(fl *flight, old *listing) {
	l, err := d.fetch(old, fl.add)
	d.lmu.Lock()
	d.flight = nil
	var all []dent
	if err == nil {
		d.list, d.listAt = l, time.Now()
		if l == old || !l.streamed {
			all = make([]dent, 0, len(l.names))
			for _, name := range l.names {
				all = append(all, dent{name: name, in: l.items[name]})
			}
		}
	}
	d.lmu.Unlock()
	fl.finish(l, err, all)
}

func (d *dirNode) fetch(old *listing, onChild func(string, info)) (*listing, error) {
	f := d.sh.f
	segs, errno := d.where()
	if errno != 0 {
		return nil, errno
	}
	u := d.sh.dirURL(segs)
	// The check and the listing together are one operation for the
	// programs waiting on it: bounded as one.
	ctx, cancel := f.dav.withDeadline(f.ctx)
	defer cancel()
	if old != nil {
		d.lmu.Lock()
		oldETag, check := old.self.etag, old.fileID
		d.lmu.Unlock()
		if check && oldETag != "" {
			if l0, _, err := f.dav.propfind(ctx, d.sh.id, u, "0", nil); err == nil && l0.self.etag == oldETag {
				return old, nil
			}
		}
	}
	streamed := false
	l, _, err := f.dav.propfind(ctx, d.sh.id, u, "1", func(name string, in info) {
		streamed = true
		onChild(name, in)
	})
	if err != nil {
		level := slog.LevelDebug
		if errors.Is(err, errTooManyEntries) {
			level = slog.LevelWarn
		}
		f.log.Log(f.ctx, level, "listing failed", "share", d.sh.id, "entry", d.sh.name, "err", err)
		return nil, err
	}
	l.streamed = streamed || len(l.names) == 0
	if l.hasSelf && !l.self.dir && len(l.items) == 0 {
		return nil, syscall.ENOTDIR
	}
	d.setInfo(l.self)
	if d.isRoot {
		d.sh.mu.Lock()
		d.sh.rootInfo, d.sh.rootAt = l.self, time.Now()
		d.sh.mu.Unlock()
	}
	return l, nil
}

// invalidate makes the next access list the directory again.
func (d *dirNode) invalidate() {
	d.lmu.Lock()
	d.listAt = time.Time{}
	d.lmu.Unlock()
}

// patch records a change made through the mount in the cached listing:
// in == nil removes name.
func (d *dirNode) patch(name string, in *info) {
	d.lmu.Lock()
	defer d.lmu.Unlock()
	l := d.list
	if l == nil {
		return
	}
	_, had := l.items[name]
	if in == nil {
		if had {
			delete(l.items, name)
			if i := sort.SearchStrings(l.names, name); i < len(l.names) && l.names[i] == name {
				l.names = append(l.names[:i], l.names[i+1:]...)
			}
		}
		return
	}
	l.items[name] = *in
	if !had {
		i := sort.SearchStrings(l.names, name)
		l.names = append(l.names, "")
		copy(l.names[i+1:], l.names[i:])
		l.names[i] = name
	}
}

// child returns the info of name: from the listing, or a file that exists only
// in the spool so far.
func (d *dirNode) child(name string) (info, bool, syscall.Errno) {
	return d.childOf(context.Background(), name)
}

// childOf is child for a FUSE request (ctx), which ends early if its
// program is killed.
func (d *dirNode) childOf(ctx context.Context, name string) (info, bool, syscall.Errno) {
	if !validRemoteName(name) {
		return info{}, false, 0
	}
	l, err := d.listing(ctx, d.sh.f.o.MetadataTTL)
	if errors.Is(err, errCallerKilled) {
		return info{}, false, syscall.EINTR
	}
	if err != nil {
		return info{}, false, toErrno(err)
	}
	d.lmu.Lock()
	in, ok := l.items[name]
	d.lmu.Unlock()
	if ok {
		return in, true, 0
	}
	segs, errno := d.where()
	if errno != 0 {
		return info{}, false, errno
	}
	if local := d.sh.f.spool.localChildren(d.sh.id, segs); local != nil {
		if in, ok := local[name]; ok {
			return in, true, 0
		}
	}
	return info{}, false, 0
}

// node returns the inode for child name with info in, reusing the existing
// one when its type still matches.
func (d *dirNode) node(ctx context.Context, name string, in info, out *fuse.EntryOut) *fs.Inode {
	f := d.sh.f
	w := d.sh.isWritable()
	if ch := d.GetChild(name); ch != nil {
		switch n := ch.Operations().(type) {
		case *dirNode:
			if in.dir {
				n.setInfo(in)
				f.entryOut(out, in, w)
				return ch
			}
		case *fileNode:
			if !in.dir {
				n.setInfo(in)
				f.entryOut(out, n.attrInfo(in), w)
				return ch
			}
		}
	}
	f.entryOut(out, in, w)
	if in.dir {
		n := &dirNode{remote: remote{sh: d.sh}}
		n.setInfo(in)
		return d.NewInode(ctx, n, fs.StableAttr{Mode: syscall.S_IFDIR})
	}
	n := &fileNode{remote: remote{sh: d.sh}}
	n.setInfo(in)
	return d.NewInode(ctx, n, fs.StableAttr{Mode: syscall.S_IFREG})
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	in, ok, errno := d.childOf(ctx, name)
	if errno != 0 {
		return nil, errno
	}
	if !ok {
		return nil, syscall.ENOENT
	}
	return d.node(ctx, name, in, out), 0
}

func (d *dirNode) selfInfo() info {
	in, _ := d.getInfo()
	if d.isRoot {
		d.lmu.Lock()
		if d.list != nil && d.list.hasSelf {
			in = d.list.self
		} else {
			_, _, in = d.sh.state()
		}
		d.lmu.Unlock()
	}
	in.dir = true
	return in
}

func (d *dirNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f := d.sh.f
	f.fillAttr(&out.Attr, d.selfInfo(), d.sh.isWritable())
	out.SetTimeout(f.o.MetadataTTL)
	return 0
}

// Setattr accepts and ignores mode, owner and time changes on directories
// (WebDAV has no such thing), so that cp -a and rsync do not fail.
func (d *dirNode) Setattr(ctx context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	f := d.sh.f
	f.fillAttr(&out.Attr, d.selfInfo(), d.sh.isWritable())
	return 0
}

// OpendirHandle lists the directory once for the whole readdir. When the
// listing has to be fetched, the handle streams the children to the kernel as
// they arrive.
func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	segs, errno := d.where()
	if errno != 0 {
		return nil, 0, errno
	}
	h := &dirHandle{d: d, segs: segs}
	d.lmu.Lock()
	if l := d.list; l != nil && time.Since(d.listAt) < d.sh.f.o.MetadataTTL {
		h.ents = make([]dent, 0, len(l.names))
		for _, name := range l.names {
			h.ents = append(h.ents, dent{name: name, in: l.items[name]})
		}
		d.lmu.Unlock()
		h.l = l
		return h, 0, 0
	}
	fl := d.flight
	if fl == nil {
		fl = newFlight()
		d.flight = fl
		old := d.list
		d.sh.f.wg.Add(1)
		go func() {
			defer d.sh.f.wg.Done()
			d.run(fl, old)
		}()
	}
	d.lmu.Unlock()
	h.fl = fl
	return h, 0, 0
}

type dent struct {
	name string
	in   info
}

// dirHandle is one readdir: a snapshot of a cached listing, or the children
// of a flight as they arrive; files that exist only in the spool so far come
// last. READDIRPLUS lookups are answered from the same entries.
type dirHandle struct {
	d    *dirNode
	segs []string

	mu     sync.Mutex
	ents   []dent   // snapshot
	l      *listing // the snapshot's listing
	fl     *flight  // or a flight
	extra  []dent
	extras bool
	pos    int
}

// at returns entry i, waiting for a flight to bring it (unless the program of
// the FUSE request ctx is killed); ok is false at the end.
func (h *dirHandle) at(ctx context.Context, i int) (e dent, ok bool, errno syscall.Errno) {
	var l *listing
	n := 0
	if h.fl != nil {
		fl := h.fl
		fl.mu.Lock()
		if i >= len(fl.ents) && !fl.over {
			killed := false
			stop := onKill(ctx, func() {
				fl.mu.Lock()
				killed = true
				fl.cond.Broadcast()
				fl.mu.Unlock()
			})
			defer stop()
			for i >= len(fl.ents) && !fl.over && !killed {
				fl.cond.Wait()
			}
			if killed && i >= len(fl.ents) && !fl.over {
				fl.mu.Unlock()
				return dent{}, false, syscall.EINTR
			}
		}
		if i < len(fl.ents) {
			e = fl.ents[i]
			fl.mu.Unlock()
			return e, true, 0
		}
		n, l = len(fl.ents), fl.l
		err := fl.err
		fl.mu.Unlock()
		if err != nil {
			return dent{}, false, toErrno(err)
		}
	} else {
		if i < len(h.ents) {
			return h.ents[i], true, 0
		}
		n, l = len(h.ents), h.l
	}
	if !h.extras {
		h.extras = true
		for name, in := range h.d.sh.f.spool.localChildren(h.d.sh.id, h.segs) {
			h.d.lmu.Lock()
			_, listed := l.items[name]
			h.d.lmu.Unlock()
			if !listed {
				h.extra = append(h.extra, dent{name: name, in: in})
			}
		}
		sort.Slice(h.extra, func(a, b int) bool { return h.extra[a].name < h.extra[b].name })
	}
	if j := i - n; j < len(h.extra) {
		return h.extra[j], true, 0
	}
	return dent{}, false, 0
}

func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok, errno := h.at(ctx, h.pos)
	if errno != 0 || !ok {
		return nil, errno
	}
	h.pos++
	mode := uint32(syscall.S_IFREG)
	if e.in.dir {
		mode = syscall.S_IFDIR
	}
	return &fuse.DirEntry{Name: e.name, Mode: mode, Off: uint64(h.pos)}, 0
}

func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	h.mu.Lock()
	var e dent
	found := false
	if h.pos > 0 {
		if last, ok, _ := h.at(ctx, h.pos-1); ok && last.name == name {
			e, found = last, true
		}
	}
	h.mu.Unlock()
	if !found {
		return h.d.Lookup(ctx, name, out)
	}
	return h.d.node(ctx, name, e.in, out), 0
}

func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pos = int(min(off, 1<<31))
	return 0
}

// writable checks the share's permission for op.
func (d *dirNode) writable(op string) syscall.Errno {
	if !d.sh.isWritable() {
		return d.sh.f.refuseWrite(d.sh, op)
	}
	return 0
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := d.writable("mkdir"); errno != 0 {
		return nil, errno
	}
	if !validRemoteName(name) {
		return nil, syscall.EINVAL
	}
	if _, ok, errno := d.child(name); errno != 0 {
		return nil, errno
	} else if ok {
		return nil, syscall.EEXIST
	}
	segs, errno := d.where()
	if errno != 0 {
		return nil, errno
	}
	f := d.sh.f
	if err := f.dav.mkcol(f.ctx, d.sh.id, d.sh.dirURL(append(segs, name))); err != nil {
		f.log.Warn("mkdir failed", "share", d.sh.id, "err", err)
		return nil, toErrno(err)
	}
	in := info{dir: true, mtime: time.Now()}
	d.patch(name, &in)
	return d.node(ctx, name, in, out), 0
}

func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if errno := d.writable("create"); errno != 0 {
		return nil, nil, 0, errno
	}
	if !validRemoteName(name) {
		return nil, nil, 0, syscall.EINVAL
	}
	existing, exists, errno := d.child(name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if exists {
		if flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, syscall.EEXIST
		}
		if existing.dir {
			return nil, nil, 0, syscall.EISDIR
		}
	}
	segs, errno := d.where()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	f := d.sh.f
	trunc := !exists || flags&syscall.O_TRUNC != 0
	ws, err := f.spool.acquire(f.ctx, d.sh, append(segs, name), trunc, !exists, existing)
	if err != nil {
		f.log.Warn("create failed", "share", d.sh.id, "err", err)
		return nil, nil, 0, toErrno(err)
	}
	in := ws.stat()
	ch := d.node(ctx, name, in, out)
	n, ok := ch.Operations().(*fileNode)
	if !ok {
		f.spool.release(ws)
		return nil, nil, 0, syscall.EIO
	}
	return ch, &writeHandle{n: n, ws: ws}, 0, 0
}

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.writable("unlink"); errno != 0 {
		return errno
	}
	segs, errno := d.where()
	if errno != 0 {
		return errno
	}
	f := d.sh.f
	path := append(segs, name)
	// The server's copy goes first: if that fails, a pending local copy
	// stays too.
	if !f.spool.localOnly(d.sh.id, path) {
		if err := f.dav.remove(f.ctx, d.sh.id, d.sh.fileURL(path)); err != nil {
			f.log.Warn("unlink failed", "share", d.sh.id, "err", err)
			return toErrno(err)
		}
	}
	f.spool.discard(d.sh.id, path)
	d.patch(name, nil)
	return 0
}

// empty checks on the server (not the cache) that a directory has nothing in it.
func (d *dirNode) empty(segs []string) syscall.Errno {
	f := d.sh.f
	if f.spool.hasUnder(d.sh.id, segs) {
		return syscall.ENOTEMPTY
	}
	l, _, err := f.dav.propfind(f.ctx, d.sh.id, d.sh.dirURL(segs), "1", nil)
	if errors.Is(err, errTooManyEntries) {
		return syscall.ENOTEMPTY
	}
	if err != nil {
		return toErrno(err)
	}
	if !l.self.dir {
		return syscall.ENOTDIR
	}
	if l.accepted > 0 {
		return syscall.ENOTEMPTY
	}
	return 0
}

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := d.writable("rmdir"); errno != 0 {
		return errno
	}
	segs, errno := d.where()
	if errno != 0 {
		return errno
	}
	path := append(segs, name)
	// DELETE removes a collection with everything in it; rmdir must not.
	if errno := d.empty(path); errno != 0 {
		return errno
	}
	f := d.sh.f
	if err := f.dav.remove(f.ctx, d.sh.id, d.sh.dirURL(path)); err != nil {
		f.log.Warn("rmdir failed", "share", d.sh.id, "err", err)
		return toErrno(err)
	}
	d.patch(name, nil)
	return 0
}

func (d *dirNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	nd, ok := newParent.(*dirNode)
	if !ok {
		if _, root := newParent.(*rootNode); root {
			return syscall.EACCES
		}
		return syscall.EXDEV
	}
	if nd.sh != d.sh {
		return syscall.EXDEV
	}
	if errno := d.writable("rename"); errno != 0 {
		return errno
	}
	const renameNoReplace, renameExchange = 1, 2
	if flags&^renameNoReplace != 0 {
		return syscall.EINVAL
	}
	_ = renameExchange
	if !validRemoteName(newName) {
		return syscall.EINVAL
	}
	src, ok, errno := d.child(name)
	if errno != 0 {
		return errno
	}
	if !ok {
		return syscall.ENOENT
	}
	srcDir, errno := d.where()
	if errno != 0 {
		return errno
	}
	dstDir, errno := nd.where()
	if errno != 0 {
		return errno
	}
	from := append(append([]string(nil), srcDir...), name)
	to := append(append([]string(nil), dstDir...), newName)
	dst, exists, errno := nd.child(newName)
	if errno != 0 {
		return errno
	}
	if exists {
		switch {
		case flags&renameNoReplace != 0:
			return syscall.EEXIST
		case dst.dir && !src.dir:
			return syscall.EISDIR
		case !dst.dir && src.dir:
			return syscall.ENOTDIR
		case dst.dir:
			if errno := nd.empty(to); errno != 0 {
				return errno
			}
		}
	}
	f := d.sh.f
	ws := f.spool.lookup(d.sh.id, from)
	localOnly := false
	if ws != nil {
		ws.mu.Lock()
		localOnly = ws.created && !ws.unlinked
		ws.mu.Unlock()
		if !localOnly {
			// The server's copy must be current before it moves.
			if _, err := ws.flush(f.ctx); err != nil {
				f.log.Warn("rename: upload before move failed", "share", d.sh.id, "err", err)
				return toErrno(err)
			}
		}
	}
	if !localOnly {
		if err := f.move(ctx, d.sh, from, to, src.dir, flags&renameNoReplace == 0); err != nil {
			f.log.Warn("rename failed", "share", d.sh.id, "err", err)
			return toErrno(err)
		}
	}
	rerr := f.spool.rekey(d.sh.id, from, to)
	d.patch(name, nil)
	nd.patch(newName, &src)
	return toErrno(rerr)
}

// Symbolic links, device nodes and hard links do not exist in WebDAV.

func (d *dirNode) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (d *dirNode) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (d *dirNode) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

// invalidateDir drops the cached listing of the directory holding the file at
// segs, if that directory is in the tree.
func (f *FS) invalidateDir(shareID string, segs []string) {
	sh := f.shareByID(shareID)
	if sh == nil || len(segs) == 0 {
		return
	}
	cur := f.root.GetChild(sh.name)
	for _, s := range segs[:len(segs)-1] {
		if cur == nil {
			return
		}
		cur = cur.GetChild(s)
	}
	if cur == nil {
		return
	}
	if d, ok := cur.Operations().(*dirNode); ok {
		d.invalidate()
	}
}
