package ocmfs

import (
	"syscall"

	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// errnoOf is the one mapping from the core's error kinds to what a program
// sees; ok is false for an error the core could not classify (EIO then).
func errnoOf(err error) (errno syscall.Errno, ok bool) {
	if err == nil {
		return 0, true
	}
	// Only errno values of this package's own making pass through; those
	// found deeper (ECONNREFUSED from a dial) are network failures.
	if errno, ok := err.(syscall.Errno); ok {
		return errno, true
	}
	switch vfs.KindOf(err) {
	case vfs.KindIO:
		return syscall.EIO, true
	case vfs.KindTimeout:
		return syscall.ETIMEDOUT, true
	case vfs.KindNotFound, vfs.KindGone:
		return syscall.ENOENT, true
	case vfs.KindUnreachable:
		return syscall.EHOSTUNREACH, true
	case vfs.KindDenied:
		return syscall.EACCES, true
	case vfs.KindExists:
		return syscall.EEXIST, true
	case vfs.KindBusy:
		return syscall.EBUSY, true
	case vfs.KindTooLarge:
		return syscall.EFBIG, true
	case vfs.KindNoSpace:
		return syscall.ENOSPC, true
	case vfs.KindNotSupported:
		return syscall.ENOTSUP, true
	}
	return syscall.EIO, false
}

// errno maps an error of the core to an errno, and logs one it could not
// classify: each is a case the mapping should learn.
func (f *FS) errno(err error) syscall.Errno {
	errno, ok := errnoOf(err)
	if !ok {
		f.log.Warn("unclassified error reported as EIO", "err", err)
	}
	return errno
}
