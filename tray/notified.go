package tray

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// NotifiedFile is the file, under the agent's state directory, where the
// tray remembers which notifications it has shown.
const NotifiedFile = "tray-notified.json"

// maxNotified bounds the remembered keys; the oldest go first.
const maxNotified = 2000

// DefaultNotifiedPath is $XDG_STATE_HOME/ocm-agent/tray-notified.json.
func DefaultNotifiedPath() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "ocm-agent", NotifiedFile)
}

// Notified remembers which notifications were shown, across restarts of
// the tray, so none is shown twice. Keys name what was notified, such as
// "share/<id>/arrived"; they never hold secrets. Safe for concurrent use.
type Notified struct {
	path string

	mu    sync.Mutex
	keys  map[string]time.Time
	fresh bool // the file did not exist: nothing was ever notified
}

type notifiedFile struct {
	Version int                  `json:"version"`
	Keys    map[string]time.Time `json:"keys"`
}

// OpenNotified loads the record at path. A missing file is an empty
// record (Fresh reports it); an unreadable one is an error, and the
// returned record is empty and usable.
func OpenNotified(path string) (*Notified, error) {
	n := &Notified{path: path, keys: map[string]time.Time{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		n.fresh = true
		return n, nil
	}
	if err != nil {
		return n, fmt.Errorf("reading the notification record: %w", err)
	}
	var f notifiedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return n, fmt.Errorf("notification record %s is damaged (starting afresh): %w", path, err)
	}
	for k, t := range f.Keys {
		n.keys[k] = t
	}
	return n, nil
}

// Fresh says the record did not exist when opened (first run).
func (n *Notified) Fresh() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fresh
}

// Has says whether key was notified.
func (n *Notified) Has(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.keys[key]
	return ok
}

// Add records key; it reports false when key was already recorded.
func (n *Notified) Add(key string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.keys[key]; ok {
		return false
	}
	n.keys[key] = now
	if len(n.keys) > maxNotified {
		type kt struct {
			k string
			t time.Time
		}
		all := make([]kt, 0, len(n.keys))
		for k, t := range n.keys {
			all = append(all, kt{k, t})
		}
		slices.SortFunc(all, func(a, b kt) int { return a.t.Compare(b.t) })
		for _, e := range all[:len(all)-maxNotified] {
			delete(n.keys, e.k)
		}
	}
	return true
}

// Remove forgets key, so that it can be notified again.
func (n *Notified) Remove(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.keys[key]
	delete(n.keys, key)
	return ok
}

// Keys lists the recorded keys with the given prefix.
func (n *Notified) Keys(prefix string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for k := range n.keys {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Save writes the record atomically, readable by the user only.
func (n *Notified) Save() error {
	n.mu.Lock()
	data, err := json.MarshalIndent(notifiedFile{Version: 1, Keys: n.keys}, "", " ")
	n.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(n.path), 0o700); err != nil {
		return fmt.Errorf("saving the notification record: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(n.path), ".tray-notified-*")
	if err != nil {
		return fmt.Errorf("saving the notification record: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("saving the notification record: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving the notification record: %w", err)
	}
	if err := os.Rename(tmp.Name(), n.path); err != nil {
		return fmt.Errorf("saving the notification record: %w", err)
	}
	n.mu.Lock()
	n.fresh = false
	n.mu.Unlock()
	return nil
}
