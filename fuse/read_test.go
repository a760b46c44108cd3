package ocmfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// A file manager opening a folder: readdir, stat every entry, read the first
// 64 KiB of every file (thumbnails). One PROPFIND for the folder, and about
// 64 KiB transferred per file, never whole files.
func TestFileManagerPattern(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MetadataTTL = time.Minute })
	const files, size = 24, 2 << 20
	for i := range files {
		e.srv.write(fmt.Sprintf("/shares/pics/img%02d.jpg", i), pattern(size, byte(i)))
	}
	e.srv.write("/shares/pics/album/x.jpg", []byte("x"))
	e.fs.SetEntries([]Entry{e.folder("s1", "Pics", "/shares/pics", false)})
	if _, err := os.Stat(e.path("Pics")); err != nil {
		t.Fatal(err)
	}
	e.srv.resetLog()

	dir := e.path("Pics")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != files+1 {
		t.Fatalf("%d entries", len(ents))
	}
	for _, ent := range ents {
		st, err := os.Stat(dir + "/" + ent.Name())
		if err != nil {
			t.Fatal(err)
		}
		if st.IsDir() {
			continue
		}
		if st.Size() != size {
			t.Fatalf("%s: size %d", ent.Name(), st.Size())
		}
	}
	buf := make([]byte, 64<<10)
	for i := range files {
		fh, err := os.Open(fmt.Sprintf("%s/img%02d.jpg", dir, i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(fh, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, pattern(size, byte(i))[:len(buf)]) {
			t.Fatalf("img%02d: wrong bytes", i)
		}
		fh.Close()
	}
	if n, _ := e.srv.count("PROPFIND", "/shares/pics/"); n != 1 {
		t.Errorf("%d PROPFINDs of the folder, want 1 (log: %+v)", n, e.srv.log())
	}
	if n, _ := e.srv.count("PROPFIND", ""); n != 1 {
		t.Errorf("%d PROPFINDs in all, want 1", n)
	}
	gets, sent := e.srv.count("GET", "")
	perFile := sent / files
	t.Logf("thumbnail pattern: %d GETs, %d bytes per file for 65536 asked", gets, perFile)
	// The kernel rounds the first read up to its read-ahead (set to 96 KiB
	// so that this stays under twice what was asked).
	if perFile >= 2*64<<10 {
		t.Errorf("%d bytes transferred per file for a 64 KiB read", perFile)
	}
}

// Random small reads use Range requests for about what was asked.
func TestRandomReads(t *testing.T) {
	e := newEnv(t)
	const size = 16 << 20
	data := pattern(size, 9)
	fh := e.openShared(t, "big.bin", data)
	e.srv.resetLog()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	const reads = 40
	for range reads {
		off := rng.Int64N(size/4096) * 4096
		if _, err := fh.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+4096]) {
			t.Fatalf("wrong bytes at %d", off)
		}
	}
	_, sent := e.srv.count("GET", "")
	t.Logf("%d random 4 KiB reads transferred %d bytes", reads, sent)
	if sent > reads*256<<10 {
		t.Errorf("random reads transferred %d bytes", sent)
	}
}

