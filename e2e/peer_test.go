package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
)

type listedShare struct {
	ID, ProviderID, Name, State, Sender, SenderDisplayName, ResourceType, SignedBy, Dialect string
}

func (a *agentProc) shares(all bool) []listedShare {
	a.t.Helper()
	args := []string{"shares", "list", "--json"}
	if all {
		args = append(args, "--all")
	}
	var l []listedShare
	if err := json.Unmarshal([]byte(a.mustCLI(args...)), &l); err != nil {
		a.t.Fatal(err)
	}
	return l
}

func newPeer(t *testing.T, o ocmtest.Options) *ocmtest.Server {
	if o.User == "" {
		o.User, o.DisplayName = "alice", "Alice Sender"
	}
	return ocmtest.StartForTest(t, o)
}

func (a *agentProc) share(t *testing.T, p *ocmtest.Server, req ocmtest.ShareRequest) *ocmtest.Share {
	t.Helper()
	req.To = a.address()
	req.ReceiverBase = a.base
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sh, err := p.CreateShare(ctx, req)
	if err != nil {
		t.Fatalf("peer could not share %s: %v\nagent log:\n%s", req.Path, err, a.log)
	}
	return sh
}

// TestPeerSharesFolderShowsPending is the first walk of a share: a peer
// shares a folder and the CLI lists it pending with its sender and name.
func TestPeerSharesFolderShowsPending(t *testing.T) {
	a := newAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "Holiday photos/beach.jpg", []byte("jpeg"))
	a.share(t, p, ocmtest.ShareRequest{Path: "Holiday photos"})

	out := a.mustCLI("shares", "list")
	for _, want := range []string{"pending", "folder", "Holiday photos", "Alice Sender <alice@" + p.Host() + ">"} {
		if !strings.Contains(out, want) {
			t.Fatalf("shares list lacks %q:\n%s", want, out)
		}
	}
}

// TestEveryDialectAndSignature sends a share in each dialect real senders
// use, signed as each of them signs, and the agent takes every one.
func TestEveryDialectAndSignature(t *testing.T) {
	a := newAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "doc.txt", []byte("hello"))
	writeFile(t, p, "folder/a.txt", []byte("a"))
	cases := []struct {
		dialect, signing, path string
	}{
		{ocmtest.DialectNextcloud, ocmtest.SignCavage, "doc.txt"},
		{ocmtest.DialectNextcloudSender, ocmtest.SignCavage, "doc.txt"},
		{ocmtest.DialectOCIS, ocmtest.SignNone, "folder"},
		{ocmtest.DialectReva, ocmtest.SignNone, "folder"},
		{ocmtest.DialectOCMGo, ocmtest.SignRFC9421, "doc.txt"},
		{ocmtest.DialectMulti, ocmtest.SignRFC9421, "folder"},
		{ocmtest.DialectLegacyOptions, ocmtest.SignCavage, "doc.txt"},
		{ocmtest.DialectProtocolObject, ocmtest.SignRFC9421, "doc.txt"},
		{ocmtest.DialectWebDAV, ocmtest.SignRFC9421, "folder"},
	}
	// This peer publishes keys, so its unsigned shares must be refused;
	// the keyless peer below (as reva and oCIS) is believed unsigned.
	for _, c := range cases {
		t.Run(c.dialect+"/"+c.signing, func(t *testing.T) {
			req := ocmtest.ShareRequest{Path: c.path, Dialect: c.dialect, Signing: c.signing}
			req.To, req.ReceiverBase = a.address(), a.base
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sh, err := p.CreateShare(ctx, req)
			if c.signing == ocmtest.SignNone {
				var se *ocmtest.StatusError
				if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
					t.Fatalf("unsigned share from a peer that publishes keys: %v, want 401", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, s := range a.shares(false) {
				if s.ProviderID == sh.ProviderID {
					found = true
					if s.SignedBy == "" {
						t.Errorf("share stored without its signature: %+v", s)
					}
				}
			}
			if !found {
				t.Fatalf("share %s not listed", sh.ProviderID)
			}
		})
	}
}

// TestUnsignedFromKeylessPeer: servers that publish no keys (reva, oCIS)
// sign nothing, and their shares are accepted unsigned.
func TestUnsignedFromKeylessPeer(t *testing.T) {
	a := newAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{DiscoveryHook: func(doc map[string]any) {
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
	writeFile(t, p, "folder/a.txt", []byte("a"))
	for _, d := range []string{ocmtest.DialectOCIS, ocmtest.DialectReva} {
		sh := a.share(t, p, ocmtest.ShareRequest{Path: "folder", Dialect: d, Signing: ocmtest.SignNone})
		found := false
		for _, s := range a.shares(false) {
			found = found || (s.ProviderID == sh.ProviderID && s.SignedBy == "")
		}
		if !found {
			t.Fatalf("unsigned %s share from a keyless peer not stored", d)
		}
	}
}

func writeFile(t *testing.T, p *ocmtest.Server, rel string, data []byte) {
	t.Helper()
	path := filepath.Join(p.Dir(), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestForgedShareRefused: a share signed with a key the claimed sender
// does not publish gets 401 and leaves nothing behind.
func TestForgedShareRefused(t *testing.T) {
	a := newAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "doc.txt", []byte("hello"))
	req := ocmtest.ShareRequest{Path: "doc.txt", Signing: ocmtest.SignRFC9421Unpublished, To: a.address(), ReceiverBase: a.base}
	_, err := p.CreateShare(context.Background(), req)
	var se *ocmtest.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("forged share: %v, want 401", err)
	}
	if l := a.shares(true); len(l) != 0 {
		t.Fatalf("a forged share was stored: %+v", l)
	}
}
