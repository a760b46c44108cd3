package contentcache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBlockSize is the unit of storage and of checksums.
const DefaultBlockSize = 1 << 20

// Options configures a Cache.
type Options struct {
	// Dir holds the cache; it is created 0700 (and made so if it exists).
	Dir string
	// MaxBytes bounds the unpinned content: beyond it, files are evicted
	// least recently used first. Zero or less keeps no unpinned content.
	MaxBytes int64
	// BlockSize is the unit of storage, each block with its CRC-32C.
	// Default DefaultBlockSize. Files cached with another block size keep
	// theirs.
	BlockSize int64
	Logger    *slog.Logger
	// Now is the clock of the LRU order and of pins. Default time.Now.
	Now func() time.Time
	// MaxListingBytes bounds the stored listings; the oldest are dropped
	// beyond it. Default 64 MiB.
	MaxListingBytes int64
}

// Key names a cached file.
type Key struct {
	Share string
	// Path is the "/"-joined segments inside the share, "" for the share's
	// root (a share of one file). Leading and trailing slashes are ignored.
	Path string
}

func (k Key) clean() Key { return Key{k.Share, strings.Trim(k.Path, "/")} }

// Cache is the content cache. Its methods are safe for concurrent use.
type Cache struct {
	o      Options
	files  string // directory of .data files
	lists  string
	log    *slog.Logger
	total  atomic.Int64 // bytes of present blocks of every entry
	closed atomic.Bool
	bg     sync.WaitGroup // metadata writes in the background

	journal  journal
	recBytes atomic.Int64 // of the last record of every entry

	mu       sync.Mutex // guards the maps below and every entry's refs; taken before entry.mu
	entries  map[string]*entry
	pins     []Pin
	listings map[string]*listing
	listSize int64
}

// Open opens (creating it) the cache in o.Dir and loads its index. Damaged
// or half-written metadata files are dropped with their data.
func Open(o Options) (*Cache, error) {
	if o.Dir == "" {
		return nil, errors.New("contentcache: no directory")
	}
	if o.BlockSize <= 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MaxListingBytes <= 0 {
		o.MaxListingBytes = 64 << 20
	}
	c := &Cache{
		o:        o,
		files:    filepath.Join(o.Dir, "files"),
		lists:    filepath.Join(o.Dir, "listings"),
		log:      o.Logger,
		entries:  map[string]*entry{},
		listings: map[string]*listing{},
	}
	for _, d := range []string{o.Dir, c.files, c.lists} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("contentcache: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("contentcache: %w", err)
		}
	}
	if err := c.loadPins(); err != nil {
		return nil, err
	}
	if err := c.loadFiles(); err != nil {
		return nil, err
	}
	if err := c.loadListings(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.evictLocked(0)
	c.mu.Unlock()
	return c, nil
}

// Close writes the metadata of every file (its last use included) and
// closes the data files of released ones. Files still held keep working
// for reads.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.bg.Wait()
	c.mu.Lock()
	es := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		es = append(es, e)
	}
	c.mu.Unlock()
	var first error
	for _, e := range es {
		if err := e.flush(true); err != nil && first == nil {
			first = err
		}
	}
	c.bg.Wait() // a compaction the last writes started
	if err := c.journal.close(); err != nil && first == nil {
		first = err
	}
	return first
}

func fileID(k Key) string {
	h := sha256.Sum256([]byte(k.Share + "\x00" + k.Path))
	return hex.EncodeToString(h[:16])
}

func (c *Cache) dataPath(id string) string { return filepath.Join(c.files, id+".data") }

// loadFiles reads the journal (and the metadata files of an older layout,
// id.meta, taken into it); anything else in files/ that no valid record
// accounts for (orphaned data, temporary files) is removed.
func (c *Cache) loadFiles() error {
	recs, size, err := c.readJournal()
	if err != nil {
		return err
	}
	des, err := os.ReadDir(c.files)
	if err != nil {
		return fmt.Errorf("contentcache: %w", err)
	}
	legacy := 0
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), ".meta")
		if !ok || !de.Type().IsRegular() {
			continue
		}
		legacy++
		if _, ok := recs[id]; !ok {
			if b, err := os.ReadFile(filepath.Join(c.files, de.Name())); err == nil && len(b) <= maxRecord {
				recs[id] = b
			}
		}
	}
	keep := map[string]bool{}
	dropped := 0
	var live int64
	for id, rec := range recs {
		e, err := c.loadEntry(id, rec)
		if err != nil {
			dropped++
			c.log.Debug("contentcache: dropped a damaged cached file", "id", id, "err", err)
			continue
		}
		c.entries[id] = e
		c.total.Add(e.bytes)
		live += e.recLen
		keep[id+".data"] = true
	}
	c.recBytes.Store(live)
	for _, de := range des {
		if !keep[de.Name()] {
			os.Remove(filepath.Join(c.files, de.Name()))
		}
	}
	c.journal.path = c.journalPath()
	if err := c.journal.open(); err != nil {
		return err
	}
	if legacy > 0 || dropped > 0 || size > live+live/2 {
		if err := c.compact(true); err != nil {
			return err
		}
	}
	c.log.Debug("contentcache: opened", "files", len(c.entries), "bytes", c.total.Load(), "dropped", dropped)
	return nil
}

