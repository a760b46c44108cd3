package ocmfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// directory. While its content differs from the server's (from the first
// write until an upload succeeded) a <key>.json beside it records where it
// belongs, so that an agent killed at any point finds it on the next start
// and uploads it. Nothing is deleted before the server answered the upload.

// spoolMeta is the <key>.json record of a file not on its server yet.
type spoolMeta struct {
	Share   string    `json:"share"`
	Entry   string    `json:"entry,omitempty"` // root entry name, for reports
	Path    []string  `json:"path"`            // below the share's root; empty for a file share
	Created bool      `json:"created"`         // not on the server at all yet
	Mtime   time.Time `json:"mtime"`
	Saved   time.Time `json:"saved"`
	Error   string    `json:"error,omitempty"`
}

type spool struct {
	f   *FS
	dir string

	mu     sync.Mutex
	byPath map[string]*writeSession
	count  atomic.Int32
}

// writeSession is the local copy of one remote file being written, shared by
// all handles open on it.
type writeSession struct {
	sp  *spool
	key string

	upMu sync.Mutex // one upload at a time

	// refs is guarded by sp.mu; the rest by mu.
	refs     int
	mu       sync.Mutex
	shareID  string
	entry    string
	segs     []string
	file     *os.File
	size     int64
	mtime    time.Time
	gen      uint64
	dirty    bool
	created  bool
	unlinked bool
	lastErr  error
	ready    chan struct{}
	readyErr error
}

func pathKey(shareID string, segs []string) string {
	return shareID + "\x00" + strings.Join(segs, "\x00")
}

func openSpool(f *FS, dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &spool{f: f, dir: dir, byPath: map[string]*writeSession{}}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load picks up what an earlier run left: files with a record wait for
// upload; data files without one held nothing the server lacks.
func (s *spool) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	metas := map[string]bool{}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			metas[strings.TrimSuffix(e.Name(), ".json")] = true
		}
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			_ = os.Remove(filepath.Join(s.dir, name))
		case strings.HasSuffix(name, ".data"):
			if !metas[strings.TrimSuffix(name, ".data")] {
				_ = os.Remove(filepath.Join(s.dir, name))
			}
		}
	}
	for key := range metas {
		mp := filepath.Join(s.dir, key+".json")
		b, err := os.ReadFile(mp)
		var m spoolMeta
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil || m.Share == "" {
			s.f.log.Warn("unreadable spool record kept aside", "file", mp, "err", err)
			continue
		}
		file, err := os.OpenFile(filepath.Join(s.dir, key+".data"), os.O_RDWR, 0)
		if err != nil {
			s.f.log.Warn("spool record without data", "file", mp, "err", err)
			_ = os.Remove(mp)
			continue
		}
		st, err := file.Stat()
		if err != nil {
			_ = file.Close()
			continue
		}
		ws := &writeSession{
			sp: s, key: key, shareID: m.Share, entry: m.Entry, segs: m.Path, file: file,
			size: st.Size(), mtime: m.Mtime, dirty: true, created: m.Created,
			ready: make(chan struct{}),
		}
		if m.Error != "" {
			ws.lastErr = errors.New(m.Error)
		}
		close(ws.ready)
		pk := pathKey(m.Share, m.Path)
		if old := s.byPath[pk]; old != nil {
			// Two records for one path: the later write wins, as it would have.
			if old.mtime.After(ws.mtime) {
				ws.remove()
				continue
			}
			old.remove()
		}
		s.byPath[pk] = ws
	}
	s.count.Store(int32(len(s.byPath)))
	return nil
}

func newKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *spool) dataPath(key string) string { return filepath.Join(s.dir, key+".data") }
func (s *spool) metaPath(key string) string { return filepath.Join(s.dir, key+".json") }

