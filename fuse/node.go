package ocmfs

import (
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fs"
)

// maxDepth bounds the walk from a node up to its share's root.
const maxDepth = 4096

// remote is what dirNode and fileNode share: the share and the last known
// metadata of the resource, packed (the mount keeps a node for every entry
// the kernel looked up).
type remote struct {
	sh     *share
	isRoot bool // the share's own entry at the mount root

	// Under infoLock(r): the info and when it was learnt (nanoseconds
	// after clockBase, 0 for never).
	in   vfs.Packed
	inAt int64
}

// clockBase is what remote.inAt counts from, on the monotonic clock.
var clockBase = time.Now()

// infoLocks guard the info of nodes, a node's by its address: a mutex in
// each would cost 8 bytes per entry, and the critical sections are short.
var infoLocks [64]sync.Mutex

func (r *remote) infoLock() *sync.Mutex {
	return &infoLocks[uintptr(unsafe.Pointer(r))/64%uintptr(len(infoLocks))]
}

func (r *remote) setInfo(in vfs.Info) {
	r.setInfoAt(in, time.Now())
}

// setInfoAt records in as learnt at at (the zero time: to be asked again).
func (r *remote) setInfoAt(in vfs.Info, at time.Time) {
	var d int64
	if !at.IsZero() {
		d = max(int64(at.Sub(clockBase)), 1)
	}
	p := vfs.Pack(in)
	mu := r.infoLock()
	mu.Lock()
	r.in, r.inAt = p, d
	mu.Unlock()
}

// staleInfo makes the info due to be asked again.
func (r *remote) staleInfo() {
	mu := r.infoLock()
	mu.Lock()
	r.inAt = 0
	mu.Unlock()
}

func (r *remote) getInfo() (vfs.Info, time.Time) {
	mu := r.infoLock()
	mu.Lock()
	p, d := r.in, r.inAt
	mu.Unlock()
	var at time.Time
	if d != 0 {
		at = clockBase.Add(time.Duration(d))
	}
	return p.Info(), at
}

// isShareRoot reports whether in is the root entry of a share.
func isShareRoot(in *fs.Inode) bool {
	switch n := in.Operations().(type) {
	case *dirNode:
		return n.isRoot
	case *fileNode:
		return n.isRoot
	}
	return false
}

// location returns the path of in below its share's root, as names. It fails
// for a node that is no longer in the tree (removed or renamed away).
func location(in *fs.Inode) ([]string, bool) {
	var segs []string
	cur := in
	for range maxDepth {
		if isShareRoot(cur) {
			slices.Reverse(segs)
			return segs, true
		}
		name, parent := cur.Parent()
		if parent == nil {
			return nil, false
		}
		segs = append(segs, name)
		cur = parent
	}
	return nil, false
}

// validator identifies a version of a file: its ETag, or size and mtime when
// the server sends none (nginx, Apache without etags).
func validator(in vfs.Info) string {
	if in.ETag != "" {
		return in.ETag
	}
	return "s" + time.Unix(0, in.Mtime.UnixNano()).UTC().Format(time.RFC3339Nano) + "/" + strconv.FormatInt(in.Size, 10)
}