// loadEntry makes the entry of a file from its record, if its data file is
// there at the recorded size.
func (c *Cache) loadEntry(id string, rec []byte) (*entry, error) {
	var h metaHeader
	body, err := decodeRecord(rec, kindMeta, &h)
	if err != nil {
		return nil, err
	}
	k := Key{h.Share, h.Path}
	if fileID(k) != id || h.ETag == "" || h.Size < 0 || h.Block <= 0 {
		return nil, errDamaged
	}
	// The body holds 4 bytes per block: a header claiming more blocks is
	// damaged, and is refused before anything is allocated for them.
	if nb := h.Size/h.Block + min(h.Size%h.Block, 1); nb > int64(len(body))/4 {
		return nil, errDamaged
	}
	e := newEntry(c, id, k, h.ETag, h.Size, h.Block)
	if err := e.decodeBlocks(body); err != nil {
		return nil, err
	}
	fi, err := os.Stat(c.dataPath(id))
	if err != nil {
		return nil, err
	}
	if fi.Size() != h.Size {
		return nil, errDamaged
	}
	e.used.Store(h.Used)
	e.recLen = int64(len(rec))
	return e, nil
}

// File returns the cached copy of k at this version (etag non-empty,
// size), created empty if there is none. A copy of another version (etag
// or size differ) is dropped first. Callers Release it.
func (c *Cache) File(k Key, etag string, size int64) (*File, error) {
	if etag == "" {
		return nil, errors.New("contentcache: no ETag")
	}
	if size < 0 {
		return nil, errors.New("contentcache: negative size")
	}
	if c.closed.Load() {
		return nil, errors.New("contentcache: closed")
	}
	k = k.clean()
	id := fileID(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e != nil && (e.etag != etag || e.size != size) {
		c.removeLocked(e)
		e = nil
	}
	if e == nil {
		e = newEntry(c, id, k, etag, size, c.o.BlockSize)
		e.dirty = true
		f, err := os.OpenFile(c.dataPath(id), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err == nil {
			err = f.Truncate(size)
			if err != nil {
				f.Close()
			}
		}
		if err != nil {
			os.Remove(c.dataPath(id))
			return nil, fmt.Errorf("contentcache: %w", err)
		}
		e.fd = f
		c.entries[id] = e
	}
	return c.holdLocked(e)
}

// Stored returns the copy of k whatever its version (for offline use), or
// ok=false when there is none.
func (c *Cache) Stored(k Key) (f *File, etag string, size int64, ok bool) {
	if c.closed.Load() {
		return nil, "", 0, false
	}
	k = k.clean()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[fileID(k)]
	if e == nil {
		return nil, "", 0, false
	}
	f, err := c.holdLocked(e)
	if err != nil {
		c.log.Debug("contentcache: cannot open a cached file", "id", e.id, "err", err)
		return nil, "", 0, false
	}
	return f, e.etag, e.size, true
}

// Version reports the version of k the cache holds and whether that copy
// is complete (every block present, not checked), without holding it.
func (c *Cache) Version(k Key) (etag string, size int64, complete, ok bool) {
	k = k.clean()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[fileID(k)]
	if e == nil {
		return "", 0, false, false
	}
	return e.etag, e.size, e.complete(), true
}

// holdLocked takes a reference on e, opening its data file for the first
// holder. What was verified is forgotten unless the data file is unchanged
// since this process last wrote or checked it (see stamp).
func (c *Cache) holdLocked(e *entry) (*File, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fd == nil {
		fd, err := os.OpenFile(c.dataPath(e.id), os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("contentcache: %w", err)
		}
		e.fd = fd
		e.checkStamp(stampOf(fd))
	}
	e.refs++
	e.used.Store(c.o.Now().UnixNano())
	return &File{e: e}, nil
}

// removeLocked forgets e and deletes its data file; its records stay in
// the journal until a compaction, and name no data file meanwhile. A
// holder keeps its descriptor.
func (c *Cache) removeLocked(e *entry) {
	delete(c.entries, e.id)
	// a metadata write under way lands first
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	e.mu.Lock()
	e.gone = true
	c.total.Add(-e.bytes)
	e.bytes = 0
	e.mu.Unlock()
	c.recBytes.Add(-e.recLen)
	e.recLen = 0
	os.Remove(c.dataPath(e.id))
}

// evictLocked removes unpinned, unheld files, least recently used first,
// until the cache holds at most MaxBytes-room bytes or nothing more can go.
// It reports whether that bound is met.
func (c *Cache) evictLocked(room int64) bool {
	limit := c.o.MaxBytes - room
	if c.total.Load() <= limit {
		return true
	}
	var cand []*entry
	for _, e := range c.entries {
		if e.refs == 0 && !c.pinnedLocked(e.key) {
			cand = append(cand, e)
		}
	}
	sort.Slice(cand, func(i, j int) bool { return cand[i].used.Load() < cand[j].used.Load() })
	n := 0
	for _, e := range cand {
		if c.total.Load() <= limit {
			break
		}
		c.removeLocked(e)
		n++
	}
	if n > 0 {
		c.log.Debug("contentcache: evicted", "files", n, "bytes", c.total.Load())
	}
	return c.total.Load() <= limit
}

// reserve makes room for n more bytes of k's content, evicting others.
// Pinned content is always admitted; unpinned only within MaxBytes.
func (c *Cache) reserve(k Key, n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pinnedLocked(k) {
		return true
	}
	return c.evictLocked(n)
}

// Usage describes what the cache holds.
type Usage struct {
	Files              int
	Bytes, PinnedBytes int64
	Limit              int64
	Shares             map[string]ShareUsage
}

// ShareUsage is the part of Usage of one share.
type ShareUsage struct {
	Files              int
	Bytes, PinnedBytes int64
}

// Usage reports the files and bytes held, per share.
func (c *Cache) Usage() Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := Usage{Limit: c.o.MaxBytes, Shares: map[string]ShareUsage{}}
	for _, e := range c.entries {
		b := e.storedBytes()
		su := u.Shares[e.key.Share]
		su.Files++
		su.Bytes += b
		u.Files++
		u.Bytes += b
		if c.pinnedLocked(e.key) {
			su.PinnedBytes += b
			u.PinnedBytes += b
		}
		u.Shares[e.key.Share] = su
	}
	return u
}

// PinUsage reports the cached files under share/path (a pin, or any
// folder), how many of them are complete, and their bytes stored.
func (c *Cache) PinUsage(share, path string) (files, complete int, bytes int64) {
	p := Pin{Share: share, Path: strings.Trim(path, "/")}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if !p.covers(e.key) {
			continue
		}
		files++
		if e.complete() {
			complete++
		}
		bytes += e.storedBytes()
	}
	return files, complete, bytes
}

