package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

// eventually polls cond every 20 ms for at most limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by limit
	}
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// share makes the peer share doc.txt with the daemon's user and returns
// the agent's id of it.
func (td *testDaemon) share(t *testing.T, peer *ocmtest.Server, req ocmtest.ShareRequest) (*ocmtest.Share, store.Share) {
	t.Helper()
	req.To = "bob@" + td.cfg.PublicHost()
	if req.Path == "" {
		req.Path = "doc.txt"
	}
	ps, err := peer.CreateShare(context.Background(), req)
	if err != nil {
		t.Fatalf("CreateShare: %v", err)
	}
	sh, err := td.Agent.store.ShareByProviderID(context.Background(), peer.Host(), ps.ProviderID)
	if err != nil {
		t.Fatal(err)
	}
	return ps, sh
}

func notificationAbout(providerID, typ string) func(ocmtest.Notification) bool {
	return func(n ocmtest.Notification) bool { return n.ProviderID == providerID && n.Type == typ }
}

func (td *testDaemon) outbox(t *testing.T, shareID string) []store.OutboxItem {
	t.Helper()
	l, err := td.Agent.store.OutboxForShare(context.Background(), shareID)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Accepting, declining and removing tell the sender, signed; a removal
// before the acceptance went out replaces it.
func TestDecisionsNotifySenderSigned(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	peer := startPeer(t, ocmtest.Options{})
	ctx := waitCtx(t)
	p1, s1 := td.share(t, peer, ocmtest.ShareRequest{})
	p2, s2 := td.share(t, peer, ocmtest.ShareRequest{})
	p3, s3 := td.share(t, peer, ocmtest.ShareRequest{})
	if s1.FromContact {
		t.Fatal("a share from a stranger is marked as from a contact")
	}

	if _, err := td.client.ShareAction(ctx, s1.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	if _, err := td.client.ShareAction(ctx, s2.ID, "decline"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ps  *ocmtest.Share
		typ string
	}{{p1, ocm.ShareAccepted}, {p2, ocm.ShareDeclined}} {
		n, err := peer.WaitNotification(ctx, notificationAbout(c.ps.ProviderID, c.typ))
		if err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		if n.Status != 201 || !n.Signature.Verified || n.Signature.Profile != ocmtest.SignRFC9421 || n.ShareID != c.ps.ID {
			t.Fatalf("%s arrived as %+v (signature %+v)", c.typ, n, n.Signature)
		}
	}
	eventually(t, 10*time.Second, "the share showing the notification sent", func() bool {
		sh, _ := td.client.Share(ctx, s1.ID)
		return sh.NotifyState == store.NotifySent
	})
	if st, _ := peer.Share(p1.ID); st.State != ocmtest.ShareStateAccepted {
		t.Fatalf("the sender's share is %s", st.State)
	}

	// Accept, and once the sender knows, remove: the sender is told
	// SHARE_UNSHARED (draft-06), not SHARE_DECLINED.
	if _, err := td.client.ShareAction(ctx, s3.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.WaitNotification(ctx, notificationAbout(p3.ProviderID, ocm.ShareAccepted)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the acceptance recorded as sent", func() bool {
		sh, _ := td.client.Share(ctx, s3.ID)
		return sh.NotifyState == store.NotifySent
	})
	if _, err := td.client.ShareAction(ctx, s3.ID, "remove"); err != nil {
		t.Fatal(err)
	}
	if n, err := peer.WaitNotification(ctx, notificationAbout(p3.ProviderID, ocm.ShareUnshared)); err != nil || n.Status != 201 || !n.Signature.Verified {
		t.Fatalf("SHARE_UNSHARED: %+v %v", n, err)
	}
	for _, n := range peer.Notifications() {
		if n.ProviderID == p3.ProviderID && n.Type == ocm.ShareDeclined {
			t.Fatal("an accepted share's removal was sent as SHARE_DECLINED")
		}
	}
	if _, err := td.Agent.ShareSecret(ctx, s3.ID); !errors.Is(err, tokens.ErrSecretNotFound) {
		t.Fatalf("removed share kept its secret: %v", err)
	}
	// Re-accepting a share in error (not a new decision) tells nobody.
	td.Agent.store.SetShareState(ctx, s1.ID, store.StateError, "test")
	if _, err := td.client.ShareAction(ctx, s1.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	if l := td.outbox(t, s1.ID); len(l) != 1 {
		t.Fatalf("re-accepting from error queued again: %+v", l)
	}
}

// A peer that fails for a while gets the notification after retries.
func TestOutboxRetriesUntilDelivered(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	td.Agent.SetNotifyRetry(RetryPolicy{First: 30 * time.Millisecond, Max: 200 * time.Millisecond})
	peer := startPeer(t, ocmtest.Options{})
	ctx := waitCtx(t)
	ps, sh := td.share(t, peer, ocmtest.ShareRequest{})
	peer.SetFaultPrefix("/ocm/notifications")
	peer.FailNext(3)
	if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	n, err := peer.WaitNotification(ctx, notificationAbout(ps.ProviderID, ocm.ShareAccepted))
	if err != nil || n.Status != 201 {
		t.Fatalf("after the failures: %+v %v", n, err)
	}
	eventually(t, 10*time.Second, "the outbox recording the delivery", func() bool {
		l := td.outbox(t, sh.ID)
		return len(l) == 1 && l[0].State == store.OutboxSent
	})
	if l := td.outbox(t, sh.ID); l[0].Attempts != 4 || peer.Hits("/ocm/notifications") != 4 {
		t.Fatalf("delivered after %d attempts, %d requests; want 4 (3 refused)", l[0].Attempts, peer.Hits("/ocm/notifications"))
	}
}

// A peer that never takes the notification: given up after the give-up
// time, visibly (the share and the status say so).
func TestOutboxGivesUp(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	td.Agent.SetNotifyRetry(RetryPolicy{First: 20 * time.Millisecond, Max: 50 * time.Millisecond, GiveUp: 300 * time.Millisecond})
	peer := startPeer(t, ocmtest.Options{})
	ctx := waitCtx(t)
	_, sh := td.share(t, peer, ocmtest.ShareRequest{})
	peer.SetFaultPrefix("/ocm/notifications")
	peer.SetFailRate(1)
	if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "giving up", func() bool {
		s, _ := td.client.Share(ctx, sh.ID)
		return strings.HasPrefix(s.NotifyState, store.NotifyFailed+":")
	})
	l := td.outbox(t, sh.ID)
	if l[0].State != store.OutboxFailed || l[0].Attempts < 2 || !strings.Contains(l[0].LastError, "not delivered within") {
		t.Fatalf("outbox %+v", l[0])
	}
	if st := td.Agent.Status(ctx); len(st.Errors) == 0 || !strings.Contains(strings.Join(st.Errors, "\n"), "could not tell") {
		t.Fatalf("status errors %v", st.Errors)
	}
	// The worker sends only what the outbox holds as pending; a given-up
	// item is not, so nothing is ever retried.
	if next, pending, err := td.Agent.store.NextOutboxAttempt(ctx); err != nil || pending {
		t.Fatalf("after giving up, an attempt is still planned for %v (%v)", next, err)
	}
}

// A peer without notifications (404 at its end point) is not retried.
func TestOutboxPeerWithoutNotifications(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	td.Agent.SetNotifyRetry(RetryPolicy{First: 10 * time.Millisecond})
	var peer *ocmtest.Server
	peer = startPeer(t, ocmtest.Options{DiscoveryHook: func(doc map[string]any) { doc["endPoint"] = peer.URL() + "/legacy" }})
	ctx := waitCtx(t)
	_, sh := td.share(t, peer, ocmtest.ShareRequest{})
	if _, err := td.client.ShareAction(ctx, sh.ID, "decline"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the outbox giving up on the peer", func() bool {
		l := td.outbox(t, sh.ID)
		return len(l) == 1 && l[0].State == store.OutboxUnsupported
	})
	if l := td.outbox(t, sh.ID); l[0].Attempts != 1 || l[0].LastStatus != 404 {
		t.Fatalf("outbox %+v", l[0])
	}
	if s, _ := td.client.Share(ctx, sh.ID); !strings.HasPrefix(s.NotifyState, store.NotifyUnsupported) {
		t.Fatalf("notify state %q", s.NotifyState)
	}
}

// Senders of the OCM 1.0 options form (Nextcloud) verify the share's
// secret in notifications: it is sent, though the share's own copy is
// deleted by the decline, and the outbox copy goes once delivered.
func TestDeclineNotificationCarriesSecretForNextcloud(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	peer := startPeer(t, ocmtest.Options{})
	ctx := waitCtx(t)
	ps, sh := td.share(t, peer, ocmtest.ShareRequest{Dialect: ocmtest.DialectNextcloud})
	if sh.Dialect != string(ocm.DialectLegacyOptions) {
		t.Fatalf("dialect %s", sh.Dialect)
	}
	if _, err := td.client.ShareAction(ctx, sh.ID, "decline"); err != nil {
		t.Fatal(err)
	}
	n, err := peer.WaitNotification(ctx, notificationAbout(ps.ProviderID, ocm.ShareDeclined))
	if err != nil {
		t.Fatal(err)
	}
	var payload ocm.NotificationPayload
	if err := json.Unmarshal(n.Payload, &payload); err != nil || payload.SharedSecret != ps.Secret {
		t.Fatalf("payload %s", n.Payload)
	}
	var item store.OutboxItem
	eventually(t, 10*time.Second, "delivery recorded", func() bool {
		l := td.outbox(t, sh.ID)
		item = l[0]
		return l[0].State == store.OutboxSent
	})
	for _, key := range []string{secretKey(sh.ID), outboxSecretKey(item.ID)} {
		if _, err := td.Agent.secrets.Get(ctx, key); !errors.Is(err, tokens.ErrSecretNotFound) {
			t.Errorf("%s still in the secret store: %v", key, err)
		}
	}
	if strings.Contains(td.logs.String(), ps.Secret) {
		t.Fatal("the shared secret was logged")
	}
}

// recordingMounter keeps what the agent last told the mount.
type recordingMounter struct {
	mu      sync.Mutex
	entries []MountEntry
}

func (m *recordingMounter) SetEntries(e []MountEntry) {
	m.mu.Lock()
	m.entries = e
	m.mu.Unlock()
}

func (m *recordingMounter) has(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if e.ID == id {
			return true
		}
	}
	return false
}

