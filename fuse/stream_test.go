package ocmfs

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// serverSize is the size of the file at p on the server (-1 when absent).
func (s *davServer) serverSize(p string) int64 {
	st, err := os.Stat(filepath.Join(s.dir, filepath.FromSlash(p)))
	if err != nil {
		return -1
	}
	return st.Size()
}

// rwEnv is a mount with one writable folder share, RW.
func rwEnv(t *testing.T, tweak ...func(*Options)) *env {
	e := newEnv(t, tweak...)
	e.srv.write("/shares/rw/.keep", nil)
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	return e
}

// writeStreaming creates name in dir and writes data in pieces, leaving the
// file open; the stream is seen on the server before it returns.
func writeStreaming(t *testing.T, e *env, name string, data []byte) *os.File {
	t.Helper()
	fh, err := os.Create(e.path("RW", name))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 256 << 10 {
		if _, err := fh.Write(data[off:min(off+256<<10, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "data on the server before close", func() bool {
		return e.srv.serverSize("/shares/rw/"+name) > 0
	})
	return fh
}

// A file written from empty goes to the server while it is written, in one
// chunked PUT; close returns once the server has every byte. As for a small
// file, the spooled copy is neither fsync'd nor pushed to the disk on the
// way (the server's disk is busy with its own copy): its record carries the
// boot id, so that a power cut sends it to lost+found, never to the server.
func TestStreamedUpload(t *testing.T) {
	files, _ := countSyncs(t)
	writeBacks := countWriteBacks(t)
	// A timeout long enough that the stream never waits out the writer
	// here (see TestStreamWriterPauses).
	e := rwEnv(t, func(o *Options) { o.Timeout = 20 * time.Second })
	var chunked atomic.Int32
	var atEnd atomic.Pointer[vfs.Record]
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut && r.ContentLength == -1 {
				chunked.Add(1)
				r.Body = &bodyHook{r: r.Body, at: -1, fn: func() {
					if _, m := spoolFiles(t, e.spool); len(m) == 1 {
						if rec, ok := vfs.ReadRecord(m[0]); ok {
							atEnd.Store(&rec)
						}
					}
				}}
			}
			return false
		}
	})
	// Larger than the step of the write-back a durable stream starts.
	data := pattern(9<<20+123, 3)
	fh := writeStreaming(t, e, "video.bin", data)
	if _, err := fh.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	data = append(data, "tail"...)
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got, err := e.srv.read("/shares/rw/video.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("server copy: %d bytes, %v", len(got), err)
	}
	if n, sent := e.srv.count("PUT", "/shares/rw/video.bin"); n != 1 || chunked.Load() != 1 {
		t.Errorf("%d PUTs (%d chunked, %d bytes answered): want the one stream", n, chunked.Load(), sent)
	}
	if n := files(); n != 0 {
		t.Errorf("%d fsyncs of spool files, want 0: the server has the data", n)
	}
	if n := writeBacks(); n != 0 {
		t.Errorf("%d write-backs of the spooled data started, want 0", n)
	}
	if r := atEnd.Load(); r == nil || r.Boot == "" || r.Clean || !r.Created {
		t.Errorf("record when the body ended: %+v (want pending, of this boot: not fsync'd)", r)
	}
	eventually(t, 5*time.Second, "spool empty", func() bool {
		d, m := spoolFiles(t, e.spool)
		return len(d) == 0 && len(m) == 0
	})
	if st, err := os.Stat(e.path("RW", "video.bin")); err != nil || st.Size() != int64(len(data)) {
		t.Errorf("stat after close: %v %v", st, err)
	}
}

// countWriteBacks counts the write-backs of spooled data started ahead of
// an fsync.
func countWriteBacks(t *testing.T) func() int {
	var n atomic.Int32
	old := vfs.StartWriteBack
	vfs.StartWriteBack = func(f *os.File, off, size int64) {
		n.Add(1)
		old(f, off, size)
	}
	t.Cleanup(func() { vfs.StartWriteBack = old })
	return func() int { return int(n.Load()) }
}

