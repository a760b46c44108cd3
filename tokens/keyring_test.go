package tokens

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
	"github.com/ocm-agent/ocm-agent/tokens/keyringtest"
)

// testService gives each test its own items in the private keyring.
func testService(t *testing.T) string {
	return "ocm-agent-test-" + strings.ReplaceAll(t.Name(), "/", "-")
}

func TestKeyringPutGetDelete(t *testing.T) {
	needKeyring(t)
	ctx := context.Background()
	k := NewKeyringStore(KeyringOptions{Service: testService(t)})
	if k.Backend() != BackendKeyring {
		t.Fatalf("Backend() = %q", k.Backend())
	}
	if _, err := k.Get(ctx, "share/a/secret"); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrSecretNotFound", err)
	}
	if err := k.Put(ctx, "share/a/secret", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := k.Put(ctx, "share/a/secret", []byte("second")); err != nil {
		t.Fatal(err)
	}
	got, err := k.Get(ctx, "share/a/secret")
	if err != nil || string(got) != "second" {
		t.Fatalf("after overwrite: %q, %v", got, err)
	}
	if err := k.Put(ctx, "share/b/secret", []byte("other")); err != nil {
		t.Fatal(err)
	}
	if err := k.Delete(ctx, "share/a/secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get(ctx, "share/a/secret"); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := k.Delete(ctx, "share/a/secret"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if got, err := k.Get(ctx, "share/b/secret"); err != nil || string(got) != "other" {
		t.Fatalf("the other item: %q, %v", got, err)
	}
	_ = k.Delete(ctx, "share/b/secret")
}

func TestKeyringBinaryValuesAndServiceIsolation(t *testing.T) {
	needKeyring(t)
	ctx := context.Background()
	a := NewKeyringStore(KeyringOptions{Service: testService(t) + "-a"})
	b := NewKeyringStore(KeyringOptions{Service: testService(t) + "-b"})
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if err := a.Put(ctx, "agent/ed25519", all); err != nil {
		t.Fatal(err)
	}
	got, err := a.Get(ctx, "agent/ed25519")
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("binary value did not round-trip: %v", err)
	}
	if _, err := b.Get(ctx, "agent/ed25519"); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("another service sees the item: %v", err)
	}
	_ = a.Delete(ctx, "agent/ed25519")
}

func TestKeyringSizeLimitAndKeys(t *testing.T) {
	needKeyring(t)
	ctx := context.Background()
	k := NewKeyringStore(KeyringOptions{Service: testService(t)})
	if err := k.Put(ctx, "big", make([]byte, MaxValueSize+1)); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("oversized value: %v, want ErrValueTooLarge", err)
	}
	if !strings.Contains(ErrValueTooLarge.Error(), "65536") {
		t.Fatalf("the size error does not say the limit: %v", ErrValueTooLarge)
	}
	max := bytes.Repeat([]byte{'x'}, MaxValueSize)
	if err := k.Put(ctx, "big", max); err != nil {
		t.Fatalf("value of exactly MaxValueSize: %v", err)
	}
	if got, err := k.Get(ctx, "big"); err != nil || !bytes.Equal(got, max) {
		t.Fatalf("largest value did not round-trip: %v", err)
	}
	_ = k.Delete(ctx, "big")
	for _, bad := range []string{"", "has space", "new\nline", strings.Repeat("k", 300), "ünïcode"} {
		if err := k.Put(ctx, bad, []byte("v")); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("key %q: %v, want ErrInvalidKey", bad, err)
		}
	}
}

func TestKeyringProbeUnlocked(t *testing.T) {
	needKeyring(t)
	st, err := NewKeyringStore(KeyringOptions{Service: testService(t)}).Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Reachable || !st.Unlocked || st.Collection == "" {
		t.Fatalf("probe state %+v", st)
	}
	if st, err := CheckKeyring(context.Background()); err != nil || !st.Unlocked {
		t.Fatalf("CheckKeyring: %+v %v", st, err)
	}
}

