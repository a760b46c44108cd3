package vfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The spool keeps every file being written as <key>.data in the spool
// directory, with a <key>.json record beside it saying where it belongs and
// whether its content differs from the server's. An agent killed at any point
// (or a machine losing power) finds on the next start every file whose
// upload had not succeeded, and uploads it:
//
//   - a record is written to a temporary file, fsync'd, renamed into place,
//     and the directory fsync'd (the first record of a copy never fsync'd
//     is written in place, see writeMetaLocked);
//   - a file written from nothing or from the server's copy is uploaded at
//     close without any fsync: when the server answers 2xx it has the
//     data, and the spool entry goes. Until its data is fsync'd its record
//     carries the machine's boot id (Record.Boot), written but not
//     fsync'd: a start in the same boot finds exactly what was written (a
//     killed agent loses nothing from the page cache) and uploads it; a
//     start after a power cut cannot tell a torn copy, or one the server
//     already has, from a good one, so it keeps it in lost+found rather
//     than upload it (no spurious conflicted copy, no overwrite). After
//     the upload of such a file its data file's name is removed at once
//     (the record goes with the last handle): a record without data is
//     dropped on start, and no record is rewritten, which on ext4 would
//     start a write-back of the new record (auto_da_alloc) before close
//     returns. The removals are made durable in the background, batched.
//     A copy found on start whose conditional upload is refused is first
//     compared with the server's file: the agent may have stopped between
//     the server's answer and the removal (sameOnServer);
//   - when an upload fails, or a program calls fsync(2) on a file that
//     cannot be uploaded, the data, its record and the directory are
//     fsync'd before close(2) or fsync(2) return; the same holds for a
//     file uploaded while it is written (stream.go). A file fsync'd once
//     is fsync'd before every upload;
//   - on start, data that no record accounts for is never deleted: it is
//     moved to the lost+found directory and reported (LostFound).
//
// Nothing is deleted before the server answered the upload.

// Record is the <key>.json record of a file in the spool.
type Record struct {
	Share   string    `json:"share"`
	Entry   string    `json:"entry,omitempty"` // root entry name, for reports
	Path    []string  `json:"path"`            // below the share's root; empty for a file share
	Created bool      `json:"created"`         // not on the server at all yet
	Clean   bool      `json:"clean,omitempty"` // the server has this content: nothing to upload
	Base    string    `json:"base,omitempty"`  // ETag of the server's version this copy started from
	Mtime   time.Time `json:"mtime"`
	Saved   time.Time `json:"saved"`
	Error   string    `json:"error,omitempty"`
	// Boot is the boot id of the machine when the data was written and not
	// fsync'd; empty once it is on disk.
	Boot string `json:"boot,omitempty"`
}

// BootID returns the machine's boot id, "" when it cannot be known (then
// every file is fsync'd before its upload). A variable so that tests can
// restart the machine.
var BootID = func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// dirSyncDelay batches the background fsyncs of the spool directory that
// make removals after uploads durable.
const dirSyncDelay = 200 * time.Millisecond

// SyncFile makes what was written to f durable (a variable so that tests
// can see what was synced, and when).
var SyncFile = func(f *os.File) error { return f.Sync() }

// syncDir makes the entries of dir (files created, renamed, removed) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return SyncFile(d)
}

// Share is what the spool needs of a mounted share.
type Share interface {
	ID() string
	Name() string // its entry in the mount's root, for reports
	FileURL(segs []string) string
	Gone() bool // it left the mount
}

// SpoolOptions configure a spool.
type SpoolOptions struct {
	Dir          string // the spool; created 0700
	LostFoundDir string // where data no record accounts for is kept
	Client       WebDAV
	Log          *slog.Logger
	// Now is the clock of modification times, records and conflicted
	// copies' names. Default time.Now.
	Now func() time.Time
	// Share returns the mounted share of an id, nil when there is none.
	Share func(id string) Share
	// Changed hears that the directory holding the file at segs changed on
	// the server (an upload or a conflicted copy), for cached listings.
	Changed func(shareID string, segs []string)
	// StreamIdle is how long an upload running while its file is written
	// waits for the writer before it ends its body (default 2 s; below
	// the client's timeout).
	StreamIdle time.Duration
}

type Spool struct {
	dir     string
	lostDir string // where data no record accounts for is kept
	dav     WebDAV
	log     *slog.Logger
	now     func() time.Time
	share   func(id string) Share
	changed func(shareID string, segs []string)

	mu     sync.Mutex
	byPath map[string]*WriteSession
	count  atomic.Int32

	cmu       sync.Mutex
	conflicts []string // latest last, bounded

	streamIdle time.Duration
	ctx        context.Context // of the uploads that run while files are written
	cancel     context.CancelFunc
	smu        sync.Mutex
	noStream   map[string]bool // shares whose server refused a chunked upload

	boot      string      // this boot's id ("": unknown)
	dirSyncOn atomic.Bool // a background fsync of the directory is due
}

// Idle reports whether no file is in the spool.
func (s *Spool) Idle() bool { return s.count.Load() == 0 }

// NewHere reports whether the file exists only here: created, not yet
// uploaded, not removed.
func (ws *WriteSession) NewHere() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.created && !ws.unlinked
}

// Unsent reports whether the local copy differs from the server's.
func (ws *WriteSession) Unsent() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.dirty && !ws.unlinked
}

