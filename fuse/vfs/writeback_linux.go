package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteBack asks the kernel to start writing n bytes of f at off to
// disk, without waiting (a hint: errors are of no consequence).
func startWriteBack(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
