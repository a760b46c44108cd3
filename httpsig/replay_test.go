package httpsig

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestReplayCacheWindowAndBound(t *testing.T) {
	c := NewReplayCache(time.Minute, 3)
	t0 := testNow
	if c.seen([]byte("a"), t0, t0) {
		t.Fatal("first sight reported as seen")
	}
	if !c.seen([]byte("a"), t0.Add(59*time.Second), t0) {
		t.Fatal("replay within the window not detected")
	}
	// Past the window it is forgotten.
	if c.seen([]byte("a"), t0.Add(61*time.Second), t0) {
		t.Fatal("remembered past the window")
	}
	// An entry is kept as long as its signature would still be accepted.
	c.seen([]byte("long"), t0, t0.Add(10*time.Minute))
	if !c.seen([]byte("long"), t0.Add(9*time.Minute), t0) {
		t.Fatal("forgot a signature that is still acceptable")
	}
	// Bounded: the oldest entries go first.
	c = NewReplayCache(time.Hour, 3)
	for i := range 10 {
		c.seen([]byte(fmt.Sprint(i)), t0, t0)
	}
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	if !c.seen([]byte("9"), t0, t0) || c.seen([]byte("0"), t0, t0) {
		t.Fatal("eviction did not drop the oldest")
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	c := NewReplayCache(time.Minute, 1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if !c.seen([]byte(fmt.Sprint(i)), testNow, testNow) {
					mu.Lock()
					firsts++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firsts != 100 {
		t.Fatalf("%d signatures accepted as new, want 100", firsts)
	}
}