// WriteSession is the local copy of one remote file being written, shared by
// all handles open on it.
type WriteSession struct {
	sp  *Spool
	key string

	upMu sync.Mutex // one upload at a time

	// refs is guarded by sp.mu; the rest by mu.
	refs      int
	mu        sync.Mutex
	shareID   string
	entry     string
	segs      []string
	file      *os.File
	size      int64
	mtime     time.Time
	gen       uint64
	synced    uint64 // gen whose data was last fsync'd
	dirty     bool
	created   bool
	unlinked  bool
	base      string // ETag of the server's version the copy is based on ("" unknown)
	metaStale bool   // the record on disk does not say what this session is
	lastErr   error
	ready     chan struct{}
	readyErr  error
	// entryDurable: the data file's directory entry is on disk.
	entryDurable bool
	// detached: the data file's name was removed after an upload of a
	// copy never fsync'd (the server has it); the descriptor still reads
	// it. A change copies it back under a new key (reattachLocked).
	detached bool
	recorded bool       // a record was written under key
	retired  []*os.File // data files replaced by reattachLocked, closed with the session
	// recovered: found in the spool on start, not uploaded since; the
	// server may already have it (see sameOnServer).
	recovered bool
	// boot is the boot id while the data and record are not fsync'd ("" once
	// they are, or when the boot is unknown): see Record.Boot.
	boot     string
	streamOK bool      // the copy started empty and may be uploaded while written
	stream   *upStream // that upload, while it runs
}

func pathKey(shareID string, segs []string) string {
	return shareID + "\x00" + strings.Join(segs, "\x00")
}

func OpenSpool(o SpoolOptions) (*Spool, error) {
	dir := o.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Changed == nil {
		o.Changed = func(string, []string) {}
	}
	if o.StreamIdle <= 0 {
		o.StreamIdle = 2 * time.Second
	}
	s := &Spool{dir: dir, lostDir: o.LostFoundDir, dav: o.Client, log: o.Log, now: o.Now, share: o.Share,
		changed: o.Changed, byPath: map[string]*WriteSession{}, streamIdle: o.StreamIdle, boot: BootID()}
	// Streams end with Close, which settles them first.
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.load(); err != nil {
		s.cancel()
		return nil, err
	}
	return s, nil
}

// load picks up what an earlier run left. A record saying the copy differs
// from the server's makes it wait for upload; a clean one lets it go. Data
// that no readable record accounts for (a record lost or torn by a power
// cut) goes to lost+found, never away.
func (s *Spool) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	datas := map[string]bool{}
	metas := map[string]bool{}
	tmps := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".json.tmp"):
			tmps[strings.TrimSuffix(name, ".json.tmp")] = true
		case strings.HasSuffix(name, ".json"):
			metas[strings.TrimSuffix(name, ".json")] = true
		case strings.HasSuffix(name, ".data"):
			datas[strings.TrimSuffix(name, ".data")] = true
		}
	}
	// A record cut off between its write (fsync'd) and its rename: a
	// complete temporary file is the newest word; a torn one is dropped.
	for key := range tmps {
		tmp := s.metaPath(key) + ".tmp"
		if _, ok := ReadRecord(tmp); ok {
			if err := os.Rename(tmp, s.metaPath(key)); err == nil {
				metas[key] = true
				continue
			}
		}
		_ = os.Remove(tmp)
	}
	for key := range datas {
		if metas[key] {
			continue
		}
		s.keepLost(key, "no record")
	}
	for key := range metas {
		mp := s.metaPath(key)
		m, ok := ReadRecord(mp)
		if !datas[key] {
			// Nothing to lose: the data was removed after its upload.
			_ = os.Remove(mp)
			continue
		}
		if !ok {
			s.keepLost(key, "unreadable record")
			continue
		}
		if m.Clean {
			// The server has it; data first, so that a crash here leaves a
			// record without data, which the next start drops.
			_ = os.Remove(s.dataPath(key))
			_ = os.Remove(mp)
			continue
		}
		if m.Boot != "" && m.Boot != s.boot {
			// Never fsync'd, and the machine restarted since: the copy may
			// be torn, or already on the server (its removal lost).
			s.keepLost(key, "not fsync'd before the machine restarted; it may be incomplete or already on the server")
			continue
		}
		file, err := os.OpenFile(s.dataPath(key), os.O_RDWR, 0)
		if err != nil {
			s.log.Warn("spooled data cannot be opened; it stays in the spool", "file", s.dataPath(key), "err", err)
			continue
		}
		st, err := file.Stat()
		if err != nil {
			_ = file.Close()
			continue
		}
		ws := &WriteSession{
			sp: s, key: key, shareID: m.Share, entry: m.Entry, segs: m.Path, file: file,
			size: st.Size(), mtime: m.Mtime, dirty: true, created: m.Created, base: m.Base,
			ready: make(chan struct{}), boot: m.Boot, recorded: true, recovered: true,
		}
		ws.synced = ws.gen
		if m.Error != "" {
			ws.lastErr = errors.New(m.Error)
		}
		close(ws.ready)
		pk := pathKey(m.Share, m.Path)
		if old := s.byPath[pk]; old != nil {
			// Two records for one path: the later write wins, as it would
			// have; the other is kept aside, not deleted.
			if old.mtime.After(ws.mtime) {
				_ = file.Close()
				s.keepLost(key, "older copy of "+strings.Join(m.Path, "/"))
				continue
			}
			old.mu.Lock()
			if old.file != nil {
				_ = old.file.Close()
				old.file = nil
			}
			old.mu.Unlock()
			s.keepLost(old.key, "older copy of "+strings.Join(m.Path, "/"))
		}
		s.byPath[pk] = ws
	}
	s.count.Store(int32(len(s.byPath)))
	return nil
}

