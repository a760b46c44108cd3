package agent

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
)

// The content cache keeps what was read from shares on this device
// (config cache-size), under $XDG_CACHE_HOME/ocm-agent/content. The agent
// opens it with the mount, drops a share's content once the share is no
// longer accepted, and records which shares are offline (their server
// cannot be reached; reads come from the cache meanwhile).

// contentCacheDir is $XDG_CACHE_HOME/ocm-agent/content (~/.cache by default).
func contentCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "ocm-agent", "content"), nil
}

// openContentCache opens the cache configured, or returns nil when it is
// off or cannot be opened (the mount then reads from the servers only).
func (d *Daemon) openContentCache() *contentcache.Cache {
	size := d.cfg.CacheSize.Bytes
	if size <= 0 {
		return nil
	}
	dir, err := contentCacheDir()
	if err == nil {
		var c *contentcache.Cache
		c, err = contentcache.Open(contentcache.Options{Dir: dir, MaxBytes: size, Logger: d.log})
		if err == nil {
			return c
		}
	}
	d.log.Warn("the content cache could not be opened; files are read from their servers only", "err", err)
	return nil
}

// setContentCache makes c the agent's cache (nil for none).
func (a *Agent) setContentCache(c *contentcache.Cache) {
	a.mu.Lock()
	a.cache = c
	a.mu.Unlock()
}

// ContentCache is the content cache of the mount, nil when there is none
// (no mount, or cache-size 0).
func (a *Agent) ContentCache() *contentcache.Cache {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cache
}

// dropCachedShares removes from the cache every share not in accepted:
// removed, unshared, declined after accepting, or in error.
func (a *Agent) dropCachedShares(accepted map[string]bool) {
	c := a.ContentCache()
	if c == nil {
		return
	}
	for _, id := range c.Shares() {
		if accepted[id] {
			continue
		}
		if err := c.RemoveShare(id); err != nil {
			a.log.Warn("could not remove a share's cached content", "share", id, "err", err)
			continue
		}
		a.log.Info("cached content of a share that left removed", "share", id)
	}
}

// shareOffline records that a share's server stopped (offline) or started
// again answering, as the mount saw it.
func (a *Agent) shareOffline(id string, offline bool) {
	a.mu.Lock()
	if a.offline == nil {
		a.offline = map[string]bool{}
	}
	was := a.offline[id]
	if offline {
		a.offline[id] = true
	} else {
		delete(a.offline, id)
	}
	a.mu.Unlock()
	if was != offline {
		a.events.publish("status", "", "")
	}
}

// OfflineShares lists the shares whose server the mount cannot reach now
// (their cached files and listings are served meanwhile), sorted.
func (a *Agent) OfflineShares() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.offline))
	for id := range a.offline {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
