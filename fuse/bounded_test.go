package ocmfs

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// endlessListing answers PROPFIND Depth 1 of dir (any depth if anyDepth)
// with a multistatus that never ends: the folder itself, then file after
// file, until the client goes away (or a bound, so that a broken mount cannot
// keep the test running).
func endlessListing(dir string, anyDepth bool, started *atomic.Int64) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "PROPFIND" || (r.Header.Get("Depth") != "1" && !anyDepth) || strings.TrimSuffix(r.URL.Path, "/") != strings.TrimSuffix(dir, "/") {
			return false
		}
		started.Add(1)
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusMultiStatus)
		bw := bufio.NewWriterSize(w, 64<<10)
		fmt.Fprintf(bw, `<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:">`+
			`<d:response><d:href>%s</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop>`+
			`<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>`, dir)
		deadline := time.Now().Add(2 * time.Minute)
		for i := 0; i < 5_000_000 && time.Now().Before(deadline); i++ {
			_, err := fmt.Fprintf(bw, `<d:response><d:href>%sfile-%09d.txt</d:href><d:propstat><d:prop><d:resourcetype/>`+
				`<d:getcontentlength>1</d:getcontentlength></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>`, dir, i)
			if err != nil || r.Context().Err() != nil {
				return true
			}
		}
		return true
	}
}

// heapPeak samples the Go heap until stop is closed and returns the highest
// value seen.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// A folder whose listing never ends fails with EIO once it passes the cap
// on entries (logged at the default level), with the memory of the mount
// bounded, instead of growing until the body limit (128 MiB of XML, about
// half a gigabyte of memory for each such listing).
func TestEndlessListingIsCapped(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Timeout = 60 * time.Second }, infoLogs)
	e.srv.write("/shares/endless/.keep", nil)
	var started atomic.Int64
	e.srv.set(func(s *davServer) { s.intercept = endlessListing("/shares/endless/", false, &started) })
	e.fs.SetEntries([]Entry{e.folder("s1", "Endless", "/shares/endless", false)})
	if _, err := os.Stat(e.path("Endless")); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	stop := make(chan struct{})
	peak := heapPeak(stop)
	err := within(t, 90*time.Second, "listing an endless folder", func() error {
		_, err := os.ReadDir(e.path("Endless"))
		return err
	})
	close(stop)
	grew := int64(<-peak) - int64(before)
	t.Logf("heap grew by %d MiB during the listing", grew>>20)
	if err == nil {
		t.Fatalf("listing an endless folder succeeded")
	}
	if !isErrno(err, syscall.EIO) {
		t.Errorf("listing an endless folder: %v, want EIO", err)
	}
	if started.Load() == 0 {
		t.Fatalf("the endless listing was never asked for")
	}
	if grew > 200<<20 {
		t.Errorf("heap grew by %d MiB for one listing", grew>>20)
	}
	if !strings.Contains(e.logs.String(), `level=WARN msg="listing failed"`) || !strings.Contains(e.logs.String(), "more than") {
		t.Errorf("no log line at the default level says the listing was too long")
	}
	// The folder is not listed at all rather than cut: a second try fails too.
	if _, err := os.ReadDir(e.path("Endless")); err == nil {
		t.Errorf("second listing succeeded")
	}
}

// Accepting a share is enough for the agent to ask the server what it is
// (PROPFIND Depth 0): an endless answer to that is cut after a few entries.
func TestEndlessSelfAnswerIsCapped(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Timeout = 60 * time.Second }, infoLogs)
	e.srv.write("/shares/endless/.keep", nil)
	var started atomic.Int64
	e.srv.set(func(s *davServer) { s.intercept = endlessListing("/shares/endless/", true, &started) })
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	stop := make(chan struct{})
	peak := heapPeak(stop)
	e.fs.SetEntries([]Entry{e.folder("s1", "Endless", "/shares/endless", false)})
	eventually(t, 60*time.Second, "the check of the share fails", func() bool {
		return strings.Contains(e.logs.String(), "share not reachable")
	})
	close(stop)
	grew := int64(<-peak) - int64(before)
	t.Logf("heap grew by %d MiB during the check", grew>>20)
	if started.Load() == 0 {
		t.Fatalf("the share was never checked")
	}
	if grew > 50<<20 {
		t.Errorf("heap grew by %d MiB for the check of one share", grew>>20)
	}
}

// A smaller cap from the options applies, and a folder within it lists.
func TestMaxEntriesOption(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxEntries = 10 })
	for i := range 10 {
		e.srv.write(fmt.Sprintf("/shares/ten/f%d", i), []byte("x"))
		e.srv.write(fmt.Sprintf("/shares/eleven/f%d", i), []byte("x"))
	}
	e.srv.write("/shares/eleven/f10", []byte("x"))
	e.fs.SetEntries([]Entry{e.folder("s1", "Ten", "/shares/ten", false), e.folder("s2", "Eleven", "/shares/eleven", false)})
	if got := listNames(t, e.path("Ten")); len(got) != 10 {
		t.Errorf("a folder of 10 at a cap of 10 lists %d", len(got))
	}
	if _, err := os.ReadDir(e.path("Eleven")); !isErrno(err, syscall.EIO) {
		t.Errorf("a folder of 11 at a cap of 10: %v, want EIO", err)
	}
}

