//go:build !unix

package vfs

import "os"

// openFile is os.OpenFile.
func openFile(name string, flag int, perm uint32) (*os.File, error) {
	return os.OpenFile(name, flag, os.FileMode(perm))
}
