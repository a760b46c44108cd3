package ocmfs

import (
	"bytes"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// Shares appear and disappear live, and the kernel is told (ls sees it at
// once even with long cache timeouts).
func TestLiveEntries(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MetadataTTL = time.Hour })
	e.srv.write("/shares/a/1.txt", []byte("1"))
	e.srv.write("/shares/b/2.txt", []byte("2"))
	ls := func() string {
		out, err := exec.Command("ls", "-1", e.mnt).CombinedOutput()
		if err != nil {
			t.Fatalf("ls: %v %s", err, out)
		}
		return strings.Join(strings.Fields(string(out)), "|")
	}
	if got := ls(); got != "" {
		t.Fatalf("empty mount lists %q", got)
	}
	a := e.folder("s1", "Alpha", "/shares/a", false)
	b := e.folder("s2", "Beta", "/shares/b", false)
	e.fs.SetEntries([]Entry{a})
	if got := ls(); got != "Alpha" {
		t.Fatalf("after accept: %q", got)
	}
	if _, err := os.Stat(e.path("Beta")); !os.IsNotExist(err) {
		t.Fatalf("Beta before it exists: %v", err)
	}
	e.fs.SetEntries([]Entry{a, b})
	if got := ls(); got != "Alpha|Beta" {
		t.Fatalf("after second accept: %q", got)
	}
	// The negative entry cached by the Stat above is gone.
	if got, err := os.ReadFile(e.path("Beta", "2.txt")); err != nil || string(got) != "2" {
		t.Fatalf("Beta/2.txt: %q %v", got, err)
	}
	// Hold a file open in Alpha, then unshare Alpha.
	fh, err := os.Open(e.path("Alpha", "1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	e.fs.SetEntries([]Entry{b})
	if got := ls(); got != "Beta" {
		t.Fatalf("after unshare: %q", got)
	}
	if _, err := os.Stat(e.path("Alpha", "1.txt")); !os.IsNotExist(err) {
		t.Errorf("Alpha/1.txt after unshare: %v", err)
	}
	buf := make([]byte, 1)
	if _, err := fh.ReadAt(buf, 0); err == nil {
		t.Errorf("read from an unshared share succeeded")
	}
	// A new share may take the freed name.
	e.fs.SetEntries([]Entry{b, e.folder("s3", "Alpha", "/shares/b", false)})
	if got := joined(listNames(t, e.path("Alpha"))); got != "2.txt" {
		t.Errorf("reused name lists %q", got)
	}
}

// Hostile share names stay inside their entry, are unique and valid.
func TestUnsafeNames(t *testing.T) {
	e := newEnv(t)
	e.srv.write("/shares/x/inside.txt", []byte("in"))
	names := []string{"../x", "a/b", ".", "..", "nul\x00name", "ctl\x01\x1b[31mred", "Report", "Report", "Report", strings.Repeat("ß", 200), "/", ""}
	var entries []Entry
	for i, n := range names {
		en := e.folder(string(rune('a'+i)), n, "/shares/x", false)
		if i == 7 {
			en.Origin = "bob@other.example"
		}
		entries = append(entries, en)
	}
	e.fs.SetEntries(entries)
	got := listNames(t, e.mnt)
	if len(got) != len(names) {
		t.Fatalf("%d entries for %d shares: %q", len(got), len(names), got)
	}
	seen := map[string]bool{}
	for _, n := range got {
		if seen[n] {
			t.Errorf("duplicate %q", n)
		}
		seen[n] = true
		if !vfs.ValidRemoteName(n) || strings.ContainsAny(n, "\x00\x01\x1b") || !utf8.ValidString(n) || len(n) > 255 {
			t.Errorf("unsafe name %q", n)
		}
		// Every entry is a share root with the share's content, nothing else.
		if inner := joined(listNames(t, e.path(n))); inner != "inside.txt" {
			t.Errorf("%q lists %q", n, inner)
		}
	}
	for _, want := range []string{"Report", "Report (bob@other.example)", "Report (alice@cloud.example)"} {
		if !seen[want] {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	if slices.Contains(got, "x") {
		t.Errorf("a share name escaped its entry")
	}
	// Nothing was created next to the mount point.
	parent, _ := os.ReadDir(e.mnt + "/..")
	if len(parent) != 1 {
		t.Errorf("mount parent has %d entries", len(parent))
	}
}

// A peer that is down fails operations quickly; when it is back the mount
// works again by itself.
func TestPeerDownAndBack(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MetadataTTL = 200 * time.Millisecond })
	data := pattern(1<<20, 3)
	e.srv.write("/shares/p/f.bin", data)
	e.srv.write("/shares/p/sub/g.txt", []byte("g"))
	e.fs.SetEntries([]Entry{e.folder("s1", "P", "/shares/p", true)})
	if _, err := os.ReadFile(e.path("P", "f.bin")); err != nil {
		t.Fatal(err)
	}
	e.srv.stop()
	time.Sleep(300 * time.Millisecond) // outlive the 200 ms TTL (real time: the kernel's cache has no other clock)
	bound := e.opts.Timeout + 10*time.Second
	err := within(t, bound, "listing with the peer down", func() error {
		_, err := os.ReadDir(e.path("P", "sub"))
		return err
	})
	if err == nil {
		t.Errorf("listing succeeded with the peer down")
	}
	err = within(t, bound, "read with the peer down", func() error {
		_, err := os.ReadFile(e.path("P", "f.bin"))
		return err
	})
	if err == nil {
		t.Errorf("read succeeded with the peer down")
	} else if !isErrno(err, syscall.EIO) && !isErrno(err, syscall.ETIMEDOUT) {
		t.Errorf("read error %v, want EIO or ETIMEDOUT", err)
	}
	err = within(t, bound, "write with the peer down", func() error {
		return os.WriteFile(e.path("P", "w.txt"), []byte("w"), 0o644)
	})
	if err == nil {
		t.Errorf("upload succeeded with the peer down")
	}
	e.srv.start()
	eventually(t, 10*time.Second, "mount recovers", func() bool {
		got, err := os.ReadFile(e.path("P", "f.bin"))
		return err == nil && bytes.Equal(got, data)
	})
	if got := joined(listNames(t, e.path("P", "sub"))); got != "g.txt" {
		t.Errorf("sub after recovery: %q", got)
	}
}

// A peer that accepts connections and never answers: operations fail with
// ETIMEDOUT after the configured timeout, not hang.
func TestPeerHangs(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Timeout = 500 * time.Millisecond
		o.MetadataTTL = 100 * time.Millisecond
	})
	e.srv.write("/shares/h/f.txt", []byte("f"))
	e.fs.SetEntries([]Entry{e.folder("s1", "H", "/shares/h", false)})
	if _, err := os.ReadDir(e.path("H")); err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	e.srv.set(func(s *davServer) { s.hang = hang })
	defer close(hang)
	time.Sleep(200 * time.Millisecond) // outlive the 100 ms TTL (real time: the kernel's cache has no other clock)
	err := within(t, 15*time.Second, "listing a hanging peer", func() error {
		_, err := os.ReadDir(e.path("H"))
		return err
	})
	if !isErrno(err, syscall.ETIMEDOUT) {
		t.Errorf("listing a hanging peer: %v, want ETIMEDOUT", err)
	}
	err = within(t, 15*time.Second, "reading from a hanging peer", func() error {
		_, err := os.ReadFile(e.path("H", "f.txt"))
		return err
	})
	if !isErrno(err, syscall.ETIMEDOUT) {
		t.Errorf("reading from a hanging peer: %v, want ETIMEDOUT", err)
	}
}

