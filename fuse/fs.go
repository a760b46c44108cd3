package ocmfs

import (
	"context"
	"errors"
	"fmt"
	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Entry is one accepted share as the mount shows it.
type Entry struct {
	ID     string // stable share id
	Name   string // share name from the sender (untrusted)
	Origin string // sender's OCM address, used in collision suffixes, e.g. "alice@cloud.example"
	// IsDir is the sender's word on folder vs file. It may be wrong (some
	// Nextcloud versions call folders "file"): a PROPFIND Depth 0 (HEAD when
	// PROPFIND is refused) decides.
	IsDir bool
	// URL is the absolute WebDAV URL of the shared resource (folder root or
	// the file); empty while the server has not been reached: the entry is
	// shown, and its operations fail with EHOSTUNREACH until it is set.
	URL      string
	Writable bool
	// RightsFromServer: the sender did not say what the share allows
	// (Nextcloud sends a property name instead of a list); the server's
	// oc:permissions on the share root decide, read-only until known.
	RightsFromServer bool
}

// Authorizer sets credentials on WebDAV requests of a share.
type Authorizer = vfs.Authorizer

// CredentialInvalidator is an Authorizer that can be told which credential
// got a 401 (see vfs.CredentialInvalidator).
type CredentialInvalidator = vfs.CredentialInvalidator

// Options configure a mount.
type Options struct {
	Dir    string // mount point
	FSName string // shown as the filesystem's source (df, file managers); default "ocm-agent"
	// Timeout bounds every operation that waits on a peer: a listing or a
	// metadata check as a whole, a read with its size at a minimal rate, an
	// upload without progress; beyond, ETIMEDOUT (EIO for other failures).
	// Default 5s.
	Timeout time.Duration
	// SpoolDir keeps written files until their upload succeeded; it should be
	// in the state directory so that uploads survive a crash. Required.
	SpoolDir string
	// LostFoundDir keeps spooled data that no record accounts for after a
	// crash (see LostFound). Default: "lost+found" beside SpoolDir.
	LostFoundDir string
	// Client supplies the transport for WebDAV requests (its Transport only;
	// redirect policy and timeouts are this package's). Optional.
	Client *http.Client
	Logger *slog.Logger
	// MetadataTTL is how long a directory listing (and the kernel's entry and
	// attribute caches) are trusted before asking the server again. Default 10s.
	MetadataTTL time.Duration
	// OnShareRefused, when set, hears that a share's server stopped
	// serving it: a 401 to credentials just renewed, or a 403/404 for the
	// share root (senders that revoke without notice). Called outside
	// FUSE handlers' locks; it must not block.
	OnShareRefused func(shareID string, status int)
	// MaxEntries caps the entries of one directory listing: a larger one
	// fails with EIO (logged), so that a server cannot make the agent hold
	// an endless listing. Default DefaultMaxEntries.
	MaxEntries int
	// OnShareRoot, when set, hears every server error (5xx) for a share's
	// root, and the first success after them. Same rules as OnShareRefused.
	OnShareRoot func(shareID string, status int)
	// OnShareKind, when set, hears that a share's root is a folder (dir)
	// or a file although its Entry said otherwise. Same rules.
	OnShareKind func(shareID string, dir bool)
	// DirectReadMin is the size from which a file opened for reading
	// bypasses the page cache (direct I/O): the kernel then passes the
	// program's reads as they are (up to 1 MiB; through the page cache at
	// most 128 KiB, one after the other), which makes large reads about
	// twice as fast and small ones (under 64 KiB) slower, and the file is
	// not kept in the page cache across opens. Zero or negative: never
	// (the default, so that small reads and re-reads keep their speed);
	// DirectReadSize is the size the agent's mount-direct-reads uses.
	DirectReadMin int64
	// KernelReadAhead, when positive, is the page cache's read-ahead for
	// the mount (its backing device's read_ahead_kb, which only root may
	// change): the kernel's own is at most 128 KiB, so that a sequential
	// read through the page cache is a stream of 128 KiB READs, one round
	// trip each; from 1 MiB the READs are 1 MiB (the largest a request
	// carries), and a larger read-ahead keeps several in flight: about a
	// third less CPU in the mount per GiB, an eighth of the READs. Its
	// cost: a program's first read of a file brings in up to twice what it
	// asked (a 64 KiB read of a thumbnail reads 128 KiB, not 96 KiB).
	// Zero: the kernel's, capped by the mount's 96 KiB.
	KernelReadAhead int64
	// Cache, when set, keeps the content of files read (those with a
	// strong ETag) on disk: reads are served from it when it holds the
	// version the server has, and, while the share's server cannot be
	// reached, files and listings seen before are served from it. Nil:
	// every read goes to the server.
	Cache *contentcache.Cache
	// OnShareOffline, when set, hears that a share's server stopped
	// answering (offline: connection refused, timeouts, server errors for
	// the share root) and that it answers again. Same rules as
	// OnShareRefused.
	OnShareOffline func(shareID string, offline bool)
}

// Defaults.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMetadataTTL = 10 * time.Second
	DefaultMaxEntries  = vfs.DefaultMaxEntries
	// DirectReadSize: with direct reads on, smaller files keep the page
	// cache across opens.
	DirectReadSize = 8 << 20
	subtype        = "ocm-agent"
)

