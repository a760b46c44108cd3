package ocmfs

import (
	"bytes"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// watchDir counts the entries created in dir and renamed into it from now
// on (inotify): done stops watching and returns the counts.
func watchDir(t *testing.T, dir string) (done func() (created, renamed int)) {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	return func() (created, renamed int) {
		defer syscall.Close(fd)
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if err != nil || n <= 0 {
				return created, renamed
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				switch {
				case ev.Mask&syscall.IN_CREATE != 0:
					created++
				case ev.Mask&syscall.IN_MOVED_TO != 0:
					renamed++
				}
				off += syscall.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}
}

// A new small file written and uploaded at close costs the spool two
// entries, its data file and its record, and no rename: the first record
// of a copy never fsync'd is written in place, and none is written after
// the upload.
func TestSpoolNewFileEntries(t *testing.T) {
	e := rwEnv(t)
	done := watchDir(t, e.spool)
	data := pattern(4<<10, 3)
	if err := os.WriteFile(e.path("RW", "n.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := e.srv.read("/shares/rw/n.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("server copy: %d bytes, %v", len(got), err)
	}
	eventually(t, 10*time.Second, "spool empty", func() bool {
		d, m := spoolFiles(t, e.spool)
		return len(d) == 0 && len(m) == 0
	})
	created, renamed := done()
	if created != 2 || renamed != 0 {
		t.Errorf("spool entries created %d, renamed into place %d; want 2 (data, record) and 0", created, renamed)
	}
}
