package bookmarks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// edit reads the file at path, passes its content to change, and writes
// what change returns in its place; nil from change leaves the file as it
// is. A symbolic link is followed, so that a link into a dotfiles
// repository stays a link. A missing file reads as empty when create is
// set; otherwise edit reports it missing and does nothing.
func edit(path string, create bool, change func(old []byte) ([]byte, error)) (missing bool, err error) {
	target, err := filepath.EvalSymlinks(path)
	exists := err == nil
	switch {
	case exists:
	case errors.Is(err, fs.ErrNotExist):
		if _, lerr := os.Lstat(path); lerr == nil {
			return false, fmt.Errorf("%s is a symbolic link to a missing file; left alone", path)
		}
		if !create {
			return true, nil
		}
		target = path
	default:
		return false, err
	}
	var old []byte
	mode := fs.FileMode(0o600)
	if exists {
		st, err := os.Stat(target)
		if err != nil {
			return false, err
		}
		if !st.Mode().IsRegular() {
			return false, fmt.Errorf("%s is not a regular file; left alone", path)
		}
		mode = st.Mode().Perm()
		if old, err = os.ReadFile(target); err != nil {
			return false, err
		}
	}
	out, err := change(old)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if out == nil {
		return false, nil
	}
	if !exists {
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return false, err
		}
	}
	return false, writeAtomic(target, out, mode)
}

// writeAtomic replaces the file at path with data: a reader sees the old
// content or the new, never a part, even if the machine stops mid-way.
func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		d.Sync() // the rename itself survives a crash; best effort
		d.Close()
	}
	return nil
}
