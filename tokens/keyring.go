package tokens

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

// DefaultService is the Secret Service "service" attribute of every item
// the agent stores.
const DefaultService = "ocm-agent"

// DefaultKeyringTimeout bounds one keyring operation.
const DefaultKeyringTimeout = 10 * time.Second

// Secret Service names (freedesktop.org Secret Service API).
const (
	ssName           = "org.freedesktop.secrets"
	ssPath           = "/org/freedesktop/secrets"
	ssService        = "org.freedesktop.Secret.Service"
	ssCollection     = "org.freedesktop.Secret.Collection"
	ssLoginPath      = "/org/freedesktop/secrets/collection/login"
	dbusPropertiesIf = "org.freedesktop.DBus.Properties"
)

// KeyringOptions configures a KeyringStore.
type KeyringOptions struct {
	// Service is the item's service attribute; DefaultService when empty.
	Service string
	// Timeout bounds each operation; DefaultKeyringTimeout when zero.
	Timeout time.Duration
}

// KeyringStore keeps each secret as one item of the OS keyring (Secret
// Service on Linux), with service = Service and user = the key. Values are
// stored base64-encoded so that any bytes survive every keyring.
//
// Call Probe (Open does) before use: go-keyring connects to the shared
// session bus and would otherwise try to autolaunch one.
type KeyringStore struct {
	service string
	timeout time.Duration

	// One go-keyring call at a time: a call that hangs (a Secret Service
	// that never answers) is abandoned by its caller but keeps its
	// goroutine; while it hangs, later calls fail at once instead of each
	// leaving one more goroutine behind.
	slot      chan struct{}
	mu        sync.Mutex
	hungSince time.Time // an abandoned call has not returned since then
}

// NewKeyringStore returns a store over the OS keyring.
func NewKeyringStore(o KeyringOptions) *KeyringStore {
	k := &KeyringStore{service: o.Service, timeout: o.Timeout, slot: make(chan struct{}, 1)}
	if k.service == "" {
		k.service = DefaultService
	}
	if k.timeout <= 0 {
		k.timeout = DefaultKeyringTimeout
	}
	return k
}

// Backend returns "keyring".
func (k *KeyringStore) Backend() string { return BackendKeyring }

// Put stores value under key, replacing any previous value.
func (k *KeyringStore) Put(ctx context.Context, key string, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := checkValue(value); err != nil {
		return fmt.Errorf("keyring: put %q: %w", key, err)
	}
	enc := base64.StdEncoding.EncodeToString(value)
	err := k.call(ctx, func() error { return keyring.Set(k.service, key, enc) })
	if errors.Is(err, keyring.ErrSetDataTooBig) {
		return fmt.Errorf("keyring: put %q: %w", key, ErrValueTooLarge)
	}
	if err != nil {
		return fmt.Errorf("keyring: put %q: %w", key, err)
	}
	return nil
}

// Get returns the value stored under key.
func (k *KeyringStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var enc string
	err := k.call(ctx, func() error {
		var err error
		enc, err = keyring.Get(k.service, key)
		return err
	})
	if errors.Is(err, keyring.ErrNotFound) {
		return nil, fmt.Errorf("keyring: %q: %w", key, ErrSecretNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: get %q: %w", key, err)
	}
	v, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// Not written by this package; say so without echoing the value.
		return nil, fmt.Errorf("keyring: item %q of service %q is not in the expected encoding", key, k.service)
	}
	return v, nil
}

// Delete removes the item stored under key; nil when there is none.
func (k *KeyringStore) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := k.call(ctx, func() error { return keyring.Delete(k.service, key) })
	if err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return fmt.Errorf("keyring: delete %q: %w", key, err)
	}
	return nil
}

// call runs one go-keyring operation, which knows no context, bounded by
// ctx and the store's timeout. Calls take turns; a call that times out is
// abandoned, and until it returns every other call fails at once with
// ErrKeyringUnavailable: at most one goroutine is ever left waiting on the
// keyring.
func (k *KeyringStore) call(ctx context.Context, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	if err := k.hung(); err != nil {
		return err
	}
	select {
	case k.slot <- struct{}{}:
	case <-ctx.Done():
		if err := k.hung(); err != nil {
			return err
		}
		return fmt.Errorf("the keyring did not answer: %w", ctx.Err())
	}
	var finished, abandoned bool // under k.mu
	done := make(chan error, 1)
	go func() {
		err := fn()
		k.mu.Lock()
		finished = true
		if abandoned {
			k.hungSince = time.Time{}
		}
		k.mu.Unlock()
		<-k.slot
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		k.mu.Lock()
		if !finished {
			abandoned = true
			k.hungSince = time.Now()
		}
		k.mu.Unlock()
		return fmt.Errorf("the keyring did not answer: %w", ctx.Err())
	}
}

