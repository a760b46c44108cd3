package httpsig

import (
	"crypto/sha256"
	"sync"
	"time"
)

// ReplayCache remembers the signatures accepted recently so that the same
// signature is accepted only once. A signature is identified by its key id
// and the exact content it signs (signature base or signing string), so a
// re-encoded copy of the same signature (ECDSA's s and n-s) is caught too.
// It is safe for concurrent use. Only signatures that verified are
// recorded, so filling it costs an attacker valid signatures; when it is
// full the oldest entries go first.
type ReplayCache struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	until map[[sha256.Size]byte]time.Time
	order [][sha256.Size]byte // insertion order, for pruning and eviction
}

// NewReplayCache returns a cache that remembers a signature for at least
// window (and for as long as its freshness check would still accept it),
// holding at most max entries. window <= 0 means 10 minutes; max <= 0 means
// 100000.
func NewReplayCache(window time.Duration, max int) *ReplayCache {
	if window <= 0 {
		window = 10 * time.Minute
	}
	if max <= 0 {
		max = 100000
	}
	return &ReplayCache{window: window, max: max, until: make(map[[sha256.Size]byte]time.Time)}
}

// replayID identifies a signature for the cache.
func replayID(profile, keyID, signed string) []byte {
	return []byte(profile + "\x00" + keyID + "\x00" + signed)
}

// seen records a signature at now, to be remembered at least until
// acceptableUntil, and reports whether it was already recorded and still
// remembered.
func (c *ReplayCache) seen(key []byte, now, acceptableUntil time.Time) bool {
	id := sha256.Sum256(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prune(now)
	if u, ok := c.until[id]; ok && now.Before(u) {
		return true
	}
	u := now.Add(c.window)
	if acceptableUntil.After(u) {
		u = acceptableUntil
	}
	if _, ok := c.until[id]; !ok {
		c.order = append(c.order, id)
	}
	c.until[id] = u
	for len(c.until) > c.max && len(c.order) > 0 {
		delete(c.until, c.order[0])
		c.order = c.order[1:]
	}
	return false
}

// prune drops expired entries from the front of the insertion order.
func (c *ReplayCache) prune(now time.Time) {
	n := 0
	for n < len(c.order) {
		u, ok := c.until[c.order[n]]
		if ok && now.Before(u) {
			break
		}
		delete(c.until, c.order[n])
		n++
	}
	c.order = c.order[n:]
}

// Len reports how many signatures the cache holds.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.until)
}
