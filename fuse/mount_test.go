package ocmfs

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestListing(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/photos/a.jpg", pattern(1000, 1))
	e.srv.write("/shares/photos/sub/b.txt", []byte("hello"))
	e.srv.write("/shares/report.pdf", pattern(3000, 2))
	e.fs.SetEntries([]Entry{
		e.folder("s1", "Photos", "/shares/photos", false),
		e.file("s2", "report.pdf", "/shares/report.pdf", false),
	})

	if got := joined(listNames(t, e.mnt)); got != "Photos|report.pdf" {
		t.Fatalf("root = %q", got)
	}
	st, err := os.Stat(e.path("Photos"))
	if err != nil || !st.IsDir() {
		t.Fatalf("Photos: %v %v", st, err)
	}
	st, err = os.Stat(e.path("report.pdf"))
	if err != nil || st.IsDir() || st.Size() != 3000 {
		t.Fatalf("report.pdf: %+v %v", st, err)
	}
	if st.Mode().Perm()&0o222 != 0 {
		t.Errorf("read-only share shows write permission: %v", st.Mode())
	}
	if got := joined(listNames(t, e.path("Photos"))); got != "a.jpg|sub" {
		t.Fatalf("Photos = %q", got)
	}
	if got := joined(listNames(t, e.path("Photos", "sub"))); got != "b.txt" {
		t.Fatalf("sub = %q", got)
	}
	b, err := os.ReadFile(e.path("Photos", "sub", "b.txt"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("b.txt = %q %v", b, err)
	}
	b, err = os.ReadFile(e.path("report.pdf"))
	if err != nil || !bytes.Equal(b, pattern(3000, 2)) {
		t.Fatalf("report.pdf content wrong: %v", err)
	}
	if _, err := os.Stat(e.path("Photos", "missing")); !os.IsNotExist(err) {
		t.Errorf("missing: %v", err)
	}
	// mount options: the name file managers show, and no allow_other.
	out, err := exec.Command("findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", e.mnt).CombinedOutput()
	if err != nil {
		t.Fatalf("findmnt: %v %s", err, out)
	}
	if !bytes.Contains(out, []byte("ocm-agent")) || !bytes.Contains(out, []byte("fuse.ocm-agent")) || bytes.Contains(out, []byte("allow_other")) {
		t.Errorf("mount line: %s", out)
	}
}

// A folder that the sender called a file (as some Nextcloud versions do) is
// shown as a folder: the server decides.
func TestFolderMarkedAsFile(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/docs/x.txt", []byte("x"))
	e.fs.SetEntries([]Entry{e.file("s1", "Docs", "/shares/docs", false)})
	st, err := os.Stat(e.path("Docs"))
	if err != nil || !st.IsDir() {
		t.Fatalf("Docs: %v %v", st, err)
	}
	if got := joined(listNames(t, e.path("Docs"))); got != "x.txt" {
		t.Fatalf("Docs = %q", got)
	}
}

// A file share on a server that refuses PROPFIND is served from HEAD and GET.
func TestHeadFallback(t *testing.T) {
	e := newEnv(t)
	data := pattern(5000, 3)
	e.srv.write("/shares/only.bin", data)
	e.srv.set(func(s *davServer) { s.refuse["PROPFIND /shares/only.bin"] = true })
	e.fs.SetEntries([]Entry{e.file("s1", "only.bin", "/shares/only.bin", false)})
	st, err := os.Stat(e.path("only.bin"))
	if err != nil || st.Size() != 5000 {
		t.Fatalf("stat: %+v %v", st, err)
	}
	b, err := os.ReadFile(e.path("only.bin"))
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("read: %v", err)
	}
	if n, _ := e.srv.count("HEAD", "/shares/only.bin"); n == 0 {
		t.Errorf("no HEAD sent")
	}
}

func TestReadOnlyRefused(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/ro/a.txt", []byte("keep"))
	e.fs.SetEntries([]Entry{e.folder("s1", "RO", "/shares/ro", false)})
	checks := map[string]error{}
	_, checks["create"] = os.Create(e.path("RO", "new.txt"))
	_, checks["open-write"] = os.OpenFile(e.path("RO", "a.txt"), os.O_WRONLY, 0)
	checks["mkdir"] = os.Mkdir(e.path("RO", "d"), 0o755)
	checks["remove"] = os.Remove(e.path("RO", "a.txt"))
	checks["rename"] = os.Rename(e.path("RO", "a.txt"), e.path("RO", "b.txt"))
	checks["truncate"] = os.Truncate(e.path("RO", "a.txt"), 0)
	checks["chmod"] = os.Chmod(e.path("RO", "a.txt"), 0o600)
	checks["chtimes"] = os.Chtimes(e.path("RO", "a.txt"), time.Now(), time.Now())
	for op, err := range checks {
		if !isErrno(err, syscall.EROFS) {
			t.Errorf("%s: got %v, want EROFS", op, err)
		}
	}
	if b, _ := e.srv.read("/shares/ro/a.txt"); string(b) != "keep" {
		t.Errorf("server file changed: %q", b)
	}
	if n, _ := e.srv.count("PUT", ""); n != 0 {
		t.Errorf("%d PUTs sent", n)
	}
	eventually(t, 5*time.Second, "log line", func() bool {
		return bytes.Contains([]byte(e.logs.String()), []byte("write refused: the share is read-only"))
	})
	// The root itself takes no new entries.
	if err := os.Mkdir(e.path("new"), 0o755); !isErrno(err, syscall.EACCES) {
		t.Errorf("mkdir at root: %v", err)
	}
}
