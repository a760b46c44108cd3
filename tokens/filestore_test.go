package tokens

import (
	"bytes"
	"context"
	"encoding/base64"
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
