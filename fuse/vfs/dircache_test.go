package vfs

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func listingOf(names ...string) *Listing {
	l := &Listing{}
	for _, n := range names {
		l.Set(n, Info{Size: 1})
	}
	return l
}

func waitFlight(t *testing.T, fl *Flight) (*Listing, error) {
	t.Helper()
	select {
	case <-fl.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("flight never ended")
	}
	return fl.Result()
}

// A listing is kept for the TTL on the cache's clock, fetched again after
// it, and shared by the callers that come while it is fetched.
func TestDirCacheTTL(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var fetches atomic.Int32
	release := make(chan struct{})
	c := NewDirCache(func(old *Listing, onChild func(string, Info)) (*Listing, error) {
		fetches.Add(1)
		<-release
		return listingOf("a", "b"), nil
	}, clock.Now, nil)
	const ttl = 10 * time.Second

	_, fl1 := c.Get(ttl)
	_, fl2 := c.Get(ttl)
	if fl1 == nil || fl1 != fl2 {
		t.Fatalf("concurrent callers do not share one fetch: %p %p", fl1, fl2)
	}
	close(release)
	if l, err := waitFlight(t, fl1); err != nil || l.Len() != 2 {
		t.Fatalf("flight: %v, %v", l, err)
	}
	clock.Advance(ttl - time.Second)
	if l, fl := c.Get(ttl); fl != nil || l == nil {
		t.Fatalf("listing not kept within the TTL")
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within the TTL", n)
	}
	clock.Advance(time.Second)
	l, fl := c.Get(ttl)
	if fl == nil || l != nil {
		t.Fatalf("listing kept past the TTL")
	}
	if _, err := waitFlight(t, fl); err != nil {
		t.Fatal(err)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the TTL, want 2", n)
	}
	// Invalidate ends the TTL at once.
	c.Invalidate()
	if _, fl := c.Get(ttl); fl == nil {
		t.Fatal("listing kept after Invalidate")
	} else if _, err := waitFlight(t, fl); err != nil {
		t.Fatal(err)
	}
}

// A failed fetch is not cached, and the old listing is what the next fetch
// may revalidate.
func TestDirCacheFailureNotCached(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	fail := errors.New("server down")
	var olds []*Listing
	first := listingOf("x")
	c := NewDirCache(func(old *Listing, onChild func(string, Info)) (*Listing, error) {
		olds = append(olds, old)
		switch len(olds) {
		case 1:
			return first, nil
		case 2:
			return nil, fail
		}
		return old, nil // revalidated: unchanged
	}, clock.Now, nil)
	const ttl = time.Second
	if _, fl := c.Get(ttl); fl == nil {
		t.Fatal("no fetch")
	} else {
		waitFlight(t, fl)
	}
	clock.Advance(ttl)
	_, fl := c.Get(ttl)
	if _, err := waitFlight(t, fl); !errors.Is(err, fail) {
		t.Fatalf("failed fetch: %v", err)
	}
	_, fl = c.Get(ttl)
	if fl == nil {
		t.Fatal("a failure was cached")
	}
	if l, err := waitFlight(t, fl); err != nil || l != first {
		t.Fatalf("revalidated listing: %v, %v", l, err)
	}
	if olds[2] != first {
		t.Errorf("the fetch after a failure was not given the old listing")
	}
}

