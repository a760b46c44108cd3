package ocmfs

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// spoolOneFailedWrite writes data to RW/name through the mount while the
// server refuses uploads, and unmounts: the data is left in the spool with
// its record, as after a crash.
func spoolOneFailedWrite(t *testing.T, e *env, name string, data []byte) (dataFile, record string) {
	t.Helper()
	e.srv.write("/shares/rw/.keep", nil)
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	e.srv.set(func(s *davServer) { s.putStatus = http.StatusForbidden })
	if err := os.WriteFile(e.path("RW", name), data, 0o644); err == nil {
		t.Fatal("write succeeded although the server refused the upload")
	}
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	d, m := spoolFiles(t, e.spool)
	if len(d) != 1 || len(m) != 1 {
		t.Fatalf("spool after a failed upload: data %q, records %q", d, m)
	}
	if got, err := os.ReadFile(d[0]); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("spooled data: %d bytes, %v", len(got), err)
	}
	e.srv.set(func(s *davServer) { s.putStatus = 0 })
	return d[0], m[0]
}

// A power cut can leave the spooled data without its record, or with a
// record cut short. The next start must keep the data (in lost+found) and
// say so; the old start deleted data without a record.
func TestSpoolPowerLoss(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, record string)
	}{
		{"record missing", func(t *testing.T, record string) {
			if err := os.Remove(record); err != nil {
				t.Fatal(err)
			}
		}},
		{"record torn", func(t *testing.T, record string) {
			b, err := os.ReadFile(record)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(record, b[:len(b)/2], 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"record empty", func(t *testing.T, record string) {
			if err := os.Truncate(record, 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			data := pattern(300<<10+7, 21)
			dataFile, record := spoolOneFailedWrite(t, e, "report.bin", data)
			tc.damage(t, record)

			e.mount()
			lost := e.fs.LostFound()
			if len(lost) != 1 || !strings.Contains(lost[0], "(307207 bytes)") {
				t.Fatalf("LostFound = %q, want the one spooled file", lost)
			}
			kept := strings.Fields(lost[0])[0]
			if filepath.Dir(kept) != e.fs.o.LostFoundDir {
				t.Errorf("kept at %s, not in %s", kept, e.fs.o.LostFoundDir)
			}
			if got, err := os.ReadFile(kept); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("data in lost+found: %d bytes, %v", len(got), err)
			}
			if _, err := os.Stat(dataFile); err == nil {
				t.Errorf("the data is still in the spool as well")
			}
			if st, err := os.Stat(e.fs.o.LostFoundDir); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("lost+found: %v, %v (want mode 0700)", st, err)
			}
			if !strings.Contains(e.logs.String(), "lost+found") {
				t.Errorf("nothing logged about lost+found")
			}
			// Still there (and still reported) on the start after.
			if err := e.fs.Unmount(); err != nil {
				t.Fatal(err)
			}
			e.mount()
			if again := e.fs.LostFound(); len(again) != 1 || again[0] != lost[0] {
				t.Errorf("LostFound after another start = %q, want %q", again, lost)
			}
		})
	}
}

// A record whose rename into place was cut off is complete in its
// temporary file: the data is uploaded as if nothing happened.
func TestSpoolPowerLossRecordInTemp(t *testing.T) {
	e := newEnv(t)
	data := pattern(70<<10, 22)
	_, record := spoolOneFailedWrite(t, e, "notes.txt", data)
	if err := os.Rename(record, record+".tmp"); err != nil {
		t.Fatal(err)
	}
	e.mount()
	if lost := e.fs.LostFound(); len(lost) != 0 {
		t.Fatalf("LostFound = %q, want none", lost)
	}
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	eventually(t, 20*time.Second, "upload of the recovered file", func() bool {
		got, err := e.srv.read("/shares/rw/notes.txt")
		return err == nil && bytes.Equal(got, data)
	})
}

