package agent

import (
	"github.com/ocm-agent/ocm-agent/control"
	"sync"
	"time"
)

// Event is one change the control API's feed reports.
type Event = control.Event

// bus fans events out to subscribers and keeps a short history so a
// client that reconnects can resume from the last sequence it saw.
type bus struct {
	mu      sync.Mutex
	seq     uint64
	history []Event
	subs    map[chan Event]struct{}
}

const historyLen = 256

func newBus() *bus { return &bus{subs: map[chan Event]struct{}{}} }

func (b *bus) publish(typ, id, state string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	ev := Event{Seq: b.seq, Type: typ, ID: id, State: state, Time: time.Now().UTC()}
	b.history = append(b.history, ev)
	if len(b.history) > historyLen {
		b.history = b.history[len(b.history)-historyLen:]
	}
	for ch := range b.subs {
		select {
		case ch <- ev:
		default: // a slow subscriber loses events, never blocks the agent; it can resync from the list
		}
	}
}

// subscribe returns the events after seq still in history, and a channel
// of the ones to come; cancel releases it.
func (b *bus) subscribe(after uint64) ([]Event, <-chan Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []Event
	for _, ev := range b.history {
		if ev.Seq > after {
			past = append(past, ev)
		}
	}
	ch := make(chan Event, 64)
	b.subs[ch] = struct{}{}
	return past, ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}
