//go:build unix

package vfs

import (
	"os"
	"syscall"
)

// openFile opens a spool file as os.OpenFile does, without os.OpenFile's
// attempt to add a regular file to the poller (four fcntl and an
// epoll_ctl that fails): the spool opens two files per file written.
func openFile(name string, flag int, perm uint32) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, perm)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}
