package tokens

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// SecretsFileName is the file the FileStore keeps in the state directory.
const SecretsFileName = "secrets.enc"

// maxSecretsFile bounds the secrets file: what is read back, and what a
// write may grow it to (a write past it compacts the log first).
const maxSecretsFile = 32 << 20

// compactSlack is the dead weight (overwritten and deleted secrets) the
// log may carry beyond its live content before a write compacts it.
const compactSlack = 256 << 10

// FileOptions configures a FileStore.
type FileOptions struct {
	// StateDir holds the secrets file (required).
	StateDir string
	// KeyFile is an explicit path of the encryption key (configuration
	// key secrets_key_file); created when missing.
	KeyFile string
	// ConfigDir is where a generated key goes when neither KeyFile nor a
	// systemd credential provides one; $XDG_CONFIG_HOME/ocm-agent when
	// empty. It should not be the state directory.
	ConfigDir string
	Logger    *slog.Logger
}

// FileStore is the headless fallback: all secrets in one file in the state
// directory, mode 0600, encrypted with AES-256-GCM under a key kept
// elsewhere (see resolveFileKey).
//
// The file is a log (see logfile.go): a put or delete appends one sealed
// record and fsyncs it, so its cost does not grow with the number of
// secrets; when dead records outweigh the live ones a write compacts the
// log into a new file (temporary file, fsync, rename, fsync of the
// directory). A record cut short by a crash is ignored on reading and cut
// off by the next write; any other damage is an error. The file of the
// first version (one sealed JSON document) is converted on open.
//
// It is safe for concurrent use within a process and between processes:
// writers hold an exclusive flock on the file, readers of records another
// process appended a shared one.
type FileStore struct {
	path      string
	keySource string
	aead      cipher.AEAD
	logger    *slog.Logger

	mu   sync.Mutex
	data map[string][]byte
	log  logState
}

// OpenFileStore opens (or prepares) the secrets file in o.StateDir. The
// key is found as described on resolveFileKey; a missing key is generated
// only while no secrets file exists yet.
func OpenFileStore(ctx context.Context, o FileOptions) (*FileStore, error) {
	if o.StateDir == "" {
		return nil, errors.New("file store: no state directory")
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	path := filepath.Join(o.StateDir, SecretsFileName)
	_, statErr := os.Stat(path)
	fileExists := statErr == nil
	key, source, err := resolveFileKey(o, !fileExists, logger)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	f := &FileStore{path: path, keySource: source, aead: aead, logger: logger}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refreshLocked(); err != nil {
		return nil, err
	}
	if f.log.legacy {
		// Converted under the lock, as a write: another process may be
		// converting it too, and then appending to its log.
		if err := f.writeLocked(nil); err != nil {
			return nil, fmt.Errorf("file store: converting %s to the log format: %w", f.path, err)
		}
	}
	return f, nil
}

// Backend returns "file".
func (f *FileStore) Backend() string { return BackendFile }

// Path is the secrets file.
func (f *FileStore) Path() string { return f.path }

// KeySource says where the encryption key came from (a path and its kind).
func (f *FileStore) KeySource() string { return f.keySource }

// Put stores value under key.
func (f *FileStore) Put(ctx context.Context, key string, value []byte) error {
	return f.PutMany(ctx, map[string][]byte{key: value})
}

// PutMany stores several values in one record: one write and one fsync,
// all or none of them.
func (f *FileStore) PutMany(ctx context.Context, items map[string][]byte) error {
	ops := make([]logOp, 0, len(items))
	for k, v := range items {
		if err := checkKey(k); err != nil {
			return err
		}
		if err := checkValue(v); err != nil {
			return fmt.Errorf("file store: put %q: %w", k, err)
		}
		ops = append(ops, logOp{key: k, value: bytes.Clone(v)})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.writeLocked(ops); err != nil {
		return fmt.Errorf("file store: put %d secret(s): %w", len(items), err)
	}
	return nil
}

// Get returns the value stored under key.
func (f *FileStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refreshLocked(); err != nil {
		return nil, err
	}
	v, ok := f.data[key]
	if !ok {
		return nil, fmt.Errorf("file store: %q: %w", key, ErrSecretNotFound)
	}
	return bytes.Clone(v), nil
}

// Delete removes key; nil when it is absent.
func (f *FileStore) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refreshLocked(); err != nil {
		return err
	}
	if _, ok := f.data[key]; !ok {
		return nil
	}
	if err := f.writeLocked([]logOp{{key: key, del: true}}); err != nil {
		return fmt.Errorf("file store: delete %q: %w", key, err)
	}
	return nil
}

// Keys lists the stored keys in order (the keyring cannot list; this is
// what migration walks).
func (f *FileStore) Keys(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refreshLocked(); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(f.data))
	for k := range f.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// removeIfEmpty deletes the secrets file when it holds nothing.
func (f *FileStore) removeIfEmpty() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fh, err := f.lockFile()
	if errors.Is(err, fs.ErrNotExist) {
		f.resetLocked()
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer fh.Close()
	if err := f.catchUpLocked(fh); err != nil {
		return false, err
	}
	if len(f.data) != 0 {
		return false, nil
	}
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("file store: %w", err)
	}
	f.resetLocked()
	return true, syncDir(filepath.Dir(f.path))
}

