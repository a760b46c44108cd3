package tray

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

// Fetch reads the daemon's status, every share and the contacts into a
// snapshot. A daemon without the contacts API gives a snapshot with
// ContactsSupported false; any other failure is an error.
func Fetch(ctx context.Context, c *control.Client) (Snapshot, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	shares, err := c.Shares(ctx, true)
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Conn: Connected, Status: st, Shares: shares, At: time.Now()}
	var contacts []Contact
	switch err := c.Do(ctx, http.MethodGet, "/v1/contacts", nil, &contacts); {
	case err == nil:
		snap.Contacts, snap.ContactsSupported = contacts, true
	case IsMissingRoute(err):
	default:
		return Snapshot{}, err
	}
	// Pins: none without a mount (503) or on an older agent.
	if pins, err := c.Pins(ctx); err == nil {
		snap.Pins, snap.PinsSupported = pins, true
	}
	return snap, nil
}

// IsMissingRoute says whether err is the daemon's answer to a route it
// does not have (an older agent version).
func IsMissingRoute(err error) bool {
	var ae *control.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.HasPrefix(ae.Message, "no such API")
}

// Watcher keeps a snapshot of the daemon current: it fetches one, follows
// the change feed and fetches again on every change (bursts coalesce into
// one fetch), and when the daemon goes away it publishes a disconnected
// snapshot and retries with exponential backoff until it is back.
type Watcher struct {
	Client *control.Client
	// Publish receives every new snapshot, from the watcher's goroutine.
	Publish func(Snapshot)
	// OnEvent, when set, sees every event of the feed before the fetch it causes.
	OnEvent func(control.Event)
	// MinBackoff and MaxBackoff bound the wait between reconnection attempts.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one fetch.
	Timeout time.Duration
	Log     *slog.Logger

	once sync.Once
	poke chan struct{}
}

func (w *Watcher) init() {
	w.once.Do(func() {
		w.poke = make(chan struct{}, 1)
		if w.MinBackoff <= 0 {
			w.MinBackoff = 250 * time.Millisecond
		}
		if w.MaxBackoff < w.MinBackoff {
			w.MaxBackoff = max(w.MinBackoff, 5*time.Second)
		}
		if w.Timeout <= 0 {
			w.Timeout = 10 * time.Second
		}
		if w.Log == nil {
			w.Log = slog.Default()
		}
		if w.Publish == nil {
			w.Publish = func(Snapshot) {}
		}
	})
}

// Poke asks for a fetch now: after an action, or to retry at once while
// the daemon is away.
func (w *Watcher) Poke() {
	w.init()
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	w.init()
	backoff := w.MinBackoff
	var (
		after   uint64
		started time.Time
		wasUp   bool
	)
	for ctx.Err() == nil {
		snap, err := w.fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if wasUp {
				w.Log.Info("lost the agent", "err", err)
			}
			wasUp = false
			w.Publish(Snapshot{Conn: Disconnected, Err: err.Error(), At: time.Now()})
			select {
			case <-ctx.Done():
			case <-w.poke:
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, w.MaxBackoff)
			continue
		}
		if !wasUp {
			w.Log.Info("connected to the agent", "version", snap.Status.Version, "socket", w.Client.Path())
			backoff = w.MinBackoff
		}
		wasUp = true
		if !snap.Status.StartedAt.Equal(started) {
			// A restarted daemon numbers its events afresh.
			after, started = 0, snap.Status.StartedAt
		}
		w.Publish(snap)
		began := time.Now()
		after = w.follow(ctx, after)
		if time.Since(began) < time.Second {
			// A feed that ends at once (refused, or the daemon is
			// stopping) must not turn this loop into a busy one.
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, w.MaxBackoff)
		} else {
			backoff = w.MinBackoff
		}
	}
	return ctx.Err()
}

// follow streams the change feed from after, fetching on changes, until
// the stream or a fetch fails. It returns the last sequence seen.
func (w *Watcher) follow(ctx context.Context, after uint64) uint64 {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dirty := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-sctx.Done():
				return
			case <-dirty:
			case <-w.poke:
			}
			snap, err := w.fetch(sctx)
			if err != nil {
				cancel() // the stream reconnects through Run
				return
			}
			w.Publish(snap)
		}
	}()
	var mu sync.Mutex
	last := after
	err := w.Client.Events(sctx, after, func(ev control.Event) {
		mu.Lock()
		last = ev.Seq
		mu.Unlock()
		if w.OnEvent != nil {
			w.OnEvent(ev)
		}
		select {
		case dirty <- struct{}{}:
		default:
		}
	})
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		w.Log.Debug("event feed ended", "err", err)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return last
}

func (w *Watcher) fetch(ctx context.Context) (Snapshot, error) {
	fctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	return Fetch(fctx, w.Client)
}