// acquire returns the session for the file at segs, creating it if needed.
// The new session starts empty when trunc or create is set, otherwise with
// the server's content (size bytes, downloaded). Every acquire is paired with
// a release.
func (s *spool) acquire(ctx context.Context, sh *share, segs []string, trunc, create bool, size int64) (*writeSession, error) {
	pk := pathKey(sh.id, segs)
	s.mu.Lock()
	if ws := s.byPath[pk]; ws != nil {
		ws.refs++
		s.mu.Unlock()
		<-ws.ready
		if ws.readyErr != nil {
			s.release(ws)
			return nil, ws.readyErr
		}
		if trunc {
			if err := ws.truncate(0); err != nil {
				s.release(ws)
				return nil, err
			}
		}
		return ws, nil
	}
	key := newKey()
	file, err := os.OpenFile(s.dataPath(key), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("spool: %w", err)
	}
	ws := &writeSession{
		sp: s, key: key, refs: 1, shareID: sh.id, entry: sh.name, segs: append([]string(nil), segs...),
		file: file, mtime: time.Now(), created: create, ready: make(chan struct{}),
	}
	s.byPath[pk] = ws
	s.count.Add(1)
	s.mu.Unlock()

	if trunc || create || size == 0 {
		var err error
		if trunc || create {
			ws.mu.Lock()
			err = ws.markDirty()
			ws.mu.Unlock()
		}
		ws.readyErr = err
		close(ws.ready)
		if err != nil {
			s.release(ws)
			return nil, err
		}
		return ws, nil
	}
	n, err := s.f.download(ctx, sh, segs, file)
	if err == nil {
		ws.size = n
	}
	ws.readyErr = err
	close(ws.ready)
	if err != nil {
		s.release(ws)
		return nil, err
	}
	return ws, nil
}

// lookup returns the session for a path, or nil.
func (s *spool) lookup(shareID string, segs []string) *writeSession {
	if s.count.Load() == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byPath[pathKey(shareID, segs)]
}

// hold takes one more reference on ws.
func (s *spool) hold(ws *writeSession) {
	s.mu.Lock()
	ws.refs++
	s.mu.Unlock()
}

// release drops a reference. The last one removes a session whose content is
// on the server (or that was unlinked); a dirty one stays for retryPending.
func (s *spool) release(ws *writeSession) {
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

func (s *spool) dropLocked(ws *writeSession) {
	for k, v := range s.byPath {
		if v == ws {
			delete(s.byPath, k)
			s.count.Add(-1)
			return
		}
	}
}

// localOnly reports whether the file at a path exists only in the spool
// (created here, never uploaded).
func (s *spool) localOnly(shareID string, segs []string) bool {
	ws := s.lookup(shareID, segs)
	if ws == nil {
		return false
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.created && !ws.unlinked
}

// discard marks the session at a path as unlinked (its data will not be
// uploaded) and reports whether the file ever reached the server.
func (s *spool) discard(shareID string, segs []string) (existed bool, onServer bool) {
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
	ws.unlinked = true
	onServer = !ws.created
	ws.mu.Unlock()
	_ = os.Remove(s.metaPath(ws.key))
	if refs == 0 {
		ws.remove()
	}
	return true, onServer
}

// rekey moves sessions at or below from to the same place below to (a rename).
func (s *spool) rekey(shareID string, from, to []string) {
	if s.count.Load() == 0 {
		return
	}
	prefix := pathKey(shareID, from)
	s.mu.Lock()
	var moved []*writeSession
	for k, ws := range s.byPath {
		if k != prefix && !strings.HasPrefix(k, prefix+"\x00") {
			continue
		}
		delete(s.byPath, k)
		moved = append(moved, ws)
	}
	for _, ws := range moved {
		ws.mu.Lock()
		ws.segs = append(append([]string(nil), to...), ws.segs[len(from):]...)
		if ws.dirty {
			_ = s.writeMetaLocked(ws)
		}
		pk := pathKey(shareID, ws.segs)
		ws.mu.Unlock()
		if old := s.byPath[pk]; old != nil {
			// Replaced by the rename, as the remote file will be.
			s.dropLocked(old)
			old.mu.Lock()
			old.unlinked = true
			old.mu.Unlock()
			_ = os.Remove(s.metaPath(old.key))
		}
		s.byPath[pk] = ws
	}
	s.mu.Unlock()
}

// localChildren returns the files in the directory at dir that exist only in
// the spool so far (created, not uploaded).
func (s *spool) localChildren(shareID string, dir []string) map[string]info {
	if s.count.Load() == 0 {
		return nil
	}
	prefix := pathKey(shareID, dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out map[string]info
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
				out = map[string]info{}
			}
			out[ws.segs[len(dir)]] = info{size: ws.size, mtime: ws.mtime}
		}
		ws.mu.Unlock()
	}
	return out
}