// A share whose expiration passes is removed by the timer, without any
// access: state, secret and mount entry.
func TestExpiryTimerRemovesShare(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	m := &recordingMounter{}
	td.Agent.SetMounter(m, nil)
	peer := startPeer(t, ocmtest.Options{})
	ctx := waitCtx(t)
	_, keep := td.share(t, peer, ocmtest.ShareRequest{Expiration: time.Now().Add(time.Hour)})
	_, sh := td.share(t, peer, ocmtest.ShareRequest{Expiration: time.Now().Add(2 * time.Second)})
	for _, id := range []string{keep.ID, sh.ID} {
		if _, err := td.client.ShareAction(ctx, id, "accept"); err != nil {
			t.Fatal(err)
		}
	}
	if !m.has(sh.ID) {
		t.Fatal("the accepted share is not in the mount")
	}
	eventually(t, 15*time.Second, "the share expiring", func() bool {
		s, _ := td.client.Share(ctx, sh.ID)
		return s.State == store.StateRemoved
	})
	if s, _ := td.client.Share(ctx, sh.ID); s.Error != "expired" {
		t.Fatalf("removed for %q", s.Error)
	}
	eventually(t, 5*time.Second, "the expired share leaving the mount", func() bool { return !m.has(sh.ID) })
	if !m.has(keep.ID) {
		t.Fatal("the mount lost the share that did not expire")
	}
	if _, err := td.Agent.ShareSecret(ctx, sh.ID); !errors.Is(err, tokens.ErrSecretNotFound) {
		t.Fatalf("expired share kept its secret: %v", err)
	}
	if s, _ := td.client.Share(ctx, keep.ID); s.State != store.StateAccepted {
		t.Fatalf("the other share is %s", s.State)
	}
}

