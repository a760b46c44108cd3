package ocmfs

import (
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
)

// maxDepth bounds the walk from a node up to its share's root.
const maxDepth = 4096

// remote is what dirNode and fileNode share: the share and the last known
// metadata of the resource.
type remote struct {
	sh     *share
	isRoot bool // the share's own entry at the mount root

	imu  sync.Mutex
	in   vfs.Info
	inAt time.Time
}

func (r *remote) setInfo(in vfs.Info) {
	r.imu.Lock()
	r.in, r.inAt = in, time.Now()
	r.imu.Unlock()
}

func (r *remote) getInfo() (vfs.Info, time.Time) {
	r.imu.Lock()
	defer r.imu.Unlock()
	return r.in, r.inAt
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