// Shares lists the shares the cache holds anything of (content, listings
// or pins), sorted: those a caller may have to RemoveShare.
func (c *Cache) Shares() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range c.entries {
		seen[e.key.Share] = true
	}
	for _, l := range c.listings {
		seen[l.share] = true
	}
	for _, p := range c.pins {
		seen[p.Share] = true
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// RemoveShare deletes everything of a share: content, listings and pins,
// and its files' records (the index is compacted).
func (c *Cache) RemoveShare(share string) error {
	err := c.removeShare(share)
	if cerr := c.compact(true); err == nil {
		err = cerr
	}
	return err
}

func (c *Cache) removeShare(share string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.key.Share == share {
			c.removeLocked(e)
		}
	}
	for id, l := range c.listings {
		if l.share == share {
			c.removeListingLocked(id)
		}
	}
	kept := c.pins[:0:0]
	for _, p := range c.pins {
		if p.Share != share {
			kept = append(kept, p)
		}
	}
	if len(kept) == len(c.pins) {
		return nil
	}
	return c.setPinsLocked(kept)
}

// Clear removes the cached content and the stored listings; the content
// and listings of pinned files and folders only when includePinned. Pins themselves stay (Unpin
// removes them). It returns the bytes freed.
func (c *Cache) Clear(includePinned bool) (freed int64, err error) {
	freed = c.clear(includePinned)
	return freed, c.compact(true)
}

func (c *Cache) clear(includePinned bool) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.total.Load()
	for _, e := range c.entries {
		if includePinned || !c.pinnedLocked(e.key) {
			c.removeLocked(e)
		}
	}
	for id, l := range c.listings {
		if includePinned || !c.pinnedLocked(Key{l.share, l.dir}) {
			c.removeListingLocked(id)
		}
	}
	return before - c.total.Load()
}