// SHARE_UNSHARED from the sender removes the share from the mount and
// its secret from the secret store.
func TestUnshareRemovesShare(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	m := &recordingMounter{}
	td.Agent.SetMounter(m, nil)
	peer := startPeer(t, ocmtest.Options{})
	ctx := waitCtx(t)
	ps, sh := td.share(t, peer, ocmtest.ShareRequest{})
	if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	if err := peer.Unshare(ctx, ps.ID); err != nil {
		t.Fatal(err)
	}
	if s, _ := td.client.Share(ctx, sh.ID); s.State != store.StateRemoved {
		t.Fatalf("after unshare: %s", s.State)
	}
	eventually(t, 5*time.Second, "the unshared share leaving the mount", func() bool { return !m.has(sh.ID) })
	if _, err := td.Agent.ShareSecret(ctx, sh.ID); !errors.Is(err, tokens.ErrSecretNotFound) {
		t.Fatalf("unshared share kept its secret: %v", err)
	}
}

// accept-from = contacts: a stranger's share is refused with 403 and not
// stored; after an invite the same sender's share is taken, flagged as
// from a contact, and accepted at once with auto-accept-contacts.
func TestContactsOnlyPolicy(t *testing.T) {
	td := startDaemon(t, insecurePeers(func(c *config.Config) { c.AcceptFrom = "contacts"; c.AutoAcceptContacts = true }))
	peer := startPeer(t, ocmtest.Options{})
	ctx := waitCtx(t)
	_, err := peer.CreateShare(ctx, ocmtest.ShareRequest{To: "bob@" + td.cfg.PublicHost(), Path: "doc.txt"})
	var se *ocmtest.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusForbidden || !strings.Contains(string(se.Body), "contacts") {
		t.Fatalf("a stranger's share: %v", err)
	}
	if l, _ := td.client.Shares(ctx, true); len(l) != 0 {
		t.Fatalf("a refused share was stored: %+v", l)
	}

	_, inviteString := peer.CreateInvite(ocmtest.InviteOptions{})
	if err := td.client.Do(ctx, http.MethodPost, "/v1/invites/accept", control.AcceptInviteRequest{Invite: inviteString}, nil); err != nil {
		t.Fatal(err)
	}
	ps, sh := td.share(t, peer, ocmtest.ShareRequest{})
	if !sh.FromContact || sh.State != store.StateAccepted {
		t.Fatalf("a contact's share: fromContact %v, state %s", sh.FromContact, sh.State)
	}
	if _, err := peer.WaitNotification(ctx, notificationAbout(ps.ProviderID, ocm.ShareAccepted)); err != nil {
		t.Fatal(err)
	}

	// USER_REMOVED from the contact's server: no longer a contact.
	body := []byte(`{"notificationType":"USER_REMOVED","resourceType":"user","providerId":"` + peer.User() + `"}`)
	resp, b, err := peer.SendRaw(ctx, td.base, "/ocm/notifications", body, ocmtest.SignRFC9421)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("USER_REMOVED: %v %s", err, b)
	}
	var contacts []store.Contact
	td.client.Do(ctx, http.MethodGet, "/v1/contacts", nil, &contacts)
	if len(contacts) != 1 || contacts[0].State != store.ContactRemovedByPeer {
		t.Fatalf("contacts after USER_REMOVED: %+v", contacts)
	}
	_, err = peer.CreateShare(ctx, ocmtest.ShareRequest{To: "bob@" + td.cfg.PublicHost(), Path: "doc.txt"})
	if !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Fatalf("a share after USER_REMOVED: %v", err)
	}
	var removed store.Contact
	if err := td.client.Do(ctx, http.MethodDelete, "/v1/contacts/"+contacts[0].ID, nil, &removed); err != nil || removed.ID != contacts[0].ID {
		t.Fatalf("remove contact: %+v %v", removed, err)
	}
	if err := td.client.Do(ctx, http.MethodGet, "/v1/contacts", nil, &contacts); err != nil || len(contacts) != 0 {
		t.Fatalf("contacts after removal: %+v %v", contacts, err)
	}
}

