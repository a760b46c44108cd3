package tokens

import (
	"os"
	"syscall"
)

// fdatasync makes f's data and size durable, without its other metadata.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
