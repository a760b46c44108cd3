package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Access modes for Options.Access (see access(2)).
const (
	accessW = 0x2
	accessR = 0x4
)

func (r *run) checkFUSE(context.Context) Result {
	res := r.fuseProblems()
	if r.cfg.Mount == "" && res.Outcome == Fail {
		res.Outcome = Warn
		res.Detail += " (mounting is disabled, so the agent does not need it now)"
	}
	if r.cfg.Mount == "" && res.Outcome == Pass {
		res.Detail += " (mounting is disabled in the configuration)"
	}
	return res
}

func (r *run) fuseProblems() Result {
	const dev = "/dev/fuse"
	fi, err := r.o.Stat(dev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail("install fuse3 ('sudo apt install fuse3' or 'sudo dnf install fuse3') and load the module: 'sudo modprobe fuse'; in a container, pass --device /dev/fuse",
			"%s does not exist: the kernel's FUSE module is not loaded or this container has no access to it", dev)
	case err != nil:
		return fail("check the permissions of /dev/fuse", "%s: %v", dev, err)
	case fi.Mode()&fs.ModeCharDevice == 0:
		return fail("remove it and load the fuse module: 'sudo modprobe fuse'", "%s is not a character device", dev)
	}
	if err := r.o.Access(dev, accessR|accessW); err != nil {
		return fail("make /dev/fuse usable by every user: 'sudo chmod 0666 /dev/fuse' (the default of most distributions)",
			"%s is not readable and writable by you: %v", dev, err)
	}
	helper, err := r.o.LookPath("fusermount3")
	if err != nil {
		return fail("install fuse3: 'sudo apt install fuse3' or 'sudo dnf install fuse3'",
			"fusermount3 is not in PATH; the agent needs it to mount without root")
	}
	if os.Geteuid() != 0 {
		hi, err := r.o.Stat(helper)
		if err != nil {
			return fail("reinstall fuse3", "%s: %v", helper, err)
		}
		if hi.Mode()&fs.ModeSetuid == 0 {
			return fail("restore its setuid bit: 'sudo chmod u+s "+helper+"' (or reinstall fuse3)",
				"%s is not setuid root, so it cannot mount for you", helper)
		}
	}
	return pass("%s and %s are available", dev, helper)
}

func (r *run) checkMount(context.Context) Result {
	dir := r.cfg.Mount
	if dir == "" {
		return skip("mounting is disabled (mount = \"\")")
	}
	running := r.statusErr == nil
	state := r.status.MountState
	fi, err := r.o.Stat(dir)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return fail(fmt.Sprintf("unmount it: 'fusermount3 -u -z %s', then 'systemctl --user restart ocm-agent'", dir),
			"%s is a stale FUSE mount (transport endpoint is not connected): the program that served it ended without unmounting", dir)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		parent, perr := r.existingParent(dir)
		if perr != nil {
			return fail("choose a mount directory inside your home (key 'mount')", "%s does not exist and cannot be created: %v", dir, perr)
		}
		if err := r.o.Access(parent, accessW); err != nil {
			return fail("choose a mount directory inside your home (key 'mount')",
				"%s does not exist and cannot be created: %s is not writable", dir, parent)
		}
		if running && state == "mounted" {
			return fail("restart the agent: 'systemctl --user restart ocm-agent'", "the daemon says %s is mounted, but it does not exist", dir)
		}
		return pass("%s does not exist yet; the agent creates it", dir)
	case err != nil:
		return fail("check the directory's permissions, or choose another (key 'mount')", "%s: %v", dir, err)
	}
	if !fi.IsDir() {
		return fail("move the file away or choose another mount directory (key 'mount')", "%s exists and is not a directory", dir)
	}
	if running {
		switch {
		case state == "mounted":
			return pass("%s is mounted", dir)
		case strings.HasPrefix(state, "error"):
			return fail("see 'ocm-agent status' and 'journalctl --user -u ocm-agent'; fix the cause, then 'systemctl --user restart ocm-agent'",
				"the daemon could not mount %s: %s", dir, strings.TrimSpace(strings.TrimPrefix(state, "error:")))
		default:
			return warn("wait a moment and run doctor again; if it stays so, see 'journalctl --user -u ocm-agent'",
				"the daemon has not mounted %s (state: %s)", dir, orNone(state))
		}
	}
	if err := r.o.Access(dir, accessR|accessW); err != nil {
		return fail("make it yours: 'chown $USER "+dir+"', or choose another (key 'mount')", "%s is not readable and writable by you", dir)
	}
	return pass("%s exists and is writable (the daemon is not running to mount it)", dir)
}

// existingParent is the nearest ancestor of dir that exists; it must be a
// directory.
func (r *run) existingParent(dir string) (string, error) {
	p := filepath.Clean(dir)
	for i := 0; i < 64; i++ {
		next := filepath.Dir(p)
		if next == p {
			return "", errors.New("no existing parent directory")
		}
		p = next
		fi, err := r.o.Stat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s is not a directory", p)
		}
		return p, nil
	}
	return "", errors.New("path too deep")
}

func (r *run) checkSystemd(ctx context.Context) Result {
	if _, err := r.o.LookPath("systemctl"); err != nil {
		return warn("without systemd, start 'ocm-agent serve' from your session's startup programs",
			"systemctl is not in PATH, so the user service cannot be checked")
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	active, err := r.o.Systemctl(ctx, "--user", "is-active", "ocm-agent.service")
	active = strings.TrimSpace(active)
	if active == "" {
		return warn("log in to a session with a systemd user manager (on Debian: the dbus-user-session package), or start 'ocm-agent serve' another way",
			"the systemd user manager cannot be asked: %v", err)
	}
	enabled, _ := r.o.Systemctl(ctx, "--user", "is-enabled", "ocm-agent.service")
	enabled = strings.TrimSpace(enabled)
	switch active {
	case "active", "reloading":
		if enabled != "enabled" && enabled != "static" && enabled != "linked" {
			return warn("enable it so it starts at login: 'systemctl --user enable ocm-agent'",
				"ocm-agent.service is active but not enabled (%s)", orNone(enabled))
		}
		return pass("ocm-agent.service is active and enabled")
	case "activating":
		return warn("wait a moment; if it stays so, see 'journalctl --user -u ocm-agent'", "ocm-agent.service is still starting")
	case "failed":
		return fail("see why: 'journalctl --user -u ocm-agent -e'; after fixing, 'systemctl --user reset-failed ocm-agent && systemctl --user start ocm-agent'",
			"ocm-agent.service has failed")
	}
	if r.statusErr == nil {
		return warn("to run it as a service: stop this daemon, then 'systemctl --user enable --now ocm-agent'",
			"the daemon runs, but not as the systemd user service (ocm-agent.service is %s)", active)
	}
	if enabled == "" || strings.Contains(enabled, "not-found") {
		return fail("install the package that ships /usr/lib/systemd/user/ocm-agent.service, or run 'ocm-agent serve'",
			"ocm-agent.service is %s and not installed", active)
	}
	return fail("start it now and at every login: 'systemctl --user enable --now ocm-agent'",
		"ocm-agent.service is %s (%s)", active, orNone(enabled))
}

// runSystemctl runs systemctl and returns its standard output, which
// carries the answer even when the exit status is not zero.
func runSystemctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "systemctl", args...)
	cmd.WaitDelay = 2 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil && errb.Len() > 0 {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(firstLine(errb.String())))
	}
	return out.String(), err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// isLocalAddr reports whether ip is a loopback address or one of this
// machine's interface addresses.
func isLocalAddr(ip net.IP) bool {
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
