package ocmfs

import (
	"context"
	"errors"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// resolveBackoff is how long a failed type check of a share is trusted before
// a lookup tries again.
const resolveBackoff = 2 * time.Second

// refusalLogEvery limits the log lines about writes refused on a read-only share.
const refusalLogEvery = time.Minute

// share is the state of one root entry.
type share struct {
	f     *FS
	id    string
	entry Entry // immutable after newShare except Writable (under mu)
	name  string

	mu        sync.Mutex
	writable  bool
	fromSrv   bool   // rights come from the server's oc:permissions
	srvPerms  string // oc:permissions of the share root, "" until known
	gone      bool
	known     bool          // dir/url/rootInfo come from the server
	dir       bool          // best knowledge of folder vs file
	url       string        // folder: ends in '/'; file: the file
	headOnly  bool          // PROPFIND refused: metadata from HEAD
	resolving chan struct{} // closed when the running check ends
	lastTry   time.Time
	lastErr   error
	rootInfo  vfs.Info
	rootAt    time.Time
	refusedAt time.Time
	noRanges  bool // the server would not serve a byte range (logged once)
	// rootFailing: the last answer for the root was a server error.
	rootFailing bool
	offline     bool // the server could not be reached at the last request
	probing     bool // offline.go
	probedAt    time.Time
}

func newShare(f *FS, e Entry) *share {
	sh := &share{f: f, id: e.ID, entry: e, writable: e.Writable, fromSrv: e.RightsFromServer, dir: e.IsDir, url: e.URL}
	if sh.dir {
		sh.url = withSlash(e.URL)
	}
	sh.rootInfo = vfs.Info{Dir: sh.dir}
	return sh
}

func withSlash(u string) string {
	if strings.HasSuffix(u, "/") {
		return u
	}
	return u + "/"
}

func (sh *share) setRights(w, fromServer bool) {
	sh.mu.Lock()
	sh.writable, sh.fromSrv = w, fromServer
	sh.mu.Unlock()
}

// serverWrite are the oc:permissions letters that allow changes: W write,
// C/K create files/folders, D delete, N rename, V move.
const serverWrite = "WCKDNV"

func (sh *share) isWritable() bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.fromSrv {
		return strings.ContainsAny(sh.srvPerms, serverWrite)
	}
	return sh.writable
}

// unresolved reports whether the share's server has not been reached yet
// (the agent gave no URL): it is shown, but holds nothing to read.
func (sh *share) unresolved() bool { return sh.entry.URL == vfs.UnresolvedURL }

func (sh *share) markGone() {
	sh.mu.Lock()
	sh.gone = true
	sh.mu.Unlock()
}

func (sh *share) isGone() bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.gone
}

// state returns what is known: folder or file, the URL, the root's info.
func (sh *share) state() (dir bool, u string, in vfs.Info) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.dir, sh.url, sh.rootInfo
}

// checked reports whether the server has told what the share is, and the
// error of the last check if it has not.
func (sh *share) checked() (bool, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.known, sh.lastErr
}

func (sh *share) logRefusal(op string) {
	sh.mu.Lock()
	now := time.Now()
	logIt := now.Sub(sh.refusedAt) >= refusalLogEvery
	if logIt {
		sh.refusedAt = now
	}
	sh.mu.Unlock()
	if logIt {
		sh.f.log.Warn("write refused: the share is read-only", "share", sh.id, "entry", sh.name, "op", op)
	}
}

// noteRangesRefused logs, once per share, that its server does not serve
// byte ranges (ignored: it sent whole files instead).
func (sh *share) noteRangesRefused(ignored bool) {
	sh.mu.Lock()
	first := !sh.noRanges
	sh.noRanges = true
	sh.mu.Unlock()
	if first {
		how := "refused"
		if ignored {
			how = "ignored"
		}
		sh.f.log.Info("the server does not serve byte ranges: files are read whole", "share", sh.id, "entry", sh.name, "range", how)
	}
}

// startResolve begins a type check in the background unless one runs or one
// failed recently. It returns a channel closed when the running check ends, or
// nil when none runs.
func (sh *share) startResolve() <-chan struct{} {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.known || sh.gone {
		return nil
	}
	if sh.resolving != nil {
		return sh.resolving
	}
	if !sh.lastTry.IsZero() && time.Since(sh.lastTry) < resolveBackoff {
		return nil
	}
	ch := make(chan struct{})
	sh.resolving = ch
	sh.f.wg.Add(1)
	go func() {
		defer sh.f.wg.Done()
		sh.resolve(sh.f.ctx)
	}()
	return ch
}