// Where the boot cannot be known, every copy is fsync'd before its upload:
// a stream's body ends only after the spooled data is on disk, its
// write-back started on the way.
func TestStreamUnknownBootSyncsFirst(t *testing.T) {
	var mu sync.Mutex
	synced := map[string]bool{}
	old := vfs.SyncFile
	vfs.SyncFile = func(f *os.File) error {
		err := old(f)
		mu.Lock()
		synced[f.Name()] = true
		mu.Unlock()
		return err
	}
	t.Cleanup(func() { vfs.SyncFile = old })
	oldBoot := vfs.BootID
	vfs.BootID = func() string { return "" }
	t.Cleanup(func() { vfs.BootID = oldBoot })
	writeBacks := countWriteBacks(t)
	e := rwEnv(t, func(o *Options) { o.Timeout = 20 * time.Second })
	var syncedAtEnd atomic.Bool
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut && r.ContentLength == -1 {
				r.Body = &bodyHook{r: r.Body, at: -1, fn: func() {
					d, _ := spoolFiles(t, e.spool)
					mu.Lock()
					syncedAtEnd.Store(len(d) == 1 && synced[d[0]])
					mu.Unlock()
				}}
			}
			return false
		}
	})
	data := pattern(9<<20+5, 7)
	fh := writeStreaming(t, e, "video.bin", data)
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got, err := e.srv.read("/shares/rw/video.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("server copy: %d bytes, %v", len(got), err)
	}
	if !syncedAtEnd.Load() {
		t.Errorf("the body ended before the spooled data was fsync'd")
	}
	if writeBacks() == 0 {
		t.Errorf("no write-back started ahead of the fsync")
	}
}

// bodyHook calls fn once the body it wraps has given at bytes, or at its
// end when at is negative.
type bodyHook struct {
	r    io.ReadCloser
	at   int64
	n    int64
	fn   func()
	once sync.Once
}

func (h *bodyHook) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += int64(n)
	if (h.at < 0 && err == io.EOF) || (h.at >= 0 && h.n >= h.at) {
		h.once.Do(h.fn)
	}
	return n, err
}

func (h *bodyHook) Close() error { return h.r.Close() }

// A write below what the stream already sent does not cut it (a server may
// keep what a cut connection sent): the stream ends at close, and the spool
// is uploaded over the version it left. No conflicted copy.
func TestStreamRewriteBelowSent(t *testing.T) {
	e := rwEnv(t)
	data := pattern(3<<20, 4)
	fh := writeStreaming(t, e, "db.bin", data)
	if _, err := fh.WriteAt([]byte("HEADER"), 0); err != nil {
		t.Fatal(err)
	}
	copy(data, "HEADER")
	if err := fh.Truncate(int64(len(data) - 5)); err != nil {
		t.Fatal(err)
	}
	data = data[:len(data)-5]
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got, err := e.srv.read("/shares/rw/db.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("server copy: %d bytes, %v", len(got), err)
	}
	if got := joined(listNames(t, e.path("RW"))); got != ".keep|db.bin" {
		t.Errorf("listing = %q", got)
	}
	if c := e.fs.Conflicts(); len(c) != 0 {
		t.Errorf("conflicts: %q", c)
	}
}

// A server that wants a Content-Length refuses the stream; close uploads
// from the spool, and the share gets no more streams.
func TestStreamRefused(t *testing.T) {
	e := rwEnv(t)
	var chunked atomic.Int32
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut && r.ContentLength == -1 {
				chunked.Add(1)
				http.Error(w, "length required", http.StatusLengthRequired)
				return true
			}
			return false
		}
	})
	writeTwoLargeFiles(t, e, 2<<20+1, 5)
	if n := chunked.Load(); n != 1 {
		t.Errorf("%d chunked PUTs, want 1 (then none to this share)", n)
	}
}