// retryInterval is how often failed uploads are tried again.
var retryInterval = 30 * time.Second

// FS is a mounted share filesystem.
type FS struct {
	o      Options
	log    *slog.Logger
	dav    *vfs.Client
	auth   Authorizer
	server *fuse.Server
	root   *rootNode
	spool  *vfs.Spool
	uid    uint32
	gid    uint32
	start  time.Time
	// direct: large files are read with direct I/O; only where the kernel
	// still allows shared mappings of such files.
	direct bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	// onKept, if set (by tests), hears of each listing keepListing looked
	// at: its folder and whether it was encoded and stored.
	onKept atomic.Pointer[func(dir string, stored bool)]

	nmu   sync.Mutex
	notes []rootNote // for notifyLoop
	nkick chan struct{}

	mu      sync.Mutex
	shares  map[string]*share // by id
	names   map[string]*share // by root entry name
	unmount sync.Once
}

// Mount mounts the filesystem at o.Dir, clearing a stale mount left there by
// a killed agent first. Leftover spool files from an earlier run are uploaded
// in the background once their shares are known (see PendingUploads). ctx
// bounds the mounting only; the filesystem lives until Unmount.
func Mount(ctx context.Context, o Options, auth Authorizer) (*FS, error) {
	if o.Dir == "" {
		return nil, errors.New("mount: no directory")
	}
	if o.SpoolDir == "" {
		return nil, errors.New("mount: no spool directory")
	}
	if auth == nil {
		return nil, errors.New("mount: no authorizer")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MetadataTTL <= 0 {
		o.MetadataTTL = DefaultMetadataTTL
	}
	if o.LostFoundDir == "" {
		o.LostFoundDir = filepath.Join(filepath.Dir(filepath.Clean(o.SpoolDir)), "lost+found")
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.FSName == "" {
		o.FSName = subtype
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	o.Dir = dir
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	if err := ClearStale(dir); err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	log := o.Logger.With("component", "mount")
	f := &FS{
		o:      o,
		log:    log,
		dav:    vfs.NewClient(o.Client, auth, o.Timeout, o.MaxEntries, log),
		auth:   auth,
		uid:    uint32(os.Getuid()),
		gid:    uint32(os.Getgid()),
		start:  time.Now(),
		kick:   make(chan struct{}, 1),
		nkick:  make(chan struct{}, 1),
		shares: map[string]*share{},
		names:  map[string]*share{},
	}
	f.dav.OnRefused = f.shareRefused
	f.dav.OnReach = f.noteReach
	f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	sp, err := vfs.OpenSpool(vfs.SpoolOptions{Dir: o.SpoolDir, LostFoundDir: o.LostFoundDir, Client: f.dav, Log: f.log,
		Share: func(id string) vfs.Share {
			if sh := f.shareByID(id); sh != nil {
				return sh
			}
			return nil
		},
		Changed: f.invalidateDir, StreamIdle: o.Timeout / 2})
	if err != nil {
		f.cancel()
		return nil, fmt.Errorf("mount: %w", err)
	}
	f.spool = sp
	f.root = &rootNode{f: f}

	ttl := o.MetadataTTL
	neg := min(ttl, time.Second)
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:   o.FSName,
			Name:     subtype,
			MaxWrite: 1 << 20,
			// The kernel's first read of a file is its read-ahead window
			// (and a window of 64 KiB or less is followed at once by an
			// asynchronous one): 96 KiB keeps a 64 KiB thumbnail read at
			// 1.5x the bytes asked. Sequential reads get their read-ahead
			// from this package, in larger requests.
			MaxReadAhead:  96 << 10,
			MaxBackground: 64,
			// Replies come from memory, never from a file descriptor:
			// no splice attempt per READ.
			DisableSplice: true,
			// ls -l asks for ACL and SELinux xattrs of every entry: answer
			// ENOSYS once so that the kernel stops asking.
			DisableXAttrs: true,
			// With O_TRUNC passed to OPEN, an open for rewriting does not
			// download the old content first.
			// Large files are opened with direct I/O (see DirectReadMin);
			// ALLOW_MMAP keeps shared read-only mappings of them working.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC | fuse.CAP_DIRECT_IO_ALLOW_MMAP,
			Logger:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &neg,
		UID:             f.uid,
		GID:             f.gid,
		Logger:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	server, err := fs.Mount(dir, f.root, opts)
	if err != nil {
		f.cancel()
		f.spool.Close()
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	f.server = server
	if o.KernelReadAhead > 0 {
		if err := setReadAhead(dir, o.KernelReadAhead); err != nil {
			log.Warn("cannot set the read-ahead of the mount", "err", err)
		}
	}
	f.direct = o.DirectReadMin > 0 && server.KernelSettings().Flags64()&fuse.CAP_DIRECT_IO_ALLOW_MMAP != 0
	f.wg.Add(2)
	go f.retryLoop()
	go f.notifyLoop()
	if n := len(f.spool.PendingSessions()); n > 0 {
		log.Info("spooled writes from an earlier run wait for upload", "count", n)
	}
	log.Info("mounted", "dir", dir)
	return f, nil
}

// Unmount unmounts the filesystem (lazily if it is busy) and stops background
// work. Writes not uploaded yet stay in the spool for the next start.
func (f *FS) Unmount() error {
	var err error
	f.unmount.Do(func() {
		err = f.server.Unmount()
		if err != nil {
			f.log.Warn("unmount busy, detaching lazily", "err", err)
			if lerr := lazyUnmount(f.o.Dir); lerr != nil {
				err = fmt.Errorf("unmount %s: %w", f.o.Dir, errors.Join(err, lerr))
			} else {
				err = nil
			}
		}
		f.cancel()
		f.wg.Wait()
		f.spool.Close()
		if err == nil {
			f.log.Info("unmounted", "dir", f.o.Dir)
		}
	})
	return err
}

// Dir is the mount point.
func (f *FS) Dir() string { return f.o.Dir }

// notifyWait bounds how long SetEntries waits for the kernel to take its
// notifications: a lookup at the root in progress (which may wait on a slow
// server) holds the kernel's lock on the root until it ends.
const notifyWait = 200 * time.Millisecond

// rootNote is a change of a root entry to tell the kernel about.
type rootNote struct {
	name string
	gone bool
	done chan struct{} // closed once told; nil for none
}

// SetEntries makes the root show exactly these shares. Entries are matched to
// the current ones by ID. The kernel is told about every name that appeared or
// went away, in order, by a worker; SetEntries waits for that at most
// notifyWait (a lookup at the root in progress delays it), so it never waits
// on a server.
func (f *FS) SetEntries(entries []Entry) {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })

	var notes []rootNote
	var fresh []*share

	f.mu.Lock()
	want := make(map[string]Entry, len(sorted))
	for i, e := range sorted {
		if e.URL == "" {
			sorted[i].URL = vfs.UnresolvedURL
			e.URL = vfs.UnresolvedURL
		}
		if e.ID == "" {
			continue
		}
		want[e.ID] = e
	}
	// Leaving (or changing in a way that needs a fresh entry) first, so that
	// their names are free for the newcomers.
	for id, sh := range f.shares {
		e, ok := want[id]
		if ok && e.URL == sh.entry.URL && e.Name == sh.entry.Name && e.Origin == sh.entry.Origin {
			continue
		}
		delete(f.shares, id)
		if f.names[sh.name] == sh {
			delete(f.names, sh.name)
		}
		sh.markGone()
		notes = append(notes, rootNote{name: sh.name, gone: true})
	}
	taken := func(n string) bool { _, ok := f.names[n]; return ok }
	for _, e := range sorted {
		if e.ID == "" {
			continue
		}
		if sh, ok := f.shares[e.ID]; ok {
			sh.setRights(e.Writable, e.RightsFromServer)
			continue
		}
		sh := newShare(f, e)
		sh.name = vfs.UniqueName(e.Name, e.Origin, e.IsDir, taken)
		f.shares[e.ID] = sh
		f.names[sh.name] = sh
		fresh = append(fresh, sh)
		notes = append(notes, rootNote{name: sh.name})
	}
	f.mu.Unlock()

	for _, sh := range fresh {
		sh.startResolve()
	}
	if len(notes) > 0 {
		done := make(chan struct{})
		notes[len(notes)-1].done = done
		f.notify(notes...)
		t := time.NewTimer(notifyWait)
		select {
		case <-done:
		case <-t.C:
			f.log.Debug("the kernel is busy with the root; its entries are updated in the background")
		}
		t.Stop()
	}
	if len(fresh) > 0 {
		f.kickRetry()
	}
}

// notify queues changes of root entries for notifyLoop.
func (f *FS) notify(notes ...rootNote) {
	f.nmu.Lock()
	f.notes = append(f.notes, notes...)
	f.nmu.Unlock()
	select {
	case f.nkick <- struct{}{}:
	default:
	}
}

// notifyLoop tells the kernel about changed root entries, in order, until
// the mount ends. Kernel notifications are sent here, never from a FUSE
// handler: the kernel holds the directory lock while it waits for a handler.
func (f *FS) notifyLoop() {
	defer f.wg.Done()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.nkick:
		}
		for {
			f.nmu.Lock()
			batch := f.notes
			f.notes = nil
			f.nmu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, n := range batch {
				if n.gone {
					f.dropRootChild(n.name)
				} else {
					f.root.NotifyEntry(n.name)
				}
				if n.done != nil {
					close(n.done)
				}
			}
		}
	}
}

