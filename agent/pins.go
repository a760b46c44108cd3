package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
	ocmfs "github.com/ocm-agent/ocm-agent/fuse"
	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/fuse/pinner"
	"github.com/ocm-agent/ocm-agent/store"
)

// DefaultPinRefresh is how often pinned content is checked against its
// server when pin-refresh is not set.
const DefaultPinRefresh = 15 * time.Minute

// pinService is the content cache and the pin engine of a mounted agent.
type pinService struct {
	cache *contentcache.Cache
	p     *pinner.Pinner
	dir   string
	ctx   context.Context // the mount's life: pin jobs run in it
}

// pinHolder keeps the pin service while the mount is up, and since when
// status has seen each share offline (the mount says only whether).
type pinHolder struct {
	mu           sync.Mutex
	svc          *pinService
	offlineSince map[string]time.Time
}

// offlineShares lists the accepted shares the mount reports offline, for
// status.
func (a *Agent) offlineShares(ctx context.Context) []control.UnreachableShare {
	ids := a.OfflineShares()
	now := time.Now()
	a.pins.mu.Lock()
	since := map[string]time.Time{}
	for _, id := range ids {
		t, ok := a.pins.offlineSince[id]
		if !ok {
			t = now
		}
		since[id] = t
	}
	a.pins.offlineSince = since
	a.pins.mu.Unlock()
	var out []control.UnreachableShare
	for _, id := range ids {
		sh, err := a.store.Share(ctx, id)
		if err != nil || sh.State != store.StateAccepted {
			continue
		}
		out = append(out, control.UnreachableShare{ID: id, Name: sh.Name, Since: since[id].UTC(), Error: "no answer: reading from the cache"})
	}
	return out
}

func (a *Agent) pinSvc() *pinService {
	a.pins.mu.Lock()
	defer a.pins.mu.Unlock()
	return a.pins.svc
}

// startPins connects the pin engine over the mount's cache, and refreshes
// the pins every pin-refresh until the mount ends.
func (d *Daemon) startPins(ctx context.Context, fs *ocmfs.FS, cache *contentcache.Cache, dir string) {
	a := d.Agent
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	svc := &pinService{cache: cache, p: fs.NewPinner(cache, a.spoolDir()), dir: dir, ctx: ctx}
	a.pins.mu.Lock()
	a.pins.svc = svc
	a.pins.mu.Unlock()
	every := d.cfg.PinRefresh.Duration
	if every <= 0 {
		every = DefaultPinRefresh
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.p.Loop(ctx, every)
	}()
	d.closers = append(d.closers, func(context.Context) error {
		a.pins.mu.Lock()
		a.pins.svc = nil
		a.pins.mu.Unlock()
		cancel()
		<-done
		svc.p.Wait() // the jobs end before the cache closes
		return nil
	})
}

// RefreshPins walks every pin now (the background refresh, for tests and
// for a person who wants it at once).
func (a *Agent) RefreshPins(ctx context.Context) {
	if svc := a.pinSvc(); svc != nil {
		svc.p.Refresh(ctx)
	}
}

// pinnable checks that id is an accepted share and the cache is there.
func (b controlBackend) pinnable(ctx context.Context, id string) (*pinService, store.Share, error) {
	sh, err := b.a.Share(ctx, id)
	if err != nil {
		return nil, sh, err
	}
	if sh.State != store.StateAccepted {
		return nil, sh, fmt.Errorf("share %s is %s, not accepted: only accepted shares can be kept on this device: %w", id, sh.State, ErrConflict)
	}
	svc := b.a.pinSvc()
	if svc == nil {
		return nil, sh, errorf(http.StatusServiceUnavailable, control.ErrNoCache.Error())
	}
	return svc, sh, nil
}

// pinError maps the pinner's errors onto the API's.
func pinError(id, path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pinner.ErrNotFound):
		return fmt.Errorf("%q is not in share %s (%v): %w", path, id, err, ErrNotFound)
	case errors.Is(err, pinner.ErrBadPath):
		return errorf(http.StatusBadRequest, err.Error())
	case pinner.Offline(err):
		return errorf(http.StatusBadGateway, "the share's server cannot be reached now: "+err.Error())
	}
	return err
}

func (b controlBackend) Pin(ctx context.Context, id string, req control.PinRequest) (control.PinJob, error) {
	svc, _, err := b.pinnable(ctx, id)
	if err != nil {
		return control.PinJob{}, err
	}
	j, err := svc.p.Start(svc.ctx, id, req.Path)
	if err != nil {
		return control.PinJob{}, pinError(id, req.Path, err)
	}
	return jobToControl(j), nil
}

func (b controlBackend) PinJob(ctx context.Context, id string) (control.PinJob, error) {
	svc := b.a.pinSvc()
	if svc == nil {
		return control.PinJob{}, errorf(http.StatusServiceUnavailable, control.ErrNoCache.Error())
	}
	j := svc.p.Job(id)
	if j == nil {
		return control.PinJob{}, fmt.Errorf("no pin job %q (jobs are kept for an hour after they end): %w", id, ErrNotFound)
	}
	return jobToControl(j), nil
}

