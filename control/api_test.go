package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// memBackend is a Backend held in memory that records its calls.
type memBackend struct {
	mu       sync.Mutex
	calls    []string
	shares   map[string]Share
	invites  map[string]Invite
	contacts map[string]Contact
	events   chan Event
}

func newMemBackend() *memBackend {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return &memBackend{
		shares: map[string]Share{
			"s1": {ID: "s1", Name: "Project", State: "pending", Permissions: []string{"read"}, CreatedAt: t0},
			"s2": {ID: "s2", Name: "Old", State: "declined", CreatedAt: t0},
		},
		invites:  map[string]Invite{"i1": {ID: "i1", State: InviteOpen, ExpiresAt: t0.Add(7 * 24 * time.Hour)}},
		contacts: map[string]Contact{"c1": {ID: "c1", Address: "carol@cloud.example", Source: SourceAcceptedOurInvite, State: ContactActive}},
		events:   make(chan Event, 1),
	}
}

func (b *memBackend) called(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

func (b *memBackend) lastCall() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 0 {
		return ""
	}
	return b.calls[len(b.calls)-1]
}

func (b *memBackend) Status(context.Context) Status {
	b.called("Status")
	return Status{User: "bob", Pending: 1}
}

func (b *memBackend) Shares(_ context.Context, all bool) ([]Share, error) {
	b.called("Shares(%v)", all)
	var l []Share
	for _, id := range []string{"s1", "s2"} {
		if sh := b.shares[id]; all || sh.State != "declined" {
			l = append(l, sh)
		}
	}
	return l, nil
}

func (b *memBackend) Share(_ context.Context, id string) (Share, error) {
	b.called("Share(%s)", id)
	sh, ok := b.shares[id]
	if !ok {
		return Share{}, fmt.Errorf("no share %q: %w", id, ErrNotFound)
	}
	return sh, nil
}

func (b *memBackend) act(action, id, from, to string) (Share, error) {
	b.called("%s(%s)", action, id)
	sh, ok := b.shares[id]
	switch {
	case !ok:
		return Share{}, fmt.Errorf("no share %q: %w", id, ErrNotFound)
	case sh.State != from:
		return sh, fmt.Errorf("share %s is %s: %w", id, sh.State, ErrConflict)
	}
	sh.State = to
	b.shares[id] = sh
	return sh, nil
}

func (b *memBackend) AcceptShare(_ context.Context, id string) (Share, error) {
	return b.act("AcceptShare", id, "pending", "accepted")
}

func (b *memBackend) DeclineShare(_ context.Context, id string) (Share, error) {
	return b.act("DeclineShare", id, "pending", "declined")
}

func (b *memBackend) RemoveShare(_ context.Context, id string) (Share, error) {
	return b.act("RemoveShare", id, "accepted", "removed")
}

func (b *memBackend) Invites(context.Context) ([]Invite, error) {
	b.called("Invites")
	return []Invite{b.invites["i1"]}, nil
}

func (b *memBackend) CreateInvite(_ context.Context, req InviteRequest) (CreatedInvite, error) {
	b.called("CreateInvite(%s,%s)", req.Note, req.Expires)
	if req.Expires == "never" {
		return CreatedInvite{}, fmt.Errorf("expires %q: %w", req.Expires, ErrInvalid)
	}
	return CreatedInvite{Invite: Invite{ID: "i2", Note: req.Note, State: InviteOpen}, InviteString: "c2VjcmV0QGhvc3Q", Link: "https://agent.example/invite?token=secret"}, nil
}

func (b *memBackend) RevokeInvite(_ context.Context, id string) (Invite, error) {
	b.called("RevokeInvite(%s)", id)
	inv, ok := b.invites[id]
	if !ok {
		return Invite{}, ErrNotFound
	}
	inv.State = InviteRevoked
	return inv, nil
}

func (b *memBackend) AcceptInvite(_ context.Context, req AcceptInviteRequest) (Contact, error) {
	b.called("AcceptInvite(%s|%s|%s)", req.Invite, req.Token, req.Provider)
	return Contact{ID: "c2", Address: "dave@" + req.Provider, Source: SourceAcceptedTheirInvite, State: ContactActive}, nil
}

func (b *memBackend) Contacts(context.Context) ([]Contact, error) {
	b.called("Contacts")
	return []Contact{b.contacts["c1"]}, nil
}

func (b *memBackend) RemoveContact(_ context.Context, id string) (Contact, error) {
	b.called("RemoveContact(%s)", id)
	c, ok := b.contacts[id]
	if !ok {
		return Contact{}, ErrNotFound
	}
	return c, nil
}