// dropRootChild forgets the root entry name in go-fuse's tree and the kernel.
func (f *FS) dropRootChild(name string) {
	if child := f.root.GetChild(name); child != nil {
		f.root.NotifyDelete(name, child)
		f.root.RmChild(name)
	} else {
		f.root.NotifyEntry(name)
	}
}

// shareByName returns the share shown under name at the root.
func (f *FS) shareByName(name string) *share {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.names[name]
}

// shareByID returns the mounted share with id, or nil.
func (f *FS) shareByID(id string) *share {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shares[id]
}

// rootNames returns the root entries, sorted.
func (f *FS) rootNames() []*share {
	f.mu.Lock()
	out := make([]*share, 0, len(f.names))
	for _, sh := range f.names {
		out = append(out, sh)
	}
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// PendingUploads describes spooled writes that are not on their server yet
// and are not held open by a program: after a failed upload, or left by an
// earlier run. Each line names the share, the path inside it, the size and the
// last error.
func (f *FS) PendingUploads() []string {
	return f.spool.Pending()
}

// LostFound describes files kept in the lost+found directory: spooled data
// that no record accounted for on a start (after a power cut, say). They stay
// until the person deletes them.
func (f *FS) LostFound() []string {
	return f.spool.LostFound()
}

// Conflicts describes the latest files that changed on the server while they
// were written here, and the name the local version was saved under.
func (f *FS) Conflicts() []string {
	return f.spool.Conflicts()
}

func (f *FS) kickRetry() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// retryLoop uploads spooled files whose upload failed or that an earlier run
// left, until the mount ends.
func (f *FS) retryLoop() {
	defer f.wg.Done()
	t := time.NewTicker(retryInterval)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
		f.spool.RetryPending(f.ctx)
	}
}