// Children reach a readdir as they arrive; a waiter stops when told.
func TestFlightStreamsAndStops(t *testing.T) {
	step := make(chan struct{})
	c := NewDirCache(func(old *Listing, onChild func(string, Info)) (*Listing, error) {
		onChild("a", Info{})
		<-step
		l := listingOf("a", "b")
		l.Streamed = true
		onChild("b", Info{})
		return l, nil
	}, nil, nil)
	ents, l, fl, _ := c.Open(time.Minute)
	if ents != nil || l != nil || fl == nil {
		t.Fatal("empty cache did not start a flight")
	}
	e, ok, _, _, _, _ := fl.At(0, func() bool { return false })
	if !ok || e.Name != "a" {
		t.Fatalf("first child: %v %v", e, ok)
	}
	var stop atomic.Bool
	done := make(chan bool)
	go func() {
		_, _, _, _, _, stopped := fl.At(1, stop.Load)
		done <- stopped
	}()
	stop.Store(true)
	fl.Wake()
	select {
	case stopped := <-done:
		if !stopped {
			t.Error("waiter not stopped")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waiter never woke")
	}
	close(step)
	if _, err := waitFlight(t, fl); err != nil {
		t.Fatal(err)
	}
	e, ok, _, _, _, _ = fl.At(1, func() bool { return false })
	if !ok || e.Name != "b" {
		t.Fatalf("second child: %v %v", e, ok)
	}
	_, ok, n, l, err, _ := fl.At(2, func() bool { return false })
	if ok || n != 2 || l == nil || err != nil {
		t.Fatalf("end of flight: %v %d %v %v", ok, n, l, err)
	}
	if ents, l, fl, _ := c.Open(time.Minute); fl != nil || len(ents) != 2 || l == nil {
		t.Fatalf("cached open: %v %v %v", ents, l, fl)
	}
}

// A listing's version stays while its children do, and changes with a new
// listing or a patch: the kernel keeps its copy of a readdir only while the
// version is the same.
func TestDirCacheVersion(t *testing.T) {
	now := time.Unix(1000, 0)
	same := false
	var last *Listing
	c := NewDirCache(func(old *Listing, onChild func(string, Info)) (*Listing, error) {
		if same && old != nil {
			return old, nil // the ETag check said unchanged
		}
		last = listingOf("a", "b")
		return last, nil
	}, func() time.Time { return now }, nil)
	open := func() uint64 {
		t.Helper()
		_, _, fl, v := c.Open(time.Minute)
		if fl != nil {
			if _, err := waitFlight(t, fl); err != nil {
				t.Fatal(err)
			}
			_, _, fl, v = c.Open(time.Minute)
			if fl != nil {
				t.Fatal("a second flight")
			}
		}
		return v
	}
	v1 := open()
	if v1 == 0 || open() != v1 {
		t.Fatalf("version of a cached listing: %d, then another", v1)
	}
	c.Patch("c", &Info{})
	v2 := open()
	if v2 == v1 {
		t.Fatal("patch kept the version")
	}
	same = true
	now = now.Add(2 * time.Minute)
	if v := open(); v != v2 {
		t.Fatalf("an unchanged listing fetched again changed the version: %d, %d", v2, v)
	}
	same = false
	now = now.Add(2 * time.Minute)
	if v := open(); v == v2 {
		t.Fatal("a new listing kept the version")
	}
}

// A walk going through a folder's directories in readdir order is handed
// each following directory once, never more than n ahead of where it is;
// files are not handed out, and a listing fetched again starts afresh.
func TestDirsAheadOncePerWalk(t *testing.T) {
	var l *Listing
	c := NewDirCache(func(old *Listing, onChild func(string, Info)) (*Listing, error) {
		return l, nil
	}, nil, nil)
	var dirs []string
	l = &Listing{}
	for i := range 300 {
		name := fmt.Sprintf("n%03d", i)
		l.Set(name, Info{Dir: i%3 != 0})
		if i%3 != 0 {
			dirs = append(dirs, name)
		}
	}
	_, fl := c.Get(time.Minute)
	if got, err := waitFlight(t, fl); err != nil || got != l {
		t.Fatalf("fetch: %v", err)
	}
	const n = 8
	seen := map[string]int{}
	for i, d := range dirs {
		for _, a := range c.DirsAhead(l, d, n) {
			seen[a]++
			j := slices.Index(dirs, a)
			if j <= i || j > i+n {
				t.Fatalf("at %s (dir %d), %s (dir %d) handed out", d, i, a, j)
			}
		}
	}
	for _, d := range dirs[1:] {
		if seen[d] != 1 {
			t.Errorf("%s handed out %d times", d, seen[d])
		}
	}
	if len(seen) != len(dirs)-1 {
		t.Errorf("%d directories handed out, want %d", len(seen), len(dirs)-1)
	}
	// A new listing (another version) is walked afresh.
	l = listingOf("a", "b")
	l.Set("a", Info{Dir: true})
	l.Set("b", Info{Dir: true})
	c.Invalidate()
	_, fl = c.Get(time.Minute)
	if _, err := waitFlight(t, fl); err != nil {
		t.Fatal(err)
	}
	if got := c.DirsAhead(l, "a", n); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("new listing: %q", got)
	}
}

// Once its readers are done, a streamed flight (with its copy of every
// child) is not kept by the cache: the cached listing is the one copy. Its
// version and the order of its directories stay known.
func TestFlightNotKept(t *testing.T) {
	c := NewDirCache(func(old *Listing, onChild func(string, Info)) (*Listing, error) {
		l := &Listing{Streamed: true}
		for _, n := range []string{"z", "y", "x"} { // the server's order
			onChild(n, Info{Dir: true})
			l.Set(n, Info{Dir: true})
		}
		return l, nil
	}, nil, nil)
	_, fl := c.Get(time.Minute)
	l, err := waitFlight(t, fl)
	if err != nil {
		t.Fatal(err)
	}
	id := fl.ID()
	if v := c.FlightVersion(id); v == 0 {
		t.Fatal("the flight that brought the cached listing has no version")
	}
	gone := weak.Make(fl)
	fl = nil
	deadline := time.Now().Add(10 * time.Second)
	for gone.Value() != nil && time.Now().Before(deadline) {
		runtime.GC()
	}
	if gone.Value() != nil {
		t.Fatal("the cache keeps the flight after its readers are done")
	}
	if v := c.FlightVersion(id); v == 0 {
		t.Fatal("the flight's version is forgotten with the flight")
	}
	if got := c.DirsAhead(l, "z", 8); !slices.Equal(got, []string{"y", "x"}) {
		t.Fatalf("directories after z in the streamed order: %q", got)
	}
}
