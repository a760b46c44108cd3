package ocmfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrBusy is returned by ClearStale (and Mount) when a live filesystem is
// mounted at the directory.
var ErrBusy = errors.New("a live filesystem is mounted there")

// ClearStale unmounts a dead FUSE mount at dir, as left by an agent that was
// killed: the kernel then answers ENOTCONN for the directory. A live mount is
// left alone and reported as ErrBusy; no mount at all is fine.
func ClearStale(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("clear stale mount: %w", err)
	}
	fstype, mounted, err := mountAt(dir)
	if err != nil {
		return fmt.Errorf("clear stale mount: %w", err)
	}
	if !mounted {
		return nil
	}
	_, serr := os.Stat(dir)
	dead := errors.Is(serr, syscall.ENOTCONN) || errors.Is(serr, syscall.ECONNABORTED)
	if !dead {
		return fmt.Errorf("clear stale mount at %s (%s): %w", dir, fstype, ErrBusy)
	}
	if !strings.HasPrefix(fstype, "fuse") {
		return fmt.Errorf("clear stale mount at %s: unexpected filesystem %s", dir, fstype)
	}
	if err := lazyUnmount(dir); err != nil {
		return fmt.Errorf("clear stale mount at %s: %w", dir, err)
	}
	return nil
}

// mountAt reports whether dir is a mount point, and of which type, from
// /proc/self/mountinfo.
func mountAt(dir string) (string, bool, error) {
	fh, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	fstype, found := "", false
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		if unescapeMountinfo(fields[4]) != dir {
			continue
		}
		for i := 6; i < len(fields)-1; i++ {
			if fields[i] == "-" {
				// The last mount at a point is the visible one.
				fstype, found = fields[i+1], true
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", false, err
	}
	return fstype, found, nil
}

// unescapeMountinfo decodes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// lazyUnmount detaches the mount at dir with fusermount3 (or fusermount),
// falling back to umount2(MNT_DETACH) when privileged.
func lazyUnmount(dir string) error {
	var errs []error
	for _, prog := range []string{"fusermount3", "fusermount"} {
		path, err := exec.LookPath(prog)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "-u", "-z", dir).CombinedOutput()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(string(out))))
	}
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err == nil {
		return nil
	} else {
		errs = append(errs, fmt.Errorf("umount2: %w", err))
	}
	return errors.Join(errs...)
}