// openShared serves data as the file share name and opens it in the mount
// (closed at the test's end).
func (e *env) openShared(t *testing.T, name string, data []byte) *os.File {
	e.srv.write("/shares/"+name, data)
	e.fs.SetEntries([]Entry{e.file("s1", name, "/shares/"+name, false)})
	fh, err := os.Open(e.path(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	return fh
}

// A random read's GET is made by the goroutine serving the READ, not
// handed to another one to wait for: each hand-over is a wake-up on the
// path of every small read. Seen from the server, in the same process: the
// goroutine in GetRange is inside the READ's reader.read.
func TestRandomReadFetchedByTheRead(t *testing.T) {
	e := newEnv(t)
	data := pattern(4<<20, 3)
	fh := e.openShared(t, "r.bin", data)
	var mu sync.Mutex
	var fetchers []string // the stacks of the goroutines in GetRange
	e.srv.set(func(s *davServer) {
		s.intercept = func(_ http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet {
				return false
			}
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			mu.Lock()
			defer mu.Unlock()
			for _, g := range strings.Split(string(buf), "\n\n") {
				if strings.Contains(g, "vfs.(*Client).GetRange(") {
					fetchers = append(fetchers, g)
				}
			}
			return false
		}
	})
	buf := make([]byte, 4096)
	for _, off := range []int64{3 << 20, 1 << 20, 2<<20 + 8192} {
		if _, err := fh.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+4096]) {
			t.Fatalf("wrong bytes at %d", off)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fetchers) == 0 {
		t.Fatal("no goroutine was seen in GetRange")
	}
	for _, g := range fetchers {
		if !strings.Contains(g, ".(*reader).read(") {
			t.Errorf("a random read's GET was made outside the READ:\n%s", g)
		}
	}
}

// A sequential read is served by fewer, larger requests than the kernel's
// reads (read-ahead) and returns the right bytes.
func TestSequentialRead(t *testing.T) {
	e := newEnv(t)
	const size = 24<<20 + 12345
	data := pattern(size, 4)
	e.srv.write("/shares/seq.bin", data)
	e.fs.SetEntries([]Entry{e.file("s1", "seq.bin", "/shares/seq.bin", false)})
	e.srv.resetLog()
	fh, err := os.Open(e.path("seq.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	got, reads := readInPieces(t, fh, 128<<10)
	if !bytes.Equal(got, data) {
		t.Fatalf("content differs (%d bytes read)", len(got))
	}
	gets, sent := e.srv.count("GET", "")
	t.Logf("%d reads of 128 KiB, %d GETs, %d bytes sent", reads, gets, sent)
	if gets >= reads/3 {
		t.Errorf("%d GETs for %d reads: no read-ahead", gets, reads)
	}
	if sent > size+size/4 {
		t.Errorf("%d bytes sent for a %d byte file", sent, size)
	}
}

// The page cache is kept across opens while the ETag is unchanged, and
// dropped when the file changed on the server.
func TestETagChangeDropsCache(t *testing.T) {
	ttl := 300 * time.Millisecond
	e := newEnv(t, func(o *Options) { o.MetadataTTL = ttl })
	a, b := pattern(200<<10, 1), pattern(200<<10, 2)
	e.srv.write("/shares/f/doc.bin", a)
	e.fs.SetEntries([]Entry{e.folder("s1", "F", "/shares/f", false)})
	p := e.path("F", "doc.bin")
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("first read: %v", err)
	}
	// Unchanged: after the TTL the metadata is checked again, the cache kept.
	time.Sleep(2 * ttl) // outlive the TTL (real time: the kernel's cache has no other clock)
	e.srv.resetLog()
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("second read: %v", err)
	}
	// The kernel may have evicted a few pages meanwhile (memory pressure
	// from other work): those are fetched again, but a dropped cache would
	// be the whole file.
	if n, sent := e.srv.count("GET", ""); sent >= int64(len(a))/2 {
		t.Errorf("%d GETs, %d bytes for an unchanged file of %d bytes (cache dropped)", n, sent, len(a))
	}
	if n, _ := e.srv.count("PROPFIND", ""); n == 0 {
		t.Errorf("metadata not checked again after the TTL")
	}
	// Changed on the server (same size): new bytes after the TTL.
	e.srv.write("/shares/f/doc.bin", b)
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(e.srv.dir+"/shares/f/doc.bin", later, later); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "new content", func() bool {
		got, err := os.ReadFile(p)
		return err == nil && bytes.Equal(got, b)
	})
}

// A large file is read direct: a program's 1 MiB reads reach the file system
// as 1 MiB requests (through the page cache they would be 128 KiB), the
// bytes exact; a shared read-only mapping of it still works.
func TestLargeFileReadDirect(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.DirectReadMin = DirectReadSize })
	const size = DirectReadSize + 3<<20 + 777
	data := pattern(size, 6)
	fh := servedAndReadInPieces(t, e, "large.bin", data, 1<<20)
	defer fh.Close()
	logs := e.logs.String()
	if !strings.Contains(logs, "op=readh.Read off=1048576 size=1048576") {
		t.Errorf("no 1 MiB READ request at 1 MiB in the log")
	}
	// Replies are written from memory, not tried as a splice first (which
	// fails and warns for every reply over the pipe's 1 MiB).
	if strings.Contains(logs, "trySplice") {
		t.Errorf("splice attempted for READ replies")
	}

	m, err := syscall.Mmap(int(fh.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("shared read-only mapping: %v", err)
	}
	defer func() { _ = syscall.Munmap(m) }()
	if !bytes.Equal(m, data) {
		t.Fatal("mapped content differs")
	}
}

// Small sequential reads of a large file (read direct, so the requests are
// the program's 4 KiB) are served by read-ahead in whole chunks: a few
// dozen GETs, not one per read.
func TestSmallSequentialReadsOfLargeFile(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.DirectReadMin = DirectReadSize })
	const size = DirectReadSize + 1<<20 + 99
	data := pattern(size, 8)
	e.srv.write("/shares/large.bin", data)
	e.fs.SetEntries([]Entry{e.file("s1", "large.bin", "/shares/large.bin", false)})
	fh, err := os.Open(e.path("large.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	e.srv.resetLog()
	got, _ := readInPieces(t, fh, 4096)
	if !bytes.Equal(got, data) {
		t.Fatalf("content differs (%d bytes read)", len(got))
	}
	gets, sent := e.srv.count("GET", "")
	t.Logf("%d GETs, %d bytes sent", gets, sent)
	if gets > 64 {
		t.Errorf("%d GETs for a %d byte file read in small pieces", gets, size)
	}
	if sent > size+size/4 {
		t.Errorf("%d bytes sent for a %d byte file", sent, size)
	}
}

// With DirectReadMin negative a large file goes through the page cache:
// the kernel's requests are its read-ahead's (at most 128 KiB), and a second
// open of the unchanged file is served from the cache.
func TestDirectReadsOff(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.DirectReadMin = -1; o.MetadataTTL = time.Minute })
	const size = DirectReadSize + 12345
	data := pattern(size, 3)
	e.srv.write("/shares/large.bin", data)
	e.fs.SetEntries([]Entry{e.file("s1", "large.bin", "/shares/large.bin", false)})
	for i := range 2 {
		if i == 1 {
			e.srv.resetLog()
		}
		got, err := os.ReadFile(e.path("large.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d: %v (%d bytes)", i, err, len(got))
		}
	}
	if strings.Contains(e.logs.String(), "size=1048576") {
		t.Errorf("1 MiB READ requests: the file was read direct")
	}
	if n, _ := e.srv.count("GET", ""); n != 0 {
		t.Errorf("%d GETs for the second read of an unchanged file", n)
	}
}

