package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/discovery"
	ocmfs "github.com/ocm-agent/ocm-agent/fuse"
	"github.com/ocm-agent/ocm-agent/store"
)

// fsMounter adapts the filesystem to the agent's Mounter.
type fsMounter struct{ fs *ocmfs.FS }

func (m fsMounter) SetEntries(entries []MountEntry) {
	out := make([]ocmfs.Entry, len(entries))
	for i, e := range entries {
		out[i] = ocmfs.Entry(e)
	}
	m.fs.SetEntries(out)
}

func (m fsMounter) PendingUploads() []string { return m.fs.PendingUploads() }
func (m fsMounter) LostFound() []string      { return m.fs.LostFound() }
func (m fsMounter) Conflicts() []string      { return m.fs.Conflicts() }

func (m fsMounter) EntryName(id string) string { return m.fs.EntryName(id) }

// mount mounts the shares filesystem at the configured directory and
// shows the accepted shares in it. A failure is reported in the status,
// not fatal: the agent still receives shares without a mount.
func (d *Daemon) mount(ctx context.Context, auth ocmfs.Authorizer) {
	a, cfg := d.Agent, d.cfg
	if cfg.Mount == "" {
		return
	}
	fail := func(err error) {
		d.log.Error("the shares folder could not be mounted; shares are still received", "dir", cfg.Mount, "err", err)
		a.SetMountError(err.Error())
	}
	if err := os.MkdirAll(cfg.Mount, 0o700); err != nil {
		fail(fmt.Errorf("create %s: %w", cfg.Mount, err))
		return
	}
	client := discovery.NewHTTPClient(discovery.Options{AllowInsecure: cfg.AllowInsecurePeers, DNSServer: cfg.DNSServer, Timeout: -1, Logger: d.log})
	cache := d.openContentCache()
	fs, err := ocmfs.Mount(ctx, ocmfs.Options{
		Dir:        cfg.Mount,
		FSName:     "ocm-agent",
		Timeout:    cfg.MountTimeout.Duration,
		MaxEntries: cfg.MountEntries,
		// Off by default: direct reads slow down programs reading in small
		// pieces, and keep nothing in the page cache across opens.
		DirectReadMin: directReadMin(cfg.MountDirectReads),
		SpoolDir:      a.spoolDir(),
		Client:        client,
		Logger:        d.log,
		// Senders that end shares without SHARE_UNSHARED.
		OnShareRefused: func(id string, status int) {
			a.fromMount("refused/"+id, func() { a.shareRevoked(id, status) })
		},
		// OpenCloud answers 500 for a share it removed: counted at once
		// (a map update), each error counts.
		OnShareRoot: a.shareRoot,
		// Nextcloud calls folders "file".
		OnShareKind: func(id string, dir bool) {
			a.fromMount("kind/"+id, func() { a.shareKind(id, dir) })
		},
		Cache:          cache,
		OnShareOffline: a.shareOffline,
	}, auth)
	if err != nil {
		if cache != nil {
			cache.Close()
		}
		fail(err)
		return
	}
	a.setContentCache(cache)
	if cache != nil {
		cacheDir, _ := contentCacheDir()
		d.startPins(ctx, fs, cache, cacheDir)
	}
	a.SetMounter(fsMounter{fs}, a)
	a.SetMountError("")
	d.closers = append(d.closers, func(context.Context) error {
		a.SetMounter(nil, nil)
		err := fs.Unmount()
		if cache != nil {
			a.setContentCache(nil)
			err = errors.Join(err, cache.Close())
		}
		return err
	})
	a.refreshMount(ctx)
	d.log.Info("shares mounted", "dir", cfg.Mount)
}

// Resolution of shares' WebDAV URLs, kept out of refreshMount: a share whose
// server cannot be reached now stays in the mount (its reads fail with a
// clear error) while its URL is looked for in the background, with backoff.
// refreshMount itself never waits on the network.

// Backoff of the background resolution of a share's WebDAV URL.
var (
	resolveFirstRetry = time.Second
	resolveMaxRetry   = 5 * time.Minute
)

// resolveTimeout bounds one resolution.
const resolveTimeout = 10 * time.Second

// webdavURLs remembers, by share id, the resolved WebDAV URL of each
// accepted share, or why it is not known yet.
type webdavURLs struct {
	mu sync.Mutex
	m  map[string]*urlState
}

