package e2e

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/store"
)

// The attacks of a hostile internet peer (and of a local user) on the
// agent: each test is one attack and asserts that it gets nothing.

// keylessOCMPeer is the reference peer publishing no keys, as reva and
// oCIS: anyone may claim to be it, unsigned.
func keylessOCMPeer(t *testing.T) *ocmtest.Server {
	return keylessOCMPeerOf(t, "", "")
}

// keylessOCMPeerOf is keylessOCMPeer for a given user ("" for alice).
func keylessOCMPeerOf(t *testing.T, user, displayName string) *ocmtest.Server {
	return newPeer(t, ocmtest.Options{User: user, DisplayName: displayName, DiscoveryHook: func(doc map[string]any) {
		delete(doc, "jwksUri")
		delete(doc, "publicKey")
		caps := []string{}
		if l, ok := doc["capabilities"].([]string); ok {
			for _, c := range l {
				if c != "http-sig" {
					caps = append(caps, c)
				}
			}
		}
		doc["capabilities"] = caps
	}})
}

// thief is a server that must never be contacted: it counts requests and
// remembers any credentials it was sent.
type thief struct {
	*httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	creds []string
}

func startThief(t *testing.T) *thief {
	th := &thief{}
	th.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		th.hits.Add(1)
		th.mu.Lock()
		if a := r.Header.Get("Authorization"); a != "" {
			th.creds = append(th.creds, a)
		}
		th.mu.Unlock()
		http.Error(w, "thanks", http.StatusOK)
	}))
	t.Cleanup(th.Close)
	return th
}

func (th *thief) check(t *testing.T) {
	t.Helper()
	th.mu.Lock()
	defer th.mu.Unlock()
	if n := th.hits.Load(); n > 0 || len(th.creds) > 0 {
		t.Errorf("the attacker's server got %d requests, credentials %q", n, th.creds)
	}
}

// tryPost is post for goroutines other than the test's: it returns the
// error instead of ending the test.
func tryPost(c *http.Client, url string, body []byte) (int, string, []byte, error) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header.Get("Retry-After"), b, err
}

// acceptByProviderID accepts the share a peer knows as providerID.
func (a *agentProc) acceptByProviderID(t *testing.T, providerID string) control.Share {
	t.Helper()
	sh := a.showShare(t, providerID)
	a.mustCLI("shares", "accept", sh.ID)
	return a.showShare(t, providerID)
}

// TestAttackUnsignedReshareCannotHijack (finding 1): an unsigned re-POST of
// an accepted share of a server that does not sign, with a new secret,
// address and name, is refused; the share, its secret and what the mount
// shows stay as the sender made them.
func TestAttackUnsignedReshareCannotHijack(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := keylessOCMPeer(t)
	writeFile(t, p, "Project/readme.txt", []byte("from alice"))
	sh := a.share(t, p, ocmtest.ShareRequest{Path: "Project", Dialect: ocmtest.DialectReva, Signing: ocmtest.SignNone})
	before := a.acceptByProviderID(t, sh.ProviderID)
	readMount(t, a, filepath.Join(mnt, "Project", "readme.txt"), "from alice")

	// Same sender and providerId; the address stays on the sender's host
	// (another server would be refused for that alone).
	evil := bytes.ReplaceAll(sh.Body, []byte(sh.Secret), []byte("attacker-chosen-secret"))
	evil = bytes.ReplaceAll(evil, []byte(sh.URI), []byte(p.URL()+ocmtest.WebDAVRoot+"attacker-folder"))
	evil = bytes.ReplaceAll(evil, []byte(`"name":"Project"`), []byte(`"name":"Project (new)"`))
	if bytes.Equal(evil, sh.Body) {
		t.Fatal("the forged body is the original")
	}
	attacker := clientFrom("127.0.0.9")
	st, _, body := post(t, attacker, a.base+"/ocm/shares", evil)
	if st != http.StatusForbidden {
		t.Fatalf("unsigned change of an accepted share: %d %s, want 403", st, body)
	}
	var e struct{ Message string }
	if json.Unmarshal(body, &e) != nil || !strings.Contains(e.Message, "sharedSecret") {
		t.Errorf("the refusal does not say what is missing: %s", body)
	}
	after := a.showShare(t, sh.ProviderID)
	if after.State != store.StateAccepted || after.WebDAVURI != before.WebDAVURI || after.Name != before.Name || after.Changed != "" {
		t.Fatalf("the refused change altered the share:\nbefore %+v\nafter  %+v", before, after)
	}
	// The mount still reads the sender's files with the sender's secret.
	b, err := os.ReadFile(filepath.Join(mnt, "Project", "readme.txt"))
	if err != nil || string(b) != "from alice" {
		t.Fatalf("after the attack the mount reads %q %v", b, err)
	}
	if got := ls(mnt); len(got) != 1 || got[0] != "Project" {
		t.Fatalf("after the attack the mount shows %v", got)
	}
}

