package tokens

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
	"github.com/ocm-agent/ocm-agent/tokens/keyringtest"
)

// noBus is a session bus address where nothing listens.
const noBus = "unix:path=/nonexistent/ocm-agent-test/bus"

var (
	keyringOnce sync.Once
	keyringEnv  *keyringtest.Env
	keyringErr  error
)

func TestMain(m *testing.M) {
	// Never reach the developer's own session bus or keyring, nor their
	// configuration directory: tests that want a keyring get a private
	// one from needKeyring.
	os.Setenv("DBUS_SESSION_BUS_ADDRESS", noBus)
	os.Unsetenv("CREDENTIALS_DIRECTORY")
	cfg, err := os.MkdirTemp("", "ocm-tokens-config-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", cfg)
	code := m.Run()
	if keyringEnv != nil {
		keyringEnv.Close()
	}
	os.RemoveAll(cfg)
	os.Exit(code)
}

// needKeyring starts, once per test binary, a private D-Bus session bus
// with an unlocked gnome-keyring-daemon and points the process at it. It
// fails the test under CI=true when dbus or gnome-keyring is missing, and
// skips it otherwise.
func needKeyring(t *testing.T) {
	t.Helper()
	keyringOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		keyringEnv, keyringErr = keyringtest.Start(ctx)
	})
	testenv.Need(t, "a keyring", keyringErr)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", keyringEnv.Address)
}

// testLogger captures debug-level logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// fakeClock is a settable clock for expiry logic; it only moves when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
