package tray

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

// fakeBackend is a control.Backend held in memory. The daemon's own
// backend needs the whole agent (store, secrets, receiver); the tray only
// sees the API, which control.Server serves over a real unix socket.
type fakeBackend struct {
	mu      sync.Mutex
	status  control.Status
	shares  []control.Share
	seq     uint64
	history []control.Event
	subs    map[chan control.Event]struct{}
	actions []string

	contacts      []Contact
	noContactsAPI bool
	// inviteStatus is the answer to POST /v1/invites/accept (0: 200 with a contact).
	inviteStatus int
	inviteMsg    string
	noInviteAPI  bool
	invites      []string

	pinsOn bool // pins and cache routes answer (pins_test.go)
	pins   []control.Pin
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		status: control.Status{
			Version: "1.0.0", User: "alice", Address: "alice@agent.example", PublicURL: "https://agent.example",
			Listen: "127.0.0.1:9200", Mount: "/home/alice/OCM", MountState: "mounted", SecretsBackend: "keyring",
			KeyringUnlocked: true, StartedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		},
		subs: map[chan control.Event]struct{}{},
	}
}

func (b *fakeBackend) Status(context.Context) control.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.status
	st.Pending = 0
	for _, sh := range b.shares {
		if sh.State == StatePending {
			st.Pending++
		}
	}
	return st
}

func (b *fakeBackend) Shares(_ context.Context, all bool) ([]control.Share, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []control.Share
	for _, sh := range b.shares {
		if all || sh.State == StatePending || sh.State == StateAccepted || sh.State == StateError {
			out = append(out, sh)
		}
	}
	return out, nil
}

func (b *fakeBackend) Share(_ context.Context, id string) (control.Share, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sh := range b.shares {
		if sh.ID == id {
			return sh, nil
		}
	}
	return control.Share{}, fmt.Errorf("no share %q: %w", id, control.ErrNotFound)
}

func (b *fakeBackend) change(id, to string, from ...string) (control.Share, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, sh := range b.shares {
		if sh.ID != id {
			continue
		}
		if !slices.Contains(from, sh.State) {
			return sh, fmt.Errorf("share %s is %s: %w", id, sh.State, control.ErrConflict)
		}
		b.shares[i].State = to
		b.actions = append(b.actions, to+":"+id)
		b.publishLocked("share", id, to)
		return b.shares[i], nil
	}
	return control.Share{}, fmt.Errorf("no share %q: %w", id, control.ErrNotFound)
}

func (b *fakeBackend) AcceptShare(_ context.Context, id string) (control.Share, error) {
	return b.change(id, StateAccepted, StatePending, StateError)
}

func (b *fakeBackend) DeclineShare(_ context.Context, id string) (control.Share, error) {
	return b.change(id, StateDeclined, StatePending, StateError)
}

func (b *fakeBackend) RemoveShare(_ context.Context, id string) (control.Share, error) {
	return b.change(id, StateRemoved, StateAccepted, StatePending, StateError)
}

func (b *fakeBackend) Subscribe(after uint64) ([]control.Event, <-chan control.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []control.Event
	for _, ev := range b.history {
		if ev.Seq > after {
			past = append(past, ev)
		}
	}
	ch := make(chan control.Event, 64)
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

func (b *fakeBackend) publishLocked(typ, id, state string) {
	b.seq++
	ev := control.Event{Seq: b.seq, Type: typ, ID: id, State: state, Time: time.Now()}
	b.history = append(b.history, ev)
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// addShare stores a share and announces it on the feed.
func (b *fakeBackend) addShare(sh control.Share) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.shares = append(b.shares, sh)
	b.publishLocked("share", sh.ID, sh.State)
}

func (b *fakeBackend) publish(typ, id, state string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.publishLocked(typ, id, state)
}

func (b *fakeBackend) setStatus(f func(*control.Status)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.status)
	b.publishLocked("status", "", "")
}

func (b *fakeBackend) actionLog() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.actions)
}

// oldDaemon is how a daemon that predates a route answers it.
type oldDaemon string

func (e oldDaemon) Error() string   { return "no such API: " + string(e) }
func (e oldDaemon) HTTPStatus() int { return http.StatusNotFound }

// The contacts and invites routes of the control API are served by the
// handlers of routes, in the tray's own contact type; a daemon with them
// switched off answers as an older one does.

func (b *fakeBackend) Invites(context.Context) ([]control.Invite, error) {
	return nil, oldDaemon("GET /v1/invites")
}

func (b *fakeBackend) CreateInvite(context.Context, control.InviteRequest) (control.CreatedInvite, error) {
	return control.CreatedInvite{}, oldDaemon("POST /v1/invites")
}

func (b *fakeBackend) RevokeInvite(context.Context, string) (control.Invite, error) {
	return control.Invite{}, oldDaemon("DELETE /v1/invites/{id}")
}