// close(2) returns only once the data, its record and the spool directory
// are on disk: what a power cut right after it would find.
func TestSpoolSyncedBeforeClose(t *testing.T) {
	var mu sync.Mutex
	var synced []string
	old := syncFile
	syncFile = func(f *os.File) error {
		mu.Lock()
		synced = append(synced, f.Name())
		mu.Unlock()
		return old(f)
	}
	t.Cleanup(func() { syncFile = old })
	e := newEnv(t)
	e.srv.write("/shares/rw/.keep", nil)
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	e.srv.set(func(s *davServer) { s.putStatus = http.StatusServiceUnavailable })

	fh, err := os.Create(e.path("RW", "draft.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write([]byte("first words")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	synced = nil
	mu.Unlock()
	if err := fh.Close(); err == nil {
		t.Fatal("close succeeded although the server refused the upload")
	}
	d, m := spoolFiles(t, e.spool)
	if len(d) != 1 || len(m) != 1 {
		t.Fatalf("spool: data %q, records %q", d, m)
	}
	mu.Lock()
	got := append([]string(nil), synced...)
	mu.Unlock()
	has := func(p string) bool {
		for _, s := range got {
			if filepath.Clean(s) == filepath.Clean(p) {
				return true
			}
		}
		return false
	}
	if !has(d[0]) {
		t.Errorf("data %s not fsync'd before close returned; synced %q", d[0], got)
	}
	if !has(e.spool) {
		t.Errorf("spool directory not fsync'd before close returned; synced %q", got)
	}
	if !has(m[0] + ".tmp") {
		t.Errorf("record not fsync'd before close returned; synced %q", got)
	}
}

// A pending new file renamed before its upload goes to the new name after a
// restart, never to the old one.
func TestSpoolRenameBeforeUpload(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/rw/.keep", nil)
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	e.srv.set(func(s *davServer) { s.putStatus = http.StatusServiceUnavailable })
	data := []byte("renamed before it reached the server")
	if err := os.WriteFile(e.path("RW", "a.txt"), data, 0o644); err == nil {
		t.Fatal("write succeeded although the server refused the upload")
	}
	if err := os.Rename(e.path("RW", "a.txt"), e.path("RW", "b.txt")); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	e.srv.set(func(s *davServer) { s.putStatus = 0 })
	e.mount()
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	eventually(t, 20*time.Second, "upload under the new name", func() bool {
		got, err := e.srv.read("/shares/rw/b.txt")
		return err == nil && bytes.Equal(got, data)
	})
	if _, err := e.srv.read("/shares/rw/a.txt"); err == nil {
		t.Errorf("uploaded under the old name too")
	}
}

var conflictName = regexp.MustCompile(`^doc \(conflicted copy \d{4}-\d{2}-\d{2} \d{6}\)\.txt$`)

// The file changes on the server while it is open for writing here: close
// must not overwrite it. Both versions end on the server, the local one as a
// conflicted copy, and the person is told.
func TestConflictedCopy(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/rw/doc.txt", []byte("version 1"))
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	p := e.path("RW", "doc.txt")

	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("local edit"), 0); err != nil {
		t.Fatal(err)
	}
	// Meanwhile someone else saves a new version on the server.
	remote := []byte("remote version 2, saved elsewhere")
	e.srv.write("/shares/rw/doc.txt", remote)
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v (the local version is safe: it should succeed)", err)
	}

	if got, err := e.srv.read("/shares/rw/doc.txt"); err != nil || !bytes.Equal(got, remote) {
		t.Fatalf("server's doc.txt = %q, %v: the remote version was overwritten", got, err)
	}
	ents, err := os.ReadDir(filepath.Join(e.srv.dir, "shares", "rw"))
	if err != nil {
		t.Fatal(err)
	}
	var copies []string
	for _, de := range ents {
		if conflictName.MatchString(de.Name()) {
			copies = append(copies, de.Name())
		}
	}
	if len(copies) != 1 {
		t.Fatalf("conflicted copies on the server: %q", copies)
	}
	if got, err := e.srv.read("/shares/rw/" + copies[0]); err != nil || string(got) != "local edit" {
		t.Fatalf("conflicted copy = %q, %v, want the local version", got, err)
	}
	conflicts := e.fs.Conflicts()
	if len(conflicts) != 1 || !strings.Contains(conflicts[0], "RW/doc.txt") || !strings.Contains(conflicts[0], copies[0]) {
		t.Errorf("Conflicts = %q", conflicts)
	}
	if !strings.Contains(e.logs.String(), "level=WARN") || !strings.Contains(e.logs.String(), copies[0]) {
		t.Errorf("no warning naming the conflicted copy in the log")
	}
	// The mount shows both: the server's version under the name, the local
	// one beside it.
	eventually(t, 20*time.Second, "the server's version under doc.txt in the mount", func() bool {
		got, err := os.ReadFile(p)
		return err == nil && bytes.Equal(got, remote)
	})
	eventually(t, 20*time.Second, "the conflicted copy listed in the mount", func() bool {
		got, err := os.ReadFile(e.path("RW", copies[0]))
		return err == nil && string(got) == "local edit"
	})
	if p := e.fs.PendingUploads(); len(p) != 0 {
		t.Errorf("pending uploads: %q", p)
	}

	// Uploads said which version they replace.
	var conds []string
	for _, r := range e.srv.log() {
		if r.Method == http.MethodPut {
			conds = append(conds, r.Path+" "+r.Cond)
		}
	}
	if len(conds) != 2 || !strings.HasPrefix(conds[0], `/shares/rw/doc.txt "`) ||
		!strings.Contains(conds[1], "conflicted copy") || !strings.HasSuffix(conds[1], " *") {
		t.Errorf("PUTs and their conditions: %q", conds)
	}
}