func jobToControl(j *pinner.Job) control.PinJob {
	st := j.State()
	out := control.PinJob{ID: j.ID, Share: j.Share, Path: j.Path, State: control.PinRunning,
		Listed: st.Listed, Files: st.Files, FilesDone: st.FilesDone, Bytes: st.Bytes, BytesDone: st.BytesDone,
		Fetched: st.Fetched, StartedAt: j.Started.UTC(), EndedAt: st.Ended.UTC()}
	end := time.Now()
	if !st.Running {
		end = st.Ended
		out.State = control.PinDone
		if st.Err != nil {
			out.State, out.Error = control.PinFailed, st.Err.Error()
		}
	} else {
		out.EndedAt = time.Time{}
	}
	if secs := end.Sub(j.Started).Seconds(); secs > 0 && st.Fetched > 0 {
		out.Rate = float64(st.Fetched) / secs
		if st.Running {
			out.Remaining = float64(max(st.Bytes-st.BytesDone, 0)) / out.Rate
		}
	}
	return out
}

func (b controlBackend) Unpin(ctx context.Context, id string, req control.PinRequest) (control.Pin, error) {
	svc := b.a.pinSvc()
	if svc == nil {
		return control.Pin{}, errorf(http.StatusServiceUnavailable, control.ErrNoCache.Error())
	}
	path, err := pinner.CleanPath(req.Path)
	if err != nil {
		return control.Pin{}, pinError(id, req.Path, err)
	}
	var pin control.Pin
	for _, p := range b.pinList(ctx, svc) {
		if p.Share == id && p.Path == path {
			pin = p
		}
	}
	if err := svc.p.Unpin(id, path); err != nil {
		return control.Pin{}, pinError(id, req.Path, err)
	}
	if pin.Share == "" {
		pin = control.Pin{Share: id, Path: path}
	}
	return pin, nil
}

func (b controlBackend) Pins(ctx context.Context) ([]control.Pin, error) {
	svc := b.a.pinSvc()
	if svc == nil {
		return nil, errorf(http.StatusServiceUnavailable, control.ErrNoCache.Error())
	}
	return b.pinList(ctx, svc), nil
}

// pinList describes the pins, sorted by share name and path.
func (b controlBackend) pinList(ctx context.Context, svc *pinService) []control.Pin {
	offline := map[string]bool{}
	for _, id := range b.a.OfflineShares() {
		offline[id] = true
	}
	for _, u := range b.a.unreachableShares() {
		offline[u.ID] = true
	}
	out := []control.Pin{}
	for _, p := range svc.cache.Pins() {
		cp := control.Pin{Share: p.Share, Path: p.Path, Since: p.Since.UTC(), Offline: offline[p.Share]}
		if sh, err := b.a.store.Share(ctx, p.Share); err == nil {
			cp.Name = sh.Name
		}
		cp.Files, cp.Complete, cp.Bytes = svc.cache.PinUsage(p.Share, p.Path)
		cp.RunningJob = svc.p.RunningJob(p.Share, p.Path)
		if st, ok := svc.p.StateOf(p.Share, p.Path); ok {
			if !st.Refreshed.IsZero() {
				cp.Refreshed = st.Refreshed.UTC()
			}
			cp.RefreshErr, cp.Offline = st.Err, cp.Offline || st.Offline
			// Up to date: the last walk reached its end and found every
			// file kept, and the cache still holds them all.
			cp.UpToDate = st.Err == "" && !st.Refreshed.IsZero() && st.Complete == st.Files && cp.Complete >= st.Files && cp.RunningJob == ""
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Share+"/"+out[i].Path < out[j].Share+"/"+out[j].Path
	})
	return out
}

func (b controlBackend) CacheStatus(ctx context.Context) (control.CacheStatus, error) {
	svc := b.a.pinSvc()
	if svc == nil {
		return control.CacheStatus{}, errorf(http.StatusServiceUnavailable, control.ErrNoCache.Error())
	}
	u := svc.cache.Usage()
	st := control.CacheStatus{Dir: svc.dir, Files: u.Files, Bytes: u.Bytes, PinnedBytes: u.PinnedBytes, Limit: u.Limit,
		Pins: b.pinList(ctx, svc)}
	for id, su := range u.Shares {
		cs := control.CacheShare{ID: id, Files: su.Files, Bytes: su.Bytes, PinnedBytes: su.PinnedBytes}
		if sh, err := b.a.store.Share(ctx, id); err == nil {
			cs.Name = sh.Name
		}
		st.Shares = append(st.Shares, cs)
	}
	sort.Slice(st.Shares, func(i, j int) bool { return st.Shares[i].Name+st.Shares[i].ID < st.Shares[j].Name+st.Shares[j].ID })
	return st, nil
}

func (b controlBackend) ClearCache(ctx context.Context, req control.CacheClearRequest) (control.CacheCleared, error) {
	svc := b.a.pinSvc()
	if svc == nil {
		return control.CacheCleared{}, errorf(http.StatusServiceUnavailable, control.ErrNoCache.Error())
	}
	freed, err := svc.cache.Clear(req.Pinned)
	if err != nil {
		return control.CacheCleared{Freed: freed}, err
	}
	b.a.log.Info("content cache cleared", "freed", freed, "pinned too", req.Pinned)
	return control.CacheCleared{Freed: freed}, nil
}
