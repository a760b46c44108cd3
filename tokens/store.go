package tokens

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Backend names, as used by the configuration key `secrets`.
const (
	BackendAuto    = "auto"
	BackendKeyring = "keyring"
	BackendFile    = "file"
)

// MaxValueSize is the largest secret either backend accepts. Secret Service
// has no hard limit, but keyrings slow down with big items and other
// platforms' keychains stop at a few KiB; our secrets are far smaller.
const MaxValueSize = 64 << 10

// maxKeyLen bounds the stable ids used as keys.
const maxKeyLen = 256

var (
	// ErrSecretNotFound is returned (wrapped) by Get when no secret is
	// stored under the key.
	ErrSecretNotFound = errors.New("secret not found")
	// ErrValueTooLarge is returned by Put for values over MaxValueSize.
	ErrValueTooLarge = fmt.Errorf("secret larger than %d bytes", MaxValueSize)
	// ErrInvalidKey is returned for keys that are empty, too long or not
	// printable ASCII.
	ErrInvalidKey = errors.New("invalid secret key")
	// ErrKeyringUnavailable is returned (wrapped) when no usable Secret
	// Service keyring is reachable.
	ErrKeyringUnavailable = errors.New("no usable Secret Service keyring")
	// ErrKeyringLocked is returned (wrapped) when the keyring is reachable
	// but its default collection is locked.
	ErrKeyringLocked = errors.New("the keyring is locked")
)

// Store keeps secrets under stable keys such as "share/<id>/secret". It is
// the shape of agent.SecretStore.
type Store interface {
	Put(ctx context.Context, key string, value []byte) error
	// Get returns an error satisfying errors.Is(err, ErrSecretNotFound)
	// when nothing is stored under key.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete returns nil when nothing is stored under key.
	Delete(ctx context.Context, key string) error
	// Backend is "keyring" or "file".
	Backend() string
}

// Keys of the secrets this package itself reads and writes for a share.
func shareSecretKey(shareID string) string  { return "share/" + shareID + "/secret" }
func shareTokenKey(shareID string) string   { return "share/" + shareID + "/token" }
func shareRefreshKey(shareID string) string { return "share/" + shareID + "/refresh" }

// checkKey validates a key: keys are ids, never secret values, and they end
// up in keyring attributes and file maps.
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen || !utf8.ValidString(key) {
		return fmt.Errorf("%w (length %d)", ErrInvalidKey, len(key))
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: character %d is not printable ASCII", ErrInvalidKey, i)
		}
	}
	return nil
}

func checkValue(value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w (%d bytes)", ErrValueTooLarge, len(value))
	}
	return nil
}

// layeredStore is the keyring with a file store behind it that still holds
// secrets a migration could not move. Reads fall through to the file; writes
// and deletes go to the keyring and remove the file's copy.
type layeredStore struct {
	primary Store
	legacy  *FileStore
}

func (l *layeredStore) Put(ctx context.Context, key string, value []byte) error {
	if err := l.primary.Put(ctx, key, value); err != nil {
		return err
	}
	return l.legacy.Delete(ctx, key)
}

func (l *layeredStore) PutMany(ctx context.Context, items map[string][]byte) error {
	if err := PutMany(ctx, l.primary, items); err != nil {
		return err
	}
	var errs []error
	for k := range items {
		errs = append(errs, l.legacy.Delete(ctx, k))
	}
	return errors.Join(errs...)
}

func (l *layeredStore) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := l.primary.Get(ctx, key)
	if errors.Is(err, ErrSecretNotFound) {
		return l.legacy.Get(ctx, key)
	}
	return v, err
}

func (l *layeredStore) Delete(ctx context.Context, key string) error {
	return errors.Join(l.primary.Delete(ctx, key), l.legacy.Delete(ctx, key))
}

func (l *layeredStore) Backend() string { return l.primary.Backend() }

// PutMany stores several secrets: at once where the store can (the file
// store rewrites its file once), else one by one.
func PutMany(ctx context.Context, s Store, items map[string][]byte) error {
	if b, ok := s.(interface {
		PutMany(context.Context, map[string][]byte) error
	}); ok {
		return b.PutMany(ctx, items)
	}
	for k, v := range items {
		if err := s.Put(ctx, k, v); err != nil {
			return err
		}
	}
	return nil
}
