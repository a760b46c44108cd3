//go:build !linux

package tokens

import "os"

func fdatasync(f *os.File) error { return f.Sync() }