func (f *FileStore) resetLocked() {
	f.data, f.log = map[string][]byte{}, logState{}
}

// refreshLocked reads what other processes wrote since we last looked:
// nothing when the file is the one we know at the length we know, the new
// records when it grew, all of it when it was replaced.
func (f *FileStore) refreshLocked() error {
	fi, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.resetLocked()
		return nil
	}
	if err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	if f.data != nil && f.log.same(fi) && fi.Size() == f.log.end {
		return nil
	}
	fh, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.resetLocked()
		return nil
	}
	if err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	defer fh.Close()
	// A shared lock: no writer is half-way through a record we read.
	if err := flock(fh, false); err != nil {
		return fmt.Errorf("file store: lock %s: %w", f.path, err)
	}
	return f.catchUpLocked(fh)
}

// catchUpLocked brings data up to the content of fh, which the caller
// has locked.
func (f *FileStore) catchUpLocked(fh *os.File) error {
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("file store: %s is accessible by other users (mode %v); run chmod 600 on it", f.path, fi.Mode().Perm())
	}
	if fi.Size() > 2*maxSecretsFile {
		return fmt.Errorf("file store: %s is larger than %d bytes", f.path, maxSecretsFile)
	}
	from := f.log.end
	if f.data == nil || f.log.legacy || !f.log.same(fi) || fi.Size() < f.log.end || !f.sameSalt(fh) {
		from = 0
	}
	if from == fi.Size() {
		return nil
	}
	raw := make([]byte, fi.Size()-from)
	if _, err := io.ReadFull(io.NewSectionReader(fh, from, int64(len(raw))), raw); err != nil {
		return fmt.Errorf("file store: reading %s: %w", f.path, err)
	}
	if from == 0 {
		data, st, err := f.parseWhole(raw)
		if err != nil {
			return err
		}
		st.setFile(fi)
		f.data, f.log = data, st
		return nil
	}
	st := f.log
	st.setFile(fi)
	if err := f.parseRecords(raw, from, f.data, &st); err != nil {
		return err
	}
	f.log = st
	return nil
}

// sameSalt tells a file that reuses the inode of the one we knew apart
// from it.
func (f *FileStore) sameSalt(fh *os.File) bool {
	salt := make([]byte, saltSize)
	_, err := fh.ReadAt(salt, int64(len(fileMagic)))
	return err == nil && bytes.Equal(salt, f.log.salt)
}

// writeLocked applies ops durably: appended as one record to the log
// under an exclusive lock, or by writing a new compacted file when the log
// is missing or carries too much dead weight.
func (f *FileStore) writeLocked(ops []logOp) error {
	// A compaction by another process may replace the file between our
	// open and our lock; then the lock is on an orphan and we go again.
	for range 8 {
		fh, err := f.lockFile()
		if errors.Is(err, fs.ErrNotExist) {
			f.resetLocked()
			created, err := f.createLocked(ops)
			if err != nil || created {
				return err
			}
			continue // another process created it first: append to theirs
		}
		if errors.Is(err, errReplaced) {
			continue
		}
		if err != nil {
			return err
		}
		err = f.appendLocked(fh, ops)
		fh.Close()
		return err
	}
	return fmt.Errorf("%s keeps being replaced by another process", f.path)
}

var errReplaced = errors.New("replaced while locking")

