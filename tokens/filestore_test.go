package tokens

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func openFile(t *testing.T, o FileOptions) *FileStore {
	t.Helper()
	fs, err := OpenFileStore(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestFileStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	fs := openFile(t, FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()})
	if fs.Backend() != BackendFile {
		t.Fatalf("Backend() = %q", fs.Backend())
	}
	if _, err := fs.Get(ctx, "share/1/secret"); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if err := fs.Delete(ctx, "share/1/secret"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	for _, v := range []string{"one", "two"} {
		if err := fs.Put(ctx, "share/1/secret", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := fs.Get(ctx, "share/1/secret"); err != nil || string(got) != "two" {
		t.Fatalf("%q, %v", got, err)
	}
	got, _ := fs.Get(ctx, "share/1/secret")
	got[0] = 'X' // callers may scribble on what they get
	if again, _ := fs.Get(ctx, "share/1/secret"); string(again) != "two" {
		t.Fatalf("Get hands out the store's own buffer: %q", again)
	}
	if err := fs.Delete(ctx, "share/1/secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Get(ctx, "share/1/secret"); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
	if err := fs.Put(ctx, "k", make([]byte, MaxValueSize+1)); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if err := fs.Put(ctx, "bad key", []byte("v")); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("bad key: %v", err)
	}
}

func TestFileStoreEncryptedPrivateAndKeyElsewhere(t *testing.T) {
	ctx := context.Background()
	state, cfg := t.TempDir(), t.TempDir()
	logger, logs := newTestLogger()
	fs := openFile(t, FileOptions{StateDir: state, ConfigDir: cfg, Logger: logger})
	canary := "canary-shared-secret-7f3a9c2e"
	if err := fs.Put(ctx, "share/canary/secret", []byte(canary)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(fs.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file mode %v, want 0600", fi.Mode().Perm())
	}
	raw, err := os.ReadFile(fs.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{canary, base64.StdEncoding.EncodeToString([]byte(canary)), "share/canary/secret"} {
		if bytes.Contains(raw, []byte(needle)) {
			t.Fatalf("the secrets file holds %q in clear", needle)
		}
	}
	keyPath := filepath.Join(cfg, GeneratedKeyName)
	kfi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatalf("no key file in the configuration directory: %v", err)
	}
	if kfi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", kfi.Mode().Perm())
	}
	entries, _ := os.ReadDir(state)
	for _, e := range entries {
		if e.Name() != SecretsFileName {
			t.Fatalf("unexpected file in the state directory: %s", e.Name())
		}
	}
	if !strings.Contains(fs.KeySource(), keyPath) {
		t.Fatalf("KeySource %q does not name %s", fs.KeySource(), keyPath)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), CredentialName) {
		t.Fatalf("no warning about the key on disk:\n%s", logs)
	}
	if strings.Contains(logs.String(), canary) {
		t.Fatal("the secret reached the log")
	}
}

func TestFileStoreSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	o := FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()}
	fs := openFile(t, o)
	if err := fs.Put(ctx, "agent/rsa", []byte("pem")); err != nil {
		t.Fatal(err)
	}
	again := openFile(t, o)
	if got, err := again.Get(ctx, "agent/rsa"); err != nil || string(got) != "pem" {
		t.Fatalf("after reopen: %q, %v", got, err)
	}
	// Two handles on one file see each other's writes.
	if err := again.Put(ctx, "agent/ed25519", []byte("key")); err != nil {
		t.Fatal(err)
	}
	if got, err := fs.Get(ctx, "agent/ed25519"); err != nil || string(got) != "key" {
		t.Fatalf("first handle does not see the second's write: %q, %v", got, err)
	}
}

func TestFileStoreConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	o := FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()}
	fs := openFile(t, o)
	const writers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := fmt.Sprintf("share/%d-%d/secret", w, i)
				if err := fs.Put(ctx, key, []byte(key)); err != nil {
					errs <- err
				}
				if _, err := fs.Get(ctx, key); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	keys, err := openFile(t, o).Keys(ctx)
	if err != nil || len(keys) != writers*each {
		t.Fatalf("after reopen %d keys (%v), want %d", len(keys), err, writers*each)
	}
	entries, _ := os.ReadDir(o.StateDir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %d entries", len(entries))
	}
}

func TestFileStoreKeyFromSystemdCredential(t *testing.T) {
	ctx := context.Background()
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, CredentialName), []byte("a systemd credential holding plenty of key material\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	cfg := t.TempDir()
	o := FileOptions{StateDir: t.TempDir(), ConfigDir: cfg}
	fs := openFile(t, o)
	if !strings.Contains(fs.KeySource(), "systemd credential") {
		t.Fatalf("KeySource %q", fs.KeySource())
	}
	if err := fs.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg, GeneratedKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key was generated although a credential exists: %v", err)
	}
	if got, err := openFile(t, o).Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("%q, %v", got, err)
	}
}