// readInPieces reads f to its end with reads of piece bytes each (the size
// the kernel passes on depends on it) and says how many returned data.
func readInPieces(t *testing.T, f *os.File, piece int) (data []byte, reads int) {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, piece)
	for {
		n, err := f.Read(buf)
		got.Write(buf[:n])
		if n > 0 {
			reads++
		}
		if err == io.EOF {
			return got.Bytes(), reads
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// servedAndReadInPieces serves data as a read-only file named name, reads
// it whole through the mount in pieces of the size given and checks every
// byte. The file is left open.
func servedAndReadInPieces(t *testing.T, e *env, name string, data []byte, piece int) *os.File {
	t.Helper()
	e.srv.write("/shares/"+name, data)
	e.fs.SetEntries([]Entry{e.file("s1", name, "/shares/"+name, false)})
	fh, err := os.Open(e.path(name))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readInPieces(t, fh, piece)
	if !bytes.Equal(got, data) {
		fh.Close()
		t.Fatalf("content differs (%d bytes read)", len(got))
	}
	return fh
}

// Two threads reading one open file at places far apart: the second read
// moves the reader on, but the fetch the first one waits for is not
// cancelled under it (it used to fail with EIO).
func TestConcurrentReadsOfOneFileKeepEachOthersFetch(t *testing.T) {
	e := newEnv(t)
	const size = 16 << 20
	data := pattern(size, 5)
	e.srv.write("/shares/two.bin", data)
	e.fs.SetEntries([]Entry{e.file("s1", "two.bin", "/shares/two.bin", false)})
	fh, err := os.Open(e.path("two.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	// The GET of the file's start is held until the other read's GET came.
	firstHeld, otherCame := make(chan struct{}), make(chan struct{})
	var once1, once2 sync.Once
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet {
				return false
			}
			if strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") {
				once1.Do(func() { close(firstHeld) })
				select {
				case <-otherCame:
				case <-r.Context().Done():
				case <-time.After(time.Minute):
				}
			} else {
				once2.Do(func() { close(otherCame) })
			}
			return false
		}
	})
	first := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		_, err := fh.ReadAt(buf, 0)
		if err == nil && !bytes.Equal(buf, data[:4096]) {
			err = fmt.Errorf("wrong bytes at 0")
		}
		first <- err
	}()
	select {
	case <-firstHeld:
	case err := <-first:
		t.Fatalf("the first read ended before its GET was held: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the first read's GET never came")
	}
	const far = 8 << 20
	buf := make([]byte, 4096)
	if _, err := fh.ReadAt(buf, far); err != nil {
		t.Fatalf("the second read: %v", err)
	}
	if !bytes.Equal(buf, data[far:far+4096]) {
		t.Fatalf("wrong bytes at %d", far)
	}
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("the first read failed: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the first read did not end")
	}
}

// With KernelReadAhead (root only), a sequential read through the page
// cache comes as READs of 1 MiB instead of the kernel's 128 KiB, byte-exact.
func TestKernelReadAheadMakesLargeReads(t *testing.T) {
	var err error
	if os.Geteuid() != 0 {
		err = fmt.Errorf("not root")
	}
	testenv.Need(t, "root (to set a backing device's read-ahead)", err)
	e := newEnv(t, func(o *Options) { o.KernelReadAhead = 4 << 20 })
	const size = 24<<20 + 4321
	data := pattern(size, 6)
	e.srv.write("/shares/ra.bin", data)
	e.fs.SetEntries([]Entry{e.file("s1", "ra.bin", "/shares/ra.bin", false)})
	got, err := os.ReadFile(e.path("ra.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("content differs (%d bytes read)", len(got))
	}
	if n := strings.Count(e.logs.String(), "op=readh.Read off="); n == 0 || !strings.Contains(e.logs.String(), "size=1048576") {
		t.Fatalf("no READ of 1 MiB among %d", n)
	}
}

// A chunk whose own READ gave up (killed, or past its deadline) is fetched
// on for the other READs waiting on it, and stopped when the last leaves.
func TestAbandonedChunkStopsWhenTheLastWaiterLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &chunk{cancel: cancel}
	c.waiters.Store(2)
	c.abandoned.Store(true)
	c.leave() // the READ fetching it
	if ctx.Err() != nil {
		t.Fatal("the fetch stopped while another READ waits on it")
	}
	c.leave()
	if ctx.Err() == nil {
		t.Fatal("the fetch goes on with nobody waiting")
	}
}
