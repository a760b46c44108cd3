package pinner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// Remote is what the pinner needs of the mount.
type Remote interface {
	// Root returns the URL of a share's root (a folder's ends in '/') and
	// whether it is a folder, asking its server if needed.
	Root(ctx context.Context, share string) (url string, dir bool, err error)
	// List lists the folder dir of a share ("/"-joined, "" for the root)
	// at u with PROPFIND Depth 1 (and keeps the listing for offline use).
	List(ctx context.Context, share, dir, u string) (*vfs.Listing, error)
	// Changed hears that a new version of the file at path was stored
	// (the one in, as listed).
	Changed(share, path string, in vfs.Info)
}

// Options configure a Pinner.
type Options struct {
	Cache  *contentcache.Cache
	Client *vfs.Client // for the downloads
	Remote Remote
	// Parallel is how many files are downloaded at once. Default
	// DefaultParallel.
	Parallel int
	// TempDir holds new versions of pinned files while they download.
	// Default: os.TempDir().
	TempDir string
	Logger  *slog.Logger
	Now     func() time.Time
}

// DefaultParallel is the downloads at once of one pin: enough to hide the
// round trips of small files, few enough to leave the server's and the
// mount's connections to others.
const DefaultParallel = 6

// Bounds of one walk, whatever a server lists.
const (
	maxFiles = 1_000_000
	maxDepth = 64
)

// Errors of Pin, for the caller to map.
var (
	ErrNotFound = errors.New("no such folder or file in the share")
	ErrTooMany  = fmt.Errorf("more than %d files under the pin", maxFiles)
	ErrBadPath  = errors.New("not a path in a share")
)

// Pinner pins, downloads and refreshes.
type Pinner struct {
	o   Options
	log *slog.Logger

	jobsWG sync.WaitGroup // running jobs (Wait)

	mu     sync.Mutex
	states map[pinKey]*State
	jobs   map[string]*Job
	nextID int
}

type pinKey struct{ share, path string }

// State is what the last walk of a pin found.
type State struct {
	Files, Complete int
	Bytes           int64
	Refreshed       time.Time // the last walk that reached the server
	Err             string    // why the last walk failed
	Offline         bool      // its server could not be reached at the last walk
}

// New returns a Pinner.
func New(o Options) *Pinner {
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Pinner{o: o, log: o.Logger.With("component", "pinner"), states: map[pinKey]*State{}, jobs: map[string]*Job{}}
}

// Progress is how far a pin's download is.
type Progress struct {
	Listed    bool // the walk is over: Files and Bytes are totals
	Files     int
	FilesDone int
	Bytes     int64
	BytesDone int64
	Fetched   int64 // bytes downloaded
}

// CleanPath checks and normalises a path inside a share: "/"-separated,
// no "." or ".." segments; "" (or "/") is the whole share.
func CleanPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsRune(seg, 0) {
			return "", fmt.Errorf("%w: %q has empty, '.' or '..' segments", ErrBadPath, p)
		}
	}
	return p, nil
}

// Pin marks share/p as pinned and downloads everything under it, and
// returns when done. The pin stays when the download fails: the next
// refresh completes it.
func (pn *Pinner) Pin(ctx context.Context, share, p string) (Progress, error) {
	j, err := pn.Start(ctx, share, p)
	if err != nil {
		return Progress{}, err
	}
	<-j.Done()
	st := j.State()
	return st.Progress, st.Err
}

// Unpin removes the pin of share/p: its content stays as ordinary cache.
func (pn *Pinner) Unpin(share, p string) error {
	p, err := CleanPath(p)
	if err != nil {
		return err
	}
	found := false
	for _, pin := range pn.o.Cache.Pins() {
		found = found || (pin.Share == share && pin.Path == p)
	}
	if !found {
		return fmt.Errorf("%w: it is not pinned", ErrNotFound)
	}
	if err := pn.o.Cache.Unpin(share, p); err != nil {
		return err
	}
	pn.mu.Lock()
	delete(pn.states, pinKey{share, p})
	pn.mu.Unlock()
	return nil
}

// StateOf returns what the last walk of share/p found (ok=false before
// the first).
func (pn *Pinner) StateOf(share, p string) (State, bool) {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	st, ok := pn.states[pinKey{share, p}]
	if !ok {
		return State{}, false
	}
	return *st, true
}