func (b *fakeBackend) AcceptInvite(context.Context, control.AcceptInviteRequest) (control.Contact, error) {
	return control.Contact{}, oldDaemon("POST /v1/invites/accept")
}

func (b *fakeBackend) Contacts(context.Context) ([]control.Contact, error) {
	return nil, oldDaemon("GET /v1/contacts")
}

func (b *fakeBackend) RemoveContact(context.Context, string) (control.Contact, error) {
	return control.Contact{}, oldDaemon("DELETE /v1/contacts/{id}")
}

// routes serves the contacts and invites API (unless switched off) in
// front of the control server ctl.
func (b *fakeBackend) routes(ctl http.Handler) http.Handler {
	s := http.NewServeMux()
	s.Handle("/", ctl)
	if !b.noContactsAPI {
		s.HandleFunc("GET /v1/contacts", func(w http.ResponseWriter, r *http.Request) {
			b.mu.Lock()
			defer b.mu.Unlock()
			writeJSON(w, http.StatusOK, append([]Contact{}, b.contacts...))
		})
		s.HandleFunc("DELETE /v1/contacts/{id}", func(w http.ResponseWriter, r *http.Request) {
			b.mu.Lock()
			defer b.mu.Unlock()
			id := r.PathValue("id")
			i := slices.IndexFunc(b.contacts, func(c Contact) bool { return c.ID == id })
			if i < 0 {
				writeJSON(w, http.StatusNotFound, control.ErrorBody{Message: "no such contact"})
				return
			}
			b.contacts = slices.Delete(b.contacts, i, i+1)
			b.actions = append(b.actions, "delete-contact:"+id)
			b.publishLocked("contact", id, "removed")
			w.WriteHeader(http.StatusNoContent)
		})
	}
	if !b.noInviteAPI {
		s.HandleFunc("POST /v1/invites/accept", func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				Invite string `json:"invite"`
			}
			data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			if err := json.Unmarshal(data, &in); err != nil {
				writeJSON(w, http.StatusBadRequest, control.ErrorBody{Message: "bad JSON"})
				return
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			b.invites = append(b.invites, in.Invite)
			if b.inviteStatus != 0 && b.inviteStatus != http.StatusOK {
				writeJSON(w, b.inviteStatus, control.ErrorBody{Message: b.inviteMsg})
				return
			}
			c := Contact{ID: "c-new", Address: "carol@cloud.example", Name: "Carol", CreatedAt: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
			b.contacts = append(b.contacts, c)
			b.publishLocked("contact", c.ID, "added")
			writeJSON(w, http.StatusOK, map[string]any{"contact": c})
		})
	}
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// fakeDaemon is the control API over a fake backend, served on a unix
// socket as the daemon serves it, and killable abruptly, event streams
// and all, like a crashed daemon.
type fakeDaemon struct {
	b      *fakeBackend
	srv    *http.Server
	cancel context.CancelFunc
	socket string
}

// serveFake serves b at socket (a new path in a temporary directory when
// empty) until the end of the test or stop.
func serveFake(t *testing.T, b *fakeBackend, socket string) *fakeDaemon {
	t.Helper()
	if socket == "" {
		dir, err := os.MkdirTemp("", "tray")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		socket = filepath.Join(dir, "ctl.sock")
	}
	ctl := control.NewServer(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctl.Heartbeat = 100 * time.Millisecond
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &fakeDaemon{b: b, cancel: cancel, socket: socket, srv: &http.Server{
		Handler:     b.routes(ctl),
		BaseContext: func(net.Listener) context.Context { return ctx }, // ends the event streams on stop
	}}
	go func() { _ = d.srv.Serve(ln) }()
	t.Cleanup(d.stop)
	return d
}

// stop kills the server: the listener and every connection close at once.
func (d *fakeDaemon) stop() {
	d.cancel()
	_ = d.srv.Close()
	os.Remove(d.socket)
}

func (d *fakeDaemon) client() *control.Client { return control.NewClient(d.socket) }

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func share(id, name, state string) control.Share {
	return control.Share{
		ID: id, Peer: "cloud.example", ProviderID: "p-" + id, Name: name, ShareWith: "alice@agent.example",
		Owner: "bob@cloud.example", Sender: "bob@cloud.example", SenderDisplayName: "Bob Builder",
		ShareType: "user", ResourceType: "file", Permissions: []string{"read", "write"},
		Protocols: []string{"webdav"}, State: state, Size: 5 << 20,
		Expiration: t0.Add(72 * time.Hour), SignedBy: "rfc9421 https://cloud.example/ocm#key1",
		CreatedAt: t0.Add(-time.Hour), UpdatedAt: t0.Add(-time.Hour),
	}
}
