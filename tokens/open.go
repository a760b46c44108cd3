package tokens

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// DefaultProbeTimeout bounds the keyring probe at start.
const DefaultProbeTimeout = 5 * time.Second

// OpenOptions chooses and configures the secret store.
type OpenOptions struct {
	// Backend is "auto" (default), "keyring" or "file".
	Backend string
	// StateDir holds the file store's secrets file.
	StateDir string
	// KeyFile is the file store's key file from the configuration, if any.
	KeyFile string
	// ConfigDir overrides where the file store generates its key
	// ($XDG_CONFIG_HOME/ocm-agent by default).
	ConfigDir string
	// Service is the keyring service attribute; DefaultService when empty.
	Service string
	// ProbeTimeout bounds the keyring probe; DefaultProbeTimeout when zero.
	ProbeTimeout time.Duration
	Logger       *slog.Logger
}

// Status says which backend Open chose and why; the agent reports it in
// `ocm-agent status` and `doctor`.
type Status struct {
	Backend string // "keyring" | "file"
	Reason  string
	// Unlocked: the keyring was reachable, unlocked and usable.
	Unlocked bool
	// KeySource is where the file store's key comes from (file backend).
	KeySource string
	// Migrated counts the secrets moved from the file into the keyring.
	Migrated int
}

// keyringHint is appended to errors when the keyring was asked for and
// cannot be used.
const keyringHint = "start a Secret Service on the session bus, e.g. " +
	"`gnome-keyring-daemon --start --components=secrets` and unlock it with " +
	"`gnome-keyring-daemon --unlock` (on a machine without a desktop session, run the agent under " +
	"`dbus-run-session` together with gnome-keyring-daemon), install gnome-keyring " +
	"(or KeePassXC or KWallet with Secret Service enabled), or set secrets = \"file\""

// Open returns the secret store chosen by o.Backend:
//
//   - "keyring": the OS keyring, or an error (wrapping ErrKeyringUnavailable
//     or ErrKeyringLocked) saying how to start one;
//   - "file": the encrypted file store;
//   - "auto": the keyring when reachable and unlocked, else the file store,
//     with the reason logged and in Status.
//
// Whenever the keyring is used and a secrets file exists in StateDir, its
// secrets are moved into the keyring first (see Migrate). Secrets that
// could not be moved are still read from the file.
func Open(ctx context.Context, o OpenOptions) (Store, Status, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fo := FileOptions{StateDir: o.StateDir, KeyFile: o.KeyFile, ConfigDir: o.ConfigDir, Logger: logger}
	backend := o.Backend
	if backend == "" {
		backend = BackendAuto
	}
	switch backend {
	case BackendFile:
		fst, err := OpenFileStore(ctx, fo)
		if err != nil {
			return nil, Status{}, err
		}
		st := Status{Backend: BackendFile, Reason: `configured (secrets = "file")`, KeySource: fst.KeySource()}
		logger.Info("secrets: using the encrypted file store", "reason", st.Reason, "path", fst.Path(), "key", fst.KeySource())
		return fst, st, nil
	case BackendKeyring, BackendAuto:
	default:
		return nil, Status{}, fmt.Errorf("secrets backend %q: want auto, keyring or file", o.Backend)
	}

	timeout := o.ProbeTimeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	kr := NewKeyringStore(KeyringOptions{Service: o.Service})
	pctx, cancel := context.WithTimeout(ctx, timeout)
	_, perr := kr.Probe(pctx)
	cancel()
	if perr != nil {
		if backend == BackendKeyring {
			return nil, Status{}, fmt.Errorf("secrets = \"keyring\", but %w; %s", perr, keyringHint)
		}
		fst, err := OpenFileStore(ctx, fo)
		if err != nil {
			return nil, Status{}, fmt.Errorf("no keyring (%v), and the file store fails: %w", perr, err)
		}
		st := Status{Backend: BackendFile, Reason: "no usable keyring: " + perr.Error(), KeySource: fst.KeySource()}
		logger.Warn("secrets: using the encrypted file store", "reason", st.Reason, "path", fst.Path(), "key", fst.KeySource())
		return fst, st, nil
	}

	st := Status{Backend: BackendKeyring, Unlocked: true, Reason: "the Secret Service keyring is reachable and unlocked"}
	if backend == BackendKeyring {
		st.Reason = `configured (secrets = "keyring"); reachable and unlocked`
	}
	var store Store = kr
	if o.StateDir != "" {
		if _, err := os.Stat(filepath.Join(o.StateDir, SecretsFileName)); err == nil {
			n, legacy, err := migrateOnStart(ctx, fo, kr, logger)
			st.Migrated = n
			if legacy != nil {
				store = &layeredStore{primary: kr, legacy: legacy}
			}
			if err != nil {
				logger.Error("secrets: moving secrets from the file into the keyring failed; the rest stay in the file", "moved", n, "err", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			logger.Warn("secrets: cannot check for a secrets file to migrate", "err", err)
		}
	}
	logger.Info("secrets: using the OS keyring", "reason", st.Reason, "migrated", st.Migrated)
	return store, st, nil
}

// migrateOnStart moves the file's secrets into the keyring; the file store
// is returned when secrets remain in it.
func migrateOnStart(ctx context.Context, fo FileOptions, to Store, logger *slog.Logger) (int, *FileStore, error) {
	from, err := OpenFileStore(ctx, fo)
	if err != nil {
		return 0, nil, err
	}
	n, err := Migrate(ctx, from, to)
	if n > 0 {
		logger.Info("secrets: moved secrets from the file into the keyring", "count", n, "path", from.Path())
	}
	keys, kerr := from.Keys(ctx)
	if kerr != nil || len(keys) > 0 {
		return n, from, errors.Join(err, kerr)
	}
	return n, nil, err
}

// Migrate moves every secret of from into to: each is written, read back
// and compared, then deleted from the file. When the file is empty at the
// end it is removed. It stops at the first failure; n counts the secrets
// moved so far.
func Migrate(ctx context.Context, from *FileStore, to Store) (n int, err error) {
	keys, err := from.Keys(ctx)
	if err != nil {
		return 0, err
	}
	for _, key := range keys {
		v, err := from.Get(ctx, key)
		if errors.Is(err, ErrSecretNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		err = moveOne(ctx, key, v, from, to)
		clear(v)
		if err != nil {
			return n, err
		}
		n++
	}
	if _, err := from.removeIfEmpty(); err != nil {
		return n, err
	}
	return n, nil
}

func moveOne(ctx context.Context, key string, v []byte, from *FileStore, to Store) error {
	if err := to.Put(ctx, key, v); err != nil {
		return fmt.Errorf("migrate %q: %w", key, err)
	}
	got, err := to.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("migrate %q: reading back: %w", key, err)
	}
	same := bytes.Equal(got, v)
	clear(got)
	if !same {
		return fmt.Errorf("migrate %q: the value read back from the %s differs", key, to.Backend())
	}
	return from.Delete(ctx, key)
}