type urlState struct {
	key     string // peer and URI it is resolved from: a changed share starts again
	name    string
	url     string
	err     error
	since   time.Time // first failure of the current run of failures
	retryAt time.Time
	backoff time.Duration
	running bool
	timer   *time.Timer
}

// webdavURL returns the known WebDAV URL of sh, or "" while it is not known;
// then it starts a background resolution unless one runs or a retry is not
// due yet. It never waits on the network.
func (a *Agent) webdavURL(sh store.Share, r URLResolver) string {
	if r == nil {
		return sh.WebDAVURI
	}
	if isAbsoluteHTTP(sh.WebDAVURI) && onOrigins(sh.WebDAVURI, senderOrigins(sh.Peer, nil)) {
		return sh.WebDAVURI // on the sender's own host: nothing to look up
	}
	key := sh.Peer + "\n" + sh.WebDAVURI
	u := &a.urls
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]*urlState{}
	}
	st := u.m[sh.ID]
	if st == nil || st.key != key {
		if st != nil && st.timer != nil {
			st.timer.Stop()
		}
		st = &urlState{key: key}
		u.m[sh.ID] = st
	}
	st.name = sh.Name
	if st.url != "" {
		return st.url
	}
	if !st.running && !time.Now().Before(st.retryAt) {
		st.running = true
		retry := st.err != nil
		go a.resolveURL(sh, key, r, retry)
	}
	return ""
}

// resolveURL looks for a share's WebDAV URL and records the outcome; a
// success shows the share's content in the mount, a failure schedules a
// retry.
func (a *Agent) resolveURL(sh store.Share, key string, r URLResolver, retry bool) {
	id := sh.ID
	if dc := a.Discovery(); retry && dc != nil {
		dc.Forget(sh.Peer) // the failure is cached; the retry must ask again
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	resolved, err := r.ResolveWebDAV(ctx, sh.Peer, sh.WebDAVURI)
	cancel()
	u := &a.urls
	u.mu.Lock()
	st := u.m[id]
	if st == nil || st.key != key {
		u.mu.Unlock()
		return // the share changed or left meanwhile
	}
	st.running = false
	if errors.Is(err, errForeignOrigin) {
		// Not a matter of reachability: the share is not mounted at all.
		delete(u.m, id)
		u.mu.Unlock()
		a.foreignShare(context.Background(), sh, err)
		a.refreshMount(context.Background())
		return
	}
	if err == nil {
		if !st.since.IsZero() {
			a.log.Info("a share's server can be reached again", "share", id, "unreachable since", st.since.UTC().Format(time.RFC3339))
		}
		st.url, st.err, st.since, st.backoff = resolved, nil, time.Time{}, 0
		u.mu.Unlock()
		a.refreshMount(context.Background())
		return
	}
	first := st.since.IsZero()
	if first {
		st.since = time.Now()
	}
	st.err = err
	st.backoff = min(max(2*st.backoff, resolveFirstRetry), resolveMaxRetry)
	st.retryAt = time.Now().Add(st.backoff)
	st.timer = time.AfterFunc(st.backoff, func() { a.refreshMount(context.Background()) })
	u.mu.Unlock()
	if first {
		a.log.Warn("cannot find the WebDAV address of a share; it stays in the mount and is tried again", "share", id, "err", err)
	} else {
		a.log.Debug("share still unreachable", "share", id, "err", err)
	}
	a.events.publish("status", "", "")
}

// keepURLs forgets the shares that are not in ids (no longer accepted).
func (a *Agent) keepURLs(ids map[string]bool) {
	u := &a.urls
	u.mu.Lock()
	defer u.mu.Unlock()
	for id, st := range u.m {
		if !ids[id] {
			if st.timer != nil {
				st.timer.Stop()
			}
			delete(u.m, id)
		}
	}
}

// unreachableShares lists the accepted shares whose server could not be
// reached, for status.
func (a *Agent) unreachableShares() []control.UnreachableShare {
	u := &a.urls
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []control.UnreachableShare
	for id, st := range u.m {
		if st.url != "" || st.since.IsZero() {
			continue
		}
		us := control.UnreachableShare{ID: id, Name: st.name, Since: st.since.UTC()}
		if st.err != nil {
			us.Error = st.err.Error()
		}
		out = append(out, us)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func directReadMin(on bool) int64 {
	if on {
		return ocmfs.DirectReadSize
	}
	return 0
}