// hasUnder reports whether a session exists below the directory at dir.
func (s *spool) hasUnder(shareID string, dir []string) bool {
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

// pending returns the sessions not held open whose content is not on the
// server, oldest key first.
func (s *spool) pending() []*writeSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*writeSession
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

func (s *spool) describePending() []string {
	var out []string
	for _, ws := range s.pending() {
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

// retryPending uploads what is pending, as far as the shares are mounted.
func (s *spool) retryPending(ctx context.Context) {
	for _, ws := range s.pending() {
		if ctx.Err() != nil {
			return
		}
		ws.mu.Lock()
		shareID := ws.shareID
		ws.mu.Unlock()
		if s.f.shareByID(shareID) == nil {
			continue // not mounted (yet): kept, and reported by PendingUploads
		}
		if _, err := ws.flush(ctx); err != nil {
			s.f.log.Warn("upload still failing; the data stays in the spool", "share", shareID, "err", err)
			continue
		}
		s.f.log.Info("spooled upload completed", "share", shareID)
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
		s.f.invalidateDir(shareID, segs)
	}
}

func (s *spool) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ws := range s.byPath {
		ws.mu.Lock()
		if ws.file != nil {
			_ = ws.file.Close()
			ws.file = nil
		}
		ws.mu.Unlock()
	}
}

// writeMetaLocked records ws in <key>.json (atomically). ws.mu is held.
func (s *spool) writeMetaLocked(ws *writeSession) error {
	m := spoolMeta{Share: ws.shareID, Entry: ws.entry, Path: ws.segs, Created: ws.created, Mtime: ws.mtime, Saved: time.Now().UTC()}
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
	tmp := s.metaPath(ws.key) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("spool record: %w", err)
	}
	if err := os.Rename(tmp, s.metaPath(ws.key)); err != nil {
		return fmt.Errorf("spool record: %w", err)
	}
	return nil
}

// markDirty notes that the local copy differs from the server's. ws.mu is held.
func (ws *writeSession) markDirty() error {
	ws.gen++
	if ws.dirty {
		return nil
	}
	ws.dirty = true
	if err := ws.sp.writeMetaLocked(ws); err != nil {
		ws.dirty = false
		return err
	}
	return nil
}

func (ws *writeSession) writeAt(p []byte, off int64) (int, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.file == nil {
		return 0, errors.New("spool file closed")
	}
	if err := ws.markDirty(); err != nil {
		return 0, err
	}
	n, err := ws.file.WriteAt(p, off)
	if end := off + int64(n); end > ws.size {
		ws.size = end
	}
	ws.mtime = time.Now()
	if err != nil {
		return n, fmt.Errorf("spool write: %w", err)
	}
	return n, nil
}

func (ws *writeSession) readAt(p []byte, off int64) (int, error) {
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

func (ws *writeSession) truncate(size int64) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.file == nil {
		return errors.New("spool file closed")
	}
	if err := ws.markDirty(); err != nil {
		return err
	}
	if err := ws.file.Truncate(size); err != nil {
		return fmt.Errorf("spool truncate: %w", err)
	}
	ws.size = size
	ws.mtime = time.Now()
	return nil
}

func (ws *writeSession) setMtime(t time.Time) {
	ws.mu.Lock()
	ws.mtime = t
	ws.mu.Unlock()
}

func (ws *writeSession) stat() info {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return info{size: ws.size, mtime: ws.mtime}
}

func (ws *writeSession) sync() error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.file == nil {
		return nil
	}
	if err := ws.file.Sync(); err != nil {
		return fmt.Errorf("spool sync: %w", err)
	}
	return nil
}