// TestAttackForeignURIGetsNoSecret (finding 2): a share whose absolute
// webdav uri is on another server than its sender's is refused with 400
// and that server never hears from the agent; an address on the sender's
// own host (reva) is taken as before.
func TestAttackForeignURIGetsNoSecret(t *testing.T) {
	a := newAgent(t)
	a.start()
	th := startThief(t)
	peer := keylessPeer(t)
	for i, uri := range []string{
		th.URL + "/remote.php/dav/ocm/steal",
		"http://" + strings.Replace(th.Listener.Addr().String(), "127.0.0.1", "localhost", 1) + "/dav",
		"https://" + peer + "@" + strings.TrimPrefix(th.URL, "http://") + "/dav",
	} {
		body := foreignShare(a.address(), peer, fmt.Sprintf("steal-%d", i), uri)
		st, _, b := post(t, http.DefaultClient, a.base+"/ocm/shares", body)
		if st != http.StatusBadRequest {
			t.Fatalf("share pointing at %s: %d %s, want 400", uri, st, b)
		}
		if !strings.Contains(string(b), "sender") {
			t.Errorf("the 400 does not say why: %s", b)
		}
	}
	if l := a.shares(true); len(l) != 0 {
		t.Fatalf("shares pointing elsewhere were stored: %+v", l)
	}
	// reva's habit: an absolute uri on the sender's own host.
	own := foreignShare(a.address(), peer, "own", "http://"+peer+"/remote.php/dav/ocm/own")
	if st, _, b := post(t, http.DefaultClient, a.base+"/ocm/shares", own); st != http.StatusCreated {
		t.Fatalf("absolute uri on the sender's host: %d %s", st, b)
	}
	th.check(t)
}

