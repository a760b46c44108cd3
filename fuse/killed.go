package ocmfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// A program killed while the kernel waits for this filesystem's answer stays
// unkillable until the answer comes. The kernel tells of the signal with an
// interrupt, but it does so for any signal (the Go runtime sends several a
// second), and waits are shared: an interrupt alone must not end one. A
// waiting handler therefore checks, on an interrupt and then every killPoll,
// whether its program has SIGKILL pending, and stops waiting for it only
// then; the shared work goes on.

const killPoll = 100 * time.Millisecond

// killWatchAfter is how long a wait goes before it watches for its
// program's kill (see onKill).
const killWatchAfter = 20 * time.Millisecond

// errCallerKilled ends a wait whose program is being killed.
var errCallerKilled = errors.New("the program waiting was killed")

// callerKilled reports whether the program that made the FUSE request of ctx
// has SIGKILL pending, or is gone.
func callerKilled(ctx context.Context) bool {
	c, ok := fuse.FromContext(ctx)
	if !ok || c.Pid == 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(c.Pid), 10) + "/status")
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	const kill = 1 << (syscall.SIGKILL - 1)
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(line, "SigPnd:")
		if !ok {
			v, ok = strings.CutPrefix(line, "ShdPnd:")
		}
		if !ok {
			continue
		}
		if m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && m&kill != 0 {
			return true
		}
	}
	return false
}

// onKill calls wake (once) if the program behind the FUSE request of ctx is
// killed before stop is called.
//
// Watching ctx costs a goroutine and two wake-ups (go-fuse's context is not
// one the context package can watch without one), on the path of every
// small read: the watch begins only once the wait has lasted killWatchAfter,
// which most waits never do. A kill is then noticed at most that much later.
func onKill(ctx context.Context, wake func()) (stop func()) {
	done := make(chan struct{})
	watch := func() {
		t := time.NewTicker(killPoll)
		defer t.Stop()
		for {
			if callerKilled(ctx) {
				wake()
				return
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}
	var mu sync.Mutex
	stopped := false
	var after func() bool
	later := time.AfterFunc(killWatchAfter, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			after = context.AfterFunc(ctx, watch)
		}
	})
	return func() {
		later.Stop()
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		stopped = true
		if after != nil {
			after()
		}
		close(done)
	}
}
