package ocmfs

import (
	"runtime"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Waits that end soon (most READs) start no goroutine to watch for their
// program's kill: go-fuse's request context cannot be watched without one.
func TestShortWaitsWatchNoKill(t *testing.T) {
	ctx := &fuse.Context{Cancel: make(chan struct{})}
	const waits = 100
	before := runtime.NumGoroutine()
	stops := make([]func(), waits)
	for i := range stops {
		stops[i] = onKill(ctx, func() { t.Error("woken, though nobody was killed") })
	}
	started := runtime.NumGoroutine() - before
	for _, stop := range stops {
		stop()
	}
	// Some may have begun watching on a slow machine (killWatchAfter).
	if started >= waits/2 {
		t.Errorf("%d waits started %d goroutines", waits, started)
	}
}