func TestOpenAutoPicksKeyring(t *testing.T) {
	needKeyring(t)
	ctx := context.Background()
	state := t.TempDir()
	logger, logs := newTestLogger()
	s, st, err := Open(ctx, OpenOptions{Backend: BackendAuto, StateDir: state, ConfigDir: t.TempDir(),
		Service: testService(t), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if s.Backend() != BackendKeyring || st.Backend != BackendKeyring || !st.Unlocked || st.Reason == "" {
		t.Fatalf("backend %q, status %+v", s.Backend(), st)
	}
	if err := s.Put(ctx, "share/x/secret", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "share/x/secret"); err != nil || string(got) != "v" {
		t.Fatalf("%q, %v", got, err)
	}
	_ = s.Delete(ctx, "share/x/secret")
	if _, err := os.Stat(filepath.Join(state, SecretsFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the keyring backend created a secrets file: %v", err)
	}
	if !strings.Contains(logs.String(), "using the OS keyring") {
		t.Fatalf("no log line naming the backend:\n%s", logs)
	}
}

func TestOpenKeyringWithoutBusFailsWithHint(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", noBus)
	_, _, err := Open(context.Background(), OpenOptions{Backend: BackendKeyring, StateDir: t.TempDir(),
		ConfigDir: t.TempDir(), ProbeTimeout: 3 * time.Second})
	if !errors.Is(err, ErrKeyringUnavailable) {
		t.Fatalf("err = %v, want ErrKeyringUnavailable", err)
	}
	for _, want := range []string{"no D-Bus session bus", "gnome-keyring-daemon --unlock", "dbus-run-session", "install gnome-keyring"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

func TestOpenAutoWithoutBusFallsBackToFile(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", noBus)
	logger, logs := newTestLogger()
	state := t.TempDir()
	s, st, err := Open(context.Background(), OpenOptions{Backend: BackendAuto, StateDir: state,
		ConfigDir: t.TempDir(), Logger: logger, ProbeTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Backend() != BackendFile || st.Backend != BackendFile || st.Unlocked {
		t.Fatalf("backend %q, status %+v", s.Backend(), st)
	}
	if !strings.Contains(st.Reason, "no D-Bus session bus") {
		t.Fatalf("reason %q does not say why", st.Reason)
	}
	if !strings.Contains(logs.String(), "using the encrypted file store") || !strings.Contains(logs.String(), "no D-Bus session bus") {
		t.Fatalf("no log line saying which backend and why:\n%s", logs)
	}
}

func TestOpenWithBusButNoSecretService(t *testing.T) {
	env, err := keyringtest.StartBusOnly(context.Background())
	testenv.Need(t, "a keyring", err)
	defer env.Close()
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", env.Address)
	_, st, err := Open(context.Background(), OpenOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir(), ProbeTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if st.Backend != BackendFile || !strings.Contains(st.Reason, "no Secret Service") {
		t.Fatalf("status %+v", st)
	}
	_, _, err = Open(context.Background(), OpenOptions{Backend: BackendKeyring, StateDir: t.TempDir(), ProbeTimeout: 3 * time.Second})
	if !errors.Is(err, ErrKeyringUnavailable) || !strings.Contains(err.Error(), "gnome-keyring-daemon") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenLockedKeyring(t *testing.T) {
	needKeyring(t) // also fails or skips when the parts are missing
	env, err := keyringtest.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if err := env.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", env.Address)
	_, st, err := Open(context.Background(), OpenOptions{StateDir: t.TempDir(), ConfigDir: t.TempDir(), ProbeTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if st.Backend != BackendFile || st.Unlocked || !strings.Contains(st.Reason, "locked") {
		t.Fatalf("status %+v", st)
	}
	if ks, err := CheckKeyring(context.Background()); !errors.Is(err, ErrKeyringLocked) || !ks.Reachable || ks.Unlocked {
		t.Fatalf("CheckKeyring on a locked keyring: %+v %v", ks, err)
	}
	_, _, err = Open(context.Background(), OpenOptions{Backend: BackendKeyring, StateDir: t.TempDir(), ProbeTimeout: 3 * time.Second})
	if !errors.Is(err, ErrKeyringLocked) || !strings.Contains(err.Error(), "--unlock") {
		t.Fatalf("err = %v, want ErrKeyringLocked with a hint", err)
	}
}

func TestOpenRejectsUnknownBackend(t *testing.T) {
	_, _, err := Open(context.Background(), OpenOptions{Backend: "vault", StateDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "auto, keyring or file") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenMigratesFileIntoKeyring(t *testing.T) {
	needKeyring(t)
	ctx := context.Background()
	state, cfg := t.TempDir(), t.TempDir()
	fs, err := OpenFileStore(ctx, FileOptions{StateDir: state, ConfigDir: cfg})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"share/1/secret": "s1", "share/2/secret": "s2", "agent/ed25519": "private"}
	for k, v := range want {
		if err := fs.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	service := testService(t)
	s, st, err := Open(ctx, OpenOptions{StateDir: state, ConfigDir: cfg, Service: service})
	if err != nil {
		t.Fatal(err)
	}
	if st.Backend != BackendKeyring || st.Migrated != len(want) {
		t.Fatalf("status %+v, want keyring with %d migrated", st, len(want))
	}
	kr := NewKeyringStore(KeyringOptions{Service: service})
	for k, v := range want {
		for _, store := range []Store{s, kr} {
			got, err := store.Get(ctx, k)
			if err != nil || string(got) != v {
				t.Fatalf("%s after migration: %q, %v", k, got, err)
			}
		}
		_ = kr.Delete(ctx, k)
	}
	if _, err := os.Stat(filepath.Join(state, SecretsFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the emptied secrets file is still there: %v", err)
	}
}

// failingStore accepts n puts, then fails: a stand-in for a keyring that
// stops answering mid-migration (no real keyring can be made to do that
// on cue).
type failingStore struct {
	Store
	n int
}

func (f *failingStore) Put(ctx context.Context, key string, value []byte) error {
	if f.n <= 0 {
		return errors.New("keyring went away")
	}
	f.n--
	return f.Store.Put(ctx, key, value)
}

func TestMigrateStopsAndKeepsTheRest(t *testing.T) {
	needKeyring(t)
	ctx := context.Background()
	state, cfg := t.TempDir(), t.TempDir()
	fs, err := OpenFileStore(ctx, FileOptions{StateDir: state, ConfigDir: cfg})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := fs.Put(ctx, k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	kr := NewKeyringStore(KeyringOptions{Service: testService(t)})
	n, err := Migrate(ctx, fs, &failingStore{Store: kr, n: 1})
	if err == nil || n != 1 {
		t.Fatalf("n=%d err=%v, want 1 and an error", n, err)
	}
	keys, _ := fs.Keys(ctx)
	if strings.Join(keys, ",") != "b,c" {
		t.Fatalf("left in the file: %v", keys)
	}
	// Reads through the layered store find both halves.
	l := &layeredStore{primary: kr, legacy: fs}
	for _, k := range []string{"a", "b", "c"} {
		if got, err := l.Get(ctx, k); err != nil || string(got) != "v-"+k {
			t.Fatalf("%s: %q, %v", k, got, err)
		}
	}
	if err := l.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, "b"); !errors.Is(err, ErrSecretNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	n, err = Migrate(ctx, fs, kr)
	if err != nil || n != 1 {
		t.Fatalf("second migration: n=%d err=%v", n, err)
	}
	_ = kr.Delete(ctx, "a")
	_ = kr.Delete(ctx, "c")
}

// A Secret Service that never answers: every call through go-keyring would
// block for good. The blocking function stands in for go-keyring here (its
// D-Bus connection is process-wide and cached, so a hung fake service on a
// private bus would poison the other keyring tests of this binary). Calls
// made while one hangs fail at once, and no more than one goroutine is
// ever left waiting on the keyring.
func TestKeyringHungCallsLeakNoGoroutines(t *testing.T) {
	k := NewKeyringStore(KeyringOptions{Timeout: 50 * time.Millisecond})
	release := make(chan struct{})
	var started atomic.Int32
	hang := func() error {
		started.Add(1)
		<-release
		return nil
	}
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	before := runtime.NumGoroutine()
	ctx := context.Background()
	if err := k.call(ctx, hang); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("first call: %v, want a timeout", err)
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- k.call(ctx, hang)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrKeyringUnavailable) {
			t.Fatalf("call while the keyring hangs: %v, want ErrKeyringUnavailable", err)
		}
	}
	if got := started.Load(); got != 1 {
		t.Errorf("%d calls reached the keyring while it hung, want 1", got)
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines: %d before, %d after %d calls to a hung keyring", before, after, n+1)
	}

	// It answers again: so do the calls.
	close(release)
	released = true
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := k.call(ctx, func() error { return nil })
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still fail after the keyring answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline
	}
}