// hung returns an error while an abandoned call has not returned.
func (k *KeyringStore) hung() error {
	k.mu.Lock()
	since := k.hungSince
	k.mu.Unlock()
	if since.IsZero() {
		return nil
	}
	return fmt.Errorf("%w: an earlier call has not returned for %s", ErrKeyringUnavailable, time.Since(since).Round(time.Second))
}

// KeyringState is what Probe found.
type KeyringState struct {
	// Reachable: a Secret Service answers on the session bus.
	Reachable bool
	// Unlocked: its default collection is unlocked and a probe item could
	// be written, read back and deleted.
	Unlocked bool
	// Collection is the D-Bus path of the collection items go to.
	Collection string
}

// Probe checks that a Secret Service is reachable on the session bus
// without autolaunching one, that its default collection is unlocked (a
// locked one would make go-keyring wait for a password prompt), and that
// an item can be written, read back and deleted. The error says why not.
func (k *KeyringStore) Probe(ctx context.Context) (KeyringState, error) {
	var st KeyringState
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	path, locked, err := secretServiceState(ctx)
	if err != nil {
		return st, err
	}
	st.Reachable = true
	st.Collection = string(path)
	if locked {
		return st, fmt.Errorf("%w: collection %s", ErrKeyringLocked, path)
	}
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return st, fmt.Errorf("probe: %w", err)
	}
	key := "probe/" + hex.EncodeToString(nonce[:])
	want := []byte("probe " + key)
	if err := k.Put(ctx, key, want); err != nil {
		return st, fmt.Errorf("%w: writing a probe item: %w", ErrKeyringUnavailable, err)
	}
	got, err := k.Get(ctx, key)
	if derr := k.Delete(ctx, key); derr != nil && err == nil {
		err = derr
	}
	if err != nil {
		return st, fmt.Errorf("%w: reading back a probe item: %w", ErrKeyringUnavailable, err)
	}
	if !bytes.Equal(got, want) {
		return st, fmt.Errorf("%w: the probe item read back differs", ErrKeyringUnavailable)
	}
	st.Unlocked = true
	return st, nil
}

// CheckKeyring reports whether a Secret Service is reachable on the session
// bus and whether its default collection is unlocked, without writing
// anything (for `ocm-agent status` and `doctor` while the agent runs).
func CheckKeyring(ctx context.Context) (KeyringState, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultProbeTimeout)
	defer cancel()
	path, locked, err := secretServiceState(ctx)
	if err != nil {
		return KeyringState{}, err
	}
	st := KeyringState{Reachable: true, Unlocked: !locked, Collection: string(path)}
	if locked {
		return st, fmt.Errorf("%w: collection %s", ErrKeyringLocked, path)
	}
	return st, nil
}

// secretServiceState finds the collection go-keyring writes to (the
// "login" collection, else the "default" alias) and whether it is locked,
// over a private connection to the session bus that never autolaunches one.
func secretServiceState(ctx context.Context) (dbus.ObjectPath, bool, error) {
	conn, err := dbus.SessionBusPrivateNoAutoStartup(dbus.WithContext(ctx))
	if err != nil {
		return "", false, fmt.Errorf("%w: no D-Bus session bus: %w", ErrKeyringUnavailable, err)
	}
	defer conn.Close()
	if err := conn.Auth(nil); err != nil {
		return "", false, fmt.Errorf("%w: D-Bus session bus: authentication: %w", ErrKeyringUnavailable, err)
	}
	if err := conn.Hello(); err != nil {
		return "", false, fmt.Errorf("%w: D-Bus session bus: %w", ErrKeyringUnavailable, err)
	}
	svc := conn.Object(ssName, ssPath)
	var cv dbus.Variant
	if err := svc.CallWithContext(ctx, dbusPropertiesIf+".Get", 0, ssService, "Collections").Store(&cv); err != nil {
		return "", false, fmt.Errorf("%w: no Secret Service (%s) on the session bus: %w", ErrKeyringUnavailable, ssName, err)
	}
	collections, _ := cv.Value().([]dbus.ObjectPath)
	path := dbus.ObjectPath("")
	for _, c := range collections {
		if c == ssLoginPath {
			path = c
		}
	}
	if path == "" {
		if err := svc.CallWithContext(ctx, ssService+".ReadAlias", 0, "default").Store(&path); err != nil {
			return "", false, fmt.Errorf("%w: reading the default collection: %w", ErrKeyringUnavailable, err)
		}
		if path == "/" || path == "" {
			return "", false, fmt.Errorf("%w: the Secret Service has no login or default collection", ErrKeyringUnavailable)
		}
	}
	var lv dbus.Variant
	if err := conn.Object(ssName, path).CallWithContext(ctx, dbusPropertiesIf+".Get", 0, ssCollection, "Locked").Store(&lv); err != nil {
		return "", false, fmt.Errorf("%w: reading the lock state of %s: %w", ErrKeyringUnavailable, path, err)
	}
	locked, ok := lv.Value().(bool)
	if !ok {
		return "", false, fmt.Errorf("%w: the lock state of %s is not a boolean", ErrKeyringUnavailable, path)
	}
	return path, locked, nil
}
