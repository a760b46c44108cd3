package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

// TestForeignShareURIRefused: an absolute webdav uri on another server
// than the sender's is refused with 400 and nothing is stored; the same
// sender's own host (reva's habit) is taken.
func TestForeignShareURIRefused(t *testing.T) {
	peer := foreignDocPeer(t, "")
	td := startDaemon(t, insecurePeers())
	body := bytes.ReplaceAll(td.fixture(t, "reva-multi.json"), []byte("cernbox.example.org"), []byte(peer))
	own := "https://" + peer + "/remote.php/dav/ocm/9f3c1a-77"
	host := strings.Split(peer, ":")[0]
	for _, evil := range []string{
		"https://evil.example.net/remote.php/dav/ocm/9f3c1a-77",
		"https://" + peer + ".evil.example.net/dav",
		"https://" + host + ":1/remote.php/dav/ocm/9f3c1a-77",
		"https://x@" + peer + "/dav",
	} {
		b := bytes.Replace(body, []byte(own), []byte(evil), 1)
		code, m := td.post(t, "/ocm/shares", b)
		if code != 400 {
			t.Fatalf("share with uri %s: %d %v, want 400", evil, code, m)
		}
	}
	if l := mustShares(t, td); len(l) != 0 {
		t.Fatalf("shares with a foreign uri stored: %+v", l)
	}
	if code, m := td.post(t, "/ocm/shares", body); code != 201 {
		t.Fatalf("share on the sender's own host: %d %v", code, m)
	}
}

