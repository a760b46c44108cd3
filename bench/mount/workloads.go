package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Metrics, in the order printed.
const (
	mSeq       = "seq read 1 file (MB/s)"
	mRandP50   = "random 4 KiB read p50 (ms)"
	mRandP99   = "random 4 KiB read p99 (ms)"
	mThumbTime = "thumbnails: 64 KiB of each file (s)"
	mThumbX    = "thumbnails: bytes sent / bytes asked"
	mLsCold    = "ls -l big folder, cold (s)"
	mLsWarm    = "ls -l big folder, warm (s)"
	mFind      = "walk + stat of the tree (s)"
	mRSSEntry  = "RSS per cached entry (bytes)"
	mSmallProg = "small files written: program (s)"
	mSmallSrv  = "small files written: on server (s)"
	mCopyProg  = "copy in: program (MB/s)"
	mCopySrv   = "copy in: on server (MB/s)"
)

var metricOrder = []struct {
	name   string
	higher bool // higher is better
}{
	{mSeq, true}, {mRandP50, false}, {mRandP99, false}, {mThumbTime, false}, {mThumbX, false},
	{mLsCold, false}, {mLsWarm, false}, {mFind, false},
	{mSmallProg, false}, {mSmallSrv, false}, {mCopyProg, true}, {mCopySrv, true}, {mRSSEntry, false},
	{mCachedRead, true}, {mPin, false},
}

// mLsScale is the cold ls -l of the folder of n entries.
func mLsScale(n int) string { return fmt.Sprintf("ls -l cold, %d entries (s)", n) }

// localWorkloads measures the local disk where it is the reference: ls -l
// of the served folder itself, warm.
func (b *bench) localWorkloads() {
	step := b.stepper("local")
	for range b.c.reps {
		step(mLsWarm, func() (float64, error) {
			dir := filepath.Join(b.data, "wide")
			if _, err := timeCmd("ls", "-l", dir); err != nil {
				return 0, err
			}
			d, err := timeCmd("ls", "-l", dir)
			return d.Seconds(), err
		})
	}
}

// scaleWorkloads lists the folders of growing size cold, on a fresh mount:
// the largest first, with the mount's RSS before and after (the memory
// per cached entry) when the mount is ours.
func (b *bench) scaleWorkloads(sys, root string) {
	step := b.stepper(sys)
	ns := b.sz.lsScale
	for i := len(ns) - 1; i >= 0; i-- {
		n := ns[i]
		var before int64
		if sys == "ocm-agent" && i == len(ns)-1 {
			runtime.GC()
			before = rssBytes(b.mountPID)
		}
		step(mLsScale(n), func() (float64, error) {
			d, err := timeCmd("ls", "-l", filepath.Join(root, scaleDir(n)))
			return d.Seconds(), err
		})
		if before > 0 {
			if after := rssBytes(b.mountPID); after > 0 {
				step(mRSSEntry, func() (float64, error) { return float64(after-before) / float64(n), nil })
			}
			heapProfile(b.mountPID)
		}
	}
}

// heapProfile has the mount process write its heap profile (to
// BENCH_MEMPROFILE, on SIGUSR1) and waits, a bounded time, until it has.
func heapProfile(pid int) {
	path := os.Getenv("BENCH_MEMPROFILE")
	if path == "" || pid <= 0 {
		return
	}
	_ = os.Remove(path)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
}

// rssBytes is the resident memory of process pid (0 when unknown).
func rssBytes(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib << 10
		}
	}
	return 0
}

// timeCmd runs a command (output discarded) and returns its wall time.
func timeCmd(name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return d, nil
}

func (b *bench) self(args ...string) *exec.Cmd {
	return exec.Command(os.Args[0], append([]string{"-worker"}, args...)...)
}