// docPeer serves the discovery document of a server that does not sign,
// with its WebDAV root and tokenEndPoint where root and token say ("" for
// its own origin).
func docPeer(t *testing.T, root, token string) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/ocm" {
			http.NotFound(w, r)
			return
		}
		rt, tk := cmp.Or(root, srv.URL), cmp.Or(token, srv.URL)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"enabled":true,"apiVersion":"1.2.0","endPoint":"%s/ocm","capabilities":["exchange-token"],"tokenEndPoint":"%s/token",
			"resourceTypes":[{"name":"file","shareTypes":["user"],"protocols":{"webdav":"%s/webdav/"}}]}`, srv.URL, tk, rt)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestAttackForeignDiscoveryEndpoints (finding 2): a sender whose discovery
// names a WebDAV root, or a tokenEndPoint for a share that must be
// exchanged, on another server gets its accepted share put in error,
// visibly, and that server is never contacted, not even by the mount.
func TestAttackForeignDiscoveryEndpoints(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	th := startThief(t)
	rootPeer := docPeer(t, th.URL, "")
	tokenPeer := docPeer(t, "", th.URL)
	exchange := func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"permissions":["read"]`), []byte(`"permissions":["read"],"requirements":["must-exchange-token"]`), 1)
	}
	for _, c := range []struct {
		peer, id string
		body     []byte
	}{
		{rootPeer, "foreign-root", shareBody(a.address(), rootPeer, "foreign-root")},
		{tokenPeer, "foreign-token", exchange(shareBody(a.address(), tokenPeer, "foreign-token"))},
	} {
		if st, _, b := post(t, http.DefaultClient, a.base+"/ocm/shares", c.body); st != http.StatusCreated {
			t.Fatalf("share %s: %d %s", c.id, st, b)
		}
		sh := a.acceptByProviderID(t, c.id)
		if c.id == "foreign-token" {
			// The mount needs a token to show the share.
			os.ReadFile(filepath.Join(mnt, "doc-"+c.id))
		}
		if !eventually(10*time.Second, func() bool { return a.showShare(t, c.id).State == store.StateError }) {
			t.Fatalf("share %s is %s, want error\n%s", c.id, a.showShare(t, c.id).State, a.log)
		}
		if out := a.mustCLI("shares", "show", sh.ID); !strings.Contains(out, "not on the sender's server") || !strings.Contains(out, "sharing server") {
			t.Errorf("shares show does not explain the error:\n%s", out)
		}
	}
	if !eventually(5*time.Second, func() bool { return len(ls(mnt)) == 0 }) {
		t.Errorf("shares in error are in the mount: %v", ls(mnt))
	}
	th.check(t)
}

// foreignShare is shareBody with an absolute webdav uri.
func foreignShare(to, from, providerID, uri string) []byte {
	b, _ := json.Marshal(map[string]any{
		"shareWith": to, "name": "doc-" + providerID, "providerId": providerID,
		"owner": "alice@" + from, "sender": "alice@" + from,
		"shareType": "user", "resourceType": "file",
		"protocol": map[string]any{"name": "multi", "webdav": map[string]any{
			"uri": uri, "sharedSecret": "secret-" + providerID, "permissions": []string{"read"}}},
	})
	return b
}

// TestAttackUnsignedUnshareNeedsSecret (finding 3): a SHARE_UNSHARED
// claiming to come from a server that does not sign must carry the share's
// secret; without it, or with a wrong one, it gets 403 and the share stays.
func TestAttackUnsignedUnshareNeedsSecret(t *testing.T) {
	a := newAgent(t)
	a.start()
	peer := keylessPeer(t)
	if st, _, b := post(t, http.DefaultClient, a.base+"/ocm/shares", shareBody(a.address(), peer, "victim")); st != 201 {
		t.Fatalf("share: %d %s", st, b)
	}
	a.acceptByProviderID(t, "victim")
	attacker := clientFrom("127.0.0.9")
	for _, payload := range []string{``, `,"notification":{"message":"bye"}`, `,"notification":{"sharedSecret":"guess"}`} {
		n := []byte(`{"notificationType":"SHARE_UNSHARED","resourceType":"file","providerId":"victim"` + payload + `}`)
		if st, _, b := post(t, attacker, a.base+"/ocm/notifications", n); st != http.StatusForbidden {
			t.Fatalf("unsigned SHARE_UNSHARED %s: %d %s, want 403", payload, st, b)
		}
		if s := a.showShare(t, "victim"); s.State != store.StateAccepted {
			t.Fatalf("a refused SHARE_UNSHARED (%s) left the share %s", payload, s.State)
		}
	}
	// The sender, who knows the secret, still can.
	n := []byte(`{"notificationType":"SHARE_UNSHARED","resourceType":"file","providerId":"victim","notification":{"sharedSecret":"secret-victim"}}`)
	if st, _, b := post(t, http.DefaultClient, a.base+"/ocm/notifications", n); st != http.StatusCreated {
		t.Fatalf("SHARE_UNSHARED with the secret: %d %s", st, b)
	}
	if s := a.showShare(t, "victim"); s.State != store.StateRemoved {
		t.Fatalf("SHARE_UNSHARED with the secret left the share %s", s.State)
	}
}