// A 401 renews the credentials once (Invalidate) and the request is retried,
// including in the middle of a long read; credentials that stay rejected
// surface as EACCES.
func TestTokenRenewal(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MetadataTTL = time.Second })
	// Read-ahead goes at most raMax past the last read: the part after
	// that is fetched once the token has expired, whatever the timing.
	const firstPart = 4 << 20
	const size = firstPart + raMax + 16<<20
	data := pattern(size, 6)
	e.srv.write("/shares/t/long.bin", data)
	e.fs.SetEntries([]Entry{e.folder("s1", "T", "/shares/t", false)})
	fh, err := os.Open(e.path("T", "long.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	first := make([]byte, firstPart)
	if _, err := io.ReadFull(fh, first); err != nil {
		t.Fatal(err)
	}
	// The token expires in the middle of the read.
	e.auth.mu.Lock()
	e.auth.next = "renewed"
	e.auth.mu.Unlock()
	e.srv.set(func(s *davServer) { s.token = "renewed" })
	rest, err := io.ReadAll(fh)
	if err != nil {
		t.Fatalf("read after expiry: %v", err)
	}
	if !bytes.Equal(append(first, rest...), data) {
		t.Fatalf("content differs")
	}
	if n := e.auth.invalidations(); n < 1 {
		t.Errorf("Invalidate called %d times", n)
	}
	// Rejected for good: EACCES, after exactly one renewal attempt per request.
	e.srv.set(func(s *davServer) { s.token = "nobody-has-this" })
	time.Sleep(e.opts.MetadataTTL) // outlive the TTL (real time: the kernel's cache has no other clock)
	before := e.auth.invalidations()
	_, err = os.ReadDir(e.path("T"))
	if !isErrno(err, syscall.EACCES) {
		t.Errorf("listing with rejected credentials: %v, want EACCES", err)
	}
	if got := e.auth.invalidations() - before; got != 1 {
		t.Errorf("Invalidate called %d times for one request", got)
	}
}
