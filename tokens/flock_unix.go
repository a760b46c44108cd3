//go:build unix

package tokens

import (
	"os"
	"syscall"
)

// flock takes an exclusive or shared advisory lock on f, released when f
// is closed.
func flock(f *os.File, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