// foreignDocPeer serves a discovery document (no keys) whose WebDAV root
// and tokenEndPoint are on server elsewhere ("": on its own).
func foreignDocPeer(t *testing.T, elsewhere string) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/ocm" {
			http.NotFound(w, r)
			return
		}
		other := elsewhere
		if other == "" {
			other = srv.URL
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"enabled":true,"apiVersion":"1.2.0","endPoint":"%s/ocm","capabilities":["exchange-token"],"tokenEndPoint":"%s/token",
			"resourceTypes":[{"name":"file","shareTypes":["user"],"protocols":{"webdav":"%s/webdav/"}}]}`, srv.URL, other, other)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestForeignWebDAVRootAndTokenEndpoint: a sender whose discovery names a
// WebDAV root or token endpoint on another server gets neither used: the
// URL does not resolve and the code is not exchanged there.
func TestForeignWebDAVRootAndTokenEndpoint(t *testing.T) {
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the foreign server was contacted: %s %s", r.Method, r.URL)
	}))
	defer elsewhere.Close()
	peer := foreignDocPeer(t, elsewhere.URL)
	td := startDaemon(t, insecurePeers())
	ctx := context.Background()
	if _, err := td.Agent.ResolveWebDAV(ctx, peer, "some-share"); !errors.Is(err, errForeignOrigin) {
		t.Fatalf("relative uri under a foreign WebDAV root: %v, want errForeignOrigin", err)
	}
	if u, err := td.Agent.ResolveWebDAV(ctx, peer, "http://"+peer+"/dav/x"); err != nil || u != "http://"+peer+"/dav/x" {
		t.Fatalf("absolute uri on the sender: %q %v", u, err)
	}
	sh, _, err := td.Agent.store.PutShare(ctx, store.Share{ID: "s1", Peer: peer, ProviderID: "p1", Name: "n", ShareWith: "bob@x",
		Owner: "a@" + peer, Sender: "a@" + peer, ShareType: "user", ResourceType: "file", State: store.StateAccepted,
		WebDAVURI: "x", Requirements: []string{"must-exchange-token"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := td.Agent.secrets.Put(ctx, secretKey(sh.ID), []byte("the-secret")); err != nil {
		t.Fatal(err)
	}
	if _, err := td.Agent.ShareAccess(ctx, sh.ID); !errors.Is(err, errForeignOrigin) {
		t.Fatalf("must-exchange-token share with a foreign tokenEndPoint: %v, want errForeignOrigin", err)
	}
	if got, _ := td.client.Share(ctx, sh.ID); got.State != store.StateError || !strings.Contains(got.Error, "sharing server") {
		t.Fatalf("the share is not shown in error: %+v", got)
	}
}

// TestUnsignedUpdateOfAcceptedShare: an unsigned re-send of an accepted
// share without its current secret changes nothing (403); one carrying
// the secret is taken, shown on the share, and forgets exchanged tokens.
func TestUnsignedUpdateOfAcceptedShare(t *testing.T) {
	td := startDaemon(t, nil)
	ctx := context.Background()
	body := td.fixture(t, "reva-multi.json")
	if code, m := td.post(t, "/ocm/shares", body); code != 201 {
		t.Fatalf("share: %d %v", code, m)
	}
	id := mustShares(t, td)[0].ID
	if _, err := td.client.ShareAction(ctx, id, "accept"); err != nil {
		t.Fatal(err)
	}
	hijack := bytes.ReplaceAll(body, []byte("Reva-Secret"), []byte("Attacker-Secret"))
	hijack = bytes.Replace(hijack, []byte("/remote.php/dav/ocm/9f3c1a-77"), []byte("/remote.php/dav/ocm/other"), 1)
	hijack = bytes.Replace(hijack, []byte(`"name":"MyDocs"`), []byte(`"name":"Trust me"`), 1)
	if code, m := td.post(t, "/ocm/shares", hijack); code != 403 {
		t.Fatalf("unsigned change without the secret: %d %v, want 403", code, m)
	}
	sh, _ := td.client.Share(ctx, id)
	if sh.State != store.StateAccepted || sh.Name != "MyDocs" || !strings.HasSuffix(sh.WebDAVURI, "/9f3c1a-77") || sh.Changed != "" {
		t.Fatalf("a refused change changed the share: %+v", sh)
	}
	if s, _ := td.Agent.ShareSecret(ctx, id); s != "Reva-Secret" {
		t.Fatal("a refused change replaced the secret")
	}

	// With the current secret the sender may move it; old tokens go, and
	// so does every credential cached for the old address.
	if err := td.Agent.secrets.Put(ctx, "share/"+id+"/token", []byte("old token")); err != nil {
		t.Fatal(err)
	}
	resets := &resetRecorder{TokenManager: td.Tokens}
	td.Agent.SetTokenManager(resets)
	moved := bytes.Replace(body, []byte("/remote.php/dav/ocm/9f3c1a-77"), []byte("/remote.php/dav/ocm/moved"), 1)
	moved = bytes.Replace(moved, []byte(`["read","write"]`), []byte(`["read"]`), 1)
	if code, m := td.post(t, "/ocm/shares", moved); code != 201 {
		t.Fatalf("change carrying the secret: %d %v", code, m)
	}
	sh, _ = td.client.Share(ctx, id)
	if sh.State != store.StateAccepted || !strings.HasSuffix(sh.WebDAVURI, "/moved") {
		t.Fatalf("the change was not taken: %+v", sh)
	}
	if !strings.Contains(sh.Changed, "address") || !strings.Contains(sh.Changed, "permissions") {
		t.Fatalf("the change is not shown on the share: %q", sh.Changed)
	}
	if _, err := td.Agent.secrets.Get(ctx, "share/"+id+"/token"); !errors.Is(err, tokens.ErrSecretNotFound) {
		t.Fatalf("a token of the old address survived the change: %v", err)
	}
	if !strings.Contains(td.logs.String(), "the sender changed an accepted share") {
		t.Fatal("the change was not logged")
	}
	if got := resets.ids(); len(got) != 1 || got[0] != id {
		t.Fatalf("cached credentials reset for %v, want [%s]", got, id)
	}
}

// resetRecorder is the daemon's token manager, remembering Reset calls.
type resetRecorder struct {
	TokenManager
	mu    sync.Mutex
	reset []string
}

func (r *resetRecorder) Reset(id string) {
	r.mu.Lock()
	r.reset = append(r.reset, id)
	r.mu.Unlock()
	r.TokenManager.Reset(id)
}

func (r *resetRecorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reset...)
}

// TestPendingSharesCapped: beyond the per-server and total caps a new
// share gets 429 with a reason and Retry-After; deciding frees room.
func TestPendingSharesCapped(t *testing.T) {
	td := startDaemon(t, func(c *config.Config) { c.MaxPendingPerPeer, c.MaxPending = 1, 3 })
	post := func(name string) (int, string, string) {
		t.Helper()
		resp, err := http.Post(td.base+"/ocm/shares", "application/json", bytes.NewReader(td.fixture(t, name)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), b.String()
	}
	if code, _, b := post("reva-multi.json"); code != 201 {
		t.Fatalf("first share: %d %s", code, b)
	}
	code, ra, b := post("reva-legacy.json") // same server
	if code != 429 || ra == "" || !strings.Contains(b, "cernbox.example.org already has 1") {
		t.Fatalf("second pending share of one server: %d %q %s", code, ra, b)
	}
	for _, f := range []string{"ocis.json", "protocol-object.json"} {
		if code, _, b := post(f); code != 201 {
			t.Fatalf("%s: %d %s", f, code, b)
		}
	}
	if code, _, b := post("ocmgo.json"); code != 429 || !strings.Contains(b, "already has 3 shares waiting") {
		t.Fatalf("beyond the total cap: %d %s", code, b)
	}
	// Strangers filling the list do not hold up a contact's share.
	if _, err := td.Agent.store.PutContact(context.Background(), store.Contact{ID: "c1", Address: "dave@old.example.org",
		UserID: "dave", Server: "old.example.org", Source: store.SourceAcceptedOurInvite, State: store.ContactActive}); err != nil {
		t.Fatal(err)
	}
	if code, _, b := post("legacy-code.json"); code != 201 {
		t.Fatalf("a contact's share beyond the total cap: %d %s", code, b)
	}
	// A re-send of a pending share is no new share.
	if code, _, b := post("ocis.json"); code != 201 {
		t.Fatalf("re-sent pending share: %d %s", code, b)
	}
	for _, sh := range mustShares(t, td)[:2] { // four are pending now
		if _, err := td.client.ShareAction(context.Background(), sh.ID, "decline"); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, b := post("ocmgo.json"); code != 201 {
		t.Fatalf("after a decision: %d %s", code, b)
	}
	if n := len(mustShares(t, td)); n != 5 {
		t.Fatalf("%d shares stored, want 5", n)
	}
}

// captureBody is the request body of a captured exchange in
// testdata/captures, addressed to this daemon instead of the capture's
// receiver.
func (td *testDaemon) captureBody(t *testing.T, name, receiver string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "captures", name))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Request struct {
			Body struct{ Data string }
		}
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	b := []byte(c.Request.Body.Data)
	b = bytes.ReplaceAll(b, []byte(receiver), []byte("bob@"+td.cfg.PublicHost()))
	return bytes.ReplaceAll(b, []byte(strings.ReplaceAll(receiver, "/", `\/`)), []byte("bob@"+td.cfg.PublicHost()))
}

// TestRealSendersKeepWorking replays what real servers that do not sign
// sent: reva's absolute uri on its own host is taken, its identical
// re-send too; Nextcloud's unsigned SHARE_UNSHARED carries the secret and
// removes the share.
func TestRealSendersKeepWorking(t *testing.T) {
	td := startDaemon(t, nil)
	ctx := context.Background()
	reva := td.captureBody(t, "reva-share-file-unsigned.json", "alice@127.0.0.1:38200")
	if code, m := td.post(t, "/ocm/shares", reva); code != 201 {
		t.Fatalf("reva share: %d %v", code, m)
	}
	id := mustShares(t, td)[0].ID
	if _, err := td.client.ShareAction(ctx, id, "accept"); err != nil {
		t.Fatal(err)
	}
	if code, m := td.post(t, "/ocm/shares", reva); code != 201 {
		t.Fatalf("reva re-send: %d %v", code, m)
	}
	if sh, _ := td.client.Share(ctx, id); sh.State != store.StateAccepted || sh.Changed != "" {
		t.Fatalf("an identical re-send changed the share: %+v", sh)
	}

	nc := td.captureBody(t, "nextcloud-share-file-unsigned.json", "alice@http://127.0.0.1:29200")
	if code, m := td.post(t, "/ocm/shares", nc); code != 201 {
		t.Fatalf("nextcloud share: %d %v", code, m)
	}
	var ncID string
	for _, s := range mustShares(t, td) {
		if s.ProviderID == "2" {
			ncID = s.ID
		}
	}
	if _, err := td.client.ShareAction(ctx, ncID, "accept"); err != nil {
		t.Fatal(err)
	}
	unshare := td.captureBody(t, "nextcloud-unshare-unsigned.json", "alice@http://127.0.0.1:29200")
	unshare = bytes.Replace(unshare, []byte(`"providerId":"5"`), []byte(`"providerId":"2"`), 1)
	unshare = bytes.Replace(unshare, []byte("HTJrgJI50z19UiN"), []byte("ZwazAu7ynR9mv80"), 1) // the secret of share 2
	if code, m := td.post(t, "/ocm/notifications", unshare); code != 201 {
		t.Fatalf("nextcloud SHARE_UNSHARED: %d %v", code, m)
	}
	if sh, _ := td.client.Share(ctx, ncID); sh.State != store.StateRemoved {
		t.Fatalf("after SHARE_UNSHARED the share is %s", sh.State)
	}
}
