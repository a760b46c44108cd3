package control

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleBackend has no events ever: a stream on it only ends when the
// server ends it. Each subscription is reported on subscribed.
type idleBackend struct {
	Backend
	subscribed chan struct{}
}

func (b idleBackend) Subscribe(uint64) ([]Event, <-chan Event, func()) {
	b.subscribed <- struct{}{}
	return nil, make(chan Event), func() {}
}

func (idleBackend) Status(context.Context) Status { return Status{User: "bob"} }

func TestShutdownEndsEventStreams(t *testing.T) {
	b := idleBackend{subscribed: make(chan struct{}, 1)}
	s := NewServer(b, nil)
	sock := filepath.Join(t.TempDir(), "c.sock")
	if err := s.Listen(sock); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	c := NewClient(sock)
	if st, err := c.Status(context.Background()); err != nil || st.User != "bob" {
		t.Fatalf("status over the socket: %+v %v", st, err)
	}
	streamDone := make(chan error, 1)
	go func() { streamDone <- c.Events(context.Background(), 0, func(Event) {}) }()
	select {
	case <-b.subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream did not open")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open event stream: %v", err)
	}
	select {
	case <-streamDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream was not ended by shutdown")
	}
	if _, err := c.Status(context.Background()); err == nil {
		t.Fatal("the socket still answers after shutdown")
	}
}

// manyShares answers a list of n shares.
type manyShares struct {
	Backend
	n int
}

func (b manyShares) Shares(context.Context, bool) ([]Share, error) {
	l := make([]Share, b.n)
	long := strings.Repeat("x", 200)
	for i := range l {
		l[i] = Share{ID: strconv.Itoa(i), Peer: "peer.example.org", Name: long, Owner: long, Sender: long}
	}
	return l, nil
}

// A list larger than any fixed bound the client might set (here 40,000
// shares, about 30 MB of JSON) arrives whole.
func TestLargeAnswerArrivesWhole(t *testing.T) {
	s := NewServer(manyShares{n: 40000}, nil)
	sock := filepath.Join(t.TempDir(), "c.sock")
	if err := s.Listen(sock); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	l, err := NewClient(sock).Shares(context.Background(), true)
	if err != nil {
		t.Fatalf("listing 40,000 shares: %v", err)
	}
	if len(l) != 40000 || l[39999].ID != "39999" || len(l[39999].Sender) != 200 {
		t.Fatalf("got %d shares, the last %+v", len(l), l[len(l)-1])
	}
}
