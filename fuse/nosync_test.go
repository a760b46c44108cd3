package ocmfs

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// countSyncs counts the fsyncs of the spool's files and of its directory.
func countSyncs(t *testing.T) (files, dirs func() int) {
	var mu sync.Mutex
	nf, nd := 0, 0
	old := vfs.SyncFile
	vfs.SyncFile = func(f *os.File) error {
		st, err := f.Stat()
		mu.Lock()
		if err == nil && st.IsDir() {
			nd++
		} else {
			nf++
		}
		mu.Unlock()
		return old(f)
	}
	t.Cleanup(func() { vfs.SyncFile = old })
	get := func(n *int) func() int {
		return func() int {
			mu.Lock()
			defer mu.Unlock()
			return *n
		}
	}
	return get(&nf), get(&nd)
}

// A new file written and closed while the server takes it costs no fsync
// before close returns: the server has the data. The spool's removal is
// made durable afterwards, in the background.
func TestSpoolUploadedWithoutFsync(t *testing.T) {
	files, dirs := countSyncs(t)
	e := rwEnv(t)
	data := pattern(4<<10, 5)
	if err := os.WriteFile(e.path("RW", "small.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := files(); n != 0 {
		t.Errorf("%d fsyncs of spool files before close returned, want 0", n)
	}
	if got, err := e.srv.read("/shares/rw/small.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("server copy: %d bytes, %v", len(got), err)
	}
	eventually(t, 10*time.Second, "spool empty, its directory fsync'd", func() bool {
		d, m := spoolFiles(t, e.spool)
		return len(d) == 0 && len(m) == 0 && dirs() > 0
	})
	if n := files(); n != 0 {
		t.Errorf("%d fsyncs of spool files, want 0", n)
	}
}

// A program's fsync(2) on a file the server takes is answered by the upload,
// not by fsyncs of the spool; when the upload fails, the data is on disk
// before fsync(2) returns its error.
func TestSpoolFsyncUploads(t *testing.T) {
	files, _ := countSyncs(t)
	e := rwEnv(t)
	fh, err := os.Create(e.path("RW", "f.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if got, err := e.srv.read("/shares/rw/f.txt"); err != nil || string(got) != "one" {
		t.Fatalf("server copy after fsync: %q, %v", got, err)
	}
	if n := files(); n != 0 {
		t.Errorf("%d fsyncs of spool files, want 0", n)
	}
	e.srv.set(func(s *davServer) { s.putStatus = http.StatusServiceUnavailable })
	if _, err := fh.Write([]byte(" two")); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err == nil {
		t.Fatal("fsync succeeded although the server refused the upload")
	}
	if n := files(); n < 2 {
		t.Errorf("%d fsyncs of spool files after a failed upload, want the data and its record", n)
	}
	d, m := spoolFiles(t, e.spool)
	if len(d) != 1 || len(m) != 1 {
		t.Fatalf("spool: data %q, records %q", d, m)
	}
	if r, ok := vfs.ReadRecord(m[0]); !ok || r.Boot != "" || r.Clean {
		t.Errorf("record after a failed upload: %+v, %v (want durable and pending)", r, ok)
	}
}

// The machine loses power after the server took a file but before the
// spool's removal of it reached the disk: the next start finds the record
// and the data (which was never fsync'd, so it may be torn). It must not
// upload it again, over a newer version or as a conflicted copy; the data
// is kept in lost+found.
func TestSpoolPowerLossAfterUpload(t *testing.T) {
	e := rwEnv(t)
	data := pattern(4<<10, 9)
	aside := spoolAtPut(t, e, "a.bin", data)
	d, m := spoolFiles(t, aside)
	if len(d) != 1 || len(m) != 1 {
		t.Fatalf("spool during the upload: data %q, records %q", d, m)
	}
	newer := []byte("changed on the server since")
	e.srv.write("/shares/rw/a.bin", newer)
	restartOtherBoot(t, e, aside)
	keptNotUploaded(t, e, "a.bin", data, newer)
}

// A killed agent (same boot) loses nothing of a file not yet fsync'd: the
// page cache holds it, and the next start uploads it.
func TestSpoolKilledBeforeUploadSameBoot(t *testing.T) {
	e := rwEnv(t)
	data := pattern(4<<10, 11)
	aside := spoolAtPut(t, e, "b.bin", data)
	// As if the agent died as the PUT started: the server never got it.
	if err := os.Remove(filepath.Join(e.srv.dir, "shares", "rw", "b.bin")); err != nil {
		t.Fatal(err)
	}
	copySpool(t, aside, e.spool)
	e.mount()
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	eventually(t, 20*time.Second, "upload of the recovered file", func() bool {
		got, err := e.srv.read("/shares/rw/b.bin")
		return err == nil && bytes.Equal(got, data)
	})
	if lost := e.fs.LostFound(); len(lost) != 0 {
		t.Errorf("LostFound = %q, want none", lost)
	}
}

// The agent is killed after the server took a new file but before the spool
// let it go (same boot): the next start finds it pending, its conditional
// upload is refused (the file exists), and the server's copy is this very
// content. No conflicted copy is made, and the spool empties.
func TestSpoolKilledAfterUploadSameBoot(t *testing.T) {
	e, data := restartAfterUpload(t, "c.bin", nil)
	if n := conflictedCopies(t, e); len(n) != 0 {
		t.Errorf("conflicted copies %q made of content the server has", n)
	}
	if got, err := e.srv.read("/shares/rw/c.bin"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("server copy: %d bytes, %v", len(got), err)
	}
	if c := e.fs.spool.Conflicts(); len(c) != 0 {
		t.Errorf("conflicts reported: %q", c)
	}
}

// As above, but the server's file changed since: the local version is a
// conflicted copy beside it.
func TestSpoolKilledAfterUploadChangedSince(t *testing.T) {
	theirs := []byte("changed on the server since")
	e, data := restartAfterUpload(t, "d.bin", theirs)
	n := conflictedCopies(t, e)
	if len(n) != 1 {
		t.Fatalf("conflicted copies %q, want one", n)
	}
	if got, err := e.srv.read("/shares/rw/" + n[0]); err != nil || !bytes.Equal(got, data) {
		t.Errorf("conflicted copy: %d bytes, %v", len(got), err)
	}
	if got, err := e.srv.read("/shares/rw/d.bin"); err != nil || !bytes.Equal(got, theirs) {
		t.Errorf("server copy: %q, %v", got, err)
	}
}

// restartAfterUpload writes name through the mount, then starts again with
// the spool as it was when the server took it (the same boot); theirs, if
// set, replaces the server's copy before the start. It returns once the
// spool is empty.
func restartAfterUpload(t *testing.T, name string, theirs []byte) (*env, []byte) {
	t.Helper()
	e := rwEnv(t)
	data := pattern(4<<10, 13)
	aside := spoolAtPut(t, e, name, data)
	copySpool(t, aside, e.spool)
	if theirs != nil {
		e.srv.write("/shares/rw/"+name, theirs)
	}
	e.mount()
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	eventually(t, 20*time.Second, "spool empty", func() bool {
		d, m := spoolFiles(t, e.spool)
		return len(d) == 0 && len(m) == 0
	})
	return e, data
}

func conflictedCopies(t *testing.T, e *env) []string {
	var out []string
	for _, n := range listNames(t, filepath.Join(e.srv.dir, "shares", "rw")) {
		if strings.Contains(n, "conflicted copy") {
			out = append(out, n)
		}
	}
	return out
}

// spoolAtPut writes data to RW/name through the mount and unmounts; it
// returns a copy of the spool as it was when the PUT reached the server:
// what the disk may hold if the power goes from then on.
func spoolAtPut(t *testing.T, e *env, name string, data []byte) string {
	t.Helper()
	aside := t.TempDir()
	var once sync.Once
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut {
				once.Do(func() { copySpool(t, e.spool, aside) })
			}
			return false
		}
	})
	if err := os.WriteFile(e.path("RW", name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	return aside
}

// copySpool copies the data files and records of one spool directory into
// another.
func copySpool(t *testing.T, from, to string) {
	d, m := spoolFiles(t, from)
	for _, p := range append(d, m...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			continue
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(p)), b, 0o600); err != nil {
			t.Error(err)
		}
	}
}

