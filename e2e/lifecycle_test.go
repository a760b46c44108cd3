package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/agent"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

func getBody(u string) ([]byte, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// showShare is the agent's view of the share with providerId, via the CLI.
func (a *agentProc) showShare(t *testing.T, providerID string) control.Share {
	t.Helper()
	var l []control.Share
	if err := json.Unmarshal([]byte(a.mustCLI("shares", "list", "--all", "--json")), &l); err != nil {
		t.Fatal(err)
	}
	for _, s := range l {
		if s.ProviderID == providerID {
			return s
		}
	}
	t.Fatalf("no share with providerId %s; agent log:\n%s", providerID, a.log)
	return control.Share{}
}

func about(providerID, typ string) func(ocmtest.Notification) bool {
	return func(n ocmtest.Notification) bool {
		return n.ProviderID == providerID && n.Type == typ && n.Status == 201
	}
}

// secretsAfterStop stops the agent and opens its (file) secret store.
func (a *agentProc) secretsAfterStop(t *testing.T) agent.SecretStore {
	t.Helper()
	a.cmd.Process.Signal(interruptSignal)
	a.cmd.Wait()
	s, _, err := tokens.Open(context.Background(), tokens.OpenOptions{Backend: "file",
		StateDir: filepath.Join(a.dir, "state"), ConfigDir: filepath.Join(a.dir, "config", "ocm-agent")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDecisionsReachTheSenderSigned: accept, decline and remove from the
// CLI each send the sender a notification signed with the agent's key
// (SHARE_ACCEPTED, SHARE_DECLINED, and SHARE_UNSHARED for the removal of
// an accepted share).
func TestDecisionsReachTheSenderSigned(t *testing.T) {
	a := newAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "doc.txt", []byte("hello"))
	ctx := testCtx(t)
	acc := a.share(t, p, ocmtest.ShareRequest{Path: "doc.txt"})
	dec := a.share(t, p, ocmtest.ShareRequest{Path: "doc.txt"})
	rem := a.share(t, p, ocmtest.ShareRequest{Path: "doc.txt", Dialect: ocmtest.DialectNextcloud})
	if a.showShare(t, acc.ProviderID).FromContact {
		t.Fatal("a stranger's share is flagged as a contact's")
	}

	a.mustCLI("shares", "accept", a.showShare(t, acc.ProviderID).ID)
	a.mustCLI("shares", "decline", a.showShare(t, dec.ProviderID).ID)
	remID := a.showShare(t, rem.ProviderID).ID
	a.mustCLI("shares", "accept", remID)
	if _, err := p.WaitNotification(ctx, about(rem.ProviderID, ocm.ShareAccepted)); err != nil {
		t.Fatal(err)
	}
	if !eventually(10*time.Second, func() bool { return a.showShare(t, rem.ProviderID).NotifyState == store.NotifySent }) {
		t.Fatalf("acceptance not recorded as sent: %q", a.showShare(t, rem.ProviderID).NotifyState)
	}
	a.mustCLI("shares", "remove", remID)

	for _, c := range []struct {
		sh  *ocmtest.Share
		typ string
	}{{acc, ocm.ShareAccepted}, {dec, ocm.ShareDeclined}, {rem, ocm.ShareUnshared}} {
		n, err := p.WaitNotification(ctx, about(c.sh.ProviderID, c.typ))
		if err != nil {
			t.Fatalf("%s for %s: %v\nagent log:\n%s", c.typ, c.sh.ProviderID, err, a.log)
		}
		if !n.Signature.Verified || n.ShareID != c.sh.ID {
			t.Fatalf("%s arrived unsigned or unmatched: %+v", c.typ, n.Signature)
		}
	}
	if st, _ := p.Share(acc.ID); st.State != ocmtest.ShareStateAccepted {
		t.Fatalf("the sender's accepted share is %s", st.State)
	}
	if st, _ := p.Share(dec.ID); st.State != ocmtest.ShareStateDeclined {
		t.Fatalf("the sender's declined share is %s", st.State)
	}
	if !eventually(10*time.Second, func() bool { return a.showShare(t, acc.ProviderID).NotifyState == store.NotifySent }) {
		t.Fatalf("notify state %q", a.showShare(t, acc.ProviderID).NotifyState)
	}
}

// TestOutboxSurvivesSIGKILL: the agent is killed after accepting (the
// state change is durable) while its notification hangs at the peer; after
// the restart the notification is delivered.
func TestOutboxSurvivesSIGKILL(t *testing.T) {
	a := newAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "doc.txt", []byte("hello"))
	ctx := testCtx(t)
	sh := a.share(t, p, ocmtest.ShareRequest{Path: "doc.txt"})

	p.SetFaultPrefix("/ocm/notifications")
	p.SetHang(true)
	a.mustCLI("shares", "accept", a.showShare(t, sh.ProviderID).ID)
	if !eventually(10*time.Second, func() bool { return p.Hits("/ocm/notifications") >= 1 }) {
		t.Fatalf("the agent never tried to notify; log:\n%s", a.log)
	}
	a.kill()
	if n := len(p.Notifications()); n != 0 {
		t.Fatalf("%d notifications arrived before the kill", n)
	}
	p.ClearFaults()

	a.start()
	n, err := p.WaitNotification(ctx, about(sh.ProviderID, ocm.ShareAccepted))
	if err != nil {
		t.Fatalf("no SHARE_ACCEPTED after the restart: %v\nagent log:\n%s", err, a.log)
	}
	if !n.Signature.Verified {
		t.Fatalf("signature %+v", n.Signature)
	}
	if got := a.showShare(t, sh.ProviderID); got.State != store.StateAccepted {
		t.Fatalf("state after the restart %s", got.State)
	}
}

// TestNotificationWaitsForPeerToComeBack: the sender's server is down
// (nothing listens on its port) when the user declines; the agent retries
// with backoff and delivers once the server is back on the same address.
func TestNotificationWaitsForPeerToComeBack(t *testing.T) {
	a := newAgent(t)
	// Short, capped backoff: retries are seen quickly, and the first one
	// after the peer is back comes within a second.
	a.args = append(a.args, "--notify-retry", "50ms", "--notify-retry-max", "1s")
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "doc.txt", []byte("hello"))
	ctx := testCtx(t)
	sh := a.share(t, p, ocmtest.ShareRequest{Path: "doc.txt"})
	host := p.Host()
	p.Close()

	a.mustCLI("shares", "decline", a.showShare(t, sh.ProviderID).ID)
	// Any attempt after the first: a poll can miss attempt 2 itself.
	retried := regexp.MustCompile(`attempt ([0-9]+) failed`)
	if !eventually(10*time.Second, func() bool {
		m := retried.FindStringSubmatch(a.showShare(t, sh.ProviderID).NotifyState)
		n := 0
		if m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		return n >= 2
	}) {
		t.Fatalf("no retries seen: %q\n%s", a.showShare(t, sh.ProviderID).NotifyState, a.log)
	}

	back, err := ocmtest.New(ocmtest.Options{Listen: host, User: "alice", DisplayName: "Alice Sender"})
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Start(); err != nil {
		t.Fatalf("restart the peer on %s: %v", host, err)
	}
	t.Cleanup(func() { back.Close() })
	n, err := back.WaitNotification(ctx, about(sh.ProviderID, ocm.ShareDeclined))
	if err != nil {
		t.Fatalf("not delivered after the peer came back: %v\n%s", err, a.log)
	}
	if !n.Signature.Verified {
		t.Fatalf("signature %+v", n.Signature)
	}
	if !eventually(10*time.Second, func() bool { return a.showShare(t, sh.ProviderID).NotifyState == store.NotifySent }) {
		t.Fatalf("notify state %q", a.showShare(t, sh.ProviderID).NotifyState)
	}
}

// TestUnshareAndExpiryRemoveShares: SHARE_UNSHARED and a passed
// expiration (enforced by a timer: nobody touches the share) take the
// entry out of the mount and the secret out of the secret store.
func TestUnshareAndExpiryRemoveShares(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "unshared.txt", []byte("one"))
	writeFile(t, p, "expiring.txt", []byte("two"))
	writeFile(t, p, "staying.txt", []byte("three"))
	ctx := testCtx(t)
	unshared := a.share(t, p, ocmtest.ShareRequest{Path: "unshared.txt"})
	expiring := a.share(t, p, ocmtest.ShareRequest{Path: "expiring.txt", Expiration: time.Now().Add(3 * time.Second)})
	staying := a.share(t, p, ocmtest.ShareRequest{Path: "staying.txt", Expiration: time.Now().Add(time.Hour)})
	ids := map[string]string{}
	for _, s := range []*ocmtest.Share{unshared, expiring, staying} {
		ids[s.ProviderID] = a.showShare(t, s.ProviderID).ID
		a.mustCLI("shares", "accept", ids[s.ProviderID])
	}
	if !eventually(2*time.Second, func() bool { return strings.Join(ls(mnt), "|") == "expiring.txt|staying.txt|unshared.txt" }) {
		t.Fatalf("mount shows %v", ls(mnt))
	}
	if err := p.Unshare(ctx, unshared.ID); err != nil {
		t.Fatal(err)
	}
	if !eventually(2*time.Second, func() bool { return strings.Join(ls(mnt), "|") == "expiring.txt|staying.txt" }) {
		t.Fatalf("after unshare the mount shows %v", ls(mnt))
	}
	if !eventually(15*time.Second, func() bool { return a.showShare(t, expiring.ProviderID).State == store.StateRemoved }) {
		t.Fatalf("the share did not expire; log:\n%s", a.log)
	}
	if !eventually(2*time.Second, func() bool { return strings.Join(ls(mnt), "|") == "staying.txt" }) {
		t.Fatalf("after expiry the mount shows %v", ls(mnt))
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "staying.txt")); err != nil || string(b) != "three" {
		t.Fatalf("the remaining share: %q %v", b, err)
	}
	if got := a.showShare(t, unshared.ProviderID); got.State != store.StateRemoved {
		t.Fatalf("unshared share is %s", got.State)
	}

	secrets := a.secretsAfterStop(t)
	for pid, id := range ids {
		_, err := secrets.Get(context.Background(), "share/"+id+"/secret")
		if pid == staying.ProviderID {
			if err != nil {
				t.Fatalf("the live share lost its secret: %v", err)
			}
			continue
		}
		if !errors.Is(err, tokens.ErrSecretNotFound) {
			t.Fatalf("removed share %s kept its secret: %v", pid, err)
		}
	}
}