// stateBytes is the size of the agent's database files.
func (a *agentProc) stateBytes(t *testing.T) int64 {
	t.Helper()
	var n int64
	for _, f := range []string{"agent.db", "agent.db-wal"} {
		if fi, err := os.Stat(filepath.Join(a.dir, "state", f)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestAttackNotificationsFillNoDisk (finding 6): unsigned notifications
// with big payloads, about users or about shares that do not exist, from
// several addresses, store nothing.
func TestAttackNotificationsFillNoDisk(t *testing.T) {
	a := newAgent(t, "--rate-limit", "100000", "--rate-burst", "100000")
	a.start()
	peer := keylessPeer(t)
	if st, _, b := post(t, http.DefaultClient, a.base+"/ocm/shares", shareBody(a.address(), peer, "real")); st != 201 {
		t.Fatalf("share: %d %s", st, b)
	}
	before := a.stateBytes(t)
	big := strings.Repeat("x", 28<<10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := map[int]int{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.0.0.%d", 10+w))
			for i := 0; i < 100; i++ {
				var n string
				switch i % 3 {
				case 0:
					n = fmt.Sprintf(`{"notificationType":"USER_REMOVED","resourceType":"user","providerId":"u%d@%s","notification":{"junk":%q}}`, i, peer, big)
				case 1:
					n = fmt.Sprintf(`{"notificationType":"SHARE_ACCEPTED","resourceType":"user","providerId":"u%d","notification":{"junk":%q}}`, i, big)
				default:
					n = fmt.Sprintf(`{"notificationType":"SHARE_UNSHARED","resourceType":"file","providerId":"nope-%d","notification":{"sharedSecret":"x","junk":%q}}`, i, big)
				}
				st, _, _, err := tryPost(c, a.base+"/ocm/notifications", []byte(n))
				if err != nil {
					t.Errorf("notification: %v", err)
					return
				}
				if st >= 500 || st == 200 {
					mu.Lock()
					bad[st]++
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("unexpected answers to junk notifications: %v", bad)
	}
	after := a.stateBytes(t)
	t.Logf("database files: %d bytes before, %d after 400 junk notifications of 28 KiB", before, after)
	if after-before > 256<<10 {
		t.Fatalf("400 junk notifications grew the database by %d KiB", (after-before)>>10)
	}
	if s := a.showShare(t, "real"); s.State != store.StatePending {
		t.Fatalf("the real share is %s", s.State)
	}
}

// TestAttackPendingShareSpamCapped (finding 7): a flood of shares from
// several servers, from several addresses at once, stops at the caps per
// sending server and in total with 429 and a reason; deciding frees room.
func TestAttackPendingShareSpamCapped(t *testing.T) {
	a := newAgent(t, "--rate-limit", "100000", "--rate-burst", "100000",
		"--max-pending-per-server", "20", "--max-pending", "50")
	a.start()
	peers := []string{keylessPeer(t), keylessPeer(t), keylessPeer(t)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int]int{}
	perPeer := map[string]int{}
	var reasons []string
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.0.0.%d", 20+w))
			for i := 0; i < 30; i++ {
				peer := peers[(w+i)%len(peers)]
				st, ra, b, err := tryPost(c, a.base+"/ocm/shares", shareBody(a.address(), peer, fmt.Sprintf("spam-%d-%d", w, i)))
				if err != nil {
					t.Errorf("share: %v", err)
					return
				}
				mu.Lock()
				got[st]++
				if st == 201 {
					perPeer[peer]++
				}
				if st == 429 {
					if ra == "" {
						reasons = append(reasons, "no Retry-After")
					}
					reasons = append(reasons, string(b))
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	t.Logf("answers: %v, stored per server: %v", got, perPeer)
	if got[201] != 50 || got[429] != 130 || len(got) != 2 {
		t.Fatalf("180 shares with caps of 20 per server and 50 in all: %v", got)
	}
	for p, n := range perPeer {
		if n > 20 {
			t.Errorf("%s got %d pending shares in, cap 20", p, n)
		}
	}
	for _, r := range reasons {
		if !strings.Contains(r, "waiting") {
			t.Fatalf("a 429 without a reason: %s", r)
		}
	}
	if n := len(a.shares(true)); n != 50 {
		t.Fatalf("%d shares stored, want 50", n)
	}
	// The person declines one: a new share fits again.
	a.mustCLI("shares", "decline", a.shares(false)[0].ID)
	if st, _, b := post(t, http.DefaultClient, a.base+"/ocm/shares", shareBody(a.address(), keylessPeer(t), "after")); st != 201 {
		t.Fatalf("a share after a decision: %d %s", st, b)
	}
}

// hasFormat reports Unicode format characters (bidi controls, zero-width).
func hasFormat(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) >= 0
}

// TestAttackNamesCannotSpoof (finding 9): share names with bidi overrides
// and zero-width characters show without them, in the CLI and the mount,
// and a stranger's share cannot carry the "(alice@host)" suffix the mount
// gives a real sender's share on a name collision.
func TestAttackNamesCannotSpoof(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	alice, mallory := keylessOCMPeer(t), keylessOCMPeerOf(t, "mallory", "Alice\u202e")
	n := 0
	named := func(from *ocmtest.Server, name string) {
		t.Helper()
		n++
		path := fmt.Sprintf("f%d.pdf", n)
		writeFile(t, from, path, []byte(name))
		sh := a.share(t, from, ocmtest.ShareRequest{Path: path, Name: name, Dialect: ocmtest.DialectReva, Signing: ocmtest.SignNone})
		a.acceptByProviderID(t, sh.ProviderID)
	}
	named(alice, "Report.pdf")
	named(mallory, "Report (alice@"+alice.Host()+").pdf")
	named(mallory, "Invoice\u202efdp.exe")
	named(mallory, "Pay\u200broll\u2066.txt")
	if !eventually(5*time.Second, func() bool { return len(ls(mnt)) == 4 }) {
		t.Fatalf("mount shows %q\n%s", ls(mnt), a.log)
	}
	names := ls(mnt)
	for _, n := range names {
		if hasFormat(n) {
			t.Errorf("mount entry %q has a format character", n)
		}
		if strings.Contains(n, "(alice@"+alice.Host()+")") {
			t.Errorf("mount entry %q passes for alice's share", n)
		}
	}
	if !strings.Contains(strings.Join(names, "|"), "Report.pdf") {
		t.Errorf("alice's share is not under its own name: %q", names)
	}
	out := a.mustCLI("shares", "list", "--json")
	if hasFormat(out) || strings.Contains(out, `\u202e`) || strings.Contains(out, `\u200b`) {
		t.Errorf("shares list keeps format characters:\n%s", out)
	}
	for _, s := range a.shares(false) {
		if hasFormat(s.Name) || hasFormat(s.SenderDisplayName) {
			t.Errorf("stored name %q / %q has a format character", s.Name, s.SenderDisplayName)
		}
	}
}

// TestAttackFileNamesCannotSpoof (finding 9): inside a share, a file whose
// name has a bidi override or a zero-width character is not shown: it
// would read as another name ("Invoice\u202efdp.exe" as "Invoiceexe.pdf").
func TestAttackFileNamesCannotSpoof(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := keylessOCMPeer(t)
	writeFile(t, p, "Docs/plain.txt", []byte("ok"))
	writeFile(t, p, "Docs/Invoice\u202efdp.exe", []byte("MZ"))
	writeFile(t, p, "Docs/pay\u200broll.txt", []byte("x"))
	sh := a.share(t, p, ocmtest.ShareRequest{Path: "Docs", Dialect: ocmtest.DialectReva, Signing: ocmtest.SignNone})
	a.acceptByProviderID(t, sh.ProviderID)
	readMount(t, a, filepath.Join(mnt, "Docs", "plain.txt"), "ok")
	if got := ls(filepath.Join(mnt, "Docs")); len(got) != 1 || got[0] != "plain.txt" {
		t.Fatalf("the folder shows %q, want only plain.txt", got)
	}
}

// TestAttackStateFilesPrivate (finding 10): with an existing state
// directory open to everyone, the agent restricts it and every file it
// writes there (the database's -wal and -shm included) to the user, says
// so, and runs without core dumps.
func TestAttackStateFilesPrivate(t *testing.T) {
	a := newAgent(t)
	state := filepath.Join(a.dir, "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	// The agent inherits our core size limit: make it one that allows
	// dumps (if we may), so that turning them off is the agent's doing.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &rl); err != nil {
		t.Fatal(err)
	}
	want := syscall.Rlimit{Cur: 1 << 20, Max: max(rl.Max, 1<<20)}
	if rl.Max != 0 && rl.Max < want.Cur {
		want = syscall.Rlimit{Cur: rl.Max, Max: rl.Max}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &want); err != nil {
		t.Logf("cannot allow core dumps here (%v): the core limit check proves less", err)
	}
	a.start()
	syscall.Setrlimit(syscall.RLIMIT_CORE, &rl)
	peer := keylessPeer(t)
	if st, _, b := post(t, http.DefaultClient, a.base+"/ocm/shares", shareBody(a.address(), peer, "p1")); st != 201 {
		t.Fatalf("share: %d %s", st, b)
	}
	seen := 0
	err := filepath.Walk(state, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		seen++
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v: others can read it", path, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"agent.db", "agent.db-wal", "agent.db-shm"} {
		if _, err := os.Stat(filepath.Join(state, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if !strings.Contains(a.log.String(), "restricted it to you") {
		t.Errorf("the agent did not say it restricted the state directory:\n%s", a.log)
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", a.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(limits), "\n") {
		if strings.HasPrefix(line, "Max core file size") {
			if f := strings.Fields(line); len(f) < 6 || f[4] != "0" {
				t.Errorf("core dumps are on: %q", line)
			}
			return
		}
	}
	t.Error("no core file size in /proc limits")
}

// TestSignedUpdateIsTakenAndShown: the sender itself (signed) may move an
// accepted share to another file with a new secret: the mount follows
// with the new secret, and shares show says what changed.
func TestSignedUpdateIsTakenAndShown(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "one.txt", []byte("first version"))
	writeFile(t, p, "two.txt", []byte("second version"))
	first := a.share(t, p, ocmtest.ShareRequest{Path: "one.txt", Name: "report.txt"})
	sh := a.acceptByProviderID(t, first.ProviderID)
	readMount(t, a, filepath.Join(mnt, "report.txt"), "first version")

	second := a.share(t, p, ocmtest.ShareRequest{Path: "two.txt", Name: "report.txt", ProviderID: first.ProviderID})
	if second.Secret == first.Secret || second.URI == first.URI {
		t.Fatal("the peer re-sent the same secret and address")
	}
	readMount(t, a, filepath.Join(mnt, "report.txt"), "second version")
	after := a.showShare(t, first.ProviderID)
	if after.ID != sh.ID || after.State != store.StateAccepted || !strings.Contains(after.Changed, "secret") || !strings.Contains(after.Changed, "address") {
		t.Fatalf("after a signed update: %+v", after)
	}
	if out := a.mustCLI("shares", "show", sh.ID); !strings.Contains(out, "Changed by sender") {
		t.Errorf("shares show does not show the change:\n%s", out)
	}
}
