package ocmfs

import (
	"context"
	"log/slog"
	"syscall"
	"time"
)

// trace logs a FUSE operation at debug level when it starts, and the
// returned function logs its end with the errno and duration:
//
//	defer f.trace("dir.Lookup", "name", name)(&errno)
func (f *FS) trace(op string, args ...any) func(*syscall.Errno) {
	if !f.log.Enabled(context.Background(), slog.LevelDebug) {
		return func(*syscall.Errno) {}
	}
	f.log.Debug("fuse op start", append([]any{"op", op}, args...)...)
	start := time.Now()
	return func(errno *syscall.Errno) {
		f.log.Debug("fuse op end", append([]any{"op", op, "errno", errnoName(*errno), "took", time.Since(start)}, args...)...)
	}
}

// traceName is trace of an operation on a child name, allocating nothing
// when not tracing: lookups come by the hundred thousand for a folder
// listed with ls -l.
func (f *FS) traceName(op, name string) func(*syscall.Errno) {
	if !f.log.Enabled(context.Background(), slog.LevelDebug) {
		return func(*syscall.Errno) {}
	}
	return f.trace(op, "name", name)
}

func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "OK"
	}
	return e.Error()
}
