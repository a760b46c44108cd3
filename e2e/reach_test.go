package e2e

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/ocm"
)

// noExchangeHook makes a peer publish no keys and offer no token
// exchange: the share is read with its secret.
func noExchangeHook(doc map[string]any) {
	keylessHook(doc)
	if l, ok := doc["capabilities"].([]string); ok {
		doc["capabilities"] = slices.DeleteFunc(slices.Clone(l), func(c string) bool { return c == "exchange-token" })
	}
}

// TestOpenCloudRemovedShareUnreachable: OpenCloud answers 500 (not 401
// or 404) for a share its user removed. After server errors for the share
// root, 3 in a row over unreachable-after, the share shows as unreachable
// (since when, last error) in shares list, shares show and status; it
// stays in the mount (it is not revoked) with reads failing, and shows as
// reachable again once the server serves it.
func TestOpenCloudRemovedShareUnreachable(t *testing.T) {
	a, mnt := mountedAgent(t, "--unreachable-after", "1s")
	a.start()
	o := ocmtest.Options{DiscoveryHook: noExchangeHook}
	if err := ocmtest.Emulate(&o, "opencloud"); err != nil {
		t.Fatal(err)
	}
	p := newPeer(t, o)
	writeFile(t, p, "proj/a.txt", []byte("a"))
	writeFile(t, p, "proj/b.txt", []byte("b"))
	ps := a.share(t, p, ocmtest.ShareRequest{Path: "proj", Dialect: ocmtest.DialectOCIS, Signing: ocmtest.SignNone})
	acceptAll(t, a)
	readMount(t, a, filepath.Join(mnt, "proj", "a.txt"), "a")
	if s := a.showShare(t, ps.ProviderID); !s.UnreachableSince.IsZero() {
		t.Fatalf("a share that reads is unreachable: %+v", s)
	}

	p.RevokeShare(ps.ID)
	dir := filepath.Join(mnt, "proj")
	// Each listing, once the cached one is stale, asks the share root.
	if !eventually(60*time.Second, func() bool {
		os.ReadDir(dir)
		return !a.showShare(t, ps.ProviderID).UnreachableSince.IsZero()
	}) {
		t.Fatalf("the share never showed as unreachable\n%s", a.log)
	}
	s := a.showShare(t, ps.ProviderID)
	if s.State != "accepted" || !strings.Contains(s.UnreachableError, "500") {
		t.Fatalf("unreachable share: state %q, last error %q", s.State, s.UnreachableError)
	}
	if !slices.Contains(ls(mnt), "proj") {
		t.Fatalf("the unreachable share left the mount: %v", ls(mnt))
	}
	if _, err := os.ReadFile(filepath.Join(dir, "b.txt")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading a file of a share whose server answers 500: %v, want EIO", err)
	}
	if out := a.mustCLI("shares", "list"); !strings.Contains(out, "unreachable") {
		t.Fatalf("shares list does not say unreachable:\n%s", out)
	}
	if out := a.mustCLI("shares", "show", s.ID); !strings.Contains(out, "Unreachable:") || !strings.Contains(out, "500") {
		t.Fatalf("shares show does not say unreachable:\n%s", out)
	}
	if out := a.mustCLI("status"); !strings.Contains(out, "Unreachable:") || !strings.Contains(out, "HTTP 500") {
		t.Fatalf("status does not say unreachable:\n%s", out)
	}

	p.RestoreShare(ps.ID)
	if !eventually(60*time.Second, func() bool {
		_, err := os.ReadDir(dir)
		return err == nil && a.showShare(t, ps.ProviderID).UnreachableSince.IsZero()
	}) {
		t.Fatalf("the share still shows as unreachable after its server came back\n%s", a.log)
	}
	readMount(t, a, filepath.Join(dir, "b.txt"), "b")
	if out := a.mustCLI("status"); strings.Contains(out, "Unreachable:") {
		t.Fatalf("status still says unreachable:\n%s", out)
	}
}