func (b *memBackend) Subscribe(after uint64) ([]Event, <-chan Event, func()) {
	b.called("Subscribe(%d)", after)
	return []Event{{Seq: after + 1, Type: "share", ID: "s1", State: "pending"}}, b.events, func() {}
}

// serve runs a Server over b on a socket of its own until the test ends.
func serve(t *testing.T, b Backend) *Client {
	t.Helper()
	s := NewServer(b, nil)
	sock := filepath.Join(t.TempDir(), "c.sock")
	if err := s.Listen(sock); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return NewClient(sock)
}

// TestEveryRouteThroughTheSocket calls each route of the table through a
// real socket with the client scripts and the CLI use, and checks what the
// backend was asked and what came back. A route without a case here fails
// the test.
func TestEveryRouteThroughTheSocket(t *testing.T) {
	b := newMemBackend()
	c := serve(t, b)
	ctx := context.Background()
	want := func(t *testing.T, err error, call string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if got := b.lastCall(); got != call {
			t.Fatalf("the backend was asked %q, want %q", got, call)
		}
	}
	cases := map[string]func(t *testing.T){
		"GET /v1/status": func(t *testing.T) {
			st, err := c.Status(ctx)
			want(t, err, "Status")
			if st.User != "bob" || st.Pending != 1 {
				t.Fatalf("%+v", st)
			}
		},
		"GET /v1/events": func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			got := make(chan Event, 2)
			done := make(chan error, 1)
			go func() { done <- c.Events(ctx, 41, func(ev Event) { got <- ev }) }()
			if ev := <-got; ev.Seq != 42 || ev.Type != "share" || ev.ID != "s1" {
				t.Fatalf("past event %+v", ev)
			}
			b.events <- Event{Seq: 43, Type: "status"}
			if ev := <-got; ev.Seq != 43 || ev.Type != "status" {
				t.Fatalf("live event %+v", ev)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("stream ended with %v", err)
			}
		},
		"GET /v1/shares": func(t *testing.T) {
			l, err := c.Shares(ctx, false)
			want(t, err, "Shares(false)")
			if len(l) != 1 || l[0].ID != "s1" || l[0].Permissions[0] != "read" {
				t.Fatalf("%+v", l)
			}
			l, err = c.Shares(ctx, true)
			want(t, err, "Shares(true)")
			if len(l) != 2 {
				t.Fatalf("%+v", l)
			}
		},
		"GET /v1/shares/{id}": func(t *testing.T) {
			sh, err := c.Share(ctx, "s1")
			want(t, err, "Share(s1)")
			if sh.Name != "Project" {
				t.Fatalf("%+v", sh)
			}
			if _, err := c.Share(ctx, "a/b c"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `no share "a/b c"`) {
				t.Fatalf("unknown share: %v", err)
			}
		},
		"POST /v1/shares/{id}/accept": func(t *testing.T) {
			sh, err := c.ShareAction(ctx, "s1", "accept")
			want(t, err, "AcceptShare(s1)")
			if sh.State != "accepted" {
				t.Fatalf("%+v", sh)
			}
			if _, err := c.ShareAction(ctx, "s1", "accept"); !errors.Is(err, ErrConflict) {
				t.Fatalf("accepting twice: %v", err)
			}
		},
		"POST /v1/shares/{id}/decline": func(t *testing.T) {
			if _, err := c.ShareAction(ctx, "s2", "decline"); !errors.Is(err, ErrConflict) {
				t.Fatalf("declining a declined share: %v", err)
			}
			want(t, nil, "DeclineShare(s2)")
		},
		"POST /v1/shares/{id}/remove": func(t *testing.T) {
			if _, err := c.ShareAction(ctx, "nope", "remove"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("removing an unknown share: %v", err)
			}
			want(t, nil, "RemoveShare(nope)")
		},
		"POST /v1/shares/{id}/retry": func(t *testing.T) {
			if _, err := c.ShareAction(ctx, "nope", "retry"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("retrying an unknown share: %v", err)
			}
			want(t, nil, "AcceptShare(nope)")
		},
		"GET /v1/invites": func(t *testing.T) {
			l, err := c.Invites(ctx)
			want(t, err, "Invites")
			if len(l) != 1 || l[0].State != InviteOpen {
				t.Fatalf("%+v", l)
			}
		},
		"POST /v1/invites": func(t *testing.T) {
			ci, err := c.CreateInvite(ctx, InviteRequest{Note: "for dave", Expires: "2d"})
			want(t, err, "CreateInvite(for dave,2d)")
			if ci.Invite.ID != "i2" || ci.InviteString == "" || ci.Link == "" {
				t.Fatalf("%+v", ci)
			}
			if strings.Contains(fmt.Sprint(ci), "secret") {
				t.Fatalf("a created invite prints its token: %v", ci)
			}
			if _, err := c.CreateInvite(ctx, InviteRequest{Expires: "never"}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("bad expiry: %v", err)
			}
			// A body that is not JSON never reaches the backend.
			before := b.lastCall()
			resp, err := c.hc.Post("http://ocm-agent/v1/invites", "application/json", strings.NewReader("{"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || b.lastCall() != before {
				t.Fatalf("bad JSON: %s (backend asked %q)", resp.Status, b.lastCall())
			}
		},
		"DELETE /v1/invites/{id}": func(t *testing.T) {
			inv, err := c.RevokeInvite(ctx, "i1")
			want(t, err, "RevokeInvite(i1)")
			if inv.State != InviteRevoked {
				t.Fatalf("%+v", inv)
			}
		},
		"POST /v1/invites/accept": func(t *testing.T) {
			ct, err := c.AcceptInvite(ctx, AcceptInviteRequest{Token: "tok", Provider: "cloud.example"})
			want(t, err, "AcceptInvite(|tok|cloud.example)")
			if ct.Address != "dave@cloud.example" || ct.Source != SourceAcceptedTheirInvite {
				t.Fatalf("%+v", ct)
			}
			if s := fmt.Sprint(AcceptInviteRequest{Invite: "secret"}); strings.Contains(s, "secret") {
				t.Fatalf("an accept request prints its invite: %s", s)
			}
		},
		"GET /v1/contacts": func(t *testing.T) {
			l, err := c.Contacts(ctx)
			want(t, err, "Contacts")
			if len(l) != 1 || l[0].ID != "c1" {
				t.Fatalf("%+v", l)
			}
		},
		"DELETE /v1/contacts/{id}": func(t *testing.T) {
			ct, err := c.RemoveContact(ctx, "c1")
			want(t, err, "RemoveContact(c1)")
			if ct.Address != "carol@cloud.example" {
				t.Fatalf("%+v", ct)
			}
			if _, err := c.RemoveContact(ctx, "c9"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown contact: %v", err)
			}
		},
	}
	for p, f := range pinCases(c, want) {
		cases[p] = f
	}
	for _, rt := range Routes() {
		f := cases[rt.Pattern()]
		if f == nil {
			t.Errorf("route %s has no test through the socket", rt.Pattern())
			continue
		}
		t.Run(rt.Pattern(), f)
		delete(cases, rt.Pattern())
	}
	for p := range cases {
		t.Errorf("a test for %s, which is not in the route table", p)
	}

	// What is not in the table is a JSON 404 that names it.
	var ae *APIError
	if err := c.Do(ctx, http.MethodGet, "/v1/nothing", nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !strings.Contains(ae.Message, "no such API: GET /v1/nothing") {
		t.Errorf("unknown route: %v", err)
	}
}

// TestRouteTableIsWellFormed: each route is unique, versioned, has a
// one-line description, and its request type is given exactly when it
// reads a body.
func TestRouteTableIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range Routes() {
		p := rt.Pattern()
		if seen[p] {
			t.Errorf("%s twice", p)
		}
		seen[p] = true
		if !strings.HasPrefix(rt.Path, "/v1/") {
			t.Errorf("%s is not under /v1/", p)
		}
		if rt.Doc == "" || strings.Contains(rt.Doc, "\n") || rt.Out == nil {
			t.Errorf("%s needs a one-line description and an answer type", p)
		}
		if rt.In != nil && rt.Method != http.MethodPost {
			t.Errorf("%s has a request body", p)
		}
	}
	if !seen["GET /v1/events"] {
		t.Error("no event stream in the table")
	}
}

// The socket is the user's alone.
func TestSocketIsPrivate(t *testing.T) {
	s := NewServer(newMemBackend(), nil)
	sock := filepath.Join(t.TempDir(), "run", "c.sock")
	if err := s.Listen(sock); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if _, err := net.Dial("unix", sock); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{sock: "Srw-------", filepath.Dir(sock): "drwx------"} {
		if fi, err := lstat(path); err != nil || fi != want {
			t.Errorf("%s: %s %v, want %s", path, fi, err, want)
		}
	}
}

func lstat(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	return fi.Mode().String(), nil
}
