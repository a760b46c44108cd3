package ocmfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// Each FUSE operation is traced at debug level on entry and exit, the exit
// with its errno.
func TestTraceFUSEOperations(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/a/x.txt", []byte("x"))
	e.fs.SetEntries([]Entry{e.folder("s1", "A", "/shares/a", false)})
	if _, err := os.Stat(e.path("A", "x.txt")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.path("A", "missing")); !isErrno(err, syscall.ENOENT) {
		t.Fatalf("stat of a missing file: %v", err)
	}
	logs := e.logs.String()
	for _, want := range []string{
		`msg="fuse op start" component=mount op=root.Lookup name=A`,
		`msg="fuse op end" component=mount op=root.Lookup errno=OK`,
		`msg="fuse op start" component=mount op=dir.Lookup name=x.txt`,
		`msg="fuse op end" component=mount op=dir.Lookup errno="no such file or directory"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %s in the log", want)
		}
	}
}

// One mapping from the core's error kinds to errno; what it cannot
// classify is EIO, and said so.
func TestErrnoOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
		ok   bool
	}{
		{nil, 0, true},
		{syscall.EXDEV, syscall.EXDEV, true},
		{fmt.Errorf("x: %w", vfs.ErrTimeout), syscall.ETIMEDOUT, true},
		{vfs.ErrShareUnreachable, syscall.EHOSTUNREACH, true},
		{&vfs.StatusError{Method: "PUT", Code: 412}, syscall.EEXIST, true},
		{&vfs.StatusError{Method: "PUT", Code: 507}, syscall.ENOSPC, true},
		{&vfs.StatusError{Method: "GET", Code: 403}, syscall.EACCES, true},
		{&vfs.StatusError{Method: "GET", Code: 502}, syscall.EIO, true},
		{errors.New("new to the mapping"), syscall.EIO, false},
	} {
		got, ok := errnoOf(c.err)
		if got != c.want || ok != c.ok {
			t.Errorf("errnoOf(%v) = %v, %v; want %v, %v", c.err, got, ok, c.want, c.ok)
		}
	}
}
