package tray

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

// startWatcher runs a watcher on socket and returns its snapshots.
func startWatcher(t *testing.T, socket string) (<-chan Snapshot, *Watcher) {
	t.Helper()
	snaps := make(chan Snapshot, 256)
	w := &Watcher{
		Client: control.NewClient(socket), MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Timeout: 5 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Publish: func(s Snapshot) { snaps <- s },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return snaps, w
}

// waitFor returns the first snapshot satisfying ok; it fails after 15 s,
// a bound on a broken watcher, not a performance figure.
func waitFor(t *testing.T, snaps <-chan Snapshot, what string, ok func(Snapshot) bool) Snapshot {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case s := <-snaps:
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatalf("no snapshot where %s", what)
		}
	}
}

func TestWatcherFollowsTheFeed(t *testing.T) {
	b := newFakeBackend()
	d := serveFake(t, b, "")
	snaps, _ := startWatcher(t, d.socket)
	first := waitFor(t, snaps, "connected", func(s Snapshot) bool { return s.Conn == Connected })
	if len(first.Shares) != 0 || !first.ContactsSupported || first.Status.Address != "alice@agent.example" {
		t.Fatalf("first snapshot %+v", first)
	}
	// The watcher never polls: only the event feed can bring this share.
	b.addShare(share("s1", "Report", StatePending))
	s := waitFor(t, snaps, "the new share is pending", func(s Snapshot) bool { return len(s.Pending()) == 1 })
	if s.Pending()[0].ID != "s1" || s.Status.Pending != 1 {
		t.Errorf("snapshot %+v", s)
	}
	if _, err := d.client().ShareAction(context.Background(), "s1", "accept"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, snaps, "the share is accepted", func(s Snapshot) bool {
		sh, ok := s.Find("s1")
		return ok && sh.State == StateAccepted
	})
}

func TestWatcherReconnectsAfterDaemonRestart(t *testing.T) {
	b := newFakeBackend()
	for i := range 5 { // the first daemon's feed reaches seq 5
		b.publish("status", "", string(rune('a'+i)))
	}
	d := serveFake(t, b, "")
	snaps, w := startWatcher(t, d.socket)
	waitFor(t, snaps, "connected", func(s Snapshot) bool { return s.Conn == Connected })

	d.stop()
	down := waitFor(t, snaps, "disconnected", func(s Snapshot) bool { return s.Conn == Disconnected })
	if down.Err == "" || down.Icon() != IconError {
		t.Errorf("disconnected snapshot %+v", down)
	}

	// A new daemon on the same socket numbers its events from 1 again.
	b2 := newFakeBackend()
	b2.status.StartedAt = b.status.StartedAt.Add(time.Hour)
	serveFake(t, b2, d.socket)
	w.Poke() // as the "Try again now" button does
	waitFor(t, snaps, "reconnected", func(s Snapshot) bool { return s.Conn == Connected })
	b2.addShare(share("s9", "After restart", StatePending)) // seq 1 of the new daemon
	waitFor(t, snaps, "the new daemon's share", func(s Snapshot) bool {
		_, ok := s.Find("s9")
		return ok
	})
}

func TestWatcherWaitsForADaemonThatIsNotThereYet(t *testing.T) {
	dir := t.TempDir()
	socket := dir + "/late.sock"
	snaps, _ := startWatcher(t, socket)
	down := waitFor(t, snaps, "disconnected", func(s Snapshot) bool { return s.Conn == Disconnected })
	if down.Problems()[0].Title != "The agent is not running" {
		t.Errorf("problem %+v", down.Problems())
	}
	b := newFakeBackend()
	b.shares = []control.Share{share("s1", "Early", StatePending)}
	serveFake(t, b, socket)
	s := waitFor(t, snaps, "connected", func(s Snapshot) bool { return s.Conn == Connected })
	if len(s.Pending()) != 1 {
		t.Errorf("snapshot after the daemon came %+v", s)
	}
}

func TestFetchWithoutContactsAPI(t *testing.T) {
	b := newFakeBackend()
	b.noContactsAPI = true
	d := serveFake(t, b, "")
	s, err := Fetch(context.Background(), d.client())
	if err != nil || s.ContactsSupported || s.Conn != Connected {
		t.Errorf("fetch from an agent without contacts: %+v, %v", s, err)
	}
	b2 := newFakeBackend()
	b2.contacts = []Contact{{ID: "c1", Address: "dave@cloud.example"}}
	s, err = Fetch(context.Background(), serveFake(t, b2, "").client())
	if err != nil || !s.ContactsSupported || len(s.Contacts) != 1 {
		t.Errorf("fetch with contacts: %+v, %v", s, err)
	}
}