// flush uploads the local copy if it differs from the server's. On success
// the record is removed (the data file stays while handles are open); on
// failure the record notes the error and everything stays.
func (ws *writeSession) flush(ctx context.Context) (info, error) {
	ws.upMu.Lock()
	defer ws.upMu.Unlock()
	ws.mu.Lock()
	if !ws.dirty || ws.unlinked || ws.file == nil {
		in := info{size: ws.size, mtime: ws.mtime}
		ws.mu.Unlock()
		return in, nil
	}
	shareID, segs, size, mtime, gen, file := ws.shareID, append([]string(nil), ws.segs...), ws.size, ws.mtime, ws.gen, ws.file
	ws.mu.Unlock()

	var in info
	var err error
	sh := ws.sp.f.shareByID(shareID)
	if sh == nil || sh.isGone() {
		err = errShareGone
	} else {
		in, err = ws.sp.f.upload(ctx, sh, segs, file, size, mtime)
	}

	ws.mu.Lock()
	defer ws.mu.Unlock()
	if err != nil {
		ws.lastErr = err
		if !ws.unlinked {
			_ = ws.sp.writeMetaLocked(ws)
		}
		return info{}, err
	}
	ws.lastErr = nil
	if ws.gen == gen && !ws.unlinked {
		ws.dirty = false
		ws.created = false
		_ = os.Remove(ws.sp.metaPath(ws.key))
	}
	return in, nil
}

// remove closes and deletes the session's files.
func (ws *writeSession) remove() {
	ws.mu.Lock()
	if ws.file != nil {
		_ = ws.file.Close()
		ws.file = nil
	}
	ws.mu.Unlock()
	_ = os.Remove(ws.sp.dataPath(ws.key))
	_ = os.Remove(ws.sp.metaPath(ws.key))
}

// uploadAttempts bounds the tries of one upload on transient failures; a
// timeout is not tried again (close would block too long).
const uploadAttempts = 3

// upload PUTs size bytes of file to the file at segs, streamed from the
// spool, with X-OC-Mtime for ownCloud/Nextcloud peers.
func (f *FS) upload(ctx context.Context, sh *share, segs []string, file *os.File, size int64, mtime time.Time) (info, error) {
	u := sh.fileURL(segs)
	var lastErr error
	for attempt := 1; attempt <= uploadAttempts; attempt++ {
		resp, err := f.dav.do(ctx, request{
			method:  http.MethodPut,
			url:     u,
			shareID: sh.id,
			header: http.Header{
				"Content-Type": {"application/octet-stream"},
				"X-Oc-Mtime":   {strconv.FormatInt(mtime.Unix(), 10)},
			},
			body: func() (io.Reader, int64, error) {
				return io.NewSectionReader(file, 0, size), size, nil
			},
		})
		if err == nil {
			drainClose(resp)
			switch resp.StatusCode {
			case http.StatusOK, http.StatusCreated, http.StatusNoContent:
				etag := resp.Header.Get("Oc-Etag")
				if etag == "" {
					etag = resp.Header.Get("ETag")
				}
				return info{size: size, mtime: mtime, etag: etag}, nil
			}
			err = &statusError{Method: "PUT", Code: resp.StatusCode}
		}
		lastErr = err
		if !transient(err) || errors.Is(err, errTimeout) || attempt == uploadAttempts {
			break
		}
		f.log.Debug("upload failed, trying again", "share", sh.id, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return info{}, fmt.Errorf("upload: %w", ctx.Err())
		case <-time.After(time.Duration(attempt) * 300 * time.Millisecond):
		}
	}
	return info{}, fmt.Errorf("upload: %w", lastErr)
}

// download copies the whole remote file at segs into w.
func (f *FS) download(ctx context.Context, sh *share, segs []string, w io.Writer) (int64, error) {
	resp, err := f.dav.do(ctx, request{method: http.MethodGet, url: sh.fileURL(segs), shareID: sh.id})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, &statusError{Method: "GET", Code: resp.StatusCode}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, readErr("GET", err)
	}
	return n, nil
}
