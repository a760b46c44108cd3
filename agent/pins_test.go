package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
)

// waitJob polls a pin job until it ends.
func waitJob(t *testing.T, c *control.Client, j control.PinJob) control.PinJob {
	t.Helper()
	ctx := waitCtx(t)
	eventually(t, 20*time.Second, "the pin job's end", func() bool {
		var err error
		j, err = c.PinJob(ctx, j.ID)
		return err == nil && j.State != control.PinRunning
	})
	return j
}

// TestPinThroughTheAgent: an accepted folder share is pinned through the
// control API (job progress up to the totals), listed as up to date,
// refreshed after a change on its server, unpinned; bad input gets a
// clear error of its kind; removing the share deletes its cached content.
func TestPinThroughTheAgent(t *testing.T) {
	needFUSE(t)
	peer := startPeer(t, ocmtest.Options{})
	docs := filepath.Join(peer.Dir(), "Docs")
	a := bytes.Repeat([]byte("pinned "), 40000)
	for p, b := range map[string][]byte{"a.txt": a, "sub/b.bin": {1, 2, 3}} {
		os.MkdirAll(filepath.Dir(filepath.Join(docs, p)), 0o755)
		if err := os.WriteFile(filepath.Join(docs, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	mnt := filepath.Join(t.TempDir(), "OCM")
	td := startDaemon(t, insecurePeers(func(c *config.Config) { c.Mount = mnt }))
	ctx := waitCtx(t)
	_, sh := td.share(t, peer, ocmtest.ShareRequest{Path: "Docs"})
	_, pending := td.share(t, peer, ocmtest.ShareRequest{Path: "doc.txt"})
	if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the share in the mount", func() bool {
		_, err := os.Stat(filepath.Join(mnt, "Docs", "a.txt"))
		return err == nil
	})

	for _, c := range []struct {
		share, path string
		want        error
	}{
		{"nope", "", control.ErrNotFound},
		{sh.ID, "missing/x", control.ErrNotFound},
		{sh.ID, "../x", control.ErrInvalid},
		{pending.ID, "", control.ErrConflict},
	} {
		if _, err := td.client.Pin(ctx, c.share, c.path); !errors.Is(err, c.want) {
			t.Errorf("pin %s %q: %v; want %v", c.share, c.path, err, c.want)
		}
	}
	if pins, err := td.client.Pins(ctx); err != nil || len(pins) != 0 {
		t.Fatalf("pins after bad input: %+v %v", pins, err)
	}

	j, err := td.client.Pin(ctx, sh.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	j = waitJob(t, td.client, j)
	total := int64(len(a) + 3)
	if j.State != control.PinDone || !j.Listed || j.Files != 2 || j.FilesDone != 2 || j.Bytes != total || j.BytesDone != total || j.EndedAt.IsZero() {
		t.Fatalf("job %+v", j)
	}
	pins, err := td.client.Pins(ctx)
	if err != nil || len(pins) != 1 || !pins[0].UpToDate || pins[0].Files != 2 || pins[0].Complete != 2 || pins[0].Bytes != total || pins[0].Name != "Docs" {
		t.Fatalf("pins %+v %v", pins, err)
	}
	st, err := td.client.CacheStatus(ctx)
	if err != nil || st.Files < 2 || st.PinnedBytes < total || len(st.Pins) != 1 || st.Dir == "" || len(st.Shares) != 1 {
		t.Fatalf("cache status %+v %v", st, err)
	}

	// A change on the server: the background refresh (run now) replaces
	// the kept copy.
	newer := []byte("a new version")
	os.WriteFile(filepath.Join(docs, "a.txt"), newer, 0o644)
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(docs, "a.txt"), later, later)
	td.Agent.RefreshPins(ctx)
	svc := td.Agent.pinSvc()
	f, _, size, ok := svc.cache.Stored(contentcache.Key{Share: sh.ID, Path: "a.txt"})
	if !ok {
		t.Fatal("a.txt left the cache")
	}
	got := make([]byte, size)
	n, ok := f.ReadAt(got, 0)
	f.Release()
	if !ok || !bytes.Equal(got[:n], newer) {
		t.Fatalf("after the refresh the cache holds %q", got[:n])
	}

	// The server goes away: the next refresh finds it offline, status
	// says so, and the pinned files are read from the cache.
	peer.Close()
	td.Agent.RefreshPins(ctx)
	eventually(t, 10*time.Second, "the share offline in status", func() bool {
		st, err := td.client.Status(ctx)
		return err == nil && len(st.Offline) == 1 && st.Offline[0].ID == sh.ID && st.Offline[0].Name == "Docs"
	})
	if pins, err := td.client.Pins(ctx); err != nil || len(pins) != 1 || !pins[0].Offline {
		t.Errorf("pins while offline %+v %v", pins, err)
	}
	for p, want := range map[string][]byte{"a.txt": newer, "sub/b.bin": {1, 2, 3}} {
		got, err := os.ReadFile(filepath.Join(mnt, "Docs", filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("offline read of %s: %q %v; want %q", p, got, err, want)
		}
	}

	if _, err := td.client.Unpin(ctx, sh.ID, "sub"); !errors.Is(err, control.ErrNotFound) {
		t.Errorf("unpin of what is not pinned: %v", err)
	}
	if _, err := td.client.Unpin(ctx, sh.ID, ""); err != nil {
		t.Fatal(err)
	}
	if pins, _ := td.client.Pins(ctx); len(pins) != 0 {
		t.Errorf("pins after unpin %+v", pins)
	}

	if _, err := td.client.ShareAction(ctx, sh.ID, "remove"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the removed share's content deleted from the cache", func() bool {
		_, ok := svc.cache.Usage().Shares[sh.ID]
		return !ok
	})
}
