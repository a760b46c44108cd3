//go:build !linux

package vfs

import "os"

// startWriteBack is a no-op where the kernel takes no write-back hint.
func startWriteBack(*os.File, int64, int64) {}
