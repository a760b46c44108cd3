package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	ocmfs "github.com/ocm-agent/ocm-agent/fuse"
	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
)

// The content cache and pins, served by goDAV (nginx lists no ETags):
// "re-read 1 GiB, cached" reads seq.bin
// through the mount after the cache holds it and the page cache was
// dropped (as root), against a read of the same file on the local disk
// after the same drop; "pin a folder" pins a folder of small files on a
// fresh cache against curl fetching the same files (a PROPFIND, then
// every file, pinParallel at once, into files on the same disk).

const (
	mCachedRead = "re-read 1 file, content cache, cold page cache (MB/s)"
	mPin        = "pin a folder (s)"
)

// pinParallel is how many files curl fetches at once: as many as the pin
// engine does (pinner.DefaultParallel).
const pinParallel = 6

// pinDir is the folder of sz.pinFiles files that is pinned.
const pinDir = "pinset"

// generatePinSet writes the folder pinned (once per work directory).
func generatePinSet(data string, sz sizes) error {
	dir := filepath.Join(data, pinDir)
	if ents, err := os.ReadDir(dir); err == nil && len(ents) == sz.pinFiles {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	block := make([]byte, sz.pinSize)
	for i := range sz.pinFiles {
		for j := range block {
			block[j] = byte(i*31 + j*7)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.bin", i)), block, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// dropCaches empties the kernel's page cache (root only).
func dropCaches() error {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
		return fmt.Errorf("drop the page cache (needs root): %w", err)
	}
	return nil
}

// ddRate reads path with dd and returns MB/s.
func ddRate(path string, size int64) (float64, error) {
	d, err := timeCmd("dd", "if="+path, "of=/dev/null", "bs=1M")
	return float64(size) / d.Seconds() / 1e6, err
}

// cacheWorkloads runs the cached re-read and the pin on our mount, each on
// a fresh cache, with the local-disk reference of the re-read.
func (b *bench) cacheWorkloads(ctx context.Context, mnt string) error {
	step := b.stepper("ocm-agent")
	if b.want("cached") {
		// A read-only share, as most are: the kernel may then read a
		// complete cached file from the cache itself (passthrough).
		m, err := b.mountCached(mnt, "BENCH_READONLY=1")
		if err != nil {
			return err
		}
		// The cache gets the file by a pin (the same blocks a first read
		// would store), then the page cache is emptied.
		_, err = m.command("pin seq.bin")
		if err == nil {
			// Taking turns, -reps times; the best of each is kept.
			local := b.stepper("local")
			for range b.c.reps {
				local(mCachedRead, func() (float64, error) {
					if err := dropCaches(); err != nil {
						return 0, err
					}
					return ddRate(filepath.Join(b.data, "seq.bin"), b.sz.seq)
				})
				step(mCachedRead, func() (float64, error) {
					if err := dropCaches(); err != nil {
						return 0, err
					}
					gets := b.dav.gets.Load()
					v, err := ddRate(filepath.Join(m.root, "seq.bin"), b.sz.seq)
					if n := b.dav.gets.Load() - gets; err == nil && n > 0 {
						err = fmt.Errorf("the re-read sent %d GETs to the server: not from the cache", n)
					}
					return v, err
				})
			}
		} else {
			b.res.note("ocm-agent", mCachedRead+": "+err.Error())
		}
		m.stop()
	}
	if b.want("pin") {
		// Each run on a fresh cache; the best of -reps is kept.
		for range b.c.reps {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m, err := b.mountCached(mnt)
			if err != nil {
				return err
			}
			b.warm("ocm-agent", mPin, warmFiles, b.served(pinDir)...)
			step(mPin, func() (float64, error) {
				out, err := m.command("pin " + pinDir)
				if err != nil {
					return 0, err
				}
				return strconv.ParseFloat(strings.Fields(out)[0], 64)
			})
			m.stop()
		}
	}
	return nil
}

// curlPin fetches the pinned folder with curl -reps times: its listing,
// then every file, pinParallel at once, into files.
func (b *bench) curlPin(step stepFunc) {
	for range b.c.reps {
		b.curlPinOnce(step)
	}
}

func (b *bench) curlPinOnce(step stepFunc) {
	out := filepath.Join(b.c.workdir, "curl-pin")
	_ = os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o700); err != nil {
		step(mPin, 0, err)
		return
	}
	defer os.RemoveAll(out)
	if err := warmFiles(b.served(pinDir)...); err != nil {
		step(mPin, 0, err)
		return
	}
	t0 := time.Now()
	_, _, err := b.curl([]string{fmt.Sprintf("url = %q\nrequest = \"PROPFIND\"\nheader = \"Depth: 1\"\noutput = \"/dev/null\"\n", b.dav.url("/"+pinDir+"/"))})
	if err == nil {
		var blocks []string
		for i := range b.sz.pinFiles {
			name := fmt.Sprintf("f%04d.bin", i)
			blocks = append(blocks, fmt.Sprintf("url = %q\noutput = %q\n", b.dav.url("/"+pinDir+"/"+name), filepath.Join(out, name)))
		}
		_, _, err = b.curl(blocks, "--parallel", "--parallel-max", strconv.Itoa(pinParallel))
	}
	step(mPin, time.Since(t0).Seconds(), err)
}

// cachedMount is our mount with a content cache of its own, and a line
// protocol on its standard input to pin.
type cachedMount struct {
	root  string
	stop  func()
	in    io.Writer
	lines *bufio.Scanner
}

// command sends one line and returns the answer ("ok ..." or "error ...").
func (m *cachedMount) command(line string) (string, error) {
	if _, err := fmt.Fprintln(m.in, line); err != nil {
		return "", err
	}
	if !m.lines.Scan() {
		return "", fmt.Errorf("the mount ended before answering %q", line)
	}
	ans := m.lines.Text()
	if rest, ok := strings.CutPrefix(ans, "ok "); ok {
		return rest, nil
	}
	return "", fmt.Errorf("%s: %s", line, ans)
}

// mountCached mounts ours with a fresh content cache (env: more of the
// mount process's environment).
func (b *bench) mountCached(mnt string, env ...string) (*cachedMount, error) {
	cacheDir := filepath.Join(b.c.workdir, "content-cache")
	_ = os.RemoveAll(cacheDir)
	cmd := exec.Command(os.Args[0], "-serve-mount", mnt, b.dav.url("/"), filepath.Join(b.c.workdir, "spool"))
	cmd.Env = append(append(os.Environ(), "BENCH_TOKEN="+b.token, "BENCH_CACHE="+cacheDir), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b.mountPID = cmd.Process.Pid
	m := &cachedMount{root: filepath.Join(mnt, "bench"), in: in, lines: bufio.NewScanner(out)}
	m.stop = func() {
		in.Close()
		terminate(cmd, 30*time.Second)
		unmount(mnt)
		_ = os.RemoveAll(cacheDir)
	}
	if err := waitLine(m.lines, "ready", 30*time.Second); err != nil {
		m.stop()
		return nil, fmt.Errorf("ocm-agent mount: %w", err)
	}
	return m, nil
}

// openBenchCache opens the content cache of a mount process (BENCH_CACHE),
// or returns nil.
func openBenchCache() (*contentcache.Cache, error) {
	dir := os.Getenv("BENCH_CACHE")
	if dir == "" {
		return nil, nil
	}
	return contentcache.Open(contentcache.Options{Dir: dir, MaxBytes: 8 << 30})
}

// serveCommands answers the bench's lines on standard input until it
// closes: "pin PATH" pins PATH of the share and answers "ok SECONDS FILES
// BYTES".
func serveCommands(f *ocmfs.FS, c *contentcache.Cache, tmp string) {
	pn := f.NewPinner(c, tmp)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch cmd {
		case "pin":
			t0 := time.Now()
			p, err := pn.Pin(context.Background(), "bench", arg)
			if err != nil {
				fmt.Printf("error %v\n", err)
				continue
			}
			if p.FilesDone != p.Files || p.Fetched != p.Bytes {
				fmt.Printf("error %d of %d files done, %d of %d bytes fetched (files without a strong ETag are not kept)\n", p.FilesDone, p.Files, p.Fetched, p.Bytes)
				continue
			}
			fmt.Printf("ok %.4f %d %d\n", time.Since(t0).Seconds(), p.Files, p.Bytes)
		default:
			fmt.Printf("error unknown command %q\n", cmd)
		}
	}
}

// mountOnly are the workloads that run on the plain mount (not the cache
// ones).
var mountOnly = []string{"ls", "find", "scale", "thumbs", "rand", "seq", "small", "copy"}

// wantMount reports whether any workload of the plain mount is to run.
func (b *bench) wantMount() bool {
	for _, w := range mountOnly {
		if b.want(w) {
			return true
		}
	}
	return false
}

// generateFor writes what the chosen workloads read: only seq.bin and the
// pinned folder when only the cache workloads run.
func generateFor(c config, data, local string, sz sizes) error {
	if c.only == nil || (&bench{c: c}).wantMount() {
		if err := generate(data, local, sz); err != nil {
			return err
		}
		return generatePinSet(data, sz)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	if st, err := os.Stat(filepath.Join(data, "seq.bin")); err != nil || st.Size() != sz.seq {
		block := make([]byte, 1<<20)
		if _, err := rand.Read(block); err != nil {
			return err
		}
		if err := bigFile(filepath.Join(data, "seq.bin"), sz.seq, block, 1); err != nil {
			return err
		}
	}
	return generatePinSet(data, sz)
}
