package agent

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// HardenProcess is called once by the daemon before it opens anything:
// whatever it creates is private to the user (umask 077), and no core
// dump can put the secrets it holds in memory on disk or in a crash
// reporter (RLIMIT_CORE 0, and on Linux not dumpable, which also keeps
// other processes of the user from reading its memory).
func HardenProcess() error {
	syscall.Umask(0o077)
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		return fmt.Errorf("turn core dumps off: %w", err)
	}
	return noDumps()
}

// tightenStateDir makes the state directory and everything in it
// accessible to the user only: a directory made by an older version or by
// hand (0755, say) would show the database to every local user.
func tightenStateDir(dir string, log *slog.Logger) error {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // never follow or change what a link points to
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(path, perm&^0o077); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restrict state directory %s: %w", dir, err)
	}
	if n > 0 {
		log.Warn("the state directory was readable by other users; restricted it to you", "dir", dir, "entries", n)
	}
	return nil
}
