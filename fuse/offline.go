package ocmfs

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"strings"
	"syscall"
	"time"

	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// A share is offline while its server cannot be reached (vfs.Unreachable).
// Then, with a content cache, files and listings seen before are served
// from it: listings as last stored, files at the version cached, only the
// blocks cached (a missing one fails like the server does, within the
// timeout). A stored listing is served at once, without waiting on the
// server, while a probe in the background (one at a time per share, at
// most every probeEvery) finds out when it answers again; the rest goes
// to the server first.

// probeEvery spaces the probes of an offline share's server.
const probeEvery = 2 * time.Second

// maxOfflineEntries bounds the listings kept for offline use: a larger one
// costs too much to encode on every listing. A variable for tests.
var maxOfflineEntries = 10_000

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
// use. It works in the background, off the listing's path: the programs
// waiting on l have it at once. A listing the same as the one the cache
// holds (by its digest, kept as the stored listing's version) is not
// encoded and stored again. d is the folder's node when l is its cached
// listing (read under its lock, as Patch may change it meanwhile; the
// newest of its listings is kept), or nil for a listing nobody changes.
func (f *FS) keepListing(sh *share, d *dirNode, segs []string, l *vfs.Listing) {
	c := f.o.Cache
	if c == nil || l.Len() > maxOfflineEntries {
		return
	}
	read := func(fn func(*vfs.Listing)) { fn(l) }
	var seq uint64
	if d != nil {
		read = func(fn func(*vfs.Listing)) { d.cache.Read(l, fn) }
		seq = d.keepSeq.Add(1)
	}
	dir := strings.Join(segs, "/")
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if d != nil {
			d.keepMu.Lock()
			defer d.keepMu.Unlock()
			if d.keepSeq.Load() != seq {
				return // a newer listing is on its way
			}
		}
		kept, _ := c.ListingVersion(sh.id, dir)
		var s storedListing
		var sum uint64
		read(func(l *vfs.Listing) {
			if sum = listingSum(l); sum != kept {
				s = storedListing{Self: l.Self, Items: l.Children(), FileID: l.FileID}
			}
		})
		if sum == kept {
			f.kept(dir, false)
			return
		}
		b, err := json.Marshal(s)
		if err == nil {
			err = c.PutListingVersion(sh.id, dir, sum, b)
		}
		if err != nil {
			f.log.Debug("cannot keep a listing for offline use", "share", sh.id, "err", err)
		}
		f.kept(dir, err == nil)
	}()
}

func (f *FS) kept(dir string, stored bool) {
	if fn := f.onKept.Load(); fn != nil {
		(*fn)(dir, stored)
	}
}

// listingSum is a digest of what keepListing stores of l; never 0.
func listingSum(l *vfs.Listing) uint64 {
	h := fnv.New64a()
	buf := make([]byte, 0, 512)
	str := func(s string) {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	info := func(in vfs.Info) {
		b := byte(0)
		if in.Dir {
			b = 1
		}
		buf = append(buf, b)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(in.Size))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(in.Mtime.Unix()))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(in.Mtime.Nanosecond()))
		str(in.ETag)
		str(in.Perms)
	}
	if l.FileID {
		buf = append(buf, 1)
	}
	info(l.Self)
	for i := range l.Len() {
		e := l.At(i)
		str(e.Name)
		info(e.Info)
		if len(buf) > 256 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return max(h.Sum64(), 1)
}

// offlineFirst returns the last listing of the folder at segs (see
// lastListing) while its share is offline, starting a probe of its server;
// nil otherwise.
func (f *FS) offlineFirst(sh *share, segs []string, old *vfs.Listing) *vfs.Listing {
	if f.o.Cache == nil || !sh.isOffline() {
		return nil
	}
	l := f.lastListing(sh, segs, old)
	if l != nil {
		f.probe(sh)
	}
	return l
}

// probe asks an offline share's server for its root in the background;
// any answer makes the share online again (noteReach).
func (f *FS) probe(sh *share) {
	sh.mu.Lock()
	if sh.probing || time.Since(sh.probedAt) < probeEvery {
		sh.mu.Unlock()
		return
	}
	sh.probing, sh.probedAt = true, time.Now()
	u := sh.url
	sh.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		ctx, cancel := f.dav.WithDeadline(f.ctx)
		_, _, err := f.dav.Propfind(ctx, sh.id, u, "0", nil)
		cancel()
		f.log.Debug("offline share probed", "share", sh.id, "err", err)
		sh.mu.Lock()
		sh.probing = false
		sh.mu.Unlock()
	}()
}

// offlineListing returns the last listing of the folder at segs (see
// lastListing) when err says its server cannot be reached, or nil.
func (f *FS) offlineListing(sh *share, segs []string, err error, old *vfs.Listing) *vfs.Listing {
	if f.o.Cache == nil || !vfs.Unreachable(err) {
		return nil
	}
	return f.lastListing(sh, segs, old)
}

// lastListing is the last listing of the folder at segs: old, the one in
// memory, if any, else the stored one (or nil). The one in memory comes
// first: the stored one is written in the background and may not be there
// yet when the server goes away.
func (f *FS) lastListing(sh *share, segs []string, old *vfs.Listing) *vfs.Listing {
	if old != nil {
		return old
	}
	return f.storedListing(sh, segs)
}

// storedListing returns the listing stored for the folder at segs, or nil.
func (f *FS) storedListing(sh *share, segs []string) *vfs.Listing {
	b, ok := f.o.Cache.Listing(sh.id, strings.Join(segs, "/"))
	if !ok {
		return nil
	}
	var s storedListing
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	l := &vfs.Listing{Self: s.Self, HasSelf: true, FileID: s.FileID}
	l.SetChildren(s.Items)
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
// share is offline: the server's absence, not an I/O error. A server that
// answered (a 5xx) is there: its failure stays EIO.
func offlineErrno(sh *share, err error, errno syscall.Errno) syscall.Errno {
	var answered *vfs.StatusError
	if errno == syscall.EIO && sh.isOffline() && !errors.As(err, &answered) {
		return syscall.EHOSTUNREACH
	}
	return errno
}