// dripListing answers PROPFIND Depth 1 of dir with a valid multistatus sent
// one byte every 200 ms (each byte would re-arm a watchdog of idle time),
// until the client goes away or release is closed. started is told of each
// such request.
func dripListing(dir string, release <-chan struct{}, started chan<- struct{}) func(http.ResponseWriter, *http.Request) bool {
	doc := `<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>` + dir +
		`</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>` +
		strings.Repeat(`<!-- padding -->`, 100) + `</d:multistatus>`
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "PROPFIND" || r.Header.Get("Depth") != "1" || r.URL.Path != dir {
			return false
		}
		select {
		case started <- struct{}{}:
		default:
		}
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusMultiStatus)
		drip(w, r, []byte(doc), release)
		return true
	}
}

// drip sends body one byte every 200 ms, flushed, until it is all sent, the
// client goes away or release is closed.
func drip(w http.ResponseWriter, r *http.Request, body []byte, release <-chan struct{}) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for i := range body {
		select {
		case <-release:
			return
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// A server that answers a listing one byte at a time: ls fails after about
// mount-timeout (the whole request is bounded, not the gap between bytes).
func TestSlowDripListing(t *testing.T) {
	const timeout = time.Second
	e := newEnv(t, func(o *Options) { o.Timeout = timeout })
	e.srv.write("/shares/drip/a.txt", []byte("a"))
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 1)
	e.srv.set(func(s *davServer) { s.intercept = dripListing("/shares/drip/", release, started) })
	e.fs.SetEntries([]Entry{e.folder("s1", "Drip", "/shares/drip", false)})
	if _, err := os.Stat(e.path("Drip")); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	err := within(t, 10*timeout, "ls of a slow-drip folder", func() error {
		out, err := exec.Command("ls", e.path("Drip")).CombinedOutput()
		if err != nil {
			t.Logf("ls: %v: %s", err, out)
		}
		return err
	})
	if err == nil {
		t.Fatalf("ls of a folder whose listing never completes succeeded")
	}
	t.Logf("ls failed after %v (mount-timeout %v)", time.Since(begin).Round(time.Millisecond), timeout)
	select {
	case <-started:
	default:
		t.Fatalf("the slow listing was never asked for")
	}
}

// Programs blocked in the mount are released as soon as they are killed
// (SIGKILL), long before the timeout ends the operation they wait for: ls in
// a readdir, cat in a lookup, both on a slow-drip listing, and cat in a read
// of a slow-drip file. Their processes are reaped.
func TestKilledWhileBlocked(t *testing.T) {
	const timeout = time.Minute
	const bound = 10 * time.Second
	e := newEnv(t, func(o *Options) { o.Timeout = timeout })
	var wg sync.WaitGroup
	defer wg.Wait()
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 1)
	data := pattern(3000, 32)
	lsDrip := dripListing("/shares/drip1/", release, started)
	catDrip := dripListing("/shares/drip2/", release, started)
	readDrip := dripFile("/shares/slow/f.bin", data, release, started)
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			return lsDrip(w, r) || catDrip(w, r) || readDrip(w, r)
		}
	})
	e.srv.write("/shares/drip1/a.txt", []byte("a"))
	e.srv.write("/shares/drip2/a.txt", []byte("a"))
	e.srv.write("/shares/slow/f.bin", data)
	e.fs.SetEntries([]Entry{
		e.folder("s1", "Drip1", "/shares/drip1", false),
		e.folder("s2", "Drip2", "/shares/drip2", false),
		e.folder("s3", "Slow", "/shares/slow", false),
	})
	for _, p := range []string{e.path("Drip1"), e.path("Drip2"), e.path("Slow", "f.bin")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, argv := range [][]string{{"ls", e.path("Drip1")}, {"cat", e.path("Drip2", "a.txt")}, {"cat", e.path("Slow", "f.bin")}} {
		cmd := exec.Command(argv[0], argv[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("%s: the server was never asked", argv)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			done <- cmd.Wait()
		}()
		select {
		case err := <-done:
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Errorf("%s ended with %v, want killed", argv, err)
			}
		case <-time.After(bound):
			t.Errorf("%s, killed while blocked in the mount, was not reaped within %v (mount-timeout %v)", argv, bound, timeout)
		}
	}
}

