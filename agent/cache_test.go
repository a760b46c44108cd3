package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
)

// A share read through the mount is kept in the content cache, under
// $XDG_CACHE_HOME/ocm-agent/content; once the sender unshares it, its
// cached content goes too.
func TestUnshareDropsCachedContent(t *testing.T) {
	needFUSE(t)
	peer := startPeer(t, ocmtest.Options{})
	mnt := filepath.Join(t.TempDir(), "OCM")
	td := startDaemon(t, insecurePeers(func(c *config.Config) { c.Mount = mnt }))
	// (The mount, and the cache with it, come up in the background.)
	eventually(t, 15*time.Second, "a content cache with the default cache-size", func() bool { return td.Agent.ContentCache() != nil })
	c := td.Agent.ContentCache()
	dir, err := contentCacheDir()
	if err != nil || filepath.Dir(filepath.Dir(dir)) != os.Getenv("XDG_CACHE_HOME") {
		t.Fatalf("cache directory %q (%v) is not under $XDG_CACHE_HOME", dir, err)
	}
	ctx := waitCtx(t)
	ps, sh := td.share(t, peer, ocmtest.ShareRequest{})
	if _, err := td.client.ShareAction(ctx, sh.ID, "accept"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the share readable in the mount", func() bool {
		b, err := os.ReadFile(filepath.Join(mnt, "doc.txt"))
		return err == nil && string(b) == "hello"
	})
	eventually(t, 10*time.Second, "the share's content in the cache", func() bool {
		return c.Usage().Shares[sh.ID].Bytes == int64(len("hello"))
	})
	if m, _ := filepath.Glob(filepath.Join(dir, "files", "*.data")); len(m) != 1 {
		t.Fatalf("%d data files under %s", len(m), dir)
	}

	if err := peer.Unshare(ctx, ps.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the unshared share's content leaving the cache", func() bool {
		_, ok := c.Usage().Shares[sh.ID]
		return !ok
	})
	if m, _ := filepath.Glob(filepath.Join(dir, "files", "*")); len(m) != 0 {
		t.Errorf("files left in the cache: %q", m)
	}
}
