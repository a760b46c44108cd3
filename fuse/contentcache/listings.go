package contentcache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// listing is the index entry of a stored listing.
type listing struct {
	share, dir string
	size       int64
	sum        uint32 // of the data, to skip rewriting the same listing
	ver        uint64 // the caller's version of the data (0: none)
	at         time.Time
}

type listingHeader struct {
	Share string `json:"share"`
	Dir   string `json:"dir"`
	At    int64  `json:"at"` // unix nanoseconds
	Ver   uint64 `json:"ver,omitempty"`
}

func listingID(share, dir string) string {
	h := sha256.Sum256([]byte("listing\x00" + share + "\x00" + dir))
	return hex.EncodeToString(h[:16])
}

func (c *Cache) loadListings() error {
	des, err := os.ReadDir(c.lists)
	if err != nil {
		return fmt.Errorf("contentcache: %w", err)
	}
	for _, de := range des {
		p := filepath.Join(c.lists, de.Name())
		var h listingHeader
		body, err := readRecord(p, kindListing, &h)
		if err != nil || listingID(h.Share, h.Dir) != de.Name() {
			os.Remove(p)
			continue
		}
		c.listings[de.Name()] = &listing{share: h.Share, dir: h.Dir, size: int64(len(body)), sum: crc32.Checksum(body, castagnoli), ver: h.Ver, at: time.Unix(0, h.At)}
		c.listSize += int64(len(body))
	}
	c.trimListingsLocked()
	return nil
}

// PutListing keeps data (opaque to the cache) as the last listing of
// share/dir, for use offline. The oldest listings go beyond
// Options.MaxListingBytes.
func (c *Cache) PutListing(share, dir string, data []byte) error {
	return c.PutListingVersion(share, dir, 0, data)
}

// PutListingVersion is PutListing with the caller's version of data (a
// digest of what it encodes, say), which ListingVersion tells: a caller
// can then skip encoding a listing the cache holds already.
func (c *Cache) PutListingVersion(share, dir string, ver uint64, data []byte) error {
	dir = strings.Trim(dir, "/")
	id := listingID(share, dir)
	sum := crc32.Checksum(data, castagnoli)
	c.mu.Lock()
	if l := c.listings[id]; l != nil && l.sum == sum && l.size == int64(len(data)) && l.ver == ver {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	now := c.o.Now()
	rec, err := encodeRecord(kindListing, listingHeader{Share: share, Dir: dir, At: now.UnixNano(), Ver: ver}, data)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Not synced: a listing lost in a crash is only a listing less offline.
	if err := replaceFile(filepath.Join(c.lists, id), rec, false); err != nil {
		return fmt.Errorf("contentcache: %w", err)
	}
	if old := c.listings[id]; old != nil {
		c.listSize -= old.size
	}
	c.listings[id] = &listing{share: share, dir: dir, size: int64(len(data)), sum: sum, ver: ver, at: now}
	c.listSize += int64(len(data))
	c.trimListingsLocked()
	return nil
}

// ListingVersion returns the version given with the last listing stored
// for share/dir (0 for none given).
func (c *Cache) ListingVersion(share, dir string) (uint64, bool) {
	id := listingID(share, strings.Trim(dir, "/"))
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.listings[id]
	if !ok {
		return 0, false
	}
	return l.ver, true
}

// Listing returns the last listing stored for share/dir.
func (c *Cache) Listing(share, dir string) ([]byte, bool) {
	dir = strings.Trim(dir, "/")
	id := listingID(share, dir)
	c.mu.Lock()
	_, ok := c.listings[id]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	var h listingHeader
	body, err := readRecord(filepath.Join(c.lists, id), kindListing, &h)
	if err != nil || h.Share != share || h.Dir != dir {
		c.mu.Lock()
		c.removeListingLocked(id)
		c.mu.Unlock()
		return nil, false
	}
	return body, true
}

func (c *Cache) removeListingLocked(id string) {
	if l := c.listings[id]; l != nil {
		c.listSize -= l.size
		delete(c.listings, id)
	}
	os.Remove(filepath.Join(c.lists, id))
}

func (c *Cache) trimListingsLocked() {
	for c.listSize > c.o.MaxListingBytes && len(c.listings) > 0 {
		var oldest string
		var at time.Time
		for id, l := range c.listings {
			if oldest == "" || l.at.Before(at) {
				oldest, at = id, l.at
			}
		}
		c.removeListingLocked(oldest)
	}
}
