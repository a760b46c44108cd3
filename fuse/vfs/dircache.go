package vfs

import (
	"sync"
	"time"
)

// DirCache is what the mount knows of one remote directory: one PROPFIND
// Depth 1 answers both its readdir and the lookups of its children, and the
// answer is kept for a TTL, measured on an injected clock. Concurrent callers
// share one fetch (a Flight), which runs on its own: a caller that stops
// waiting does not cancel it for the others.
type DirCache struct {
	fetch func(old *Listing, onChild func(string, Info)) (*Listing, error)
	now   func() time.Time
	spawn func(func())

	mu     sync.Mutex
	list   *Listing
	listAt time.Time
	flight *Flight
	ver    uint64 // changes whenever the listing's content may have
	// lastFl is the flight that brought the listing (by ID: a flight,
	// with its children, is not kept once its readers are done), of
	// version lastFlVer; lastDirs are the listing's directories in the
	// order it streamed them (nil for one not streamed).
	lastFl    uint64
	lastFlVer uint64
	lastDirs  []string
	flights   uint64     // flights started, for their IDs
	ahead     aheadState // of DirsAhead
}

// NewDirCache returns an empty cache. fetch lists the directory (old is the
// previous listing, which it may return unchanged after a cheaper check),
// handing children to onChild as they arrive; now is the clock (time.Now if
// nil); spawn runs a fetch in the background, never before it returns (a
// plain goroutine if nil).
func NewDirCache(fetch func(old *Listing, onChild func(string, Info)) (*Listing, error), now func() time.Time, spawn func(func())) *DirCache {
	if now == nil {
		now = time.Now
	}
	if spawn == nil {
		spawn = func(fn func()) { go fn() }
	}
	return &DirCache{fetch: fetch, now: now, spawn: spawn}
}

// Get returns the cached listing while younger than maxAge; otherwise the
// flight fetching it, started unless one runs.
func (c *DirCache) Get(maxAge time.Duration) (*Listing, *Flight) {
	_, l, fl, _ := c.get(maxAge, false)
	return l, fl
}

// Open is Get for a readdir: with the cached listing come its children,
// taken while no Patch changes them, and the listing's version (equal
// versions, equal children).
func (c *DirCache) Open(maxAge time.Duration) ([]Dirent, *Listing, *Flight, uint64) {
	return c.get(maxAge, true)
}

func (c *DirCache) get(maxAge time.Duration, entries bool) ([]Dirent, *Listing, *Flight, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.list != nil && c.now().Sub(c.listAt) < maxAge {
		var ents []Dirent
		if entries {
			ents = Entries(c.list)
		}
		return ents, c.list, nil, c.ver
	}
	fl := c.flight
	if fl == nil {
		c.flights++
		fl = newFlight(c.flights)
		c.flight = fl
		old := c.list
		c.spawn(func() { c.run(fl, old) })
	}
	return nil, nil, fl, 0
}

// run performs a flight and caches its result.
func (c *DirCache) run(fl *Flight, old *Listing) {
	l, err := c.fetch(old, fl.add)
	c.mu.Lock()
	c.flight = nil
	var all []entry
	if err == nil {
		if l != c.list {
			c.ver++
		}
		c.list, c.listAt = l, c.now()
		c.lastFl, c.lastFlVer, c.lastDirs = fl.id, c.ver, nil
		if l == old || !l.Streamed {
			// A copy (Patch changes l's), not nil even when empty.
			all = append(make([]entry, 0, len(l.ents)), l.ents...)
		} else {
			fl.mu.Lock()
			for i := range fl.ents.len() {
				if e := fl.ents.at(i); l.IsDir(e.name) {
					c.lastDirs = append(c.lastDirs, e.name)
				}
			}
			fl.mu.Unlock()
		}
	}
	c.mu.Unlock()
	fl.finish(l, err, all)
}

// FlightVersion is the version of the listing the flight of ID id brought,
// while it is the cached one; 0 otherwise.
func (c *DirCache) FlightVersion(id uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 || id != c.lastFl || c.lastFlVer != c.ver {
		return 0
	}
	return c.ver
}

// Prefetch starts fetching the listing in the background unless it is
// younger than maxAge or being fetched; it reports whether it started.
func (c *DirCache) Prefetch(maxAge time.Duration) bool {
	c.mu.Lock()
	busy := c.flight != nil || (c.list != nil && c.now().Sub(c.listAt) < maxAge)
	c.mu.Unlock()
	if busy {
		return false
	}
	_, _, fl, _ := c.get(maxAge, false)
	return fl != nil
}

