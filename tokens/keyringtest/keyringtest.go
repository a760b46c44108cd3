// Package keyringtest runs a real gnome-keyring-daemon on a private D-Bus
// session bus for tests: a dbus-daemon on a socket in a temporary
// directory, and gnome-keyring-daemon (secrets component only) whose login
// keyring is created and unlocked from a password fed on its stdin. Its
// files live in the same temporary directory, so tests never touch the
// user's own keyring.
//
// Only tests import this package.
package keyringtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// Env is one private session bus with an unlocked keyring on it.
type Env struct {
	// Address is the bus address to put in DBUS_SESSION_BUS_ADDRESS.
	Address string
	// Dir is the temporary directory holding the bus socket and the
	// keyring's files; removed by Close.
	Dir string

	bus, keyring *exec.Cmd
}

// Binaries are the programs Start needs.
var Binaries = []string{"dbus-daemon", "gnome-keyring-daemon"}

// Available reports whether the programs Start needs are installed.
func Available() error {
	var missing []string
	for _, b := range Binaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not installed: %s (apt-get install dbus gnome-keyring)", strings.Join(missing, ", "))
	}
	return nil
}

// Start launches the bus and the keyring and waits (bounded by ctx and
// 10 s) until the login collection is present and unlocked. The caller
// must Close the Env.
func Start(ctx context.Context) (*Env, error) {
	return start(ctx, true)
}

// StartBusOnly launches a private session bus with no Secret Service on
// it (and no service activation), as on a server without a keyring.
func StartBusOnly(ctx context.Context) (*Env, error) {
	return start(ctx, false)
}

func start(ctx context.Context, withKeyring bool) (_ *Env, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "ocm-keyring-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	home := filepath.Join(dir, "home")
	runtime := filepath.Join(dir, "run")
	for _, d := range []string{home, runtime} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_RUNTIME_DIR=" + runtime,
		"LANG=C.UTF-8",
	}

	// A bus of our own configuration: no service activation, so nothing
	// but the daemon started below can claim the Secret Service name.
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(busConfig(filepath.Join(dir, "bus"))), 0o600); err != nil {
		return nil, err
	}
	e.bus = exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	e.bus.Env = env
	e.bus.SysProcAttr = procAttr()
	out, err := e.bus.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := e.bus.Start(); err != nil {
		return nil, fmt.Errorf("dbus-daemon: %w", err)
	}
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			return nil, errors.New("dbus-daemon printed no address")
		}
		e.Address = a
	case <-ctx.Done():
		return nil, fmt.Errorf("dbus-daemon did not start: %w", ctx.Err())
	}

	if !withKeyring {
		return e, nil
	}
	// The password only protects this throwaway keyring.
	var pw [12]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	e.keyring = exec.Command("gnome-keyring-daemon", "--foreground", "--unlock",
		"--components=secrets", "--control-directory="+filepath.Join(runtime, "keyring"))
	e.keyring.Env = append(env, "DBUS_SESSION_BUS_ADDRESS="+e.Address)
	e.keyring.Stdin = strings.NewReader(hex.EncodeToString(pw[:]))
	e.keyring.SysProcAttr = procAttr()
	if err := e.keyring.Start(); err != nil {
		return nil, fmt.Errorf("gnome-keyring-daemon: %w", err)
	}
	if err := e.waitUnlocked(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// busConfig is a session bus configuration listening on socket, allowing
// everything, with no service directories.
func busConfig(socket string) string {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`)
	xml.EscapeText(&b, []byte(socket))
	b.WriteString(`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`)
	return b.String()
}

const (
	loginCollection = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	secretsName     = "org.freedesktop.secrets"
)

// waitUnlocked polls (every 50 ms, bounded by ctx) until the login
// collection exists and is unlocked.
func (e *Env) waitUnlocked(ctx context.Context) error {
	conn, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var last error
	for i := 0; i < 200; i++ {
		locked, err := collectionLocked(ctx, conn)
		if err == nil && !locked {
			return nil
		}
		if err == nil {
			err = errors.New("the login collection is locked")
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("gnome-keyring-daemon did not come up unlocked: %w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("gnome-keyring-daemon did not come up unlocked: %v", last)
}

func (e *Env) connect(ctx context.Context) (*dbus.Conn, error) {
	conn, err := dbus.Connect(e.Address, dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("connecting to the private bus: %w", err)
	}
	return conn, nil
}

func collectionLocked(ctx context.Context, conn *dbus.Conn) (bool, error) {
	var v dbus.Variant
	err := conn.Object(secretsName, loginCollection).CallWithContext(ctx,
		"org.freedesktop.DBus.Properties.Get", dbus.FlagNoAutoStart, "org.freedesktop.Secret.Collection", "Locked").Store(&v)
	if err != nil {
		return false, err
	}
	locked, ok := v.Value().(bool)
	if !ok {
		return false, errors.New("the Locked property is not a boolean")
	}
	return locked, nil
}

// Lock locks the login collection, as a screen locker or `secret-tool lock`
// would; it cannot be unlocked again without a prompt.
func (e *Env) Lock(ctx context.Context) error {
	conn, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	err = conn.Object(secretsName, "/org/freedesktop/secrets").CallWithContext(ctx,
		"org.freedesktop.Secret.Service.Lock", 0, []dbus.ObjectPath{loginCollection}).Store(&locked, &prompt)
	if err != nil {
		return fmt.Errorf("locking the login collection: %w", err)
	}
	if l, err := collectionLocked(ctx, conn); err != nil || !l {
		return fmt.Errorf("the login collection did not lock (err %v)", err)
	}
	return nil
}

// Close stops the keyring and the bus and removes the directory.
func (e *Env) Close() {
	for _, c := range []*exec.Cmd{e.keyring, e.bus} {
		if c == nil || c.Process == nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
	if e.Dir != "" {
		_ = os.RemoveAll(e.Dir)
	}
}
