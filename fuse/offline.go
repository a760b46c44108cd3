package ocmfs

import (
	"encoding/json"
	"sort"
	"strings"
	"syscall"

	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// A share is offline while its server cannot be reached (vfs.Unreachable).
// Then, with a content cache, files and listings seen before are served
// from it: listings as last stored, files at the version cached, only the
// blocks cached (a missing one fails like the server does, within the
// timeout). Every request still goes to the server first, so that the
// share is back as soon as its server is.

// maxOfflineEntries bounds the listings kept for offline use: a larger one
// costs too much to encode on every listing.
const maxOfflineEntries = 10_000

// noteReach records whether a share's server answered a request, and
// passes a change to Options.OnShareOffline.
func (f *FS) noteReach(shareID string, reached bool) {
	sh := f.shareByID(shareID)
	if sh == nil {
		return
	}
	sh.mu.Lock()
	changed := sh.offline == reached
	sh.offline = !reached
	sh.mu.Unlock()
	if !changed {
		return
	}
	if reached {
		f.log.Info("a share's server answers again", "share", shareID)
	} else {
		f.log.Warn("a share's server cannot be reached: offline", "share", shareID)
	}
	if f.o.OnShareOffline == nil {
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		// the state now, not the change: calls may run out of order
		f.o.OnShareOffline(shareID, sh.isOffline())
	}()
}

func (sh *share) isOffline() bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.offline
}

// cacheKey names the file at segs of sh in the content cache.
func cacheKey(sh *share, segs []string) contentcache.Key {
	return contentcache.Key{Share: sh.id, Path: strings.Join(segs, "/")}
}

// strongETag reports whether an ETag identifies the bytes (a weak one,
// W/"...", does not: the cache keeps nothing under it).
func strongETag(etag string) bool { return etag != "" && !strings.HasPrefix(etag, "W/") }

// storedListing is a listing as kept in the cache.
type storedListing struct {
	Self   vfs.Info
	Items  map[string]vfs.Info
	FileID bool
}

// keepListing stores l, the listing of the folder at segs, for offline
// use. l is not shared yet (it is encoded here, before the caller hands it
// out).
func (f *FS) keepListing(sh *share, segs []string, l *vfs.Listing) {
	c := f.o.Cache
	if c == nil || len(l.Names) > maxOfflineEntries {
		return
	}
	b, err := json.Marshal(storedListing{Self: l.Self, Items: l.Items, FileID: l.FileID})
	if err != nil {
		return
	}
	dir := strings.Join(segs, "/")
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := c.PutListing(sh.id, dir, b); err != nil {
			f.log.Debug("cannot keep a listing for offline use", "share", sh.id, "err", err)
		}
	}()
}

// offlineListing returns the listing stored for the folder at segs when
// err says its server cannot be reached, or nil.
func (f *FS) offlineListing(sh *share, segs []string, err error) *vfs.Listing {
	c := f.o.Cache
	if c == nil || !vfs.Unreachable(err) {
		return nil
	}
	b, ok := c.Listing(sh.id, strings.Join(segs, "/"))
	if !ok {
		return nil
	}
	var s storedListing
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	l := &vfs.Listing{Self: s.Self, HasSelf: true, Items: s.Items, FileID: s.FileID}
	if l.Items == nil {
		l.Items = map[string]vfs.Info{}
	}
	for name := range l.Items {
		l.Names = append(l.Names, name)
	}
	sort.Strings(l.Names)
	f.log.Debug("listing served from the cache: the server cannot be reached", "share", sh.id)
	return l
}

// storedInfo returns the version of the file at segs that the cache holds
// while its share is offline.
func (f *FS) storedInfo(sh *share, segs []string) (vfs.Info, bool) {
	c := f.o.Cache
	if c == nil || !sh.isOffline() {
		return vfs.Info{}, false
	}
	cf, etag, size, ok := c.Stored(cacheKey(sh, segs))
	if !ok {
		return vfs.Info{}, false
	}
	cf.Release()
	f.log.Debug("file metadata from the cache: the server cannot be reached", "share", sh.id)
	return vfs.Info{Size: size, ETag: etag}, true
}

// offlineErrno is what a read that needed the server returns while the
// share is offline: the server's absence, not an I/O error.
func offlineErrno(sh *share, errno syscall.Errno) syscall.Errno {
	if errno == syscall.EIO && sh.isOffline() {
		return syscall.EHOSTUNREACH
	}
	return errno
}
