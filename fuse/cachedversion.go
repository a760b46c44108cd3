package ocmfs

import (
	"context"

	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// settleVersion returns the version of the file at segs to open, given
// in, what the mount last listed. When the content cache holds a complete
// copy of another version, the listing may be the older of the two: a
// pin's refresh stored a newer version after the folder was listed (a
// listing under way when it was stored, a listing kept from an earlier
// run). Opening the listed version would drop that copy, so the server is
// asked first (PROPFIND Depth 0, or HEAD): its version is opened, and
// while it cannot be reached, the cached one.
func (n *fileNode) settleVersion(ctx context.Context, segs []string, in vfs.Info) vfs.Info {
	f := n.sh.f
	etag, size, complete, ok := f.o.Cache.Version(cacheKey(n.sh, segs))
	if !ok || !complete || etag == in.ETag && size == in.Size || !strongETag(etag) {
		return in
	}
	var cur vfs.Info
	var err error
	if n.isRoot {
		cur, err = n.sh.fileInfo(ctx, 0)
	} else {
		cur, err = f.fileInfo(ctx, n.sh, segs)
	}
	switch {
	case err == nil:
		cur.Dir = false
	case vfs.Unreachable(err):
		cur = in
		cur.ETag, cur.Size = etag, size
	default:
		return in // the server's word (gone, refused): the open says it
	}
	n.setInfo(cur)
	if !n.isRoot {
		if name, parent := n.Parent(); parent != nil {
			if d, ok := parent.Operations().(*dirNode); ok {
				d.patch(name, &cur)
			}
		}
	}
	f.log.Debug("listing and cached copy disagreed; version asked", "share", n.sh.id, "cached", cur.ETag == etag)
	return cur
}

// fileInfo asks the server for the metadata of the file at segs of sh.
func (f *FS) fileInfo(ctx context.Context, sh *share, segs []string) (vfs.Info, error) {
	ctx, cancel := f.dav.WithDeadline(ctx)
	defer cancel()
	return f.dav.Stat(ctx, sh.id, sh.fileURL(segs))
}