// lockFile opens the secrets file and locks it exclusively, making sure
// the lock is on the file that is at the path.
func (f *FileStore) lockFile() (*os.File, error) {
	fh, err := os.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("file store: %w", err)
	}
	if err := flock(fh, true); err != nil {
		fh.Close()
		return nil, fmt.Errorf("file store: lock %s: %w", f.path, err)
	}
	locked, err1 := fh.Stat()
	atPath, err2 := os.Stat(f.path)
	if err1 != nil || err2 != nil || !os.SameFile(locked, atPath) {
		fh.Close()
		if errors.Is(err2, fs.ErrNotExist) {
			return nil, err2
		}
		return nil, errReplaced
	}
	return fh, nil
}

// appendLocked writes ops as one record at the end of the log in fh
// (locked exclusively), after reading what others appended and cutting
// off a torn tail. Its cost is that of the record, not of the file,
// except when it compacts.
func (f *FileStore) appendLocked(fh *os.File, ops []logOp) error {
	if err := f.catchUpLocked(fh); err != nil {
		return err
	}
	if f.log.legacy {
		n := len(f.data)
		if err := f.compactLocked(applied(f.data, ops)); err != nil {
			return err
		}
		f.logger.Info("secrets: converted the secrets file to the log format", "path", f.path, "secrets", n)
		return nil
	}
	if len(ops) == 0 {
		return nil
	}
	live := f.log.liveBytes
	for _, op := range ops {
		if old, ok := f.data[op.key]; ok {
			live -= entrySize(op.key, old)
		}
		if !op.del {
			live += entrySize(op.key, op.value)
		}
	}
	rec, err := f.seal(encodeOps(ops), f.log.end)
	if err != nil {
		return err
	}
	end := f.log.end + int64(len(rec))
	if end > maxSecretsFile || end-f.log.start > 2*live+compactSlack {
		return f.compactLocked(applied(f.data, ops))
	}
	if f.log.size > f.log.end {
		f.logger.Warn("secrets: cutting off the torn end of the secrets file (a write interrupted by a crash; it was never acknowledged)",
			"path", f.path, "bytes", f.log.size-f.log.end)
		if err := fh.Truncate(f.log.end); err != nil {
			return err
		}
	}
	if _, err := fh.WriteAt(rec, f.log.end); err != nil {
		// Whatever reached the file is a torn tail: ignored on reading.
		return err
	}
	if err := fdatasync(fh); err != nil {
		return err
	}
	for _, op := range ops {
		if op.del {
			delete(f.data, op.key)
		} else {
			f.data[op.key] = op.value
		}
	}
	f.log.end, f.log.size, f.log.liveBytes = end, end, live
	return nil
}

// createLocked writes a new log holding data with ops applied, unless a
// file appeared at the path meanwhile (created is then false).
func (f *FileStore) createLocked(ops []logOp) (created bool, err error) {
	next := applied(f.data, ops)
	raw, st, err := f.encodeWhole(next)
	if err != nil {
		return false, err
	}
	fi, err := placeFile(f.path, raw, false)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	st.setFile(fi)
	f.data, f.log = next, st
	return true, nil
}

// compactLocked replaces the log by a new file holding only data.
func (f *FileStore) compactLocked(data map[string][]byte) error {
	raw, st, err := f.encodeWhole(data)
	if err != nil {
		return err
	}
	if int64(len(raw)) > maxSecretsFile {
		return fmt.Errorf("the secrets would take more than %d bytes", maxSecretsFile)
	}
	fi, err := placeFile(f.path, raw, true)
	if err != nil {
		return err
	}
	st.setFile(fi)
	f.data, f.log = data, st
	return nil
}

func applied(data map[string][]byte, ops []logOp) map[string][]byte {
	next := maps.Clone(data)
	if next == nil {
		next = make(map[string][]byte, len(ops))
	}
	for _, op := range ops {
		if op.del {
			delete(next, op.key)
		} else {
			next[op.key] = op.value
		}
	}
	return next
}

// placeFile writes data to a temporary file (mode 0600) in path's
// directory, fsyncs it, moves it to path (replacing what is there, or
// failing with fs.ErrExist when replace is false) and fsyncs the
// directory.
func placeFile(path string, data []byte, replace bool) (fi os.FileInfo, err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	defer tmp.Close()
	if err = tmp.Chmod(0o600); err != nil {
		return nil, err
	}
	if _, err = tmp.Write(data); err != nil {
		return nil, err
	}
	if err = tmp.Sync(); err != nil {
		return nil, err
	}
	if fi, err = tmp.Stat(); err != nil {
		return nil, err
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return nil, err
	}
	return fi, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// be is the byte order of the log's numbers.
var be = binary.BigEndian