// Forget drops what is known of a share's pins (the share left).
func (pn *Pinner) Forget(share string) {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	for k := range pn.states {
		if k.share == share {
			delete(pn.states, k)
		}
	}
}

// Refresh walks every pin again and fetches what changed; the shares
// whose server cannot be reached are skipped. It returns when all pins
// were tried.
func (pn *Pinner) Refresh(ctx context.Context) {
	for _, pin := range pn.o.Cache.Pins() {
		if ctx.Err() != nil {
			return
		}
		if pn.running(pin.Share, pin.Path) {
			continue // a pin job walks it now
		}
		w, err := pn.start(ctx, pin.Share, pin.Path)
		if err == nil {
			_, err = pn.run(ctx, w, nil)
		}
		if err != nil {
			pn.failed(pin.Share, pin.Path, err)
		}
	}
}

// Loop refreshes the pins at once (what changed while the agent was not
// running), then every interval until ctx ends.
func (pn *Pinner) Loop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	pn.Refresh(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pn.Refresh(ctx)
		}
	}
}

// failed records a walk that did not reach its end.
func (pn *Pinner) failed(share, p string, err error) {
	off := Offline(err)
	pn.mu.Lock()
	st := pn.states[pinKey{share, p}]
	if st == nil {
		st = &State{}
		pn.states[pinKey{share, p}] = st
	}
	st.Offline = off
	st.Err = err.Error()
	pn.mu.Unlock()
	if off {
		pn.log.Debug("pinned share not reachable; kept as it is", "share", share, "kind", vfs.KindOf(err).String())
	} else {
		// The error names files: what is in a share stays out of logs
		// (the pin's state, which the person asks for, says it).
		pn.log.Warn("a pin could not be refreshed", "share", share, "kind", vfs.KindOf(err).String())
	}
}

// Offline reports whether err means the server cannot be reached now
// (as vfs.Unreachable, and a share whose address is not known yet), not
// that the content is wrong or gone.
func Offline(err error) bool {
	return vfs.Unreachable(err) || vfs.KindOf(err) == vfs.KindUnreachable
}

// walk is one pass over a pin.
type walk struct {
	share, path string
	root        string // URL of the share's root
	dir         bool   // the pin is a folder
	self        vfs.Info
}

// start finds what share/p is on the server.
func (pn *Pinner) start(ctx context.Context, share, p string) (*walk, error) {
	root, rootDir, err := pn.o.Remote.Root(ctx, share)
	if err != nil {
		return nil, err
	}
	w := &walk{share: share, path: p, root: root, dir: rootDir}
	if p == "" {
		if !rootDir {
			l, err := pn.o.Client.Stat(ctx, share, root)
			if err != nil {
				return nil, err
			}
			w.self = l
		}
		return w, nil
	}
	if !rootDir {
		return nil, fmt.Errorf("%w: the share is a single file", ErrNotFound)
	}
	parent, name := path.Split(p)
	parent = strings.TrimSuffix(parent, "/")
	l, err := pn.o.Remote.List(ctx, share, parent, pn.dirURL(w, parent))
	if err != nil {
		if vfs.KindOf(err) == vfs.KindNotFound {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, parent)
		}
		return nil, err
	}
	in, ok := l.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	w.dir, w.self = in.Dir, in
	return w, nil
}

func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (pn *Pinner) dirURL(w *walk, dir string) string {
	return vfs.ChildURL(w.root, splitPath(dir), true)
}

func (pn *Pinner) fileURL(w *walk, p string) string {
	if p == "" {
		return w.root // a single-file share
	}
	return vfs.ChildURL(w.root, splitPath(p), false)
}

// item is a file to keep.
type item struct {
	path string
	info vfs.Info
}

// counters are a run's progress, updated by the walker and downloaders.
type counters struct {
	listed                     atomic.Bool
	files, filesDone, complete atomic.Int64
	bytes, bytesDone, fetched  atomic.Int64
}

func (c *counters) progress() Progress {
	return Progress{Listed: c.listed.Load(), Files: int(c.files.Load()), FilesDone: int(c.filesDone.Load()),
		Bytes: c.bytes.Load(), BytesDone: c.bytesDone.Load(), Fetched: c.fetched.Load()}
}

