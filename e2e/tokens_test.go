package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
	"github.com/ocm-agent/ocm-agent/tokens/keyringtest"
)

// keyringAgent runs an agent whose secrets go to a real gnome-keyring on a
// private session bus, with the mount on.
func keyringAgent(t *testing.T) (*agentProc, string) {
	t.Helper()
	testenv.Need(t, "a keyring", keyringtest.Available())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := keyringtest.Start(ctx)
	testenv.Need(t, "a keyring", err)
	t.Cleanup(env.Close)
	a, mnt := mountedAgent(t, "--secrets", "keyring")
	a.extraEnv = []string{"DBUS_SESSION_BUS_ADDRESS=" + env.Address}
	return a, mnt
}

func readMount(t *testing.T, a *agentProc, path, want string) {
	t.Helper()
	var got []byte
	var err error
	if !eventually(3*time.Second, func() bool {
		got, err = os.ReadFile(path)
		return err == nil && string(got) == want
	}) {
		t.Fatalf("read %s: %q, %v (want %q)\n%s", path, got, err, want, a.log)
	}
}

func acceptAll(t *testing.T, a *agentProc) {
	for _, s := range a.shares(false) {
		if s.State == "pending" {
			a.mustCLI("shares", "accept", s.ID)
		}
	}
}

// TestTokenFlowsThroughTheMount reads, through the mount, a share of each
// credential kind: must-exchange-token (1.4 contract, signed exchange), a
// legacy top-level code, a plain shared secret, and Nextcloud's Basic form;
// then expires the tokens mid-use and revokes a code.
func TestTokenFlowsThroughTheMount(t *testing.T) {
	a, mnt := keyringAgent(t)
	a.start()
	if out := a.mustCLI("status"); !strings.Contains(out, "keyring") {
		t.Fatalf("status does not report the keyring backend:\n%s", out)
	}
	p := newPeer(t, ocmtest.Options{RequireSignedTokenRequests: true, TokenLifetime: time.Minute})
	files := map[string]string{"exchange.txt": "needs a token", "legacy.txt": "old code", "plain.txt": "plain secret", "basic.txt": "nextcloud basic"}
	for name, body := range files {
		writeFile(t, p, name, []byte(body))
	}
	for _, n := range []string{"1", "2", "3"} {
		writeFile(t, p, "ex/f"+n+".txt", []byte("file "+n))
	}
	a.share(t, p, ocmtest.ShareRequest{Path: "exchange.txt", Dialect: ocmtest.DialectOCMGo})
	mustEx := a.share(t, p, ocmtest.ShareRequest{Path: "ex", Dialect: ocmtest.DialectMulti, MustExchangeToken: true})
	a.share(t, p, ocmtest.ShareRequest{Path: "legacy.txt", Dialect: ocmtest.DialectWebDAV, LegacyCode: true})
	a.share(t, p, ocmtest.ShareRequest{Path: "plain.txt", Dialect: ocmtest.DialectMulti})
	a.share(t, p, ocmtest.ShareRequest{Path: "basic.txt", Dialect: ocmtest.DialectNextcloud})
	acceptAll(t, a)
	for name, body := range files {
		readMount(t, a, filepath.Join(mnt, name), body)
	}
	readMount(t, a, filepath.Join(mnt, "ex", "f1.txt"), "file 1")
	if n := len(p.TokenRequests()); n < 2 {
		t.Fatalf("%d token requests reached the peer, want at least 2 (1.4 and legacy)", n)
	}
	for _, tr := range p.TokenRequests() {
		if tr.Signature.Present && !tr.Signature.Verified {
			t.Fatalf("a token request's signature did not verify: %+v", tr.Signature)
		}
	}

	// Tokens expire while the share is in use: the next read renews.
	before := len(p.TokenRequests())
	p.ExpireTokensNow()
	readMount(t, a, filepath.Join(mnt, "ex", "f2.txt"), "file 2")
	if len(p.TokenRequests()) <= before {
		t.Fatal("expired tokens were not renewed")
	}

	// A revoked code: the share goes to error, visibly, without hanging.
	p.RevokeShare(mustEx.ID)
	p.ExpireTokensNow()
	start := time.Now()
	if _, err := os.ReadFile(filepath.Join(mnt, "ex", "f3.txt")); err == nil {
		t.Fatal("read a share whose code was revoked")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("reading a revoked share took %v", d)
	}
	// The 401 invalidates the token that got it; the renewal then finds
	// the code refused, which moves the share to error.
	if !eventually(5*time.Second, func() bool {
		os.ReadFile(filepath.Join(mnt, "ex", "f3.txt"))
		for _, s := range a.shares(false) {
			if s.ProviderID == mustEx.ProviderID {
				return s.State == "error"
			}
		}
		return false
	}) {
		t.Fatalf("a revoked code did not move the share to error:\n%s\n%s", a.mustCLI("shares", "list"), a.log)
	}
}

// TestSecretsCanary receives, accepts, exchanges and uses shares with known
// secrets, then looks for those secrets everywhere they must not be.
func TestSecretsCanary(t *testing.T) {
	a, mnt := keyringAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{TokenLifetime: time.Minute})
	writeFile(t, p, "canary/a.txt", []byte("canary data"))
	writeFile(t, p, "canary.txt", []byte("canary file"))
	var secrets []string
	for _, req := range []ocmtest.ShareRequest{
		{Path: "canary", Dialect: ocmtest.DialectMulti},
		{Path: "canary.txt", Dialect: ocmtest.DialectOCMGo},
		{Path: "canary", Name: "canary-basic", Dialect: ocmtest.DialectNextcloud},
	} {
		sh := a.share(t, p, req)
		secrets = append(secrets, sh.Secret, sh.Code)
	}
	acceptAll(t, a)
	readMount(t, a, filepath.Join(mnt, "canary", "a.txt"), "canary data")
	readMount(t, a, filepath.Join(mnt, "canary.txt"), "canary file")
	readMount(t, a, filepath.Join(mnt, "canary-basic", "a.txt"), "canary data")

	// Process arguments of the running daemon.
	cmdline, _ := os.ReadFile(filepath.Join("/proc", itoa(a.cmd.Process.Pid), "cmdline"))
	var api bytes.Buffer
	for _, args := range [][]string{{"status", "--json"}, {"shares", "list", "--all", "--json"}} {
		api.WriteString(a.mustCLI(args...))
	}
	for _, s := range a.shares(true) {
		api.WriteString(a.mustCLI("shares", "show", s.ID, "--json"))
	}
	// Every file the agent wrote: state dir (SQLite, WAL, spool), config, runtime.
	var files bytes.Buffer
	filepath.Walk(a.dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || strings.HasPrefix(path, mnt) || info.Mode()&os.ModeSocket != 0 {
			return nil
		}
		b, _ := os.ReadFile(path)
		files.Write(b)
		return nil
	})
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for where, hay := range map[string][]byte{"logs (debug)": a.log.Bytes(), "process arguments": cmdline,
			"control API": api.Bytes(), "state, config and runtime files": files.Bytes()} {
			if bytes.Contains(hay, []byte(s)) {
				t.Errorf("a share secret was found in the %s", where)
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