// DirsAhead returns the directories of l, a listing from this cache, among
// the n that come after name in the order a readdir of it gave them (the
// server's order for a listing streamed as it arrived, else by name),
// leaving out those it returned before for l: a walk going through the
// directories in that order is handed each once, and the calls of a whole
// walk cost time linear in the directories (not n for each).
func (c *DirCache) DirsAhead(l *Listing, name string, n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := &c.ahead
	if a.l != l {
		// The directories in readdir order, once per listing.
		*a = aheadState{l: l}
		if l == c.list && c.lastDirs != nil {
			a.dirs = c.lastDirs
		} else {
			for _, e := range l.ents {
				if e.in.IsDir() {
					a.dirs = append(a.dirs, e.name)
				}
			}
		}
	}
	// Found from where the last one was: a walk goes forward.
	i := -1
	for k := range a.dirs {
		if j := (a.hint + k) % len(a.dirs); a.dirs[j] == name {
			i = j
			break
		}
	}
	if i < 0 {
		return nil
	}
	a.hint = i
	from, to := max(i+1, a.next), min(i+1+n, len(a.dirs))
	if from >= to {
		return nil
	}
	a.next = to
	var out []string
	for _, d := range a.dirs[from:to] {
		if l.IsDir(d) { // not removed since
			out = append(out, d)
		}
	}
	return out
}

// aheadState is what DirsAhead knows of listing l: its directories in
// readdir order, where the last name was found, and up to where
// directories were returned.
type aheadState struct {
	l          *Listing
	dirs       []string
	hint, next int
}

// Entries returns the children of l in name order. l must be one the cache
// handed out, read under its lock (see Item), or not shared yet.
func Entries(l *Listing) []Dirent {
	all := make([]Dirent, l.Len())
	for i := range all {
		all[i] = l.At(i)
	}
	return all
}

// Item returns child name of l, a listing from this cache (which Patch may
// be changing meanwhile).
func (c *DirCache) Item(l *Listing, name string) (Info, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return l.Lookup(name)
}

// Read runs fn on l, a listing from this cache, while no Patch changes it.
func (c *DirCache) Read(l *Listing, fn func(*Listing)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(l)
}

// Current returns the cached listing, however old, or nil.
func (c *DirCache) Current() *Listing {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.list
}

// Invalidate makes the next Get fetch the directory again.
func (c *DirCache) Invalidate() {
	c.mu.Lock()
	c.listAt = time.Time{}
	c.mu.Unlock()
}

// Patch records a change made through the mount in the cached listing:
// in == nil removes name.
func (c *DirCache) Patch(name string, in *Info) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.list
	if l == nil {
		return
	}
	c.ver++
	if in == nil {
		l.Remove(name)
		return
	}
	l.Set(name, *in)
}

// Dirent is one child of a directory.
type Dirent struct {
	Name string
	Info Info
}

// Flight is one listing request in progress. Children are added as the
// answer arrives, so that a readdir can hand them out before the whole
// (possibly large) answer is in; lookups wait for Done.
type Flight struct {
	id   uint64 // by its cache, from 1
	done chan struct{}
	l    *Listing
	err  error

	mu   sync.Mutex
	cond *sync.Cond
	ents chunks[entry] // as they came
	// whole, once not nil, replaces ents: a listing that came whole.
	whole []entry
	over  bool
}

func newFlight(id uint64) *Flight {
	fl := &Flight{id: id, done: make(chan struct{})}
	fl.cond = sync.NewCond(&fl.mu)
	return fl
}

func (fl *Flight) add(name string, in Info) {
	fl.mu.Lock()
	fl.ents.add(entry{name: name, in: Pack(in)})
	fl.mu.Unlock()
	fl.cond.Broadcast()
}

// finish ends the flight; all, if not nil, replaces what was streamed (a
// listing that came whole).
func (fl *Flight) finish(l *Listing, err error, all []entry) {
	fl.mu.Lock()
	if all != nil {
		fl.ents, fl.whole = chunks[entry]{}, all
	}
	fl.l, fl.err, fl.over = l, err, true
	fl.mu.Unlock()
	fl.cond.Broadcast()
	close(fl.done)
}

// ID identifies the flight among its cache's (FlightVersion).
func (fl *Flight) ID() uint64 { return fl.id }

// Done is closed when the flight ended.
func (fl *Flight) Done() <-chan struct{} { return fl.done }

// Result is the listing fetched, or why not; valid once Done is closed.
func (fl *Flight) Result() (*Listing, error) { return fl.l, fl.err }

// Wake makes waiters in At check their stop condition again.
func (fl *Flight) Wake() {
	fl.mu.Lock()
	fl.cond.Broadcast()
	fl.mu.Unlock()
}

// At waits for child i (in arrival order) until it came, the flight ended
// or stop says so (checked on each Wake). When ok is false, n is how many
// children came, and l and err the flight's result unless stopped.
func (fl *Flight) At(i int, stop func() bool) (e Dirent, ok bool, n int, l *Listing, err error, stopped bool) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for i >= fl.count() && !fl.over {
		if stop() {
			return Dirent{}, false, 0, nil, nil, true
		}
		fl.cond.Wait()
	}
	if i < fl.count() {
		e := fl.entry(i)
		return Dirent{Name: e.name, Info: e.in.Info()}, true, 0, nil, nil, false
	}
	return Dirent{}, false, fl.count(), fl.l, fl.err, false
}

// count is how many children came. fl.mu is held.
func (fl *Flight) count() int {
	if fl.whole != nil {
		return len(fl.whole)
	}
	return fl.ents.len()
}

// entry returns child i, below count. fl.mu is held.
func (fl *Flight) entry(i int) entry {
	if fl.whole != nil {
		return fl.whole[i]
	}
	return fl.ents.at(i)
}