// Some servers answer a chunked PUT with success and keep nothing of its
// body (PHP behind FastCGI, nginx without request buffering in front of
// Nextcloud): the file is uploaded again with a length before close
// returns, and that share gets no more streams.
func TestStreamDroppedBodyIsUploadedAgain(t *testing.T) {
	e := rwEnv(t)
	var chunked, dropped atomic.Int32
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut && r.ContentLength == -1 {
				chunked.Add(1)
				// Read it all, then store an empty file and answer 201,
				// as such a server does.
				if n, _ := io.Copy(io.Discard, r.Body); n > 0 {
					dropped.Add(1)
				}
				r.Body, r.ContentLength = http.NoBody, 0
			}
			return false
		}
	})
	writeTwoLargeFiles(t, e, 2<<20+3, 9)
	if n, d := chunked.Load(), dropped.Load(); n != 1 || d != 1 {
		t.Errorf("%d chunked PUTs (%d with a body dropped), want 1 (then none to this share)", n, d)
	}
}

// writeTwoLargeFiles writes a.bin and b.bin, each large enough to be
// streamed, and checks that the server has every byte of each after close.
func writeTwoLargeFiles(t *testing.T, e *env, size int, seed byte) {
	t.Helper()
	for _, name := range []string{"a.bin", "b.bin"} {
		data := pattern(size, seed)
		if err := os.WriteFile(e.path("RW", name), data, 0o644); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
		if got, err := e.srv.read("/shares/rw/" + name); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("server copy of %s after close: %d bytes, %v; want all %d", name, len(got), err, len(data))
		}
	}
}

// A file renamed or removed while it is being streamed ends up under its
// new name, or nowhere; never a piece under the old name.
func TestStreamRenameAndUnlink(t *testing.T) {
	e := rwEnv(t)
	data := pattern(2<<20, 6)
	fh := writeStreaming(t, e, "part.bin", data)
	if err := os.Rename(e.path("RW", "part.bin"), e.path("RW", "done.bin")); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if _, err := fh.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	data = append(data, "more"...)
	if got, err := e.srv.read("/shares/rw/done.bin"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("renamed copy: %d bytes, %v", len(got), err)
	}

	fh = writeStreaming(t, e, "scratch.bin", data)
	if err := os.Remove(e.path("RW", "scratch.bin")); err != nil {
		t.Fatalf("unlink: %v", err)
	}
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	names := joined(listNames(t, e.path("RW")))
	if names != ".keep|done.bin" {
		t.Errorf("listing = %q", names)
	}
	for _, f := range []string{"part.bin", "scratch.bin"} {
		if n := e.srv.serverSize("/shares/rw/" + f); n != -1 {
			t.Errorf("%s left on the server (%d bytes)", f, n)
		}
	}
	if c := e.fs.Conflicts(); len(c) != 0 || strings.Contains(names, "conflicted") {
		t.Errorf("conflicts: %q", c)
	}
}

// A writer that pauses longer than the stream waits ends the stream's body
// where it is (not cut by a timeout): the server keeps that piece as a
// version of ours, and close uploads the whole file over it, conditional on
// that version. No conflicted copy.
func TestStreamWriterPauses(t *testing.T) {
	e := rwEnv(t)
	data := pattern(2<<20, 9)
	fh := writeStreaming(t, e, "slow.bin", data)
	eventually(t, 20*time.Second, "the stream ended while the writer paused", func() bool {
		for _, r := range e.srv.log() {
			if r.Method == http.MethodPut && r.Path == "/shares/rw/slow.bin" && r.Status/100 == 2 {
				return true
			}
		}
		return false
	})
	if _, err := fh.Write([]byte("later")); err != nil {
		t.Fatal(err)
	}
	data = append(data, "later"...)
	if err := fh.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got, err := e.srv.read("/shares/rw/slow.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("server copy: %d bytes, %v", len(got), err)
	}
	var conds []string
	for _, r := range e.srv.log() {
		if r.Method == http.MethodPut && r.Path == "/shares/rw/slow.bin" {
			conds = append(conds, r.Cond)
		}
	}
	if len(conds) != 2 || conds[0] != "*" || conds[1] == "" || conds[1] == "*" {
		t.Errorf("PUT conditions %q: want the stream's If-None-Match, then If-Match on its version", conds)
	}
	if names := joined(listNames(t, e.path("RW"))); names != ".keep|slow.bin" {
		t.Errorf("listing = %q", names)
	}
}
