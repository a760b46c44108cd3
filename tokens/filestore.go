package tokens

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// SecretsFileName is the file the FileStore keeps in the state directory.
const SecretsFileName = "secrets.enc"

// maxSecretsFile bounds what the FileStore reads back.
const maxSecretsFile = 32 << 20

// fileMagic starts every secrets file; it is also the AEAD's additional
// data, so a file of another format or version cannot be passed off as one.
var fileMagic = []byte("OCM-AGENT-SECRETS v1\n")

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
// elsewhere (see resolveFileKey). Writes are atomic (temporary file, fsync,
// rename, fsync of the directory). It is safe for concurrent use within a
// process; the file is re-read when another process replaced it.
type FileStore struct {
	path      string
	keySource string
	aead      cipher.AEAD
	logger    *slog.Logger

	mu    sync.Mutex
	data  map[string][]byte
	stamp fileStamp
}

type fileStamp struct {
	exists bool
	size   int64
	mtime  int64 // UnixNano
}

// fileContent is the plaintext inside the encrypted file.
type fileContent struct {
	Version int               `json:"version"`
	Secrets map[string][]byte `json:"secrets"`
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
	if err := f.reloadLocked(); err != nil {
		return nil, err
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

// PutMany stores several values with one rewrite of the file: the cost
// of a write is the file's size, so a burst of shares is stored at once.
func (f *FileStore) PutMany(ctx context.Context, items map[string][]byte) error {
	for k, v := range items {
		if err := checkKey(k); err != nil {
			return err
		}
		if err := checkValue(v); err != nil {
			return fmt.Errorf("file store: put %q: %w", k, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refreshLocked(); err != nil {
		return err
	}
	next := make(map[string][]byte, len(f.data)+len(items))
	for k, v := range f.data {
		next[k] = v
	}
	for k, v := range items {
		next[k] = bytes.Clone(v)
	}
	if err := f.writeLocked(next); err != nil {
		return fmt.Errorf("file store: put %d secret(s): %w", len(items), err)
	}
	f.data = next
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
	next := make(map[string][]byte, len(f.data))
	for k, v := range f.data {
		if k != key {
			next[k] = v
		}
	}
	if err := f.writeLocked(next); err != nil {
		return fmt.Errorf("file store: delete %q: %w", key, err)
	}
	f.data = next
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
	if err := f.refreshLocked(); err != nil {
		return false, err
	}
	if len(f.data) != 0 || !f.stamp.exists {
		return false, nil
	}
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("file store: %w", err)
	}
	f.stamp = fileStamp{}
	return true, syncDir(filepath.Dir(f.path))
}

func (f *FileStore) statLocked() (fileStamp, error) {
	fi, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, fmt.Errorf("file store: %w", err)
	}
	return fileStamp{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}, nil
}

// refreshLocked re-reads the file when it changed under us.
func (f *FileStore) refreshLocked() error {
	st, err := f.statLocked()
	if err != nil {
		return err
	}
	if st == f.stamp && f.data != nil {
		return nil
	}
	return f.reloadLocked()
}

func (f *FileStore) reloadLocked() error {
	st, err := f.statLocked()
	if err != nil {
		return err
	}
	if !st.exists {
		f.data, f.stamp = map[string][]byte{}, st
		return nil
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("file store: %s is accessible by other users (mode %v); run chmod 600 on it", f.path, fi.Mode().Perm())
	}
	raw, err := io.ReadAll(io.LimitReader(fh, maxSecretsFile+1))
	if err != nil {
		return fmt.Errorf("file store: %w", err)
	}
	if len(raw) > maxSecretsFile {
		return fmt.Errorf("file store: %s is larger than %d bytes", f.path, maxSecretsFile)
	}
	data, err := f.decrypt(raw)
	if err != nil {
		return err
	}
	f.data, f.stamp = data, st
	return nil
}

func (f *FileStore) decrypt(raw []byte) (map[string][]byte, error) {
	ns := f.aead.NonceSize()
	if !bytes.HasPrefix(raw, fileMagic) || len(raw) < len(fileMagic)+ns+f.aead.Overhead() {
		return nil, fmt.Errorf("file store: %s is not a secrets file of this version", f.path)
	}
	body := raw[len(fileMagic):]
	plain, err := f.aead.Open(nil, body[:ns], body[ns:], fileMagic)
	if err != nil {
		return nil, fmt.Errorf("file store: %s cannot be decrypted with the key from %s (was the key replaced?)", f.path, f.keySource)
	}
	defer clear(plain)
	var c fileContent
	if err := json.Unmarshal(plain, &c); err != nil || c.Version != 1 {
		return nil, fmt.Errorf("file store: %s holds an unexpected layout", f.path)
	}
	if c.Secrets == nil {
		c.Secrets = map[string][]byte{}
	}
	return c.Secrets, nil
}

// writeLocked encrypts data and replaces the file atomically.
func (f *FileStore) writeLocked(data map[string][]byte) error {
	plain, err := json.Marshal(fileContent{Version: 1, Secrets: data})
	if err != nil {
		return err
	}
	nonce := make([]byte, f.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		clear(plain)
		return err
	}
	out := make([]byte, 0, len(fileMagic)+len(nonce)+len(plain)+f.aead.Overhead())
	out = append(out, fileMagic...)
	out = append(out, nonce...)
	out = f.aead.Seal(out, nonce, plain, fileMagic)
	clear(plain)
	if err := writeFileAtomic(f.path, out); err != nil {
		return err
	}
	st, err := f.statLocked()
	if err != nil {
		return err
	}
	f.stamp = st
	return nil
}

// writeFileAtomic writes data to path with mode 0600: a temporary file in
// the same directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
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