// After the upload of a file never fsync'd, nothing is rewritten in the
// spool: the data file's name goes (a record without data is dropped on
// start) and the record is left as it was (on ext4 a record renamed over
// the old one starts a write-back before close returns). A write after that
// puts the data back in the spool under a record of its own, so that a
// killed agent still loses nothing.
func TestSpoolUploadDropsDataName(t *testing.T) {
	e := rwEnv(t)
	fh, err := os.Create(e.path("RW", "d.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	_, m := spoolFiles(t, e.spool)
	if len(m) != 1 {
		t.Fatalf("records while written: %q", m)
	}
	before := inode(t, m[0])
	if err := fh.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if got, err := e.srv.read("/shares/rw/d.txt"); err != nil || string(got) != "one" {
		t.Fatalf("server copy after fsync: %q, %v", got, err)
	}
	d, m := spoolFiles(t, e.spool)
	if len(d) != 0 || len(m) != 1 {
		t.Fatalf("spool after the upload: data %q, records %q (want the record alone)", d, m)
	}
	if inode(t, m[0]) != before {
		t.Error("record rewritten after the upload")
	}

	if _, err := fh.Write([]byte(" two")); err != nil {
		t.Fatal(err)
	}
	d, m = spoolFiles(t, e.spool)
	if len(d) != 1 || len(m) != 1 {
		t.Fatalf("spool after a write: data %q, records %q", d, m)
	}
	if got, err := os.ReadFile(d[0]); err != nil || string(got) != "one two" {
		t.Errorf("spooled data: %q, %v", got, err)
	}
	if r, ok := vfs.ReadRecord(m[0]); !ok || r.Clean || r.Created || len(r.Path) != 1 || r.Path[0] != "d.txt" ||
		strings.TrimSuffix(filepath.Base(m[0]), ".json") != strings.TrimSuffix(filepath.Base(d[0]), ".data") {
		t.Errorf("record %s after a write: %+v, %v (want pending, for d.txt, beside %s)", m[0], r, ok, d[0])
	}
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got, err := e.srv.read("/shares/rw/d.txt"); err != nil || string(got) != "one two" {
		t.Fatalf("server copy after close: %q, %v", got, err)
	}
	eventually(t, 10*time.Second, "spool empty", func() bool {
		d, m := spoolFiles(t, e.spool)
		return len(d) == 0 && len(m) == 0
	})
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}
