package ocmfs

import (
	"context"
	"errors"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
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

	cache *vfs.DirCache
	// readdirAt is when a program last read the directory (unix nanos): a
	// readdir of a child soon after is a walk.
	readdirAt atomic.Int64
	kmu       sync.Mutex
	// What the kernel holds of the directory's readdir: a listing version
	// (or the ID of the flight it read), nothing, or an unknown (stale) copy.
	kver      uint64
	kfl       uint64
	kstale    bool
	kdropping bool // the kernel is being told to drop its copy

	// Listings kept for offline use (keepListing): one at a time, the newest.
	keepMu  sync.Mutex
	keepSeq atomic.Uint64
}

// newDirNode returns the node of a directory of sh, isRoot for the share's.
func newDirNode(sh *share, isRoot bool) *dirNode {
	d := &dirNode{remote: remote{sh: sh, isRoot: isRoot}}
	f := sh.f
	d.cache = vfs.NewDirCache(d.fetch, nil, func(run func()) {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			run()
		}()
	})
	return d
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
func (d *dirNode) listing(ctx context.Context, maxAge time.Duration) (*vfs.Listing, error) {
	l, fl := d.cache.Get(maxAge)
	if fl == nil {
		return l, nil
	}
	select {
	case <-fl.Done():
	default:
		killed := make(chan struct{})
		stop := onKill(ctx, func() { close(killed) })
		defer stop()
		select {
		case <-fl.Done():
		case <-killed:
			return nil, errCallerKilled
		}
	}
	return fl.Result()
}

func (d *dirNode) fetch(old *vfs.Listing, onChild func(string, vfs.Info)) (*vfs.Listing, error) {
	f := d.sh.f
	segs, errno := d.where()
	if errno != 0 {
		return nil, errno
	}
	u := d.sh.dirURL(segs)
	if l := f.offlineFirst(d.sh, segs, old); l != nil {
		return l, nil
	}
	// The check and the listing together are one operation for the
	// programs waiting on it: bounded as one.
	ctx, cancel := f.dav.WithDeadline(f.ctx)
	defer cancel()
	if old != nil {
		oldETag, check := old.Self.ETag, old.FileID
		if check && oldETag != "" {
			if l0, _, err := f.dav.Propfind(ctx, d.sh.id, u, "0", nil); err == nil && l0.Self.ETag == oldETag {
				return old, nil
			}
		}
	}
	streamed := false
	l, _, err := f.dav.Propfind(ctx, d.sh.id, u, "1", func(name string, in vfs.Info) {
		streamed = true
		onChild(name, in)
	})
	if err != nil {
		if l := f.offlineListing(d.sh, segs, err, old); l != nil {
			return l, nil
		}
		level := slog.LevelDebug
		if errors.Is(err, vfs.ErrTooManyEntries) {
			level = slog.LevelWarn
		}
		f.log.Log(f.ctx, level, "listing failed", "share", d.sh.id, "entry", d.sh.name, "err", err)
		return nil, err
	}
	l.Streamed = streamed || l.Len() == 0
	if l.HasSelf && !l.Self.Dir && l.Len() == 0 {
		return nil, syscall.ENOTDIR
	}
	f.keepListing(d.sh, d, segs, l)
	d.setInfo(l.Self)
	if d.isRoot {
		d.sh.mu.Lock()
		d.sh.rootInfo, d.sh.rootAt = l.Self, time.Now()
		d.sh.mu.Unlock()
	}
	return l, nil
}

// invalidate makes the next access list the directory again.
func (d *dirNode) invalidate() { d.cache.Invalidate() }

// patch records a change made through the mount in the cached listing:
// in == nil removes name.
func (d *dirNode) patch(name string, in *vfs.Info) { d.cache.Patch(name, in) }

// child returns the info of name: from the listing, or a file that exists only
// in the spool so far.
func (d *dirNode) child(name string) (vfs.Info, bool, syscall.Errno) {
	return d.childOf(context.Background(), name)
}

// childOf is child for a FUSE request (ctx), which ends early if its
// program is killed.
func (d *dirNode) childOf(ctx context.Context, name string) (vfs.Info, bool, syscall.Errno) {
	if !vfs.ValidRemoteName(name) {
		return vfs.Info{}, false, 0
	}
	l, err := d.listing(ctx, d.sh.f.o.MetadataTTL)
	if errors.Is(err, errCallerKilled) {
		return vfs.Info{}, false, syscall.EINTR
	}
	if err != nil {
		return vfs.Info{}, false, d.sh.f.errno(err)
	}
	in, ok := d.cache.Item(l, name)
	if ok {
		return in, true, 0
	}
	segs, errno := d.where()
	if errno != 0 {
		return vfs.Info{}, false, errno
	}
	if local := d.sh.f.spool.LocalChildren(d.sh.id, segs); local != nil {
		if in, ok := local[name]; ok {
			return in, true, 0
		}
	}
	return vfs.Info{}, false, 0
}