// dripFile answers GETs of path with 206 and the asked range (the whole
// file without one), one byte every 200 ms, until the client goes away or
// release is closed.
func dripFile(path string, data []byte, release <-chan struct{}, started chan<- struct{}) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != path {
			return false
		}
		select {
		case started <- struct{}{}:
		default:
		}
		from, to := 0, len(data)-1
		if rg, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok {
			a, b, _ := strings.Cut(rg, "-")
			from, _ = strconv.Atoi(a)
			if v, err := strconv.Atoi(b); err == nil && v < len(data) {
				to = v
			}
		}
		w.Header().Set("Content-Length", strconv.Itoa(to-from+1))
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(data)))
		w.WriteHeader(http.StatusPartialContent)
		drip(w, r, data[from:to+1], release)
		return true
	}
}

// A server that sends a file one byte at a time: cat fails after about
// mount-timeout (plus the time the size takes at a minimal rate), and a cat
// killed while it waits is reaped.
func TestSlowDripRead(t *testing.T) {
	const timeout = time.Second
	e := newEnv(t, func(o *Options) { o.Timeout = timeout })
	var wg sync.WaitGroup
	defer wg.Wait()
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 1)
	data := pattern(3000, 31)
	e.srv.write("/shares/slow/f.bin", data)
	e.srv.write("/shares/slow/g.bin", data)
	dripF := dripFile("/shares/slow/f.bin", data, release, started)
	dripG := dripFile("/shares/slow/g.bin", data, release, started)
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool { return dripF(w, r) || dripG(w, r) }
	})
	e.fs.SetEntries([]Entry{e.folder("s1", "Slow", "/shares/slow", false)})
	if _, err := os.Stat(e.path("Slow", "f.bin")); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	err := within(t, 10*timeout, "cat of a slow-drip file", func() error {
		out, err := exec.Command("cat", e.path("Slow", "f.bin")).Output()
		if err == nil && len(out) != len(data) {
			t.Errorf("cat exits 0 with %d of %d bytes", len(out), len(data))
		}
		return err
	})
	if err == nil {
		t.Fatalf("cat of a file that never arrives succeeded")
	}
	t.Logf("cat failed after %v (mount-timeout %v)", time.Since(begin).Round(time.Millisecond), timeout)

	if _, err := os.Stat(e.path("Slow", "g.bin")); err != nil {
		t.Fatal(err)
	}
	for len(started) > 0 {
		<-started
	}
	cmd := exec.Command("cat", e.path("Slow", "g.bin"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the file was never asked for")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		done <- cmd.Wait()
	}()
	select {
	case <-done:
	case <-time.After(10 * timeout):
		t.Errorf("cat, killed while reading from the mount, was not reaped within %v", 10*timeout)
	}
}

// A share whose server drips its listings gets at most two listings in
// flight: the others wait for a turn, and the listings of other shares still
// get theirs.
func TestSlowShareDoesNotStarveOthers(t *testing.T) {
	const timeout = 10 * time.Second
	e := newEnv(t, func(o *Options) { o.Timeout = timeout })
	release := make(chan struct{})
	defer close(release)
	var now, peak atomic.Int32
	started := make(chan struct{}, 16)
	drips := map[string]func(http.ResponseWriter, *http.Request) bool{}
	for i := range 6 {
		dir := fmt.Sprintf("/shares/h/d%d/", i)
		e.srv.write(dir+"x", []byte("x"))
		drips[dir] = dripListing(dir, release, started)
	}
	e.srv.write("/shares/l/ok.txt", []byte("ok"))
	e.srv.set(func(s *davServer) {
		s.intercept = func(w http.ResponseWriter, r *http.Request) bool {
			drip := drips[r.URL.Path]
			if drip == nil || r.Method != "PROPFIND" || r.Header.Get("Depth") != "1" {
				return false
			}
			n := now.Add(1)
			defer now.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			return drip(w, r)
		}
	})
	e.fs.SetEntries([]Entry{e.folder("s1", "H", "/shares/h", false), e.folder("s2", "L", "/shares/l", false)})
	if got := len(listNames(t, e.path("H"))); got != 6 {
		t.Fatalf("H lists %d folders", got)
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = os.ReadDir(e.path("H", fmt.Sprintf("d%d", i)))
		}()
	}
	// All six are in flight or waiting, two of them at the server.
	eventually(t, timeout/2, "six listings of H under way, two at the server", func() bool {
		return e.fs.dav.Listings("s1") == 6 && now.Load() == 2
	})
	if p := peak.Load(); p > 2 {
		t.Errorf("%d listings of one share in flight at once, want at most 2", p)
	}
	if got := joined(listNames(t, e.path("L"))); got != "ok.txt" {
		t.Errorf("L lists %q while H is slow", got)
	}
	err := within(t, 10*timeout, "the slow listings", func() error { wg.Wait(); return nil })
	if err != nil {
		t.Fatal(err)
	}
}