func TestFileStoreConfiguredKeyFile(t *testing.T) {
	ctx := context.Background()
	keyFile := filepath.Join(t.TempDir(), "sub", "my.key")
	o := FileOptions{StateDir: t.TempDir(), KeyFile: keyFile, ConfigDir: t.TempDir()}
	fs := openFile(t, o)
	if err := fs.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("configured key file not created 0600: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(o.ConfigDir, GeneratedKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a default key was generated although a key file is configured")
	}
}

func TestFileStoreWrongOrMissingKey(t *testing.T) {
	ctx := context.Background()
	state, cfg := t.TempDir(), t.TempDir()
	fs := openFile(t, FileOptions{StateDir: state, ConfigDir: cfg})
	if err := fs.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(fs.Path())

	other := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(other, []byte("some entirely different key material"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFileStore(ctx, FileOptions{StateDir: state, KeyFile: other})
	if err == nil || !strings.Contains(err.Error(), "cannot be decrypted") {
		t.Fatalf("wrong key: %v", err)
	}

	if err := os.Remove(filepath.Join(cfg, GeneratedKeyName)); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFileStore(ctx, FileOptions{StateDir: state, ConfigDir: cfg})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg, GeneratedKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a new key was generated for an existing secrets file")
	}
	after, _ := os.ReadFile(fs.Path())
	if !bytes.Equal(before, after) {
		t.Fatal("the secrets file changed")
	}
}

func TestFileStoreRejectsLooseKeyFile(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "loose.key")
	if err := os.WriteFile(keyFile, []byte("key material that others can read"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFileStore(context.Background(), FileOptions{StateDir: t.TempDir(), KeyFile: keyFile})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v", err)
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFileStore(context.Background(), FileOptions{StateDir: t.TempDir(), KeyFile: short})
	if err == nil || !strings.Contains(err.Error(), "key material") {
		t.Fatalf("err = %v", err)
	}
}

func TestFileStoreRejectsTamperedFile(t *testing.T) {
	ctx := context.Background()
	o := FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()}
	fs := openFile(t, o)
	if err := fs.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(fs.Path())
	raw[len(raw)-1] ^= 1
	if err := os.WriteFile(fs.Path(), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(ctx, o); err == nil || !strings.Contains(err.Error(), "cannot be decrypted") {
		t.Fatalf("tampered file: %v", err)
	}
}

func TestOpenFileBackend(t *testing.T) {
	s, st, err := Open(context.Background(), OpenOptions{Backend: BackendFile, StateDir: t.TempDir(), ConfigDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Backend() != BackendFile || st.Backend != BackendFile || st.KeySource == "" || !strings.Contains(st.Reason, "configured") {
		t.Fatalf("status %+v", st)
	}
}

func TestFileStorePutMany(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f, err := OpenFileStore(ctx, FileOptions{StateDir: filepath.Join(dir, "state"), ConfigDir: filepath.Join(dir, "config")})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Put(ctx, "share/0/secret", []byte("zero")); err != nil {
		t.Fatal(err)
	}
	items := map[string][]byte{"share/1/secret": []byte("one"), "share/2/secret": []byte("two")}
	if err := PutMany(ctx, f, items); err != nil {
		t.Fatal(err)
	}
	reopened, err := OpenFileStore(ctx, FileOptions{StateDir: filepath.Join(dir, "state"), ConfigDir: filepath.Join(dir, "config")})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"share/0/secret": "zero", "share/1/secret": "one", "share/2/secret": "two"} {
		if v, err := reopened.Get(ctx, k); err != nil || string(v) != want {
			t.Errorf("%s = %q, %v after PutMany and reopen", k, v, err)
		}
	}
	if err := PutMany(ctx, f, map[string][]byte{"bad key with spaces": []byte("x")}); err == nil {
		t.Error("PutMany accepted an invalid key")
	}
	if v, _ := f.Get(ctx, "share/1/secret"); string(v) != "one" {
		t.Error("a refused PutMany changed stored secrets")
	}
}

// writeV1 writes a secrets file of the first version (one sealed JSON
// document), as the store wrote before it kept a log.
func writeV1(t *testing.T, f *FileStore, secrets map[string][]byte) {
	t.Helper()
	plain, err := json.Marshal(fileContentV1{Version: 1, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, f.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	out := append(append(bytes.Clone(fileMagicV1), nonce...), f.aead.Seal(nil, nonce, plain, fileMagicV1)...)
	if err := os.WriteFile(f.Path(), out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFileStoreConvertsFirstVersion(t *testing.T) {
	ctx := context.Background()
	o := FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()}
	logger, logs := newTestLogger()
	o.Logger = logger
	old := openFile(t, o)
	want := map[string][]byte{"share/a/secret": []byte("alpha"), "agent/ed25519": []byte("key")}
	for i := range 50 {
		want[fmt.Sprintf("share/%d/secret", i)] = fmt.Appendf(nil, "s3cr3t-%d", i)
	}
	writeV1(t, old, want)

	f := openFile(t, o)
	raw, err := os.ReadFile(f.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, fileMagic) {
		t.Fatalf("the file was not converted: starts %q", raw[:min(len(raw), 24)])
	}
	if fi, _ := os.Stat(f.Path()); fi.Mode().Perm() != 0o600 {
		t.Fatalf("converted file mode %v", fi.Mode().Perm())
	}
	if !strings.Contains(logs.String(), "converted") {
		t.Fatalf("no log of the conversion:\n%s", logs)
	}
	// Nothing lost, in this handle, in the one opened before the
	// conversion and after a reopen; and the log takes new writes.
	if err := f.Put(ctx, "share/new/secret", []byte("new")); err != nil {
		t.Fatal(err)
	}
	want["share/new/secret"] = []byte("new")
	for _, h := range []*FileStore{f, old, openFile(t, o)} {
		keys, err := h.Keys(ctx)
		if err != nil || len(keys) != len(want) {
			t.Fatalf("%d keys (%v), want %d", len(keys), err, len(want))
		}
		for k, v := range want {
			if got, err := h.Get(ctx, k); err != nil || !bytes.Equal(got, v) {
				t.Fatalf("%s = %q, %v; want %q", k, got, err, v)
			}
		}
	}
}

func TestFileStoreFirstVersionWrongKeyUntouched(t *testing.T) {
	state := t.TempDir()
	f := openFile(t, FileOptions{StateDir: state, ConfigDir: t.TempDir()})
	writeV1(t, f, map[string][]byte{"k": []byte("v")})
	before, _ := os.ReadFile(f.Path())
	other := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(other, []byte("some entirely different key material"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFileStore(context.Background(), FileOptions{StateDir: state, KeyFile: other})
	if err == nil || !strings.Contains(err.Error(), "cannot be decrypted") {
		t.Fatalf("wrong key on a first-version file: %v", err)
	}
	if after, _ := os.ReadFile(f.Path()); !bytes.Equal(before, after) {
		t.Fatal("a file that could not be read was changed")
	}
}

// tornTails are the ways a crash can leave the end of the log: the last
// record's bytes only partly written, the file extended with zeros, the
// record in place but its end (the tag) never written.
var tornTails = map[string]func(rec []byte) []byte{
	"cut short":         func(rec []byte) []byte { return rec[:len(rec)/2] },
	"length only":       func(rec []byte) []byte { return rec[:4] },
	"three bytes":       func(rec []byte) []byte { return rec[:3] },
	"zeros":             func(rec []byte) []byte { return make([]byte, len(rec)) },
	"tag never written": func(rec []byte) []byte { r := bytes.Clone(rec); clear(r[len(r)-16:]); return r },
}

func TestFileStoreIgnoresTornTail(t *testing.T) {
	for name, tear := range tornTails {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			logger, logs := newTestLogger()
			o := FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir(), Logger: logger}
			f := openFile(t, o)
			for _, k := range []string{"share/a/secret", "share/b/secret"} {
				if err := f.Put(ctx, k, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.ReadFile(f.Path())
			if err := f.Put(ctx, "share/torn/secret", []byte("never acknowledged")); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(f.Path())
			if !bytes.HasPrefix(after, before) {
				t.Fatal("a put rewrote the file instead of appending")
			}
			torn := append(bytes.Clone(before), tear(after[len(before):])...)
			if err := os.WriteFile(f.Path(), torn, 0o600); err != nil {
				t.Fatal(err)
			}

			g, err := OpenFileStore(ctx, o)
			if err != nil {
				t.Fatalf("open with a torn tail: %v", err)
			}
			check := func(h *FileStore, want ...string) {
				t.Helper()
				keys, err := h.Keys(ctx)
				if err != nil || strings.Join(keys, ",") != strings.Join(want, ",") {
					t.Fatalf("keys %v (%v), want %v", keys, err, want)
				}
				for _, k := range want {
					if v, err := h.Get(ctx, k); err != nil || string(v) != k {
						t.Fatalf("%s = %q, %v", k, v, err)
					}
				}
			}
			check(g, "share/a/secret", "share/b/secret")
			// The next write cuts the tail off and appends after the
			// last whole record: a reopen sees all acknowledged puts.
			if err := g.Put(ctx, "share/c/secret", []byte("share/c/secret")); err != nil {
				t.Fatal(err)
			}
			check(openFile(t, o), "share/a/secret", "share/b/secret", "share/c/secret")
			check(f, "share/a/secret", "share/b/secret", "share/c/secret")
			if !strings.Contains(logs.String(), "torn") {
				t.Fatalf("the cut was not logged:\n%s", logs)
			}
		})
	}
}

func TestFileStoreRejectsDamagedRecord(t *testing.T) {
	ctx := context.Background()
	o := FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()}
	f := openFile(t, o)
	var ends []int
	for _, k := range []string{"a", "b", "c"} {
		if err := f.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(f.Path())
		ends = append(ends, int(fi.Size()))
	}
	raw, _ := os.ReadFile(f.Path())
	cases := map[string]func([]byte){
		"a bit of a middle record": func(r []byte) { r[ends[0]+20] ^= 1 },
		"the last record's tag":    func(r []byte) { r[len(r)-1] ^= 1 },
		"a record length":          func(r []byte) { r[ends[0]+3] = 5 },
		"two records swapped": func(r []byte) {
			b, c := bytes.Clone(r[ends[0]:ends[1]]), bytes.Clone(r[ends[1]:ends[2]])
			if len(b) == len(c) {
				copy(r[ends[0]:], c)
				copy(r[ends[0]+len(c):], b)
			}
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			r := bytes.Clone(raw)
			damage(r)
			if err := os.WriteFile(f.Path(), r, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenFileStore(ctx, o)
			if err == nil || !strings.Contains(err.Error(), "damaged") && !strings.Contains(err.Error(), "cannot be decrypted") {
				t.Fatalf("damage not reported: %v", err)
			}
			if after, _ := os.ReadFile(f.Path()); !bytes.Equal(after, r) {
				t.Fatal("a damaged file was changed on open")
			}
		})
	}
}

// TestFileStorePutCostIndependentOfSize checks the shape, not the time: a
// put of a new secret appends its record to the same file, however many
// secrets are stored.
func TestFileStorePutCostIndependentOfSize(t *testing.T) {
	ctx := context.Background()
	o := FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()}
	f := openFile(t, o)
	const n = 2000
	batch := map[string][]byte{}
	for i := range n {
		batch[fmt.Sprintf("share/%024x/secret", i)] = fmt.Appendf(nil, "s3cr3t-%d", i)
	}
	if err := f.PutMany(ctx, batch); err != nil {
		t.Fatal(err)
	}
	first, _ := os.Stat(f.Path())
	prev := first.Size()
	for i := range 100 {
		if err := f.Put(ctx, fmt.Sprintf("share/new%020x/secret", i), []byte("s3cr3t-new")); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(f.Path())
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(first, fi) {
			t.Fatalf("put %d replaced the file", i)
		}
		if grew := fi.Size() - prev; grew > 128 {
			t.Fatalf("put %d wrote %d bytes at %d secrets", i, grew, n+i)
		}
		prev = fi.Size()
	}
	if keys, err := openFile(t, o).Keys(ctx); err != nil || len(keys) != n+100 {
		t.Fatalf("%d keys after reopen (%v)", len(keys), err)
	}
}

// TestFileStoreCompacts overwrites one secret until the dead records
// outweigh the live ones: the file is rewritten, stays small and holds the
// last value.
func TestFileStoreCompacts(t *testing.T) {
	ctx := context.Background()
	o := FileOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir()}
	f := openFile(t, o)
	other := openFile(t, o)
	value := bytes.Repeat([]byte("v"), 4096)
	first, _ := func() (os.FileInfo, error) {
		if err := f.Put(ctx, "k", value); err != nil {
			t.Fatal(err)
		}
		return os.Stat(f.Path())
	}()
	replaced := false
	for i := range 200 {
		value[0] = byte(i)
		if err := f.Put(ctx, "k", value); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(f.Path())
		if !os.SameFile(first, fi) {
			replaced = true
		}
		if fi.Size() > 2*compactSlack {
			t.Fatalf("the log grew to %d bytes for one secret", fi.Size())
		}
	}
	if !replaced {
		t.Fatal("the log was never compacted")
	}
	for _, h := range []*FileStore{f, other, openFile(t, o)} {
		if got, err := h.Get(ctx, "k"); err != nil || !bytes.Equal(got, value) {
			t.Fatalf("after compaction: %d bytes, %v", len(got), err)
		}
	}
	if entries, _ := os.ReadDir(o.StateDir); len(entries) != 1 {
		t.Fatalf("%d entries in the state directory", len(entries))
	}
}
