package e2e

import (
	"os"
	"path/filepath"
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