// onServer waits until the served tree holds want bytes in path (a file) or
// n files of size bytes (a directory), bounded.
func waitOnServer(check func() bool, d time.Duration) error {
	deadline := time.Now().Add(d)
	for !check() {
		if time.Now().After(deadline) {
			return fmt.Errorf("data not on the server within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func dirComplete(dir string, n int, size int64) func() bool {
	return func() bool {
		ents, err := os.ReadDir(dir)
		if err != nil || len(ents) < n {
			return false
		}
		for _, e := range ents {
			st, err := e.Info()
			if err != nil || st.Size() != size {
				return false
			}
		}
		return true
	}
}

func fileComplete(path string, size int64) func() bool {
	return func() bool {
		st, err := os.Stat(path)
		return err == nil && st.Size() == size
	}
}

// stepper runs one measurement and records it (the best one, when repeated).
func (b *bench) stepper(sys string) func(metric string, fn func() (float64, error)) {
	return func(metric string, fn func() (float64, error)) {
		v, err := fn()
		if err != nil {
			fmt.Fprintf(os.Stderr, "  %s: %v\n", metric, err)
			b.res.note(sys, metric+": "+err.Error())
			return
		}
		fmt.Fprintf(os.Stderr, "  %-40s %10.4g\n", metric, v)
		b.res.setBest(metric, sys, v)
	}
}

// metadataWorkloads: ls -l of the big folder cold then warm, find over the
// tree (cold).
func (b *bench) metadataWorkloads(sys, root string) error {
	step, sz := b.stepper(sys), b.sz
	b.warm(sys, mLsCold, warmTree, b.listedDirs()...)
	if b.want("ls") {
		step(mLsCold, func() (float64, error) {
			d, err := timeCmd("ls", "-l", filepath.Join(root, "wide"))
			return d.Seconds(), err
		})
		step(mLsWarm, func() (float64, error) {
			d, err := timeCmd("ls", "-l", filepath.Join(root, "wide"))
			return d.Seconds(), err
		})
	}
	if b.want("scale") {
		b.scaleWorkloads(sys, root)
	}
	if b.want("find") {
		step(mFind, func() (float64, error) {
			// -printf %s stats every file, as a file manager or a backup
			// tool does.
			cmd := exec.Command("find", filepath.Join(root, "tree"), "-type", "f", "-printf", "%s\n")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			t0 := time.Now()
			out, err := cmd.Output()
			d := time.Since(t0)
			if err != nil {
				return 0, fmt.Errorf("find: %v: %s", err, firstLine(stderr.String()))
			}
			if n := bytes.Count(out, []byte("\n")); n != sz.treeDirs*sz.treePerDir {
				return 0, fmt.Errorf("find saw %d files, want %d", n, sz.treeDirs*sz.treePerDir)
			}
			return d.Seconds(), nil
		})
	}
	return nil
}

func (b *bench) mountWorkloads(sys, root string) error {
	step, sz := b.stepper(sys), b.sz
	if _, err := os.Stat(filepath.Join(root, "seq.bin")); err != nil {
		return fmt.Errorf("mount not usable: %w", err)
	}
	when := func(w string, fn func()) {
		if b.want(w) {
			fn()
		}
	}
	var thumbBytes int64
	when("thumbs", func() {
		b.warm(sys, mThumbTime, warmFiles, b.served("thumbs")...)
		step(mThumbTime, func() (float64, error) {
			mark := b.ng.logMark()
			cmd := b.self("thumbs", filepath.Join(root, "thumbs"), strconv.Itoa(sz.thumbs), strconv.FormatInt(sz.thumbReadBytes, 10))
			t0 := time.Now()
			out, err := cmd.CombinedOutput()
			d := time.Since(t0)
			if err != nil {
				return 0, fmt.Errorf("%v: %s", err, out)
			}
			time.Sleep(300 * time.Millisecond) // read-ahead still in flight is counted too
			thumbBytes = b.ng.logStats(mark)["GET"][1]
			return d.Seconds(), nil
		})
		step(mThumbX, func() (float64, error) {
			return float64(thumbBytes) / float64(int64(sz.thumbs)*sz.thumbReadBytes), nil
		})
	})
	var lat []float64
	when("rand", func() {
		b.warm(sys, mRandP50, warmFiles, b.served("rand.bin")...)
		step(mRandP50, func() (float64, error) {
			out, err := b.self("rand", filepath.Join(root, "rand.bin"), strconv.FormatInt(sz.rand, 10), strconv.Itoa(sz.randomReads), "42").Output()
			if err != nil {
				return 0, err
			}
			lat = parseFloats(out)
			return percentile(lat, 0.5) * 1000, nil
		})
		step(mRandP99, func() (float64, error) { return percentile(lat, 0.99) * 1000, nil })
	})
	when("seq", func() {
		b.warm(sys, mSeq, warmFiles, b.served("seq.bin")...)
		step(mSeq, func() (float64, error) {
			d, err := timeCmd("dd", "if="+filepath.Join(root, "seq.bin"), "of=/dev/null", "bs=1M")
			return float64(sz.seq) / d.Seconds() / 1e6, err
		})
	})
	up := filepath.Join("upload", sys)
	// What an earlier run uploaded must not count as already there.
	_ = os.RemoveAll(filepath.Join(b.data, up))
	_ = os.Remove(filepath.Join(b.data, up+"-big.bin"))
	var smallStart time.Time
	when("small", func() {
		step(mSmallProg, func() (float64, error) {
			smallStart = time.Now()
			out, err := b.self("write", filepath.Join(root, up, "small"), strconv.Itoa(sz.small), strconv.FormatInt(sz.smallSize, 10)).CombinedOutput()
			if err != nil {
				return 0, fmt.Errorf("%v: %s", err, out)
			}
			return time.Since(smallStart).Seconds(), nil
		})
		step(mSmallSrv, func() (float64, error) {
			err := waitOnServer(dirComplete(filepath.Join(b.data, up, "small"), sz.small, sz.smallSize), 10*time.Minute)
			return time.Since(smallStart).Seconds(), err
		})
	})
	var copyStart time.Time
	when("copy", func() {
		b.warm(sys, mCopyProg, warmFiles, filepath.Join(b.local, "big.bin"))
		step(mCopyProg, func() (float64, error) {
			copyStart = time.Now()
			_, err := timeCmd("dd", "if="+filepath.Join(b.local, "big.bin"), "of="+filepath.Join(root, up+"-big.bin"), "bs=1M")
			return float64(sz.copyIn) / time.Since(copyStart).Seconds() / 1e6, err
		})
		step(mCopySrv, func() (float64, error) {
			err := waitOnServer(fileComplete(filepath.Join(b.data, up+"-big.bin"), sz.copyIn), 10*time.Minute)
			return float64(sz.copyIn) / time.Since(copyStart).Seconds() / 1e6, err
		})
	})
	return nil
}

func parseFloats(b []byte) []float64 {
	var out []float64
	for _, f := range strings.Fields(string(b)) {
		if v, err := strconv.ParseFloat(f, 64); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// curl runs curl with a config file (0600; the token never on the command
// line) made of blocks, one transfer each.
func (b *bench) curl(blocks []string, extra ...string) ([]byte, time.Duration, error) {
	f, err := os.CreateTemp(b.c.workdir, "curl-*.conf")
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(f.Name())
	auth := fmt.Sprintf("header = \"Authorization: Bearer %s\"\n", b.token)
	for i, bl := range blocks {
		if i > 0 {
			fmt.Fprintln(f, "next")
		}
		fmt.Fprint(f, auth, bl)
	}
	if err := f.Close(); err != nil {
		return nil, 0, err
	}
	cmd := exec.Command("curl", append([]string{"-sS", "--fail", "-K", f.Name()}, extra...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	d := time.Since(t0)
	if err != nil {
		return out, d, fmt.Errorf("curl: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, d, nil
}

func (b *bench) curlWorkloads(sys string) error {
	sz := b.sz
	st := b.stepper(sys)
	var step stepFunc = func(metric string, v float64, err error) {
		st(metric, func() (float64, error) { return v, err })
	}
	propfind := func(p string) string {
		return fmt.Sprintf("url = %q\nrequest = \"PROPFIND\"\nheader = \"Depth: 1\"\noutput = \"/dev/null\"\n", b.ng.url(p))
	}
	for range b.c.reps {
		if b.want("ls") || b.want("find") || b.want("scale") {
			b.warm(sys, mLsCold, warmTree, b.listedDirs()...)
		}
		if b.want("ls") {
			_, d, err := b.curl([]string{propfind("/wide/")})
			step(mLsCold, d.Seconds(), err)
			_, d, err = b.curl([]string{propfind("/wide/")})
			step(mLsWarm, d.Seconds(), err)
		}
		if b.want("scale") {
			for _, n := range sz.lsScale {
				_, d, err := b.curl([]string{propfind("/" + scaleDir(n) + "/")})
				step(mLsScale(n), d.Seconds(), err)
			}
		}
		if b.want("find") {
			// The curl crawl: the root folder, then every folder it
			// lists, 8 at once.
			t0 := time.Now()
			_, _, err := b.curl([]string{propfind("/tree/")})
			if err == nil {
				var blocks []string
				for i := range sz.treeDirs {
					blocks = append(blocks, propfind(fmt.Sprintf("/tree/d%03d/", i)))
				}
				_, _, err = b.curl(blocks, "--parallel", "--parallel-max", "8")
			}
			step(mFind, time.Since(t0).Seconds(), err)
		}
	}
	if b.want("thumbs") {
		b.warm(sys, mThumbTime, warmFiles, b.served("thumbs")...)
		b.curlThumbs(step)
	}
	if b.want("rand") {
		b.warm(sys, mRandP50, warmFiles, b.served("rand.bin")...)
		b.curlRand(step)
	}
	if b.want("seq") {
		b.warm(sys, mSeq, warmFiles, b.served("seq.bin")...)
		_, d, err := b.curl([]string{fmt.Sprintf("url = %q\noutput = \"/dev/null\"\n", b.ng.url("/seq.bin"))})
		step(mSeq, float64(sz.seq)/d.Seconds()/1e6, err)
	}
	if b.want("pin") {
		b.curlPin(step)
	}
	if b.want("small") {
		if err := b.curlSmall(sys, step); err != nil {
			return err
		}
	}
	if b.want("copy") {
		b.warm(sys, mCopyProg, warmFiles, filepath.Join(b.local, "big.bin"))
		_, d, err := b.curl([]string{fmt.Sprintf("url = %q\nupload-file = %q\noutput = \"/dev/null\"\n", b.ng.url("/upload/"+sys+"-big.bin"), filepath.Join(b.local, "big.bin"))})
		step(mCopyProg, float64(sz.copyIn)/d.Seconds()/1e6, err)
		step(mCopySrv, float64(sz.copyIn)/d.Seconds()/1e6, err)
	}
	return nil
}

type stepFunc func(metric string, v float64, err error)

func (b *bench) curlThumbs(step stepFunc) {
	sz := b.sz
	var blocks []string
	for i := range sz.thumbs {
		blocks = append(blocks, fmt.Sprintf("url = %q\nrange = \"0-%d\"\noutput = \"/dev/null\"\n", b.ng.url(fmt.Sprintf("/thumbs/t%03d.jpg", i)), sz.thumbReadBytes-1))
	}
	mark := b.ng.logMark()
	_, d, err := b.curl(blocks)
	step(mThumbTime, d.Seconds(), err)
	time.Sleep(300 * time.Millisecond)
	step(mThumbX, float64(b.ng.logStats(mark)["GET"][1])/float64(int64(sz.thumbs)*sz.thumbReadBytes), nil)
}

func (b *bench) curlRand(step stepFunc) {
	sz := b.sz
	var blocks []string
	for _, off := range randOffsets(sz.rand, sz.randomReads, 42) {
		blocks = append(blocks, fmt.Sprintf("url = %q\nrange = \"%d-%d\"\noutput = \"/dev/null\"\nwrite-out = \"%%{time_total}\\n\"\n", b.ng.url("/rand.bin"), off, off+4095))
	}
	out, _, err := b.curl(blocks)
	lat := parseFloats(out)
	step(mRandP50, percentile(lat, 0.5)*1000, err)
	step(mRandP99, percentile(lat, 0.99)*1000, err)
}

func (b *bench) curlSmall(sys string, step stepFunc) error {
	sz := b.sz
	_ = os.RemoveAll(filepath.Join(b.data, "upload", sys))
	_ = os.Remove(filepath.Join(b.data, "upload", sys+"-big.bin"))
	small := filepath.Join(b.c.workdir, "small.bin")
	data := make([]byte, sz.smallSize)
	if err := os.WriteFile(small, data, 0o600); err != nil {
		return err
	}
	var blocks []string
	for i := range sz.small {
		blocks = append(blocks, fmt.Sprintf("url = %q\nupload-file = %q\noutput = \"/dev/null\"\n", b.ng.url(fmt.Sprintf("/upload/%s/small/f%04d.bin", sys, i)), small))
	}
	_, d, err := b.curl(blocks)
	step(mSmallProg, d.Seconds(), err)
	step(mSmallSrv, d.Seconds(), err)
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