// ReadRecord reads a record; ok is false for a missing, torn or empty one.
func ReadRecord(p string) (Record, bool) {
	var m Record
	b, err := os.ReadFile(p)
	if err != nil || json.Unmarshal(b, &m) != nil || m.Share == "" {
		return Record{}, false
	}
	if m.Path == nil {
		m.Path = []string{}
	}
	return m, true
}

// keepLost moves the data of key (and its record, if any) to lost+found.
// An empty data file held nothing and is removed.
// It returns where the data went ("" when it stayed or was empty).
func (s *Spool) keepLost(key, why string) string {
	dp, mp := s.dataPath(key), s.metaPath(key)
	if st, err := os.Stat(dp); err == nil && st.Size() == 0 {
		_ = os.Remove(dp)
		_ = os.Remove(mp)
		return ""
	}
	if err := os.MkdirAll(s.lostDir, 0o700); err != nil {
		s.log.Error("spooled data could not be moved to lost+found; it stays in the spool", "file", dp, "why", why, "err", err)
		return ""
	}
	stem := s.now().UTC().Format("20060102T150405Z") + "-" + key
	dst := filepath.Join(s.lostDir, stem+".data")
	if err := os.Rename(dp, dst); err != nil {
		s.log.Error("spooled data could not be moved to lost+found; it stays in the spool", "file", dp, "why", why, "err", err)
		return ""
	}
	if _, err := os.Stat(mp); err == nil {
		_ = os.Rename(mp, filepath.Join(s.lostDir, stem+".json"))
	}
	_ = syncDir(s.lostDir)
	_ = syncDir(s.dir)
	s.log.Warn("spooled data kept in lost+found", "file", dst, "why", why)
	return dst
}

// setAside keeps the local version of a file share that changed on the
// server meanwhile: a file share has no folder for a conflicted copy, so it
// goes to lost+found, and the person is told.
func (s *Spool) setAside(ws *WriteSession, name string) {
	s.mu.Lock()
	s.dropLocked(ws)
	s.mu.Unlock()
	ws.mu.Lock()
	ws.unlinked = true // nothing to upload any more
	ws.mu.Unlock()
	dst := s.keepLost(ws.key, "changed on the server")
	if dst == "" {
		return
	}
	s.log.Warn("the file changed on the server while it was written here: the local version is kept in lost+found",
		"share", ws.shareID, "file", name, "local version", dst)
	s.noteConflict(name + ": changed on the server while written here; this version was kept in " + dst)
}