// Without a concurrent change, an edit replaces the file (If-Match holds)
// and a new file is created (If-None-Match: *), with no conflicted copy.
func TestConditionalUploadsNoConflict(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/rw/doc.txt", []byte("version 1"))
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	if err := os.WriteFile(e.path("RW", "doc.txt"), []byte("version 2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("RW", "new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Edit again: the condition is now the ETag of our own upload.
	if err := os.WriteFile(e.path("RW", "doc.txt"), []byte("version 3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.srv.read("/shares/rw/doc.txt"); string(got) != "version 3" {
		t.Errorf("doc.txt = %q", got)
	}
	if got, _ := e.srv.read("/shares/rw/new.txt"); string(got) != "new" {
		t.Errorf("new.txt = %q", got)
	}
	for _, r := range e.srv.log() {
		if r.Method != http.MethodPut {
			continue
		}
		if r.Status >= 300 {
			t.Errorf("PUT %s %q answered %d", r.Path, r.Cond, r.Status)
		}
		if r.Cond == "" {
			t.Errorf("PUT %s without a condition", r.Path)
		}
	}
	if c := e.fs.Conflicts(); len(c) != 0 {
		t.Errorf("Conflicts = %q", c)
	}
}

// The record of a pending file cannot be rewritten when it is renamed: the
// rename says so, and the record naming the old path is gone, so that no
// later start uploads the data under the old name; the data is kept (in
// the spool or lost+found), never lost.
func TestSpoolRenameRecordWriteFails(t *testing.T) {
	var failRecords atomic.Bool
	old := syncFile
	syncFile = func(f *os.File) error {
		if failRecords.Load() && strings.HasSuffix(f.Name(), ".json.tmp") {
			return syscall.EIO
		}
		return old(f)
	}
	t.Cleanup(func() { syncFile = old })
	e := newEnv(t)
	e.srv.write("/shares/rw/.keep", nil)
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	e.srv.set(func(s *davServer) { s.putStatus = http.StatusServiceUnavailable })
	data := []byte("pending, then renamed while the disk fails")
	if err := os.WriteFile(e.path("RW", "a.txt"), data, 0o644); err == nil {
		t.Fatal("write succeeded although the server refused the upload")
	}
	failRecords.Store(true)
	if err := os.Rename(e.path("RW", "a.txt"), e.path("RW", "b.txt")); err == nil {
		t.Error("rename succeeded although its record could not be written")
	}
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	failRecords.Store(false)
	e.srv.set(func(s *davServer) { s.putStatus = 0 })
	e.mount()
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	eventually(t, 20*time.Second, "the data uploaded as b.txt or kept in lost+found", func() bool {
		got, err := e.srv.read("/shares/rw/b.txt")
		return (err == nil && bytes.Equal(got, data)) || len(e.fs.LostFound()) == 1
	})
	if _, err := e.srv.read("/shares/rw/a.txt"); err == nil {
		t.Errorf("uploaded under the old name")
	}
	if lost := e.fs.LostFound(); len(lost) == 1 {
		if got, err := os.ReadFile(strings.Fields(lost[0])[0]); err != nil || !bytes.Equal(got, data) {
			t.Errorf("lost+found: %q, %v", got, err)
		}
	}
}

// A power cut during a rename, after the new record was written (and
// fsync'd) but before it replaced the old one: the new one wins.
func TestSpoolPowerLossDuringRecordRename(t *testing.T) {
	e := newEnv(t)
	data := pattern(10<<10, 23)
	_, record := spoolOneFailedWrite(t, e, "old-name.txt", data)
	m, ok := readMeta(record)
	if !ok {
		t.Fatal("unreadable record")
	}
	m.Path = []string{"new-name.txt"}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(record+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.mount()
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	eventually(t, 20*time.Second, "upload under the new name", func() bool {
		got, err := e.srv.read("/shares/rw/new-name.txt")
		return err == nil && bytes.Equal(got, data)
	})
	if _, err := e.srv.read("/shares/rw/old-name.txt"); err == nil {
		t.Errorf("uploaded under the old name")
	}
}

// A file share changes on the server while it is written here: there is no
// folder for a conflicted copy, so the local version is kept in lost+found,
// close reports the failure, and the server's version stays.
func TestFileShareConflictKeptAside(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/report.txt", []byte("version 1"))
	e.fs.SetEntries([]Entry{e.file("s1", "report.txt", "/shares/report.txt", true)})
	fh, err := os.OpenFile(e.path("report.txt"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("local edit"), 0); err != nil {
		t.Fatal(err)
	}
	remote := []byte("remote version 2")
	e.srv.write("/shares/report.txt", remote)
	if err := fh.Close(); err == nil {
		t.Error("close succeeded although the local version did not reach the share")
	}
	if got, _ := e.srv.read("/shares/report.txt"); !bytes.Equal(got, remote) {
		t.Fatalf("server's file = %q: overwritten", got)
	}
	lost := e.fs.LostFound()
	if len(lost) != 1 || !strings.Contains(lost[0], "was report.txt") {
		t.Fatalf("LostFound = %q", lost)
	}
	if got, err := os.ReadFile(strings.Fields(lost[0])[0]); err != nil || string(got) != "local edit" {
		t.Fatalf("kept local version = %q, %v", got, err)
	}
	if c := e.fs.Conflicts(); len(c) != 1 || !strings.Contains(c[0], "lost+found") {
		t.Errorf("Conflicts = %q", c)
	}
	if p := e.fs.PendingUploads(); len(p) != 0 {
		t.Errorf("pending uploads: %q", p)
	}
}
