package ocmfs

import (
	"runtime/debug"
	"sync/atomic"
)

// largeListing is the number of entries from which a readdir, at its end,
// has the garbage it made collected and its memory returned at once.
// Listing a large folder allocates several times what the mount keeps of
// it (the document read, the entries as they came, the kernel's nodes
// in go-fuse's growing tables); left to the collector, that garbage stays
// resident until the heap doubles, so that an idle agent would hold
// twice what its folders need. One collection per large listing costs
// little beside the listing (a few tens of milliseconds for 100,000
// entries, against seconds). A variable for tests.
var largeListing = 20_000

// freeing is set while a collection after a large listing runs: one at a
// time.
var freeing atomic.Bool

// freeAfterListing collects the garbage of a readdir that handed out n
// entries, in the background, when n is large.
func (f *FS) freeAfterListing(n int) {
	if n < largeListing || !freeing.CompareAndSwap(false, true) {
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer freeing.Store(false)
		debug.FreeOSMemory()
	}()
}
