package contentcache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Pin keeps a share ("" Path), or a folder or file in it, on this device:
// the files under it are never evicted. Pins persist.
type Pin struct {
	Share, Path string
	Since       time.Time
}

// covers reports whether k is p's path or under it.
func (p Pin) covers(k Key) bool {
	return k.Share == p.Share && (p.Path == "" || k.Path == p.Path || strings.HasPrefix(k.Path, p.Path+"/"))
}

func (c *Cache) pinsPath() string { return filepath.Join(c.o.Dir, "pins") }

type pinsHeader struct {
	Pins []Pin `json:"pins"`
}

func (c *Cache) loadPins() error {
	var h pinsHeader
	_, err := readRecord(c.pinsPath(), kindPins, &h)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case errors.Is(err, errDamaged):
		// The file is kept aside: pins are a person's choice, not a cache.
		c.log.Warn("contentcache: the pins file is damaged; starting without pins", "kept", c.pinsPath()+".damaged")
		os.Rename(c.pinsPath(), c.pinsPath()+".damaged")
		return nil
	case err != nil:
		return fmt.Errorf("contentcache: %w", err)
	}
	c.pins = h.Pins
	return nil
}

func (c *Cache) setPinsLocked(pins []Pin) error {
	rec, err := encodeRecord(kindPins, pinsHeader{Pins: pins}, nil)
	if err == nil {
		err = writeAtomic(c.pinsPath(), rec)
	}
	if err != nil {
		return fmt.Errorf("contentcache: saving pins: %w", err)
	}
	c.pins = pins
	return nil
}

// Pin keeps share/path (a folder or a file; "" for the whole share) on
// this device. Pinning again is harmless.
func (c *Cache) Pin(share, path string) error {
	if share == "" {
		return errors.New("contentcache: pin without a share")
	}
	p := Pin{Share: share, Path: strings.Trim(path, "/")}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range c.pins {
		if q.Share == p.Share && q.Path == p.Path {
			return nil
		}
	}
	p.Since = c.o.Now().UTC()
	pins := append(c.pins[:len(c.pins):len(c.pins)], p)
	return c.setPinsLocked(pins)
}

// Unpin removes the pin share/path (not pins above or below it). Its files
// stay cached, and become evictable unless another pin covers them.
func (c *Cache) Unpin(share, path string) error {
	path = strings.Trim(path, "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.pins[:0:0]
	for _, q := range c.pins {
		if q.Share != share || q.Path != path {
			kept = append(kept, q)
		}
	}
	if len(kept) == len(c.pins) {
		return nil
	}
	if err := c.setPinsLocked(kept); err != nil {
		return err
	}
	c.evictLocked(0)
	return nil
}

// Pins lists the pins, oldest first.
func (c *Cache) Pins() []Pin {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Pin(nil), c.pins...)
}

// Pinned reports whether k is covered by a pin.
func (c *Cache) Pinned(k Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pinnedLocked(k.clean())
}

func (c *Cache) pinnedLocked(k Key) bool {
	for _, p := range c.pins {
		if p.covers(k) {
			return true
		}
	}
	return false
}
