package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

var fixtures = map[string]struct{ sender, secret, resourceType string }{
	"nextcloud-legacy.json": {"alice@nc.example.org", "Nc-Secret-1", "file"},
	"nextcloud-sender.json": {"alice@nc.example.org", "Nc-Secret-2", "file"},
	"reva-multi.json":       {"marie@cernbox.example.org", "Reva-Secret", "folder"},
	"reva-legacy.json":      {"marie@cernbox.example.org", "Reva-Legacy", "file"},
	"ocis.json":             {"einstein@ocis.example.org", "Ocis-Secret", "folder"},
	"ocmgo.json":            {"YWxpY2U@ocm.example.org:9443", "Go-Secret", "file"},
	"protocol-object.json":  {"carol@peer.example.org", "Po-Secret", "file"},
	"legacy-code.json":      {"dave@old.example.org", "Legacy-Code", "file"},
}

func TestReceiveEveryDialect(t *testing.T) {
	td := startDaemon(t, nil)
	ctx := context.Background()
	for name := range fixtures {
		t.Run(name, func(t *testing.T) {
			code, body := td.post(t, "/ocm/shares", td.fixture(t, name))
			if code != 201 {
				t.Fatalf("status %d: %v", code, body)
			}
			if body["recipientDisplayName"] != "Bob Receiver" {
				t.Fatalf("recipientDisplayName = %v", body["recipientDisplayName"])
			}
		})
	}
	shares, err := td.client.Shares(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != len(fixtures) {
		t.Fatalf("%d shares listed, want %d", len(shares), len(fixtures))
	}
	db, err := os.ReadFile(td.Agent.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(td.Agent.store.Path() + "-wal")
	for _, sh := range shares {
		var want = fixtures[""]
		for _, f := range fixtures {
			if f.sender == sh.Sender && f.resourceType == sh.ResourceType {
				want = f
			}
		}
		if want.sender == "" {
			t.Errorf("unexpected share %+v", sh)
			continue
		}
		if sh.State != store.StatePending {
			t.Errorf("share %s state %s", sh.ID, sh.State)
		}
		secret, err := td.Agent.ShareSecret(ctx, sh.ID)
		if err != nil {
			t.Errorf("secret of %s: %v", sh.ID, err)
		}
		if !strings.HasPrefix(secret, strings.Split(want.secret, "-")[0]) {
			t.Errorf("share %s (%s) has secret of another share", sh.ID, sh.Sender)
		}
		if bytes.Contains(db, []byte(secret)) || bytes.Contains(wal, []byte(secret)) {
			t.Errorf("secret of share %s is in the SQLite file", sh.ID)
		}
	}
}

func TestReceiveValidationAnswers(t *testing.T) {
	td := startDaemon(t, nil)
	good := string(td.fixture(t, "reva-multi.json"))
	cases := []struct {
		name  string
		body  string
		code  int
		field string
	}{
		{"wrong user", strings.Replace(good, `"bob@`, `"carl@`, 1), 400, "shareWith"},
		{"wrong server", strings.Replace(good, "bob@"+td.cfg.PublicHost(), "bob@elsewhere.example.org", 1), 400, "shareWith"},
		{"missing name", strings.Replace(good, `"name":"MyDocs",`, ``, 1), 400, "name"},
		{"number as name", strings.Replace(good, `"name":"MyDocs"`, `"name":12`, 1), 400, "name"},
		{"expired", strings.Replace(good, `"expiration":4102444800`, `"expiration":1000`, 1), 400, "expiration"},
		{"unknown resource", strings.Replace(good, `"resourceType":"folder"`, `"resourceType":"spaceship"`, 1), 400, "resourceType"},
		{"group share", strings.Replace(good, `"shareType":"user"`, `"shareType":"group"`, 1), 501, ""},
		{"duplicate keys", strings.Replace(good, `"name":"MyDocs"`, `"name":"MyDocs","name":"Other"`, 1), 400, ""},
		{"not json", `name=x`, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := td.post(t, "/ocm/shares", []byte(c.body))
			if code != c.code {
				t.Fatalf("status %d, want %d: %v", code, c.code, body)
			}
			if msg, _ := body["message"].(string); msg == "" {
				t.Fatalf("no message in %v", body)
			}
			if c.field != "" {
				ve, _ := body["validationErrors"].([]any)
				found := false
				for _, e := range ve {
					if m, _ := e.(map[string]any); m["name"] == c.field && m["message"] != "" {
						found = true
					}
				}
				if !found {
					t.Fatalf("no validation error for %s in %v", c.field, body)
				}
			}
		})
	}
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	if code, _ := td.post(t, "/ocm/shares", []byte(big)); code != 413 {
		t.Fatalf("oversized body: status %d, want 413", code)
	}
	if shares, _ := td.client.Shares(context.Background(), true); len(shares) != 0 {
		t.Fatalf("bad requests stored %d shares", len(shares))
	}
}

func TestDuplicateProviderIDUpdates(t *testing.T) {
	td := startDaemon(t, nil)
	ctx := context.Background()
	body := td.fixture(t, "reva-multi.json")
	if code, b := td.post(t, "/ocm/shares", body); code != 201 {
		t.Fatalf("first: %d %v", code, b)
	}
	// Unsigned, the sender proves itself with the share's current secret.
	renamed := bytes.Replace(body, []byte(`"name":"MyDocs"`), []byte(`"name":"MyDocs v2"`), 1)
	if code, b := td.post(t, "/ocm/shares", renamed); code != 201 {
		t.Fatalf("second: %d %v", code, b)
	}
	shares, _ := td.client.Shares(ctx, true)
	if len(shares) != 1 || shares[0].Name != "MyDocs v2" {
		t.Fatalf("after a repeated providerId: %+v", shares)
	}
	// Without it nothing changes, even before the person decided.
	resecret := bytes.ReplaceAll(renamed, []byte("Reva-Secret"), []byte("Reva-Secret-2"))
	resecret = bytes.Replace(resecret, []byte(`"name":"MyDocs v2"`), []byte(`"name":"MyDocs v3"`), 1)
	if code, b := td.post(t, "/ocm/shares", resecret); code != 403 {
		t.Fatalf("unsigned re-send with another secret: %d %v, want 403", code, b)
	}
	if shares, _ = td.client.Shares(ctx, true); shares[0].Name != "MyDocs v2" {
		t.Fatalf("a refused re-send renamed the share: %+v", shares[0])
	}
	if s, _ := td.Agent.ShareSecret(ctx, shares[0].ID); s != "Reva-Secret" {
		t.Fatal("a refused re-send replaced the secret")
	}
	// Same providerId from another server is another share.
	other := bytes.ReplaceAll(body, []byte("cernbox.example.org"), []byte("other.example.org"))
	if code, b := td.post(t, "/ocm/shares", other); code != 201 {
		t.Fatalf("other server: %d %v", code, b)
	}
	if shares, _ = td.client.Shares(ctx, true); len(shares) != 2 {
		t.Fatalf("%d shares, want 2", len(shares))
	}
}

func notification(typ, providerID, extra string) []byte {
	n := fmt.Sprintf(`{"notificationType":%q,"resourceType":"file","providerId":%q`, typ, providerID)
	if extra != "" {
		n += `,"notification":` + extra
	}
	return []byte(n + "}")
}

func TestNotifications(t *testing.T) {
	td := startDaemon(t, nil)
	ctx := context.Background()
	if code, b := td.post(t, "/ocm/shares", td.fixture(t, "reva-multi.json")); code != 201 {
		t.Fatalf("share: %d %v", code, b)
	}
	shares, _ := td.client.Shares(ctx, false)
	id := shares[0].ID
	if _, err := td.client.ShareAction(ctx, id, "accept"); err != nil {
		t.Fatal(err)
	}

	if code, _ := td.post(t, "/ocm/notifications", notification("SHARE_TELEPORTED", "9f3c1a-77", "")); code != 501 {
		t.Fatalf("unknown type: %d, want 501", code)
	}
	if code, _ := td.post(t, "/ocm/notifications", notification("SHARE_UNSHARED", "no-such-id", "")); code != 400 {
		t.Fatalf("unknown providerId: %d, want 400", code)
	}
	if code, _ := td.post(t, "/ocm/notifications", []byte(`{"notificationType":"SHARE_UNSHARED"}`)); code != 400 {
		t.Fatalf("incomplete: %d, want 400", code)
	}
	// An unsigned notification must carry the share's own secret.
	if code, _ := td.post(t, "/ocm/notifications", notification("SHARE_UNSHARED", "9f3c1a-77", `{"sharedSecret":"guess"}`)); code != 403 {
		t.Fatalf("wrong secret: %d, want 403", code)
	}
	for _, typ := range []string{"RESHARE_CHANGE_PERMISSION", "SHARE_CHANGE_PERMISSION", "RESHARE_UNDO", "REQUEST_RESHARE"} {
		if code, b := td.post(t, "/ocm/notifications", notification(typ, "9f3c1a-77", `{"message":"x","sharedSecret":"Reva-Secret"}`)); code != 201 {
			t.Fatalf("%s: %d %v", typ, code, b)
		}
	}
	if code, b := td.post(t, "/ocm/notifications", []byte(`{"notificationType":"USER_REMOVED","resourceType":"user","providerId":"u1"}`)); code != 201 {
		t.Fatalf("USER_REMOVED: %d %v", code, b)
	}
	sh, _ := td.client.Share(ctx, id)
	if sh.State != store.StateAccepted {
		t.Fatalf("recorded notifications changed the state to %s", sh.State)
	}
	recorded, err := td.Agent.store.Notifications(ctx, id)
	if err != nil || len(recorded) != 4 {
		t.Fatalf("recorded %d notifications (%v), want 4", len(recorded), err)
	}
	if strings.Contains(recorded[0].Payload, "Reva-Secret") {
		t.Fatal("a notification's secret was stored")
	}

	if code, b := td.post(t, "/ocm/notifications", notification("SHARE_UNSHARED", "9f3c1a-77", "")); code != 403 {
		t.Fatalf("SHARE_UNSHARED without the secret: %d %v, want 403", code, b)
	}
	if sh, _ = td.client.Share(ctx, id); sh.State != store.StateAccepted {
		t.Fatalf("a refused SHARE_UNSHARED changed the state to %s", sh.State)
	}
	if code, b := td.post(t, "/ocm/notifications", notification("SHARE_UNSHARED", "9f3c1a-77", `{"sharedSecret":"Reva-Secret"}`)); code != 201 {
		t.Fatalf("SHARE_UNSHARED: %d %v", code, b)
	}
	sh, _ = td.client.Share(ctx, id)
	if sh.State != store.StateRemoved {
		t.Fatalf("after SHARE_UNSHARED state is %s", sh.State)
	}
	if _, err := td.Agent.ShareSecret(ctx, id); !errors.Is(err, tokens.ErrSecretNotFound) {
		t.Fatalf("secret still there after unshare: %v", err)
	}
	if live, _ := td.client.Shares(ctx, false); len(live) != 0 {
		t.Fatalf("removed share still listed: %+v", live)
	}
}

func TestControlAcceptDeclineAndFeed(t *testing.T) {
	td := startDaemon(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := make(chan control.Event, 16)
	go td.client.Events(ctx, 0, func(ev control.Event) { events <- ev })

	td.post(t, "/ocm/shares", td.fixture(t, "reva-multi.json"))
	td.post(t, "/ocm/shares", td.fixture(t, "ocis.json"))
	shares, _ := td.client.Shares(ctx, false)
	if len(shares) != 2 {
		t.Fatalf("%d shares", len(shares))
	}
	a, d := shares[0].ID, shares[1].ID
	if sh, err := td.client.ShareAction(ctx, a, "accept"); err != nil || sh.State != store.StateAccepted {
		t.Fatalf("accept: %+v %v", sh, err)
	}
	if sh, err := td.client.ShareAction(ctx, d, "decline"); err != nil || sh.State != store.StateDeclined {
		t.Fatalf("decline: %+v %v", sh, err)
	}
	if _, err := td.client.ShareAction(ctx, d, "accept"); !errors.Is(err, control.ErrConflict) {
		t.Fatalf("accepting a declined share: %v, want a conflict", err)
	}
	if _, err := td.client.ShareAction(ctx, "nope", "accept"); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("unknown id: %v, want not found", err)
	}
	if _, err := td.Agent.ShareSecret(ctx, d); !errors.Is(err, tokens.ErrSecretNotFound) {
		t.Fatalf("declined share kept its secret: %v", err)
	}
	want := []string{"share/pending", "share/pending", "share/accepted", "share/declined"}
	for i, w := range want {
		select {
		case ev := <-events:
			if got := ev.Type + "/" + ev.State; got != w {
				t.Fatalf("event %d = %s, want %s", i, got, w)
			}
		case <-ctx.Done():
			t.Fatalf("event %d (%s) never came", i, w)
		}
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	td := startDaemon(t, nil)
	for name := range fixtures {
		td.post(t, "/ocm/shares", td.fixture(t, name))
	}
	out, _ := json.Marshal(mustShares(t, td))
	for _, f := range fixtures {
		if strings.Contains(td.logs.String(), f.secret) {
			t.Errorf("secret %s in the logs", f.secret)
		}
		if strings.Contains(string(out), f.secret) {
			t.Errorf("secret %s in the control API", f.secret)
		}
	}
}

func mustShares(t *testing.T, td *testDaemon) []control.Share {
	l, err := td.client.Shares(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestConcurrentDuplicatesStayOne(t *testing.T) {
	td := startDaemon(t, nil)
	body := td.fixture(t, "ocmgo.json")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			td.post(t, "/ocm/shares", body)
		}()
	}
	wg.Wait()
	if l := mustShares(t, td); len(l) != 1 {
		t.Fatalf("%d shares from 8 concurrent posts of one providerId", len(l))
	}
}

// Concurrent shares are written in overlapping batches: whatever the
// interleaving, every 201 is a stored share with its own secret, re-sends
// keep their share's id, and the cap on pending shares holds exactly.
func TestConcurrentReceiptsBatched(t *testing.T) {
	const perPeer, workers, each = 15, 16, 20
	td := startDaemon(t, func(c *config.Config) {
		c.MaxPendingPerPeer = perPeer
		c.RateLimit, c.RateBurst, c.MaxConcurrent = 1e6, 1e6, 1024 // one client address sends it all
	})
	base := td.fixture(t, "ocmgo.json")
	var mu sync.Mutex
	created := map[string]bool{} // providerId: answered 201 at least once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Workers send nearly the same shares at nearly the same
				// time: re-sends land in the batch after the first.
				pid := fmt.Sprintf("p%02d", i+w%4)
				body := bytes.Replace(base, []byte(`"providerId":"8b1e2f9c-4d6a-4c3e-9f1a-2b7c8d9e0f11"`), []byte(`"providerId":"`+pid+`"`), 1)
				body = bytes.Replace(body, []byte(`"sharedSecret":"Go-Secret"`), []byte(`"sharedSecret":"secret-`+pid+`"`), 1)
				code, m := td.post(t, "/ocm/shares", body)
				mu.Lock()
				switch code {
				case 201:
					created[pid] = true
				case 429:
					if msg, _ := m["message"].(string); !strings.Contains(msg, "waiting") {
						t.Errorf("share %s answered 429 %v", pid, m)
					}
				default:
					t.Errorf("share %s answered %d %v", pid, code, m)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	shares := mustShares(t, td)
	if len(shares) != perPeer {
		t.Fatalf("%d shares stored, want the cap of %d", len(shares), perPeer)
	}
	if st, err := td.client.Status(context.Background()); err != nil || st.Pending != perPeer {
		t.Fatalf("status counts %d pending, %v; want %d", st.Pending, err, perPeer)
	}
	stored := map[string]bool{}
	for _, sh := range shares {
		if stored[sh.ProviderID] {
			t.Fatalf("providerId %s stored twice", sh.ProviderID)
		}
		stored[sh.ProviderID] = true
		secret, err := td.Agent.ShareSecret(context.Background(), sh.ID)
		if err != nil || secret != "secret-"+sh.ProviderID {
			t.Fatalf("share %s (%s): secret %q, %v", sh.ID, sh.ProviderID, secret, err)
		}
	}
	for pid := range created {
		if !stored[pid] {
			t.Fatalf("share %s was answered 201 but is not stored", pid)
		}
	}
	keys, err := td.Agent.secrets.(*tokens.FileStore).Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var secrets int
	for _, k := range keys {
		if strings.HasPrefix(k, "share/") {
			secrets++
		}
	}
	if secrets != len(shares) {
		t.Fatalf("%d share secrets stored for %d shares", secrets, len(shares))
	}
}