// awaitResolved waits (bounded) for the type check of a share that has not
// been checked yet, starting one if needed.
func (sh *share) awaitResolved() {
	ch := sh.startResolve()
	if ch == nil {
		return
	}
	t := time.NewTimer(sh.f.o.Timeout + time.Second)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// resolve asks the server what the share is: PROPFIND Depth 0, or HEAD when
// PROPFIND is refused (a file share then). A changed type is told to the
// kernel (this runs outside FUSE handlers).
func (sh *share) resolve(ctx context.Context) {
	in, dir, u, headOnly, err := sh.probe(ctx)
	sh.mu.Lock()
	guessed := sh.dir
	failedBefore := sh.lastErr != nil
	sh.lastTry = time.Now()
	sh.lastErr = err
	if err == nil {
		sh.known = true
		sh.dir = dir
		sh.url = u
		sh.headOnly = headOnly
		sh.rootInfo = in
		sh.rootAt = time.Now()
		if in.Perms != "" {
			sh.srvPerms = in.Perms
		}
	}
	ch := sh.resolving
	sh.resolving = nil
	name, gone := sh.name, sh.gone
	sh.mu.Unlock()
	close(ch)
	if err != nil {
		// Said once until it works again: lookups retry every few seconds.
		level := slog.LevelDebug
		if !failedBefore {
			level = slog.LevelWarn
		}
		sh.f.log.Log(ctx, level, "share not reachable", "share", sh.id, "entry", name, "err", err)
		return
	}
	if guessed != dir {
		sh.f.log.Info("share type corrected by the server", "share", sh.id, "entry", name, "dir", dir)
	}
	sh.f.tellKind(sh, dir)
	if gone {
		return
	}
	if child := sh.f.root.GetChild(name); child != nil && child.IsDir() != dir {
		sh.f.dropRootChild(name)
	}
}

// probe finds the type and metadata of the shared resource.
func (sh *share) probe(ctx context.Context) (in vfs.Info, dir bool, u string, headOnly bool, err error) {
	ctx, cancel := sh.f.dav.WithDeadline(ctx)
	defer cancel()
	u = sh.entry.URL
	l, final, err := sh.f.dav.Propfind(ctx, sh.id, u, "0", nil)
	if err == nil {
		in = l.Self
		if in.Dir {
			return in, true, withSlash(final), false, nil
		}
		return in, false, strings.TrimSuffix(final, "/"), false, nil
	}
	var se *vfs.StatusError
	if !errors.As(err, &se) || (se.Code != http.StatusMethodNotAllowed && se.Code != http.StatusNotImplemented && se.Code != http.StatusBadRequest) {
		return vfs.Info{}, false, "", false, err
	}
	// Seen in the wild: a file share served by GET/HEAD only.
	in, herr := sh.f.dav.Head(ctx, sh.id, u)
	if herr != nil {
		return vfs.Info{}, false, "", false, herr
	}
	return in, false, u, true, nil
}

// fileInfo refreshes the metadata of a file share's root when stale.
func (sh *share) fileInfo(ctx context.Context, maxAge time.Duration) (vfs.Info, error) {
	sh.mu.Lock()
	if sh.known && time.Since(sh.rootAt) < maxAge {
		in := sh.rootInfo
		sh.mu.Unlock()
		return in, nil
	}
	u, headOnly := sh.url, sh.headOnly
	sh.mu.Unlock()
	ctx, cancel := sh.f.dav.WithDeadline(ctx)
	defer cancel()
	var in vfs.Info
	var err error
	if headOnly {
		in, err = sh.f.dav.Head(ctx, sh.id, u)
	} else {
		var l *vfs.Listing
		l, _, err = sh.f.dav.Propfind(ctx, sh.id, u, "0", nil)
		if err == nil {
			in = l.Self
		} else if se := (*vfs.StatusError)(nil); errors.As(err, &se) && (se.Code == http.StatusMethodNotAllowed || se.Code == http.StatusNotImplemented) {
			in, err = sh.f.dav.Head(ctx, sh.id, u)
			if err == nil {
				sh.mu.Lock()
				sh.headOnly = true
				sh.mu.Unlock()
			}
		}
	}
	if err != nil {
		return vfs.Info{}, err
	}
	sh.mu.Lock()
	sh.rootInfo, sh.rootAt, sh.known = in, time.Now(), true
	sh.mu.Unlock()
	return in, nil
}

// setFileInfo records the metadata of a file share's root after an upload.
func (sh *share) setFileInfo(in vfs.Info) {
	sh.mu.Lock()
	sh.rootInfo, sh.rootAt = in, time.Now()
	sh.mu.Unlock()
}

// fileURL is the URL of the file at segs (empty for a file share's root).
func (sh *share) fileURL(segs []string) string {
	dir, u, _ := sh.state()
	if !dir {
		return u
	}
	return vfs.ChildURL(u, segs, false)
}

// dirURL is the URL of the directory at segs, ending in '/'.
func (sh *share) dirURL(segs []string) string {
	_, u, _ := sh.state()
	return vfs.ChildURL(u, segs, true)
}

// ID, Name, FileURL and Gone make a share what the spool needs (Share).
func (sh *share) ID() string                   { return sh.id }
func (sh *share) Name() string                 { return sh.name }
func (sh *share) FileURL(segs []string) string { return sh.fileURL(segs) }
func (sh *share) Gone() bool                   { return sh.isGone() }