// TestRevokedKeepsUnsentWrites: a file written into a share whose sender
// revokes it before the upload stays in the spool; the revoked share and
// status say how many files were not uploaded and where they are kept.
func TestRevokedKeepsUnsentWrites(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{DiscoveryHook: noExchangeHook})
	writeFile(t, p, "proj/a.txt", []byte("a"))
	ps := a.share(t, p, ocmtest.ShareRequest{Path: "proj", Dialect: ocmtest.DialectReva, Signing: ocmtest.SignNone,
		Permissions: []string{"read", "write"}})
	acceptAll(t, a)
	readMount(t, a, filepath.Join(mnt, "proj", "a.txt"), "a")

	const work = "unsent work of the receiver"
	f, err := os.Create(filepath.Join(mnt, "proj", "draft.txt"))
	if err != nil {
		t.Fatalf("create in a writable share: %v\n%s", err, a.log)
	}
	if _, err := f.WriteString(work); err != nil {
		t.Fatal(err)
	}
	p.RevokeShare(ps.ID)
	f.Close() // the upload is refused: the error is the share's, not the data's end
	if !eventually(20*time.Second, func() bool { return a.showShare(t, ps.ProviderID).State == "revoked" }) {
		t.Fatalf("share is %q after its server refused the upload\n%s", a.showShare(t, ps.ProviderID).State, a.log)
	}
	var s = a.showShare(t, ps.ProviderID)
	if !eventually(20*time.Second, func() bool {
		s = a.showShare(t, ps.ProviderID)
		return len(s.NotUploaded) == 1
	}) {
		t.Fatalf("the revoked share reports %q not uploaded, want draft.txt\n%s", s.NotUploaded, a.log)
	}
	if !strings.Contains(s.NotUploaded[0], "draft.txt") || s.KeptIn == "" {
		t.Fatalf("not uploaded: %q kept in %q", s.NotUploaded, s.KeptIn)
	}
	if !keptSomewhere(t, s.KeptIn, work) {
		t.Fatalf("the written data is not in %s", s.KeptIn)
	}
	want := "1 file written here was not uploaded; it is kept in " + s.KeptIn
	if out := a.mustCLI("shares", "show", s.ID); !strings.Contains(out, want) {
		t.Fatalf("shares show does not report the kept write:\n%s", out)
	}
	if out := a.mustCLI("status"); !strings.Contains(out, want) {
		t.Fatalf("status does not report the kept write:\n%s", out)
	}
}

// keptSomewhere says whether a file under dir holds data.
func keptSomewhere(t *testing.T, dir, data string) bool {
	t.Helper()
	found := false
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return nil
		}
		b, err := os.ReadFile(path)
		found = err == nil && bytes.Contains(b, []byte(data))
		return nil
	})
	return found
}

// TestNextcloudFolderShownAsFolder: Nextcloud sends resourceType "file"
// for a shared folder. Once the share root's PROPFIND says collection,
// the share is a folder in shares list and shares show (kind), while the
// notifications keep the sender's word ("file").
func TestNextcloudFolderShownAsFolder(t *testing.T) {
	a, mnt := mountedAgent(t)
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "team/a.txt", []byte("a"))
	ps := a.share(t, p, ocmtest.ShareRequest{Path: "team", Dialect: ocmtest.DialectNextcloudSender})
	if s := a.showShare(t, ps.ProviderID); s.ResourceType != "file" || s.Kind != "file" {
		t.Fatalf("before the mount asked: resourceType %q, kind %q", s.ResourceType, s.Kind)
	}
	acceptAll(t, a)
	readMount(t, a, filepath.Join(mnt, "team", "a.txt"), "a")
	if !eventually(10*time.Second, func() bool { return a.showShare(t, ps.ProviderID).Kind == "folder" }) {
		t.Fatalf("the folder is still a %q\n%s", a.showShare(t, ps.ProviderID).Kind, a.log)
	}
	s := a.showShare(t, ps.ProviderID)
	if s.ResourceType != "file" {
		t.Fatalf("the sender's resourceType was changed to %q", s.ResourceType)
	}
	if out := a.mustCLI("shares", "list"); !strings.Contains(out, "folder") {
		t.Fatalf("shares list does not call it a folder:\n%s", out)
	}
	if out := a.mustCLI("shares", "show", s.ID); !strings.Contains(out, "folder") {
		t.Fatalf("shares show does not call it a folder:\n%s", out)
	}

	a.mustCLI("shares", "remove", s.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := p.WaitNotification(ctx, about(ps.ProviderID, ocm.ShareUnshared))
	if err != nil {
		t.Fatalf("no SHARE_UNSHARED: %v\n%s", err, a.log)
	}
	if n.ResourceType != "file" {
		t.Fatalf("the notification says resourceType %q, the sender said file", n.ResourceType)
	}
}
