package ocmfs

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/fuse/vfs"
)

// A streamed file's spooled copy is not fsync'd when its upload succeeds.
// These tests start again from the spool as it was at some point of the
// stream, as a killed agent (same boot) or a power cut (another boot) would
// leave it, and check that nothing is lost, nothing overwrites a newer
// version on the server and no conflicted copy is made of content the server
// has.

// spoolDuringStream writes data to RW/name through the mount (streamed),
// closes it and unmounts; it returns a copy of the spool as it was when the
// server had read at bytes of the stream's body, or (at < 0) when the body
// ended, before the server answered.
func spoolDuringStream(t *testing.T, e *env, name string, data []byte, at int64) string {
	t.Helper()
	aside := t.TempDir()
	var chunked atomic.Int32
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut && r.ContentLength == -1 {
				chunked.Add(1)
				r.Body = &bodyHook{r: r.Body, at: at, fn: func() { copySpool(t, e.spool, aside) }}
			}
			return false
		}
	})
	if err := os.WriteFile(e.path("RW", name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := chunked.Load(); n != 1 {
		t.Fatalf("%d streams, want 1", n)
	}
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	e.srv.set(func(s *davServer) { s.intercept = nil })
	d, m := spoolFiles(t, aside)
	if len(d) != 1 || len(m) != 1 {
		t.Fatalf("spool during the stream: data %q, records %q", d, m)
	}
	if r, ok := vfs.ReadRecord(m[0]); !ok || r.Boot == "" || r.Clean {
		t.Fatalf("record during the stream: %+v, %v (want pending, of this boot: not fsync'd)", r, ok)
	}
	return aside
}

// restartOtherBoot mounts again, as after a power cut, with the spool held
// in aside.
func restartOtherBoot(t *testing.T, e *env, aside string) {
	t.Helper()
	copySpool(t, aside, e.spool)
	old := vfs.BootID
	vfs.BootID = func() string { return "another-boot" }
	t.Cleanup(func() { vfs.BootID = old })
	e.srv.resetLog()
	e.mount()
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
}

// The power goes after the stream's body ended (the server took the file,
// and someone changed it since) but before the spool let the copy go: the
// next start cannot tell whether the copy on disk is whole, nor whether
// the server has it. It keeps it in lost+found, and uploads nothing.
func TestStreamPowerLossAfterUpload(t *testing.T) {
	e := rwEnv(t)
	data := pattern(3<<20+5, 21)
	aside := spoolDuringStream(t, e, "movie.bin", data, -1)
	newer := []byte("changed on the server since")
	e.srv.write("/shares/rw/movie.bin", newer)
	restartOtherBoot(t, e, aside)
	keptNotUploaded(t, e, "movie.bin", data, newer)
}

// keptNotUploaded checks, after a restart that followed a power cut, that
// the one copy left in the spool went to lost+found (holding kept, unless
// nil), that nothing is uploaded and that the server's file at name is
// still theirs.
func keptNotUploaded(t *testing.T, e *env, name string, kept, theirs []byte) {
	t.Helper()
	lost := e.fs.LostFound()
	if len(lost) != 1 {
		t.Fatalf("LostFound = %q, want the one leftover copy", lost)
	}
	if got, err := os.ReadFile(strings.Fields(lost[0])[0]); err != nil || (kept != nil && !bytes.Equal(got, kept)) {
		t.Errorf("lost+found: %d bytes, %v", len(got), err)
	}
	e.fs.spool.RetryPending(t.Context())
	if n, _ := e.srv.count("PUT", ""); n != 0 {
		t.Errorf("%d PUTs after the restart, want none", n)
	}
	if got, err := e.srv.read("/shares/rw/" + name); err != nil || !bytes.Equal(got, theirs) {
		t.Errorf("server copy: %d bytes, %v (want the server's version)", len(got), err)
	}
	if n := conflictedCopies(t, e); len(n) != 0 {
		t.Errorf("conflicted copies %q made", n)
	}
}

// The power goes in the middle of a stream: the copy on disk may be torn,
// and goes to lost+found; what the server holds is not overwritten.
func TestStreamPowerLossMidStream(t *testing.T) {
	e := rwEnv(t)
	data := pattern(4<<20, 25)
	aside := spoolDuringStream(t, e, "half.bin", data, 1<<20)
	restartOtherBoot(t, e, aside)
	// The server keeps the whole file, from close.
	keptNotUploaded(t, e, "half.bin", nil, data)
}

// The agent is killed after the stream's body ended, before the spool let
// the copy go (same boot: the page cache holds it whole). The next start
// uploads it conditionally, is refused (the file exists), finds the very
// content on the server, and lets the copy go: no conflicted copy, nothing
// in lost+found.
func TestStreamKilledAfterUploadSameBoot(t *testing.T) {
	e := rwEnv(t)
	data := pattern(3<<20+9, 27)
	aside := spoolDuringStream(t, e, "clip.bin", data, -1)
	copySpool(t, aside, e.spool)
	e.mount()
	e.fs.SetEntries([]Entry{e.folder("s1", "RW", "/shares/rw", true)})
	eventually(t, 20*time.Second, "spool empty", func() bool {
		d, m := spoolFiles(t, e.spool)
		return len(d) == 0 && len(m) == 0
	})
	if n := conflictedCopies(t, e); len(n) != 0 {
		t.Errorf("conflicted copies %q made of content the server has", n)
	}
	if got, err := e.srv.read("/shares/rw/clip.bin"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("server copy: %d bytes, %v", len(got), err)
	}
	if lost := e.fs.LostFound(); len(lost) != 0 {
		t.Errorf("LostFound = %q, want none", lost)
	}
}

// A stream whose upload fails (and the spool's upload after it) leaves the
// data on disk, with a durable record naming the error, before close
// returns the error; the file goes to the server once it takes it.
func TestStreamFailureKeepsDataDurable(t *testing.T) {
	files, _ := countSyncs(t)
	e := rwEnv(t, func(o *Options) { o.Timeout = 20 * time.Second })
	var chunked atomic.Int32
	e.srv.set(func(s *davServer) {
		s.putStatus = http.StatusServiceUnavailable
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut && r.ContentLength == -1 {
				chunked.Add(1)
			}
			return false
		}
	})
	data := pattern(3<<20+11, 29)
	if err := os.WriteFile(e.path("RW", "fail.bin"), data, 0o644); err == nil {
		t.Fatal("close succeeded although the server refused the upload")
	}
	if n := chunked.Load(); n != 1 {
		t.Errorf("%d streams, want 1", n)
	}
	if n := files(); n < 2 {
		t.Errorf("%d fsyncs of spool files before close returned, want the data and its record", n)
	}
	d, m := spoolFiles(t, e.spool)
	if len(d) != 1 || len(m) != 1 {
		t.Fatalf("spool: data %q, records %q", d, m)
	}
	if r, ok := vfs.ReadRecord(m[0]); !ok || r.Boot != "" || r.Clean || r.Error == "" {
		t.Errorf("record after a failed upload: %+v, %v (want durable, pending, with the error)", r, ok)
	}
	if got, err := os.ReadFile(d[0]); err != nil || !bytes.Equal(got, data) {
		t.Errorf("spooled data: %d bytes, %v", len(got), err)
	}
	e.srv.set(func(s *davServer) { s.putStatus = 0 })
	e.fs.spool.RetryPending(t.Context())
	if got, err := e.srv.read("/shares/rw/fail.bin"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("server copy after the retry: %d bytes, %v", len(got), err)
	}
}
