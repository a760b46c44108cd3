package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testShare(id, providerID string) Share {
	return Share{ID: id, Peer: "peer.example.org", ProviderID: providerID, Name: "doc", ShareWith: "bob@me.example.org",
		Owner: "alice@peer.example.org", Sender: "alice@peer.example.org", ShareType: "user", ResourceType: "file",
		State: StatePending}
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// openMigrated makes a database with the first version migrations, lets
// fill write to it, then opens it with every migration.
func openMigrated(t *testing.T, version int, fill func(old *Store) error) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.db")
	all := migrations
	migrations = all[:version]
	old, err := Open(context.Background(), path)
	if err == nil {
		err = fill(old)
		old.Close()
	}
	migrations = all
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A database made by the first schema (shares and notifications only)
// is migrated with its rows intact and gains the new columns' defaults.
func TestMigrationKeepsExistingShares(t *testing.T) {
	s := openMigrated(t, 2, func(old *Store) error {
		_, err := old.db.Exec(`INSERT INTO shares (id, peer, provider_id, name, share_with, owner, sender, share_type, resource_type, state, created_at, updated_at)
			VALUES ('s1', 'p.example.org', 'x', 'old', 'bob@me', 'a@p', 'a@p', 'user', 'file', 'accepted', 1, 1)`)
		return err
	})
	sh, err := s.Share(context.Background(), "s1")
	if err != nil || sh.Name != "old" || sh.State != StateAccepted || sh.FromContact || sh.NotifyState != "" {
		t.Fatalf("after migration: %+v, %v", sh, err)
	}
	var v int
	s.db.QueryRow(`SELECT version FROM schema_version`).Scan(&v)
	if v != len(migrations) {
		t.Fatalf("schema version %d, want %d", v, len(migrations))
	}
}

func TestShareFromContactRoundTrips(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	sh := testShare("a", "p1")
	sh.FromContact = true
	got, _, err := s.PutShare(ctx, sh)
	if err != nil || !got.FromContact {
		t.Fatalf("PutShare: %+v %v", got, err)
	}
	if back, _ := s.Share(ctx, "a"); !back.FromContact {
		t.Fatal("fromContact not stored")
	}
	sh.FromContact = false
	s.PutShare(ctx, sh)
	if back, _ := s.Share(ctx, "a"); back.FromContact {
		t.Fatal("fromContact not updated by a repeated share")
	}
}

func TestContacts(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	c, err := s.PutContact(ctx, Contact{ID: "c1", Address: "alice@peer.example.org", UserID: "alice", Server: "peer.example.org",
		Name: "Alice", Source: SourceAcceptedTheirInvite})
	if err != nil || c.State != ContactActive {
		t.Fatalf("PutContact: %+v %v", c, err)
	}
	// The same address again refreshes the entry, keeping its id.
	again, err := s.PutContact(ctx, Contact{ID: "c2", Address: "alice@peer.example.org", UserID: "alice", Server: "peer.example.org",
		Name: "Alice A.", Source: SourceAcceptedOurInvite})
	if err != nil || again.ID != "c1" || again.Name != "Alice A." || !again.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("second PutContact: %+v %v", again, err)
	}
	if l, _ := s.Contacts(ctx); len(l) != 1 {
		t.Fatalf("%d contacts, want 1", len(l))
	}
	if _, err := s.MarkContactRemovedByPeer(ctx, "nobody@peer.example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("marking an unknown contact: %v", err)
	}
	m, err := s.MarkContactRemovedByPeer(ctx, "alice@peer.example.org")
	if err != nil || m.State != ContactRemovedByPeer {
		t.Fatalf("MarkContactRemovedByPeer: %+v %v", m, err)
	}
	if _, err := s.MarkContactRemovedByPeer(ctx, "alice@peer.example.org"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("marking twice: %v", err)
	}
	d, err := s.DeleteContact(ctx, "c1")
	if err != nil || d.Address != "alice@peer.example.org" {
		t.Fatalf("DeleteContact: %+v %v", d, err)
	}
	if _, err := s.DeleteContact(ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
}

// ContactByAddress answers from memory, and every write to the address
// book shows in its next answer.
func TestContactByAddressFollowsWrites(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	const addr = "alice@peer.example.org"
	state := func() string {
		t.Helper()
		c, err := s.ContactByAddress(ctx, addr)
		if errors.Is(err, ErrNotFound) {
			return "absent"
		}
		if err != nil {
			t.Fatal(err)
		}
		return c.State + " " + c.Name
	}
	if got := state(); got != "absent" {
		t.Fatalf("empty book: %s", got)
	}
	if _, err := s.PutContact(ctx, Contact{ID: "c1", Address: addr, Name: "Alice", Source: SourceAcceptedTheirInvite}); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "active Alice" {
		t.Fatalf("after PutContact: %s", got)
	}
	if _, err := s.MarkContactRemovedByPeer(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != ContactRemovedByPeer+" Alice" {
		t.Fatalf("after MarkContactRemovedByPeer: %s", got)
	}
	if _, err := s.DeleteContact(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "absent" {
		t.Fatalf("after DeleteContact: %s", got)
	}
	now := time.Now()
	if _, err := s.AddInvite(ctx, Invite{ID: "i1", TokenHash: hash("tok"), ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RedeemInvite(ctx, hash("tok"), now, Contact{ID: "c2", Address: addr, Name: "Alice B", Source: SourceAcceptedOurInvite}); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "active Alice B" {
		t.Fatalf("after RedeemInvite: %s", got)
	}
}

func TestInviteRedeemedOnce(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Now()
	if _, err := s.AddInvite(ctx, Invite{ID: "i1", TokenHash: hash("tok"), ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RedeemInvite(ctx, hash("other"), now, Contact{ID: "c", Address: "x@y"}); !errors.Is(err, ErrInviteUnknown) {
		t.Fatalf("unknown token: %v", err)
	}
	// Many concurrent acceptances: exactly one wins, the rest see it used.
	var wg sync.WaitGroup
	results := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, _, err := s.RedeemInvite(ctx, hash("tok"), now, Contact{ID: "c" + string(rune('a'+i)), Address: "carol@y.example.org", UserID: "carol", Server: "y.example.org"})
			results <- err
		}(i)
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrInviteUsed):
			t.Errorf("concurrent redeem: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d acceptances won, want 1", won)
	}
	inv, err := s.Invite(ctx, "i1")
	if err != nil || inv.State != InviteAccepted || inv.AcceptedBy != "carol@y.example.org" || inv.ContactID == "" {
		t.Fatalf("accepted invite: %+v %v", inv, err)
	}
	c, err := s.Contact(ctx, inv.ContactID)
	if err != nil || c.InviteID != "i1" {
		t.Fatalf("contact of the invite: %+v %v", c, err)
	}
	if _, err := s.RevokeInvite(ctx, "i1"); !errors.Is(err, ErrConflict) {
		t.Fatalf("revoking an accepted invite: %v", err)
	}
}

func TestInviteExpiryAndRevocation(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Now()
	s.AddInvite(ctx, Invite{ID: "old", TokenHash: hash("old"), ExpiresAt: now.Add(-time.Second)})
	s.AddInvite(ctx, Invite{ID: "rev", TokenHash: hash("rev"), ExpiresAt: now.Add(time.Hour)})
	if _, _, err := s.RedeemInvite(ctx, hash("old"), now, Contact{ID: "c", Address: "x@y"}); !errors.Is(err, ErrInviteExpired) {
		t.Fatalf("expired: %v", err)
	}
	if inv, _ := s.Invite(ctx, "old"); inv.State != InviteExpired {
		t.Fatalf("expired invite listed as %s", inv.State)
	}
	if inv, err := s.RevokeInvite(ctx, "rev"); err != nil || inv.State != InviteRevoked {
		t.Fatalf("revoke: %+v %v", inv, err)
	}
	if _, _, err := s.RedeemInvite(ctx, hash("rev"), now, Contact{ID: "c", Address: "x@y"}); !errors.Is(err, ErrInviteRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if _, err := s.RevokeInvite(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if l, _ := s.Contacts(ctx); len(l) != 0 {
		t.Fatalf("failed redemptions added %d contacts", len(l))
	}
}

// Only the token's hash reaches the database file.
func TestInviteTokenNotStored(t *testing.T) {
	s := openTest(t)
	token := "Tok3n-Zx9-0123456789-unique"
	if _, err := s.AddInvite(context.Background(), Invite{ID: "i", TokenHash: hash(token), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	db, _ := os.ReadFile(s.Path())
	wal, _ := os.ReadFile(s.Path() + "-wal")
	if bytes.Contains(db, []byte(token)) || bytes.Contains(wal, []byte(token)) {
		t.Fatal("the invite token is in the database")
	}
	if !bytes.Contains(append(db, wal...), hash(token)) {
		t.Fatal("the token's hash is not in the database either: is the check looking at the right file?")
	}
}

func TestOutboxQueuedWithStateChange(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	s.PutShare(ctx, testShare("a", "p1"))

	// A refused state change queues nothing.
	if _, _, err := s.SetShareStateNotify(ctx, "a", StateAccepted, "", &Notify{ID: "n0", Type: "SHARE_ACCEPTED"}, StateError); !errors.Is(err, ErrConflict) {
		t.Fatalf("refused change: %v", err)
	}
	if l, _ := s.OutboxForShare(ctx, "a"); len(l) != 0 {
		t.Fatalf("a refused change queued %d items", len(l))
	}
	sh, queued, err := s.SetShareStateNotify(ctx, "a", StateAccepted, "", &Notify{ID: "n1", Type: "SHARE_ACCEPTED", OnlyFrom: []string{StatePending}}, StatePending)
	if err != nil || !queued || sh.State != StateAccepted || sh.NotifyState != NotifyQueued {
		t.Fatalf("accept: %+v %v", sh, err)
	}
	due, err := s.DueOutbox(ctx, time.Now(), 10)
	if err != nil || len(due) != 1 || due[0].ID != "n1" || due[0].Peer != "peer.example.org" || due[0].ProviderID != "p1" || due[0].ResourceType != "file" {
		t.Fatalf("due: %+v %v", due, err)
	}
	// Removing before it was sent supersedes the acceptance.
	if _, _, err := s.SetShareStateNotify(ctx, "a", StateRemoved, "", &Notify{ID: "n2", Type: "SHARE_DECLINED", Supersede: []string{"SHARE_ACCEPTED"}}); err != nil {
		t.Fatal(err)
	}
	l, _ := s.OutboxForShare(ctx, "a")
	if len(l) != 2 || l[0].State != OutboxSuperseded || l[1].State != OutboxPending || l[1].Type != "SHARE_DECLINED" {
		t.Fatalf("after removal: %+v", l)
	}
	// The superseded item cannot be recorded as sent any more.
	first := l[0]
	first.State = OutboxSent
	if err := s.UpdateOutbox(ctx, first, NotifySent); !errors.Is(err, ErrConflict) {
		t.Fatalf("updating a superseded item: %v", err)
	}
	// A retry moves it out of the due list; success marks the share.
	it := l[1]
	it.Attempts, it.NextAttempt, it.LastError = 1, time.Now().Add(time.Hour), "HTTP 503"
	if err := s.UpdateOutbox(ctx, it, NotifyQueued+": retrying"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueOutbox(ctx, time.Now(), 10); len(due) != 0 {
		t.Fatalf("item due before its next attempt: %+v", due)
	}
	next, ok, err := s.NextOutboxAttempt(ctx)
	if err != nil || !ok || next.Sub(it.NextAttempt).Abs() > time.Millisecond {
		t.Fatalf("next attempt %v %v %v, want %v", next, ok, err, it.NextAttempt)
	}
	it.State = OutboxSent
	if err := s.UpdateOutbox(ctx, it, NotifySent); err != nil {
		t.Fatal(err)
	}
	if sh, _ := s.Share(ctx, "a"); sh.NotifyState != NotifySent {
		t.Fatalf("share notify state %q", sh.NotifyState)
	}
	if _, ok, _ := s.NextOutboxAttempt(ctx); ok {
		t.Fatal("something still pending")
	}
	// Accepting again from a state OnlyFrom does not list queues nothing.
	s.PutShare(ctx, testShare("b", "p2"))
	s.SetShareState(ctx, "b", StateError, "boom")
	sh, queued, err = s.SetShareStateNotify(ctx, "b", StateAccepted, "", &Notify{ID: "n3", Type: "SHARE_ACCEPTED", OnlyFrom: []string{StatePending}})
	if err != nil || queued || sh.NotifyState != "" {
		t.Fatalf("re-accept from error: %+v %v", sh, err)
	}
	if l, _ := s.OutboxForShare(ctx, "b"); len(l) != 0 {
		t.Fatalf("re-accepting from error queued %+v", l)
	}
}

func TestExpiredShares(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	now := time.Now()
	for id, exp := range map[string]time.Time{"past": now.Add(-time.Minute), "future": now.Add(time.Hour), "never": {}} {
		sh := testShare(id, id)
		sh.Expiration = exp
		s.PutShare(ctx, sh)
	}
	declined := testShare("declined", "declined")
	declined.Expiration = now.Add(-time.Hour)
	declined.State = StateDeclined
	s.PutShare(ctx, declined)
	l, err := s.ExpiredShares(ctx, now)
	if err != nil || len(l) != 1 || l[0].ID != "past" {
		t.Fatalf("expired: %+v %v", l, err)
	}
	next, ok, err := s.NextExpiry(ctx)
	if err != nil || !ok || next.Unix() != now.Add(-time.Minute).Unix() {
		t.Fatalf("next expiry %v %v %v", next, ok, err)
	}
	s.SetShareState(ctx, "past", StateRemoved, "expired")
	next, ok, _ = s.NextExpiry(ctx)
	if !ok || next.Unix() != now.Add(time.Hour).Unix() {
		t.Fatalf("next expiry after removal %v %v", next, ok)
	}
}
