package ocmfs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func spoolFiles(t *testing.T, dir string) (data, meta []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		switch filepath.Ext(e.Name()) {
		case ".data":
			data = append(data, filepath.Join(dir, e.Name()))
		case ".json":
			meta = append(meta, filepath.Join(dir, e.Name()))
		}
	}
	return data, meta
}

func TestWriteBack(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/rw/old.txt", []byte("old content"))
	e.srv.write("/shares/rw/keep/k.txt", []byte("k"))
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	dir := e.path("RW")
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm()&0o200 == 0 {
		t.Fatalf("writable share: %v %v", st, err)
	}

	// create, write, close: the server has the bytes when close returns.
	data := pattern(3<<20+17, 5)
	fh, err := os.Create(filepath.Join(dir, "new.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 100000 {
		if _, err := fh.Write(data[off:min(off+100000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got, err := e.srv.read("/shares/rw/new.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("server copy: %d bytes, %v", len(got), err)
	}
	var mtime string
	for _, r := range e.srv.log() {
		if r.Method == "PUT" {
			mtime = r.Mtime
		}
	}
	if mtime == "" {
		t.Errorf("PUT without X-OC-Mtime")
	}
	if st, err := os.Stat(filepath.Join(dir, "new.bin")); err != nil || st.Size() != int64(len(data)) {
		t.Errorf("stat after upload: %v %v", st, err)
	}
	if got := joined(listNames(t, dir)); got != "keep|new.bin|old.txt" {
		t.Errorf("listing = %q", got)
	}

	// Rewrite an existing file (O_TRUNC) and append to another.
	if err := os.WriteFile(filepath.Join(dir, "old.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.srv.read("/shares/rw/old.txt"); string(got) != "new" {
		t.Errorf("rewritten = %q", got)
	}
	af, err := os.OpenFile(filepath.Join(dir, "keep", "k.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := af.WriteString("+more"); err != nil {
		t.Fatal(err)
	}
	if err := af.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if got, _ := e.srv.read("/shares/rw/keep/k.txt"); string(got) != "k+more" {
		t.Errorf("after fsync = %q", got)
	}
	if err := af.Close(); err != nil {
		t.Fatal(err)
	}

	// truncate(2) on a path.
	if err := os.Truncate(filepath.Join(dir, "new.bin"), 10); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.srv.read("/shares/rw/new.bin"); !bytes.Equal(got, data[:10]) {
		t.Errorf("truncated = %d bytes", len(got))
	}

	// mkdir, rename (MOVE), unlink, rmdir.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(e.srv.dir, "shares/rw/d")); err != nil || !st.IsDir() {
		t.Fatalf("server dir: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); !isErrno(err, syscall.EEXIST) {
		t.Errorf("mkdir again: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "new.bin"), filepath.Join(dir, "d", "moved.bin")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.read("/shares/rw/d/moved.bin"); err != nil {
		t.Errorf("moved file missing on server: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.bin")); !os.IsNotExist(err) {
		t.Errorf("old name still there: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "d")); !isErrno(err, syscall.ENOTEMPTY) {
		t.Errorf("rmdir of a non-empty dir: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "d", "moved.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.srv.dir, "shares/rw/d")); !os.IsNotExist(err) {
		t.Errorf("server dir still there: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "old.txt"), filepath.Join(e.mnt, "x")); err == nil {
		t.Errorf("rename to the root allowed")
	}

	// A file created and removed before it was ever uploaded leaves nothing.
	tmp, err := os.Create(filepath.Join(dir, "tmp.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "tmp.txt")); err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	if _, err := e.srv.read("/shares/rw/tmp.txt"); err == nil {
		t.Errorf("removed temp file reached the server")
	}

	if p := e.fs.PendingUploads(); len(p) != 0 {
		t.Errorf("pending: %q", p)
	}
	eventually(t, 5*time.Second, "spool empty", func() bool {
		d, m := spoolFiles(t, e.spool)
		return len(d) == 0 && len(m) == 0
	})
}

// An upload the server refuses (507) fails close(2); the data stays in the
// spool, is listed as pending, and is uploaded once the server accepts.
func TestUploadRefused(t *testing.T) {
	old := retryInterval
	retryInterval = 200 * time.Millisecond
	t.Cleanup(func() { retryInterval = old })
	e := newEnv(t)
	e.srv.write("/shares/rw/.keep", nil)
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	e.srv.set(func(s *davServer) { s.putStatus = 507 })
	data := pattern(300<<10, 7)
	fh, err := os.Create(e.path("RW", "report.odt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(data); err != nil {
		t.Fatal(err)
	}
	err = fh.Close()
	if err == nil {
		t.Fatalf("close succeeded although the server refused the upload")
	}
	if !isErrno(err, syscall.ENOSPC) {
		t.Errorf("close: %v, want ENOSPC", err)
	}
	d, m := spoolFiles(t, e.spool)
	if len(d) != 1 || len(m) != 1 {
		t.Fatalf("spool: %q %q", d, m)
	}
	if got, _ := os.ReadFile(d[0]); !bytes.Equal(got, data) {
		t.Fatalf("spool holds %d bytes, not the data", len(got))
	}
	p := e.fs.PendingUploads()
	if len(p) != 1 || !strings.Contains(p[0], "RW/report.odt") {
		t.Fatalf("pending = %q", p)
	}
	// Still visible (and readable) in the mount while pending.
	if got, err := os.ReadFile(e.path("RW", "report.odt")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("pending file in the mount: %d bytes, %v", len(got), err)
	}
	e.srv.set(func(s *davServer) { s.putStatus = 0 })
	eventually(t, 20*time.Second, "upload retried", func() bool {
		got, err := e.srv.read("/shares/rw/report.odt")
		return err == nil && bytes.Equal(got, data)
	})
	eventually(t, 5*time.Second, "spool empty", func() bool {
		d, m := spoolFiles(t, e.spool)
		return len(d) == 0 && len(m) == 0 && len(e.fs.PendingUploads()) == 0
	})
}

// A connection reset in the middle of an upload fails close(2) and keeps the
// data.
func TestUploadReset(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/rw/.keep", nil)
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	e.srv.set(func(s *davServer) { s.putReset = true })
	data := pattern(2<<20, 8)
	err := os.WriteFile(e.path("RW", "big.bin"), data, 0o644)
	if err == nil {
		t.Fatalf("write+close succeeded although every upload was reset")
	}
	if !isErrno(err, syscall.EIO) {
		t.Errorf("close: %v, want EIO", err)
	}
	if n, _ := e.srv.count("PUT", ""); n < 2 {
		t.Errorf("%d PUTs: the transient failure was not retried", n)
	}
	d, _ := spoolFiles(t, e.spool)
	if len(d) != 1 {
		t.Fatalf("spool: %q", d)
	}
	if got, _ := os.ReadFile(d[0]); !bytes.Equal(got, data) {
		t.Fatalf("spool holds %d bytes, not the data", len(got))
	}
	// fsync on a reopened handle retries and succeeds once the server is fine.
	e.srv.set(func(s *davServer) { s.putReset = false })
	fh, err := os.OpenFile(e.path("RW", "big.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("X"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	fh.Close()
	want := append([]byte("X"), data[1:]...)
	if got, _ := e.srv.read("/shares/rw/big.bin"); !bytes.Equal(got, want) {
		t.Errorf("server copy: %d bytes", len(got))
	}
}