// Every decision and lifecycle change is on the event feed.
func TestLifecycleEvents(t *testing.T) {
	td := startDaemon(t, insecurePeers())
	peer := startPeer(t, ocmtest.Options{})
	ctx := waitCtx(t)
	events := make(chan control.Event, 64)
	go td.client.Events(ctx, 0, func(ev control.Event) { events <- ev })
	ci, _ := td.Agent.CreateInvite(ctx, "", 0)
	resp, _, err := peer.SendRaw(ctx, td.base, "/ocm/invite-accepted", acceptBody(t, peer.Host(), tokenOf(t, ci), "carol", "Carol"), ocmtest.SignRFC9421)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("accept: %v", err)
	}
	_, sh := td.share(t, peer, ocmtest.ShareRequest{Expiration: time.Now().Add(time.Second)})
	want := []string{"invite/open", "invite/accepted", "contact/added", "share/pending", "share/removed"}
	for i, w := range want {
		select {
		case ev := <-events:
			if got := ev.Type + "/" + ev.State; got != w {
				t.Fatalf("event %d = %s, want %s", i, got, w)
			}
			if ev.Type == "share" && ev.ID != sh.ID {
				t.Fatalf("event for share %s, want %s", ev.ID, sh.ID)
			}
		case <-ctx.Done():
			t.Fatalf("event %d (%s) never came", i, w)
		}
	}
}