// node returns the inode for child name with info in, reusing the existing
// one when its type still matches.
func (d *dirNode) node(ctx context.Context, name string, in vfs.Info, out *fuse.EntryOut) *fs.Inode {
	f := d.sh.f
	w := d.sh.isWritable()
	if ch := d.GetChild(name); ch != nil {
		switch n := ch.Operations().(type) {
		case *dirNode:
			if in.Dir {
				n.setInfo(in)
				f.entryOut(out, in, w)
				return ch
			}
		case *fileNode:
			if !in.Dir {
				n.setInfo(in)
				f.entryOut(out, n.attrInfo(in), w)
				return ch
			}
		}
	}
	f.entryOut(out, in, w)
	if in.Dir {
		n := newDirNode(d.sh, false)
		n.setInfo(in)
		return d.NewInode(ctx, n, fs.StableAttr{Mode: syscall.S_IFDIR})
	}
	n := &fileNode{remote: remote{sh: d.sh}}
	n.setInfo(in)
	return d.NewInode(ctx, n, fs.StableAttr{Mode: syscall.S_IFREG})
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (_ *fs.Inode, errno syscall.Errno) {
	defer d.sh.f.traceName("dir.Lookup", name)(&errno)
	in, ok, errno := d.childOf(ctx, name)
	if errno != 0 {
		return nil, errno
	}
	if !ok {
		return nil, syscall.ENOENT
	}
	return d.node(ctx, name, in, out), 0
}

func (d *dirNode) selfInfo() vfs.Info {
	in, _ := d.getInfo()
	if d.isRoot {
		if l := d.cache.Current(); l != nil && l.HasSelf {
			in = l.Self
		} else {
			_, _, in = d.sh.state()
		}
	}
	in.Dir = true
	return in
}

func (d *dirNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) (errno syscall.Errno) {
	defer d.sh.f.trace("dir.Getattr")(&errno)
	f := d.sh.f
	f.fillAttr(&out.Attr, d.selfInfo(), d.sh.isWritable())
	out.SetTimeout(f.o.MetadataTTL)
	return 0
}

// Setattr accepts and ignores mode, owner and time changes on directories
// (WebDAV has no such thing), so that cp -a and rsync do not fail.
func (d *dirNode) Setattr(ctx context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) (errno syscall.Errno) {
	defer d.sh.f.trace("dir.Setattr")(&errno)
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
func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (_ fs.FileHandle, _ uint32, errno syscall.Errno) {
	defer d.sh.f.trace("dir.OpendirHandle", "flags", flags)(&errno)
	segs, errno := d.where()
	if errno != 0 {
		return nil, 0, errno
	}
	h := &dirHandle{d: d, segs: segs}
	var ver uint64
	h.ents, h.l, h.fl, ver = d.cache.Open(d.sh.f.o.MetadataTTL)
	d.readdirAt.Store(time.Now().UnixNano())
	d.walkAhead()
	return h, d.kernelCache(ver, h.fl, segs), 0
}

// walkAhead is the read-ahead of a walk (find, du, a backup, a file
// manager's search): a folder read soon after its parent was read starts the
// listings of the sibling folders that come after it in the parent's
// readdir (at most walkAheadDirs, those not fresh) in the background, so
// that they run side by side rather than one after the other as the walker
// comes to them. The listing turns per share bound how many run at once.
func (d *dirNode) walkAhead() {
	if d.isRoot {
		return
	}
	ttl := d.sh.f.o.MetadataTTL
	name, parent := d.Parent()
	if parent == nil {
		return
	}
	pd, ok := parent.Operations().(*dirNode)
	if !ok || time.Since(time.Unix(0, pd.readdirAt.Load())) > ttl {
		return
	}
	l := pd.cache.Current()
	if l == nil {
		return
	}
	for _, sib := range pd.cache.DirsAhead(l, name, walkAheadDirs) {
		if ch := parent.GetChild(sib); ch != nil {
			if sd, ok := ch.Operations().(*dirNode); ok {
				sd.cache.Prefetch(ttl)
			}
		}
	}
}

// walkAheadDirs bounds the listings one readdir starts ahead of a walk.
const walkAheadDirs = 64

// kernelCache returns the open flags that let the kernel keep this readdir
// (FOPEN_CACHE_DIR) and answer the next ones itself while the listing is the
// same version (FOPEN_KEEP_CACHE): a warm ls -l then never reaches the
// agent. ver is the version of the cached listing the readdir reads, or fl
// the flight it reads (whose version is known once it landed).
//
// The kernel is given a readdir to keep only when it holds none: a copy of
// another version is first dropped (an inode notification, in the
// background; readdirs meanwhile come here). A folder with files only in
// the spool (entries that change without a new version) is read through.
func (d *dirNode) kernelCache(ver uint64, fl *vfs.Flight, segs []string) uint32 {
	d.kmu.Lock()
	defer d.kmu.Unlock()
	held := d.kver
	if d.kfl != 0 {
		held = d.cache.FlightVersion(d.kfl)
		if held == 0 {
			d.kstale = true // the flight failed or was replaced: unknown
		}
	}
	d.kver, d.kfl = 0, 0
	switch {
	case d.kdropping:
		return 0
	case d.kstale || (held != 0 && held != ver):
		d.dropKernelCache()
		return 0
	case d.sh.f.spool.HasUnder(d.sh.id, segs):
		d.kver = held
		return 0
	case held != 0: // == ver
		d.kver = ver
		return fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	d.kver, d.kfl = ver, 0
	if fl != nil {
		d.kfl = fl.ID()
	}
	return fuse.FOPEN_CACHE_DIR
}

// dropKernelCache makes the kernel drop its copy of the directory's readdir,
// in the background. d.kmu is held.
func (d *dirNode) dropKernelCache() {
	d.kstale, d.kdropping = true, true
	f := d.sh.f
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		errno := d.NotifyContent(0, 0)
		d.kmu.Lock()
		d.kdropping = false
		// ENOENT: the kernel does not know the inode (any more).
		d.kstale = errno != 0 && errno != syscall.ENOENT
		d.kmu.Unlock()
	}()
}

// dirHandle is one readdir: a snapshot of a cached listing, or the children
// of a flight as they arrive; files that exist only in the spool so far come
// last. READDIRPLUS lookups are answered from the same entries.
type dirHandle struct {
	d    *dirNode
	segs []string

	mu     sync.Mutex
	ents   []vfs.Dirent // snapshot
	l      *vfs.Listing // the snapshot's listing
	fl     *vfs.Flight  // or a flight
	extra  []vfs.Dirent
	extras bool
	pos    int
	freed  bool // the end was reached, and the garbage of a large listing collected
}

// at returns entry i, waiting for a flight to bring it (unless the program of
// the FUSE request ctx is killed); ok is false at the end.
func (h *dirHandle) at(ctx context.Context, i int) (e vfs.Dirent, ok bool, errno syscall.Errno) {
	var l *vfs.Listing
	n := 0
	if h.fl != nil {
		fl := h.fl
		var err error
		var stopped bool
		// Waiting only when the entry has not come: it then also stops
		// for a killed program.
		e, ok, n, l, err, stopped = fl.At(i, func() bool { return true })
		if stopped {
			var killed atomic.Bool
			stop := onKill(ctx, func() {
				killed.Store(true)
				fl.Wake()
			})
			defer stop()
			e, ok, n, l, err, stopped = fl.At(i, killed.Load)
			if stopped {
				return vfs.Dirent{}, false, syscall.EINTR
			}
		}
		if ok {
			return e, true, 0
		}
		if err != nil {
			return vfs.Dirent{}, false, h.d.sh.f.errno(err)
		}
	} else {
		if i < len(h.ents) {
			return h.ents[i], true, 0
		}
		n, l = len(h.ents), h.l
	}
	if !h.extras {
		h.extras = true
		for name, in := range h.d.sh.f.spool.LocalChildren(h.d.sh.id, h.segs) {
			_, listed := h.d.cache.Item(l, name)
			if !listed {
				h.extra = append(h.extra, vfs.Dirent{Name: name, Info: in})
			}
		}
		sort.Slice(h.extra, func(a, b int) bool { return h.extra[a].Name < h.extra[b].Name })
	}
	if j := i - n; j < len(h.extra) {
		return h.extra[j], true, 0
	}
	return vfs.Dirent{}, false, 0
}

func (h *dirHandle) Readdirent(ctx context.Context) (_ *fuse.DirEntry, errno syscall.Errno) {
	defer h.d.sh.f.trace("dirh.Readdirent")(&errno)
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok, errno := h.at(ctx, h.pos)
	if errno != 0 || !ok {
		if errno == 0 && !h.freed {
			h.freed = true
			h.d.sh.f.freeAfterListing(h.pos)
		}
		return nil, errno
	}
	h.pos++
	mode := uint32(syscall.S_IFREG)
	if e.Info.Dir {
		mode = syscall.S_IFDIR
	}
	return &fuse.DirEntry{Name: e.Name, Mode: mode, Off: uint64(h.pos)}, 0
}

func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (_ *fs.Inode, errno syscall.Errno) {
	defer h.d.sh.f.traceName("dirh.Lookup", name)(&errno)
	h.mu.Lock()
	var e vfs.Dirent
	found := false
	if h.pos > 0 {
		if last, ok, _ := h.at(ctx, h.pos-1); ok && last.Name == name {
			e, found = last, true
		}
	}
	h.mu.Unlock()
	if !found {
		return h.d.Lookup(ctx, name, out)
	}
	return h.d.node(ctx, name, e.Info, out), 0
}

func (h *dirHandle) Seekdir(ctx context.Context, off uint64) (errno syscall.Errno) {
	defer h.d.sh.f.trace("dirh.Seekdir", "off", off)(&errno)
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

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (_ *fs.Inode, errno syscall.Errno) {
	defer d.sh.f.trace("dir.Mkdir", "name", name)(&errno)
	if errno := d.writable("mkdir"); errno != 0 {
		return nil, errno
	}
	if !vfs.ValidRemoteName(name) {
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
	if err := f.dav.Mkcol(f.ctx, d.sh.id, d.sh.dirURL(append(segs, name))); err != nil {
		f.log.Warn("mkdir failed", "share", d.sh.id, "err", err)
		return nil, d.sh.f.errno(err)
	}
	in := vfs.Info{Dir: true, Mtime: time.Now()}
	d.patch(name, &in)
	return d.node(ctx, name, in, out), 0
}

func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (_ *fs.Inode, _ fs.FileHandle, _ uint32, errno syscall.Errno) {
	defer d.sh.f.trace("dir.Create", "name", name, "flags", flags)(&errno)
	if errno := d.writable("create"); errno != 0 {
		return nil, nil, 0, errno
	}
	if !vfs.ValidRemoteName(name) {
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
		if existing.Dir {
			return nil, nil, 0, syscall.EISDIR
		}
	}
	segs, errno := d.where()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	f := d.sh.f
	trunc := !exists || flags&syscall.O_TRUNC != 0
	ws, err := f.spool.Acquire(f.ctx, d.sh, append(segs, name), trunc, !exists, existing)
	if err != nil {
		f.log.Warn("create failed", "share", d.sh.id, "err", err)
		return nil, nil, 0, d.sh.f.errno(err)
	}
	in := ws.Stat()
	ch := d.node(ctx, name, in, out)
	n, ok := ch.Operations().(*fileNode)
	if !ok {
		f.spool.Release(ws)
		return nil, nil, 0, syscall.EIO
	}
	return ch, &writeHandle{n: n, ws: ws}, 0, 0
}

func (d *dirNode) Unlink(ctx context.Context, name string) (errno syscall.Errno) {
	defer d.sh.f.trace("dir.Unlink", "name", name)(&errno)
	if errno := d.writable("unlink"); errno != 0 {
		return errno
	}
	segs, errno := d.where()
	if errno != 0 {
		return errno
	}
	f := d.sh.f
	path := append(segs, name)
	if err := f.spool.SettleStreams(f.ctx, d.sh.id, path); err != nil {
		f.log.Warn("unlink: upload of the file being written failed", "share", d.sh.id, "err", err)
	}
	// The server's copy goes first: if that fails, a pending local copy
	// stays too.
	if !f.spool.LocalOnly(d.sh.id, path) {
		if err := f.dav.Remove(f.ctx, d.sh.id, d.sh.fileURL(path)); err != nil {
			f.log.Warn("unlink failed", "share", d.sh.id, "err", err)
			return d.sh.f.errno(err)
		}
	}
	f.spool.Discard(d.sh.id, path)
	d.patch(name, nil)
	return 0
}

// empty checks on the server (not the cache) that a directory has nothing in it.
func (d *dirNode) empty(segs []string) syscall.Errno {
	f := d.sh.f
	if f.spool.HasUnder(d.sh.id, segs) {
		return syscall.ENOTEMPTY
	}
	l, _, err := f.dav.Propfind(f.ctx, d.sh.id, d.sh.dirURL(segs), "1", nil)
	if errors.Is(err, vfs.ErrTooManyEntries) {
		return syscall.ENOTEMPTY
	}
	if err != nil {
		return d.sh.f.errno(err)
	}
	if !l.Self.Dir {
		return syscall.ENOTDIR
	}
	if l.Accepted > 0 {
		return syscall.ENOTEMPTY
	}
	return 0
}

func (d *dirNode) Rmdir(ctx context.Context, name string) (errno syscall.Errno) {
	defer d.sh.f.trace("dir.Rmdir", "name", name)(&errno)
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
	if err := f.dav.Remove(f.ctx, d.sh.id, d.sh.dirURL(path)); err != nil {
		f.log.Warn("rmdir failed", "share", d.sh.id, "err", err)
		return d.sh.f.errno(err)
	}
	d.patch(name, nil)
	return 0
}

func (d *dirNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) (errno syscall.Errno) {
	defer d.sh.f.trace("dir.Rename", "name", name, "newName", newName, "flags", flags)(&errno)
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
	if !vfs.ValidRemoteName(newName) {
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
		case dst.Dir && !src.Dir:
			return syscall.EISDIR
		case !dst.Dir && src.Dir:
			return syscall.ENOTDIR
		case dst.Dir:
			if errno := nd.empty(to); errno != 0 {
				return errno
			}
		}
	}
	f := d.sh.f
	// Uploads running under the old name end first.
	if err := f.spool.SettleStreams(f.ctx, d.sh.id, from); err != nil {
		f.log.Warn("rename: upload of a file being written failed", "share", d.sh.id, "err", err)
		return d.sh.f.errno(err)
	}
	ws := f.spool.Lookup(d.sh.id, from)
	localOnly := false
	if ws != nil {
		localOnly = ws.NewHere()
		if !localOnly {
			// The server's copy must be current before it moves.
			if _, err := ws.Flush(f.ctx); err != nil {
				f.log.Warn("rename: upload before move failed", "share", d.sh.id, "err", err)
				return d.sh.f.errno(err)
			}
		}
	}
	if !localOnly {
		if err := f.move(d.sh, from, to, src.Dir, flags&renameNoReplace == 0); err != nil {
			f.log.Warn("rename failed", "share", d.sh.id, "err", err)
			return d.sh.f.errno(err)
		}
	}
	rerr := f.spool.Rekey(d.sh.id, from, to)
	d.patch(name, nil)
	nd.patch(newName, &src)
	return d.sh.f.errno(rerr)
}

// Symbolic links, device nodes and hard links do not exist in WebDAV.

func (d *dirNode) Symlink(context.Context, string, string, *fuse.EntryOut) (_ *fs.Inode, errno syscall.Errno) {
	defer d.sh.f.trace("dir.Symlink")(&errno)
	return nil, syscall.EPERM
}

func (d *dirNode) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (_ *fs.Inode, errno syscall.Errno) {
	defer d.sh.f.trace("dir.Mknod")(&errno)
	return nil, syscall.EPERM
}

func (d *dirNode) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (_ *fs.Inode, errno syscall.Errno) {
	defer d.sh.f.trace("dir.Link")(&errno)
	return nil, syscall.EPERM
}

// move renames a file or directory of sh on its server. It runs on the
// mount's context: the server may be moving a large tree when a program
// gives up.
func (f *FS) move(sh *share, from, to []string, dir, overwrite bool) error {
	src, dst := sh.fileURL(from), sh.fileURL(to)
	if dir {
		src, dst = sh.dirURL(from), sh.dirURL(to)
	}
	return f.dav.Move(f.ctx, sh.id, src, dst, overwrite)
}

// invalidateDir drops the cached listing of the directory holding the file at
// segs, if that directory is in the tree.
func (f *FS) invalidateDir(shareID string, segs []string) {
	sh := f.shareByID(shareID)
	if sh == nil || len(segs) == 0 {
		return
	}
	if d, ok := f.nodeAt(sh, segs[:len(segs)-1]).(*dirNode); ok {
		d.invalidate()
	}
}

// nodeAt returns the node at segs of sh if it is in the tree (the share's
// root for none), or nil.
func (f *FS) nodeAt(sh *share, segs []string) fs.InodeEmbedder {
	cur := f.root.GetChild(sh.name)
	for _, s := range segs {
		if cur == nil {
			return nil
		}
		cur = cur.GetChild(s)
	}
	if cur == nil {
		return nil
	}
	return cur.Operations()
}