// run walks w and downloads what is missing or changed.
func (pn *Pinner) run(ctx context.Context, w *walk, progress func(Progress)) (Progress, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var c counters
	tell := func() {
		if progress != nil {
			progress(c.progress())
		}
	}
	items := make(chan item, 256)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel(err) })
	}
	for range pn.o.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range items {
				if ctx.Err() != nil {
					continue
				}
				if err := pn.keep(ctx, w, it, &c, tell); err != nil {
					fail(fmt.Errorf("%s: %w", it.path, err))
				}
			}
		}()
	}
	send := func(it item) bool {
		if c.files.Load() >= maxFiles {
			fail(ErrTooMany)
			return false
		}
		c.files.Add(1)
		c.bytes.Add(max(it.info.Size, 0))
		tell()
		select {
		case items <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if w.dir {
		if err := pn.walkDir(ctx, w, w.path, 0, send); err != nil {
			fail(err)
		}
	} else {
		send(item{path: w.path, info: w.self})
	}
	c.listed.Store(ctx.Err() == nil)
	close(items)
	wg.Wait()
	tell()
	p := c.progress()
	if firstErr != nil {
		return p, firstErr
	}
	if err := ctx.Err(); err != nil {
		return p, err
	}
	pn.mu.Lock()
	pn.states[pinKey{w.share, w.path}] = &State{Files: p.Files, Complete: int(c.complete.Load()), Bytes: p.Bytes, Refreshed: pn.o.Now()}
	pn.mu.Unlock()
	return p, nil
}

// walkDir lists dir and its subfolders, depth first, handing out files.
func (pn *Pinner) walkDir(ctx context.Context, w *walk, dir string, depth int, send func(item) bool) error {
	if depth > maxDepth {
		return fmt.Errorf("folders nested deeper than %d under the pin", maxDepth)
	}
	l, err := pn.o.Remote.List(ctx, w.share, dir, pn.dirURL(w, dir))
	if err != nil {
		return err
	}
	var sub []string
	for i := range l.Len() {
		e := l.At(i)
		name, in := e.Name, e.Info
		p := name
		if dir != "" {
			p = dir + "/" + name
		}
		if in.Dir {
			sub = append(sub, p)
			continue
		}
		if !send(item{path: p, info: in}) {
			return ctx.Err()
		}
	}
	for _, d := range sub {
		if err := pn.walkDir(ctx, w, d, depth+1, send); err != nil {
			return err
		}
	}
	return nil
}

// Keepable reports whether the cache can keep a file: only under an ETag
// that names its bytes (a strong one), which the mount's reads check.
func Keepable(in vfs.Info) bool { return in.ETag != "" && !strings.HasPrefix(in.ETag, "W/") }

// keep makes sure the cache holds it whole, in its listed version.
func (pn *Pinner) keep(ctx context.Context, w *walk, it item, c *counters, tell func()) error {
	k := contentcache.Key{Share: w.share, Path: it.path}
	size, version := max(it.info.Size, 0), it.info.ETag
	if !Keepable(it.info) {
		// Read from the server each time; counted done, never complete.
		c.filesDone.Add(1)
		c.bytesDone.Add(size)
		tell()
		return nil
	}
	done := func() {
		c.filesDone.Add(1)
		c.complete.Add(1)
		tell()
	}
	oldVersion, _, _, stored := pn.o.Cache.Version(k)
	if stored && oldVersion != version {
		// A new version: fetched aside, it replaces the kept one whole.
		if err := pn.replace(ctx, w, it, k, version, c, tell); err != nil {
			return err
		}
		pn.o.Remote.Changed(w.share, it.path, it.info)
		done()
		return nil
	}
	f, err := pn.o.Cache.File(k, version, size)
	if err != nil {
		return err
	}
	defer f.Release()
	if f.Complete() {
		c.bytesDone.Add(size)
		done()
		return nil
	}
	// What an earlier, interrupted download stored is kept: the blocks
	// present from the start on are not fetched again.
	chunk := blockChunk(f)
	from := int64(0)
	for bs := max(f.BlockSize(), 1); from < size && f.Has(from, min(bs, size-from)); {
		from += bs
	}
	var got int64
	err = pn.fetch(ctx, w, it, from, chunk, func(p []byte, off int64) error {
		if got == 0 && off > 0 { // the stored start counts as done
			got = off
			c.bytesDone.Add(off)
		}
		got += int64(len(p))
		c.bytesDone.Add(int64(len(p)))
		c.fetched.Add(int64(len(p)))
		tell()
		return f.WriteAt(p, off)
	})
	if err != nil {
		c.bytesDone.Add(-got)
		return err
	}
	if !f.Complete() {
		return fmt.Errorf("the cache does not hold it whole after the download")
	}
	done()
	return nil
}

// replace downloads a new version into a temporary file, then stores it
// in the cache: the old version is dropped only once the new one is here.
func (pn *Pinner) replace(ctx context.Context, w *walk, it item, k contentcache.Key, version string, c *counters, tell func()) error {
	tmp, err := os.CreateTemp(pn.o.TempDir, ".pin-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var got int64
	err = pn.fetch(ctx, w, it, 0, 1<<20, func(p []byte, off int64) error {
		got += int64(len(p))
		c.bytesDone.Add(int64(len(p)))
		c.fetched.Add(int64(len(p)))
		tell()
		_, err := tmp.WriteAt(p, off)
		return err
	})
	if err != nil {
		c.bytesDone.Add(-got)
		return err
	}
	size := max(it.info.Size, 0)
	f, err := pn.o.Cache.File(k, version, size)
	if err != nil {
		return err
	}
	defer f.Release()
	buf := make([]byte, blockChunk(f))
	for off := int64(0); off < size; off += int64(len(buf)) {
		n, err := tmp.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == min(int64(len(buf)), size-off)) {
			return err
		}
		if err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	if !f.Complete() {
		return fmt.Errorf("the cache does not hold the new version whole")
	}
	return nil
}

// blockChunk is the size of the pieces written to the cache: whole
// blocks, a few at a time.
func blockChunk(f *contentcache.File) int64 {
	bs := f.BlockSize()
	if bs <= 0 {
		bs = 1 << 20
	}
	return bs * max(1, (1<<20)/bs)
}

// fetch GETs the file from the byte from on (a partial download is
// continued where its blocks end; a server that ignores or refuses the
// range sends it whole) and hands it to write in pieces of chunk bytes at
// most. The answer must be the listed version (its ETag, when the server
// sends one) and size.
func (pn *Pinner) fetch(ctx context.Context, w *walk, it item, from, chunk int64, write func(p []byte, off int64) error) error {
	resp, off, err := pn.get(ctx, w, it, from)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	size := max(it.info.Size, 0)
	if et := resp.Header.Get("ETag"); et != "" && it.info.ETag != "" && et != it.info.ETag {
		return fmt.Errorf("%w (changed while pinned)", vfs.ErrRemoteChanged)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != size-off {
		return fmt.Errorf("%w (changed while pinned)", vfs.ErrRemoteChanged)
	}
	buf := make([]byte, min(chunk, max(size-off, 1)))
	for off < size {
		n, err := io.ReadFull(resp.Body, buf[:min(int64(len(buf)), size-off)])
		if n > 0 {
			if werr := write(buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err != nil {
			if off < size {
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					return vfs.ErrShortBody
				}
				return vfs.ReadErr("GET", err)
			}
			break
		}
	}
	return nil
}

// get starts the download of it from the byte from on, and returns the
// answer and the offset its body starts at.
func (pn *Pinner) get(ctx context.Context, w *walk, it item, from int64) (*http.Response, int64, error) {
	u := pn.fileURL(w, it.path)
	if from > 0 {
		resp, err := pn.o.Client.Do(ctx, vfs.Request{Method: http.MethodGet, URL: u, ShareID: w.share,
			Header: http.Header{"Range": {"bytes=" + strconv.FormatInt(from, 10) + "-"}}})
		if err != nil {
			return nil, 0, err
		}
		switch {
		case resp.StatusCode == http.StatusPartialContent && vfs.RangeStartsAt(resp.Header.Get("Content-Range"), from):
			return resp, from, nil
		case resp.StatusCode == http.StatusOK:
			return resp, 0, nil
		}
		vfs.DrainClose(resp) // a refused range: the whole file then
	}
	resp, err := pn.o.Client.GetWhole(ctx, w.share, u)
	return resp, 0, err
}
