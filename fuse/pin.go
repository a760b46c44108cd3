package ocmfs

import (
	"context"
	"strings"

	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/fuse/pinner"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// NewPinner returns the engine that keeps pinned shares of this mount in
// c, downloading over the mount's WebDAV client (its connections and
// credentials). Its background refresh is the caller's (Pinner.Loop).
func (f *FS) NewPinner(c *contentcache.Cache, tempDir string) *pinner.Pinner {
	return pinner.New(pinner.Options{Cache: c, Client: f.dav, Remote: pinRemote{f}, TempDir: tempDir, Logger: f.log})
}

// pinRemote is the mount as the pinner sees it.
type pinRemote struct{ f *FS }

// Root waits (bounded) for the share's type check and returns its URL.
func (r pinRemote) Root(ctx context.Context, id string) (string, bool, error) {
	sh := r.f.shareByID(id)
	if sh == nil || sh.isGone() {
		return "", false, vfs.ErrShareGone
	}
	if sh.unresolved() {
		return "", false, vfs.ErrShareUnreachable
	}
	sh.awaitResolved()
	known, err := sh.checked()
	if !known {
		if err == nil {
			err = vfs.ErrShareUnreachable
		}
		return "", false, err
	}
	dir, u, _ := sh.state()
	return u, dir, nil
}

// List lists a folder of the share and keeps the listing for offline use,
// as the mount's own listings are.
func (r pinRemote) List(ctx context.Context, id, dir, u string) (*vfs.Listing, error) {
	sh := r.f.shareByID(id)
	if sh == nil {
		return nil, vfs.ErrShareGone
	}
	l, _, err := r.f.dav.Propfind(ctx, id, u, "1", nil)
	if err != nil {
		return nil, err
	}
	var segs []string
	if dir != "" {
		segs = strings.Split(dir, "/")
	}
	r.f.keepListing(sh, nil, segs, l)
	return l, nil
}

// Changed tells the mount's tree that the pinner stored a new version of
// the file at path: its folder's listing and its node take the new
// metadata at once. Otherwise an open within the metadata TTL would find
// the listed version and the cached one differ, and ask the server which
// is current (settleVersion).
func (r pinRemote) Changed(id, path string, in vfs.Info) {
	f := r.f
	sh := f.shareByID(id)
	if sh == nil {
		return
	}
	var segs []string
	if path == "" { // a single-file share
		sh.setFileInfo(in)
	} else {
		segs = strings.Split(path, "/")
		if d, ok := f.nodeAt(sh, segs[:len(segs)-1]).(*dirNode); ok {
			d.patch(segs[len(segs)-1], &in)
		}
	}
	if n, ok := f.nodeAt(sh, segs).(*fileNode); ok {
		n.setInfo(in)
	}
}