// attrTimes fills times; a zero mtime (unknown) shows as the mount time.
func (f *FS) attrTimes(a *fuse.Attr, mtime time.Time) {
	if mtime.IsZero() {
		mtime = f.start
	}
	a.SetTimes(&mtime, &mtime, &mtime)
}

// fillAttr describes a remote file or directory.
func (f *FS) fillAttr(a *fuse.Attr, in vfs.Info, writable bool) {
	if in.Dir {
		a.Mode = syscall.S_IFDIR | 0o555
		if writable {
			a.Mode |= 0o200
		}
		a.Nlink = 2
		a.Size = 4096
	} else {
		a.Mode = syscall.S_IFREG | 0o444
		if writable {
			a.Mode |= 0o200
		}
		a.Nlink = 1
		a.Size = uint64(max(in.Size, 0))
		// A large block size makes cp, cat and friends read 1 MiB at a time.
		a.Blksize = 1 << 20
	}
	a.Blocks = (a.Size + 511) / 512
	a.Owner = fuse.Owner{Uid: f.uid, Gid: f.gid}
	f.attrTimes(a, in.Mtime)
}

func (f *FS) entryOut(out *fuse.EntryOut, in vfs.Info, writable bool) {
	f.fillAttr(&out.Attr, in, writable)
	out.SetEntryTimeout(f.o.MetadataTTL)
	out.SetAttrTimeout(f.o.MetadataTTL)
}

// refuseWrite logs a write attempt on a read-only share and returns EROFS.
func (f *FS) refuseWrite(sh *share, op string) syscall.Errno {
	sh.logRefusal(op)
	return syscall.EROFS
}