// LostFound describes the files in lost+found: path, size and, when its
// record could be read, where it belonged.
func (s *Spool) LostFound() []string {
	ents, err := os.ReadDir(s.lostDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".data") {
			continue
		}
		p := filepath.Join(s.lostDir, e.Name())
		line := p
		if st, err := e.Info(); err == nil {
			line += " (" + strconv.FormatInt(st.Size(), 10) + " bytes)"
		}
		if m, ok := ReadRecord(strings.TrimSuffix(p, ".data") + ".json"); ok {
			name := m.Entry
			if name == "" {
				name = m.Share
			}
			line += ", was " + strings.Join(append([]string{name}, m.Path...), "/")
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

func newKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Spool) dataPath(key string) string { return filepath.Join(s.dir, key+".data") }
func (s *Spool) metaPath(key string) string { return filepath.Join(s.dir, key+".json") }

// Acquire returns the session for the file at segs, creating it if needed.
// The new session starts empty when trunc or create is set, otherwise with
// the server's content (cur.size bytes, downloaded). cur is what the mount
// knows of the server's file: its ETag is the version the copy is based on.
// Every acquire is paired with a release.
func (s *Spool) Acquire(ctx context.Context, sh Share, segs []string, trunc, create bool, cur Info) (*WriteSession, error) {
	pk := pathKey(sh.ID(), segs)
	s.mu.Lock()
	if ws := s.byPath[pk]; ws != nil {
		ws.refs++
		s.mu.Unlock()
		<-ws.ready
		if ws.readyErr != nil {
			s.Release(ws)
			return nil, ws.readyErr
		}
		if trunc {
			if err := ws.Truncate(0); err != nil {
				s.Release(ws)
				return nil, err
			}
		}
		return ws, nil
	}
	key := newKey()
	file, err := openFile(s.dataPath(key), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("spool: %w", err)
	}
	ws := &WriteSession{
		sp: s, key: key, refs: 1, shareID: sh.ID(), entry: sh.Name(), segs: append([]string(nil), segs...),
		file: file, mtime: s.now(), created: create, ready: make(chan struct{}), streamOK: trunc || create,
		boot: s.boot,
	}
	if !create {
		ws.base = cur.ETag
	}
	s.byPath[pk] = ws
	s.count.Add(1)
	s.mu.Unlock()

	var rerr error
	ws.mu.Lock()
	if trunc || create {
		rerr = ws.markDirty()
	} else {
		// A clean record: after a crash this copy is known to hold nothing
		// the server lacks.
		rerr = s.writeMetaLocked(ws)
	}
	ws.mu.Unlock()
	if rerr == nil && !trunc && !create && cur.Size != 0 {
		var n int64
		var etag string
		n, etag, rerr = s.download(ctx, sh, segs, file)
		if rerr == nil {
			ws.mu.Lock()
			ws.size = n
			if etag != "" && etag != ws.base {
				ws.base = etag
				rerr = s.writeMetaLocked(ws)
			}
			ws.mu.Unlock()
		}
	}
	ws.readyErr = rerr
	close(ws.ready)
	if rerr != nil {
		s.Release(ws)
		return nil, rerr
	}
	return ws, nil
}

// Lookup returns the session for a path, or nil.
func (s *Spool) Lookup(shareID string, segs []string) *WriteSession {
	if s.count.Load() == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byPath[pathKey(shareID, segs)]
}

// Hold takes one more reference on ws.
func (s *Spool) Hold(ws *WriteSession) {
	s.mu.Lock()
	ws.refs++
	s.mu.Unlock()
}

// Release drops a reference. The last one removes a session whose content is
// on the server (or that was unlinked); a dirty one stays for retryPending.
func (s *Spool) Release(ws *WriteSession) {
	s.mu.Lock()
	ws.refs--
	if ws.refs > 0 {
		s.mu.Unlock()
		return
	}
	ws.mu.Lock()
	clean := !ws.dirty || ws.unlinked
	ws.mu.Unlock()
	if !clean {
		s.mu.Unlock()
		return
	}
	s.dropLocked(ws)
	s.mu.Unlock()
	ws.remove()
}

func (s *Spool) dropLocked(ws *WriteSession) {
	for k, v := range s.byPath {
		if v == ws {
			delete(s.byPath, k)
			s.count.Add(-1)
			return
		}
	}
}

// LocalOnly reports whether the file at a path exists only in the spool
// (created here, never uploaded).
func (s *Spool) LocalOnly(shareID string, segs []string) bool {
	ws := s.Lookup(shareID, segs)
	if ws == nil {
		return false
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.created && !ws.unlinked
}

// Discard marks the session at a path as unlinked (its data will not be
// uploaded) and reports whether the file ever reached the server.
func (s *Spool) Discard(shareID string, segs []string) (existed bool, onServer bool) {
	s.mu.Lock()
	ws := s.byPath[pathKey(shareID, segs)]
	if ws == nil {
		s.mu.Unlock()
		return false, true
	}
	s.dropLocked(ws)
	refs := ws.refs
	s.mu.Unlock()
	ws.mu.Lock()
	ws.abortStreamLocked()
	ws.unlinked = true
	onServer = !ws.created
	ws.mu.Unlock()
	// Handles still open keep reading through their descriptor.
	ws.unlinkFiles()
	if refs == 0 {
		ws.remove()
	}
	return true, onServer
}

// Rekey moves sessions at or below from to the same place below to (a
// rename). The records of sessions with unsent data are rewritten (durably)
// so that a crash does not upload to the old name. When one cannot be, its
// old record is removed instead (the data then goes to lost+found on the
// next start rather than to the old name), the rewrite is tried again before
// the next upload, and the error is returned.
func (s *Spool) Rekey(shareID string, from, to []string) error {
	if s.count.Load() == 0 {
		return nil
	}
	prefix := pathKey(shareID, from)
	s.mu.Lock()
	var moved []*WriteSession
	for k, ws := range s.byPath {
		if k != prefix && !strings.HasPrefix(k, prefix+"\x00") {
			continue
		}
		delete(s.byPath, k)
		moved = append(moved, ws)
	}
	var errs []error
	for _, ws := range moved {
		ws.mu.Lock()
		ws.abortStreamLocked() // it uploads to the old name
		ws.segs = append(append([]string(nil), to...), ws.segs[len(from):]...)
		if !ws.dirty && !ws.metaStale {
			// A clean record names nothing to upload: its path does not matter.
		} else if err := s.writeMetaLocked(ws); err != nil {
			ws.metaStale = true
			if rerr := os.Remove(s.metaPath(ws.key)); rerr == nil || errors.Is(rerr, os.ErrNotExist) {
				_ = syncDir(s.dir)
			}
			s.log.Error("spool record not updated after a rename; the data stays in the spool", "share", shareID, "err", err)
			errs = append(errs, err)
		}
		pk := pathKey(shareID, ws.segs)
		ws.mu.Unlock()
		if old := s.byPath[pk]; old != nil {
			// Replaced by the rename, as the remote file will be.
			s.dropLocked(old)
			old.mu.Lock()
			old.unlinked = true
			old.mu.Unlock()
			old.unlinkFiles()
		}
		s.byPath[pk] = ws
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// LocalChildren returns the files in the directory at dir that exist only in
// the spool so far (created, not uploaded).
func (s *Spool) LocalChildren(shareID string, dir []string) map[string]Info {
	if s.count.Load() == 0 {
		return nil
	}
	prefix := pathKey(shareID, dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out map[string]Info
	for _, ws := range s.byPath {
		if ws.shareID != shareID || len(ws.segs) != len(dir)+1 {
			continue
		}
		if pathKey(shareID, ws.segs[:len(dir)]) != prefix {
			continue
		}
		ws.mu.Lock()
		if ws.created && !ws.unlinked {
			if out == nil {
				out = map[string]Info{}
			}
			out[ws.segs[len(dir)]] = Info{Size: ws.size, Mtime: ws.mtime}
		}
		ws.mu.Unlock()
	}
	return out
}

// HasUnder reports whether a session exists below the directory at dir.
func (s *Spool) HasUnder(shareID string, dir []string) bool {
	if s.count.Load() == 0 {
		return false
	}
	prefix := pathKey(shareID, dir) + "\x00"
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.byPath {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// PendingSessions returns the sessions not held open whose content is not on the
// server, oldest key first.
func (s *Spool) PendingSessions() []*WriteSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*WriteSession
	for _, ws := range s.byPath {
		ws.mu.Lock()
		p := ws.dirty && !ws.unlinked && (ws.refs == 0 || ws.lastErr != nil)
		ws.mu.Unlock()
		if p {
			out = append(out, ws)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// Pending describes the files whose upload is pending, for status reports.
func (s *Spool) Pending() []string {
	var out []string
	for _, ws := range s.PendingSessions() {
		ws.mu.Lock()
		name := ws.entry
		if name == "" {
			name = ws.shareID
		}
		line := strings.Join(append([]string{name}, ws.segs...), "/") + " (" + strconv.FormatInt(ws.size, 10) + " bytes)"
		if ws.lastErr != nil {
			line += ": " + ws.lastErr.Error()
		}
		ws.mu.Unlock()
		out = append(out, line)
	}
	return out
}

// RetryPending uploads what is pending, as far as the shares are mounted.
func (s *Spool) RetryPending(ctx context.Context) {
	for _, ws := range s.PendingSessions() {
		if ctx.Err() != nil {
			return
		}
		ws.mu.Lock()
		shareID := ws.shareID
		ws.mu.Unlock()
		if s.share(shareID) == nil {
			continue // not mounted (yet): kept, and reported by PendingUploads
		}
		if _, err := ws.Flush(ctx); err != nil {
			s.log.Warn("upload still failing; the data stays in the spool", "share", shareID, "err", err)
			continue
		}
		s.log.Info("spooled upload completed", "share", shareID)
		ws.mu.Lock()
		segs := append([]string(nil), ws.segs...)
		ws.mu.Unlock()
		s.mu.Lock()
		if ws.refs == 0 {
			s.dropLocked(ws)
			s.mu.Unlock()
			ws.remove()
		} else {
			s.mu.Unlock()
		}
		s.changed(shareID, segs)
	}
}

// Close syncs and closes the spooled files; what is not uploaded stays.
func (s *Spool) Close() {
	// A stream ends as close would end it: a server keeping what a cut
	// connection sent must not be left with a piece of the file.
	for _, ws := range s.streaming() {
		if _, err := ws.Flush(s.ctx); err != nil {
			s.log.Warn("upload at unmount failed; the data stays in the spool", "share", ws.shareID, "err", err)
		}
	}
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ws := range s.byPath {
		ws.mu.Lock()
		ws.abortStreamLocked()
		if ws.file != nil {
			if ws.dirty {
				// Still open in a program: what it wrote so far is kept.
				if err := ws.syncLocked(); err != nil {
					s.log.Warn("spooled data not synced at unmount", "share", ws.shareID, "err", err)
				}
			}
			_ = ws.file.Close()
			ws.file = nil
		}
		ws.closeRetiredLocked()
		ws.mu.Unlock()
	}
}

// closeRetiredLocked closes the data files reattachLocked replaced. ws.mu is held.
func (ws *WriteSession) closeRetiredLocked() {
	for _, f := range ws.retired {
		_ = f.Close()
	}
	ws.retired = nil
}

// streaming returns the sessions whose upload runs while they are written.
func (s *Spool) streaming() []*WriteSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*WriteSession
	for _, ws := range s.byPath {
		if ws.Streaming() {
			out = append(out, ws)
		}
	}
	return out
}

// writeMetaLocked records ws in <key>.json, durably: written to a temporary
// file, fsync'd, renamed over the old record, and the directory fsync'd.
// ws.mu is held.
func (s *Spool) writeMetaLocked(ws *WriteSession) error {
	m := Record{Share: ws.shareID, Entry: ws.entry, Path: ws.segs, Created: ws.created, Clean: !ws.dirty,
		Base: ws.base, Mtime: ws.mtime, Saved: s.now().UTC(), Boot: ws.boot}
	if m.Path == nil {
		m.Path = []string{}
	}
	if ws.lastErr != nil {
		m.Error = ws.lastErr.Error()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("spool record: %w", err)
	}
	// A record of data not fsync'd is not fsync'd either (see Record.Boot).
	durable := ws.boot == ""
	final := s.metaPath(ws.key)
	p := final + ".tmp"
	if !durable && !ws.recorded {
		// The first record of a copy never fsync'd is written in place: torn
		// by a crash, it leaves data no record accounts for, as a crash
		// before a renamed one would (kept in lost+found, or dropped when
		// empty); a power cut sends such a copy there anyway.
		p = final
	}
	f, err := openFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool record: %w", err)
	}
	_, err = f.Write(b)
	if err == nil && durable {
		err = SyncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && p != final {
		err = os.Rename(p, final)
	}
	if err == nil && durable {
		err = syncDir(s.dir)
	}
	if err != nil {
		_ = os.Remove(p)
		return fmt.Errorf("spool record: %w", err)
	}
	ws.metaStale, ws.recorded = false, true
	if durable {
		ws.entryDurable = true // the directory was fsync'd after the data file was created
	}
	return nil
}

// markDirty notes that the local copy differs from the server's. ws.mu is held.
func (ws *WriteSession) markDirty() error {
	if ws.detached {
		if err := ws.reattachLocked(); err != nil {
			return err
		}
	}
	ws.gen++
	if ws.dirty && !ws.metaStale {
		return nil
	}
	was := ws.dirty
	ws.dirty = true
	if err := ws.sp.writeMetaLocked(ws); err != nil {
		ws.dirty = was
		return err
	}
	return nil
}

// detachLocked removes the data file's name after an upload: the server has
// the content, and a crash from now on leaves at most a record without
// data, which the next start drops. Only for a copy never fsync'd (a
// durable one keeps a durable clean record). ws.mu is held.
func (ws *WriteSession) detachLocked() bool {
	if ws.boot == "" || ws.detached {
		return ws.detached
	}
	if err := os.Remove(ws.sp.dataPath(ws.key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false
	}
	ws.detached = true
	return true
}

// reattachLocked gives the content of a detached session a data file in the
// spool again before it changes: a copy under a new key, whose record
// markDirty writes. The old record, which names no data, goes. ws.mu is held.
func (ws *WriteSession) reattachLocked() error {
	s := ws.sp
	key := newKey()
	file, err := openFile(s.dataPath(key), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := io.Copy(file, io.NewSectionReader(ws.file, 0, ws.size)); err != nil {
		_ = file.Close()
		_ = os.Remove(s.dataPath(key))
		return fmt.Errorf("spool: %w", err)
	}
	_ = os.Remove(s.metaPath(ws.key))
	// Readers may still hold the old descriptor: it closes with the session.
	ws.retired = append(ws.retired, ws.file)
	ws.file, ws.key, ws.detached, ws.entryDurable, ws.recorded = file, key, false, false, false
	return nil
}

func (ws *WriteSession) WriteAt(p []byte, off int64) (int, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.file == nil {
		return 0, errors.New("spool file closed")
	}
	if err := ws.markDirty(); err != nil {
		return 0, err
	}
	ws.staleLocked(off)
	n, err := ws.file.WriteAt(p, off)
	if end := off + int64(n); end > ws.size {
		ws.size = end
	}
	ws.mtime = ws.sp.now()
	if err != nil {
		return n, fmt.Errorf("spool write: %w", err)
	}
	if ws.stream != nil {
		ws.stream.wake.Broadcast()
	} else if ws.streamable() {
		ws.startStreamLocked()
	}
	return n, nil
}

func (ws *WriteSession) ReadAt(p []byte, off int64) (int, error) {
	ws.mu.Lock()
	size, file := ws.size, ws.file
	ws.mu.Unlock()
	if file == nil {
		return 0, errors.New("spool file closed")
	}
	if off >= size {
		return 0, nil
	}
	if rest := size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := file.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("spool read: %w", err)
	}
	return n, nil
}

func (ws *WriteSession) Truncate(size int64) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.file == nil {
		return errors.New("spool file closed")
	}
	if err := ws.markDirty(); err != nil {
		return err
	}
	ws.staleLocked(size)
	if err := ws.file.Truncate(size); err != nil {
		return fmt.Errorf("spool truncate: %w", err)
	}
	ws.size = size
	if size == 0 && ws.stream == nil {
		ws.streamOK = true
	}
	ws.mtime = ws.sp.now()
	return nil
}

func (ws *WriteSession) SetMtime(t time.Time) {
	ws.mu.Lock()
	ws.mtime = t
	ws.mu.Unlock()
}

func (ws *WriteSession) Stat() Info {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return Info{Size: ws.size, Mtime: ws.mtime}
}

func (ws *WriteSession) Sync() error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.syncLocked()
}

// syncLocked makes the data and the record durable. ws.mu is held.
func (ws *WriteSession) syncLocked() error {
	if ws.file == nil || ws.unlinked {
		return nil
	}
	if ws.boot != "" {
		// The data first, then the record that says it is on disk.
		if err := SyncFile(ws.file); err != nil {
			return fmt.Errorf("spool sync: %w", err)
		}
		boot := ws.boot
		ws.boot = ""
		if err := ws.sp.writeMetaLocked(ws); err != nil {
			ws.boot = boot
			return err
		}
		ws.synced = ws.gen
		return nil
	}
	if ws.metaStale {
		if err := ws.sp.writeMetaLocked(ws); err != nil {
			return err
		}
	}
	if ws.synced == ws.gen {
		return nil
	}
	if err := SyncFile(ws.file); err != nil {
		return fmt.Errorf("spool sync: %w", err)
	}
	// The data file's own entry, created with the session (durable once
	// a record was written after it).
	if !ws.entryDurable {
		if err := syncDir(ws.sp.dir); err != nil {
			return fmt.Errorf("spool sync: %w", err)
		}
		ws.entryDurable = true
	}
	ws.synced = ws.gen
	return nil
}

// ErrRemoteChanged means the server's file is not the version the local copy
// started from (412 to a conditional PUT).
var ErrRemoteChanged = errors.New("the file changed on the server while it was being written here")

// Flush uploads the local copy if it differs from the server's: see FlushAt.
func (ws *WriteSession) Flush(ctx context.Context) (Info, error) {
	in, _, err := ws.FlushAt(ctx)
	return in, err
}

// FlushAt uploads the local copy if it differs from the server's. A copy
// never fsync'd (streamed or not) is uploaded first and fsync'd only when
// the upload fails; others (fsync'd once) are made durable first. The upload is
// conditional on the server still having the version the copy started
// from; when it has another, the local version is uploaded beside it as a
// conflicted copy, the session moves to that name and moved is its path. On
// success the record says clean (the data file stays while handles are
// open); on failure the record notes the error and everything stays, on
// disk.
func (ws *WriteSession) FlushAt(ctx context.Context) (in Info, moved []string, err error) {
	ws.upMu.Lock()
	defer ws.upMu.Unlock()
	ws.mu.Lock()
	if !ws.dirty || ws.unlinked || ws.file == nil {
		in := Info{Size: ws.size, Mtime: ws.mtime}
		ws.mu.Unlock()
		return in, nil, nil
	}
	if ws.boot == "" || ws.metaStale {
		if err := ws.syncLocked(); err != nil {
			ws.mu.Unlock()
			return Info{}, nil, err
		}
	}
	shareID, segs, size, mtime, gen, file := ws.shareID, append([]string(nil), ws.segs...), ws.size, ws.mtime, ws.gen, ws.file
	recovered := ws.recovered
	cond := precondition{ifNoneMatch: ws.created, ifMatch: ws.base}
	// A stream running ends at this size (see stream.go).
	st := ws.stream
	ws.stream = nil
	// An empty file flushed (a descriptor closed before the writes, as dd
	// does) may still be streamed when written.
	ws.streamOK = size == 0
	ws.mu.Unlock()

	sp := ws.sp
	sh := sp.share(shareID)
	streamed := false
	if st != nil {
		if sh == nil || sh.Gone() {
			st.cancel()
		}
		in, cond, streamed, err = st.finish(ctx, size, cond)
		if streamed && err == nil {
			in.Size, in.Mtime = size, mtime
		}
	}
	if sh == nil || sh.Gone() {
		err = ErrShareGone
	} else {
		if !streamed {
			in, err = sp.upload(ctx, sh, segs, file, size, mtime, cond)
		}
		if errors.Is(err, ErrRemoteChanged) && recovered {
			// Found on start: the server may hold this very content, from
			// an upload answered just before the agent stopped.
			if etag, same := sp.sameOnServer(ctx, sh, segs, file, size); same {
				in, err = Info{Size: size, Mtime: mtime, ETag: etag}, nil
			}
		}
		if errors.Is(err, ErrRemoteChanged) {
			if len(segs) == 0 {
				ws.mu.Lock()
				if serr := ws.syncLocked(); serr != nil {
					sp.log.Warn("spooled data not synced", "share", shareID, "err", serr)
				}
				ws.mu.Unlock()
				sp.setAside(ws, sh.Name())
				return Info{}, nil, err
			}
			moved, in, err = sp.uploadConflicted(ctx, sh, segs, file, size, mtime)
		}
	}

	if moved != nil {
		sp.moveTo(ws, moved)
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if err != nil {
		ws.lastErr = err
		if !ws.unlinked {
			// The data stays: on disk before close reports the failure.
			unsynced := ws.boot != ""
			werr := ws.syncLocked() // writes the record too when unsynced
			if werr == nil && !unsynced {
				werr = sp.writeMetaLocked(ws) // with the error
			}
			if werr != nil {
				sp.log.Warn("spool record not updated", "share", shareID, "err", werr)
			}
		}
		return Info{}, nil, err
	}
	ws.lastErr = nil
	ws.created, ws.recovered = false, false
	ws.base = in.ETag
	if ws.gen == gen && !ws.unlinked {
		ws.dirty = false
	}
	if !ws.unlinked && (ws.dirty || !ws.detachLocked()) {
		if werr := sp.writeMetaLocked(ws); werr != nil {
			// A stale record only means an upload again after a crash.
			sp.log.Warn("spool record not updated", "share", shareID, "err", werr)
		}
	}
	return in, moved, nil
}

// moveTo files ws under segs (the conflicted copy's name, new on the server).
func (s *Spool) moveTo(ws *WriteSession, segs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(ws)
	ws.mu.Lock()
	ws.segs = segs
	ws.mu.Unlock()
	pk := pathKey(ws.shareID, segs)
	if old := s.byPath[pk]; old != nil {
		s.dropLocked(old)
	}
	s.byPath[pk] = ws
	s.count.Add(1)
}

// noteConflict tells the person, in the log and the status, that a file
// changed on both sides and where their version went.
func (s *Spool) noteConflict(line string) {
	s.cmu.Lock()
	s.conflicts = append(s.conflicts, s.now().UTC().Format(time.RFC3339)+" "+line)
	if len(s.conflicts) > 20 {
		s.conflicts = s.conflicts[len(s.conflicts)-20:]
	}
	s.cmu.Unlock()
}

// Conflicts describes the latest conflicted copies made, oldest first.
func (s *Spool) Conflicts() []string {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return append([]string(nil), s.conflicts...)
}

// unlinkFiles removes the session's files from the spool directory; open
// descriptors keep working. Data first: a crash in between leaves a record
// without data, which the next start drops.
func (ws *WriteSession) unlinkFiles() {
	ws.mu.Lock()
	key, detached := ws.key, ws.detached
	ws.mu.Unlock()
	if !detached {
		_ = os.Remove(ws.sp.dataPath(key))
	}
	_ = os.Remove(ws.sp.metaPath(key))
}

// remove closes and deletes the session's files. The removal of files never
// fsync'd is made durable later, with others (syncDirSoon).
func (ws *WriteSession) remove() {
	ws.mu.Lock()
	ws.abortStreamLocked()
	if ws.file != nil {
		_ = ws.file.Close()
		ws.file = nil
	}
	ws.closeRetiredLocked()
	lazy := ws.boot != ""
	ws.mu.Unlock()
	ws.unlinkFiles()
	if lazy {
		ws.sp.syncDirSoon()
	}
}

// syncDirSoon fsyncs the spool directory a little later, once for all the
// removals made meanwhile: a power cut before it leaves their records to
// the next start, which keeps their data in lost+found (see Record.Boot).
func (s *Spool) syncDirSoon() {
	if !s.dirSyncOn.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(dirSyncDelay, func() {
		s.dirSyncOn.Store(false)
		_ = syncDir(s.dir)
	})
}

// uploadAttempts bounds the tries of one upload on transient failures; a
// timeout is not tried again (close would block too long).
const uploadAttempts = 3

// precondition makes a PUT conditional: on the server's version being
// ifMatch (an ETag), or on there being no file yet (ifNoneMatch).
type precondition struct {
	ifMatch     string
	ifNoneMatch bool
}

func (c precondition) set(h http.Header) {
	switch {
	case c.ifNoneMatch:
		h.Set("If-None-Match", "*")
	case c.ifMatch != "" && !strings.HasPrefix(c.ifMatch, "W/"):
		// A weak ETag can never match under If-Match's strong comparison;
		// without a usable ETag the upload is unconditional.
		h.Set("If-Match", c.ifMatch)
	}
}

// upload PUTs size bytes of file to the file at segs, streamed from the
// spool, with X-OC-Mtime for ownCloud/Nextcloud peers. A 412 answer is
// ErrRemoteChanged.
func (s *Spool) upload(ctx context.Context, sh Share, segs []string, file *os.File, size int64, mtime time.Time, cond precondition) (Info, error) {
	u := sh.FileURL(segs)
	var lastErr error
	for attempt := 1; attempt <= uploadAttempts; attempt++ {
		h := http.Header{
			"Content-Type": {"application/octet-stream"},
			"X-Oc-Mtime":   {strconv.FormatInt(mtime.Unix(), 10)},
		}
		cond.set(h)
		resp, err := s.dav.Do(ctx, Request{
			Method:  http.MethodPut,
			URL:     u,
			ShareID: sh.ID(),
			Header:  h,
			Body: func() (io.Reader, int64, error) {
				if size <= SmallBody {
					// From memory: sent with the headers (see smallInMemory).
					b := make([]byte, size)
					if _, err := file.ReadAt(b, 0); err != nil {
						return nil, 0, fmt.Errorf("spool read: %w", err)
					}
					return bytes.NewReader(b), size, nil
				}
				return io.NewSectionReader(file, 0, size), size, nil
			},
		})
		if err == nil {
			DrainClose(resp)
			switch resp.StatusCode {
			case http.StatusOK, http.StatusCreated, http.StatusNoContent:
				return Info{Size: size, Mtime: mtime, ETag: responseETag(resp)}, nil
			case http.StatusPreconditionFailed:
				return Info{}, fmt.Errorf("upload: %w", ErrRemoteChanged)
			}
			err = &StatusError{Method: "PUT", Code: resp.StatusCode}
		}
		lastErr = err
		if !Transient(err) || errors.Is(err, ErrTimeout) || attempt == uploadAttempts {
			break
		}
		s.log.Debug("upload failed, trying again", "share", sh.ID(), "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return Info{}, fmt.Errorf("upload: %w", ctx.Err())
		case <-time.After(time.Duration(attempt) * 300 * time.Millisecond):
		}
	}
	return Info{}, fmt.Errorf("upload: %w", lastErr)
}

// responseETag is the ETag of the version a response is about.
func responseETag(resp *http.Response) string {
	if etag := resp.Header.Get("ETag"); etag != "" {
		return etag
	}
	return resp.Header.Get("Oc-Etag")
}

// conflictTag is the Nextcloud desktop client's mark of a conflicted copy.
func conflictTag(t time.Time) string {
	return "conflicted copy " + t.Format("2006-01-02 150405")
}

// uploadConflicted uploads the local version of the file at segs, which
// changed on the server meanwhile, beside it as "name (conflicted copy
// YYYY-MM-DD HHMMSS).ext" (a new file: If-None-Match). It returns the path
// it went to.
func (s *Spool) uploadConflicted(ctx context.Context, sh Share, segs []string, file *os.File, size int64, mtime time.Time) ([]string, Info, error) {
	name := segs[len(segs)-1]
	tag := conflictTag(s.now())
	var err error
	for n := 1; n <= 3; n++ {
		to := append(append([]string(nil), segs[:len(segs)-1]...), WithSuffix(name, tag, n, false))
		var in Info
		in, err = s.upload(ctx, sh, to, file, size, mtime, precondition{ifNoneMatch: true})
		if err == nil {
			where := strings.Join(append([]string{sh.Name()}, segs...), "/")
			s.log.Warn("the file changed on the server while it was written here: both versions are kept",
				"share", sh.ID(), "file", where, "local version", to[len(to)-1])
			s.noteConflict(where + ": changed on the server while written here; this version was saved as " + to[len(to)-1])
			s.changed(sh.ID(), segs)
			return to, in, nil
		}
		if !errors.Is(err, ErrRemoteChanged) {
			break
		}
	}
	return nil, Info{}, fmt.Errorf("conflicted copy: %w", err)
}

// sameOnServer reports whether the server's file at segs holds exactly the
// size bytes of file, and its ETag. Only for a copy found on start whose
// conditional upload was refused: the agent may have stopped between the
// server's answer and the spool's letting the copy go, and a conflicted
// copy of identical content must not be made.
func (s *Spool) sameOnServer(ctx context.Context, sh Share, segs []string, file *os.File, size int64) (string, bool) {
	resp, err := s.dav.Do(ctx, Request{Method: http.MethodGet, URL: sh.FileURL(segs), ShareID: sh.ID()})
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || (resp.ContentLength >= 0 && resp.ContentLength != size) {
		return "", false
	}
	if !sameContent(resp.Body, io.NewSectionReader(file, 0, size)) {
		return "", false
	}
	return responseETag(resp), true
}

// sameContent reports whether a and b hold the same bytes, reading both to
// their end or to the first difference.
func sameContent(a, b io.Reader) bool {
	const chunk = 64 << 10
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		aEnd := ea == io.EOF || ea == io.ErrUnexpectedEOF
		bEnd := eb == io.EOF || eb == io.ErrUnexpectedEOF
		if (ea != nil && !aEnd) || (eb != nil && !bEnd) {
			return false
		}
		if aEnd || bEnd {
			return aEnd && bEnd
		}
	}
}

// download copies the whole remote file at segs into w and returns its
// size and ETag.
func (s *Spool) download(ctx context.Context, sh Share, segs []string, w io.Writer) (int64, string, error) {
	resp, err := s.dav.Do(ctx, Request{Method: http.MethodGet, URL: sh.FileURL(segs), ShareID: sh.ID()})
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", &StatusError{Method: "GET", Code: resp.StatusCode}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, "", ReadErr("GET", err)
	}
	return n, responseETag(resp), nil
}
