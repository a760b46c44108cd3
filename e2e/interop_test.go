package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
)

// TestTokenForgottenRightAfterIssue: a server that restarts forgets the
// tokens it issued (opencloudmesh-go keeps them in memory). A 401 for a
// token issued a moment ago invalidates that token, one renewal follows,
// and the read succeeds on its first try instead of failing with EIO.
func TestTokenForgottenRightAfterIssue(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{RequireSignedTokenRequests: true, TokenLifetime: time.Hour})
	writeFile(t, p, "ex/f1.txt", []byte("file 1"))
	writeFile(t, p, "ex/f2.txt", []byte("file 2"))
	a.share(t, p, ocmtest.ShareRequest{Path: "ex", Dialect: ocmtest.DialectMulti, MustExchangeToken: true})
	acceptAll(t, a)
	readMount(t, a, filepath.Join(mnt, "ex", "f1.txt"), "file 1")
	before := len(p.TokenRequests())

	p.ExpireTokensNow() // the restart: every token issued so far is unknown
	got, err := os.ReadFile(filepath.Join(mnt, "ex", "f2.txt"))
	if err != nil || string(got) != "file 2" {
		t.Fatalf("first read after the server forgot a fresh token: %q, %v\n%s", got, err, a.log)
	}
	if n := len(p.TokenRequests()) - before; n != 1 {
		t.Fatalf("%d token requests after the 401, want exactly one renewal", n)
	}
}

// TestNextcloudRightsFromWebDAV: Nextcloud sends the property name
// "{http://open-cloud-mesh.org/ns}share-permissions" instead of rights;
// the share root's oc:permissions tell them. A folder shared with edit
// rights takes writes through the mount; a read-only one stays read-only.
func TestNextcloudRightsFromWebDAV(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "team/a.txt", []byte("a"))
	writeFile(t, p, "readonly/b.txt", []byte("b"))
	a.share(t, p, ocmtest.ShareRequest{Path: "team", Dialect: ocmtest.DialectNextcloudSender, Permissions: []string{"read", "write"}})
	a.share(t, p, ocmtest.ShareRequest{Path: "readonly", Dialect: ocmtest.DialectNextcloudSender})
	acceptAll(t, a)
	readMount(t, a, filepath.Join(mnt, "team", "a.txt"), "a")
	readMount(t, a, filepath.Join(mnt, "readonly", "b.txt"), "b")

	if err := os.WriteFile(filepath.Join(mnt, "team", "new.txt"), []byte("from the receiver"), 0o644); err != nil {
		t.Fatalf("write into a Nextcloud folder shared with edit rights: %v\n%s", err, a.log)
	}
	if !eventually(20*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(p.Dir(), "team", "new.txt"))
		return err == nil && string(b) == "from the receiver"
	}) {
		t.Fatalf("the written file never reached the sender\n%s", a.log)
	}
	if err := os.WriteFile(filepath.Join(mnt, "readonly", "new.txt"), []byte("x"), 0o644); err == nil {
		t.Fatal("wrote into a read-only Nextcloud share")
	}
	if _, err := os.Stat(filepath.Join(p.Dir(), "readonly", "new.txt")); err == nil {
		t.Fatal("a write reached a read-only share")
	}
}

// keylessHook makes a reference peer publish no keys, as reva does.
func keylessHook(doc map[string]any) {
	delete(doc, "jwksUri")
	delete(doc, "publicKey")
	var caps []string
	if l, ok := doc["capabilities"].([]string); ok {
		for _, c := range l {
			if c != "http-sig" {
				caps = append(caps, c)
			}
		}
	}
	doc["capabilities"] = caps
}

// TestRevokedWithoutNotice: reva ends a share by no longer serving it
// (401), without SHARE_UNSHARED. The agent sees fresh credentials refused,
// moves the share to revoked (shares list and status say so) and takes it
// out of the mount; once the server serves it again, `shares retry`
// brings it back.
func TestRevokedWithoutNotice(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{DiscoveryHook: keylessHook})
	writeFile(t, p, "proj/a.txt", []byte("a"))
	writeFile(t, p, "proj/b.txt", []byte("b"))
	ps := a.share(t, p, ocmtest.ShareRequest{Path: "proj", Dialect: ocmtest.DialectReva, Signing: ocmtest.SignNone})
	acceptAll(t, a)
	readMount(t, a, filepath.Join(mnt, "proj", "a.txt"), "a")

	p.RevokeShare(ps.ID)
	if _, err := os.ReadFile(filepath.Join(mnt, "proj", "b.txt")); err == nil {
		t.Fatal("read a revoked share")
	}
	if !eventually(10*time.Second, func() bool { return a.showShare(t, ps.ProviderID).State == "revoked" }) {
		t.Fatalf("share is %q after its server refused fresh credentials\n%s", a.showShare(t, ps.ProviderID).State, a.log)
	}
	if !eventually(10*time.Second, func() bool { return !slices.Contains(ls(mnt), "proj") }) {
		t.Fatalf("the revoked share is still mounted: %v", ls(mnt))
	}
	if out := a.mustCLI("shares", "list"); !strings.Contains(out, "revoked") {
		t.Fatalf("shares list does not show the revocation:\n%s", out)
	}
	if out := a.mustCLI("status"); !strings.Contains(out, "refuses the share") {
		t.Fatalf("status does not tell:\n%s", out)
	}

	p.RestoreShare(ps.ID)
	a.mustCLI("shares", "retry", a.showShare(t, ps.ProviderID).ID)
	readMount(t, a, filepath.Join(mnt, "proj", "b.txt"), "b")
	if st := a.showShare(t, ps.ProviderID).State; st != "accepted" {
		t.Fatalf("after retry the share is %q", st)
	}
}
