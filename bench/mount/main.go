package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	ocmfs "github.com/ocm-agent/ocm-agent/fuse"
)

type config struct {
	scale   float64
	systems []string
	workdir string
	keep    bool
	only    map[string]bool
	reps    int
}

// sizes of the generated tree at scale 1.
type sizes struct {
	seq, rand      int64 // bytes
	thumbs         int   // files
	thumbSize      int64 // bytes each
	wide           int   // entries in one folder
	treeDirs       int   // folders for find
	treePerDir     int   // files per folder
	small          int   // small files written
	smallSize      int64
	copyIn         int64
	randomReads    int
	thumbReadBytes int64
	lsScale        []int // entries of the folders listed cold to see how listing grows
	pinFiles       int   // files of the folder pinned
	pinSize        int64 // bytes each
}

func sizesFor(scale float64) sizes {
	sc := func(n float64, min float64) float64 { return max(n*scale, min) }
	return sizes{
		seq:            int64(sc(1<<30, 16<<20)),
		rand:           int64(sc(1<<30, 16<<20)),
		thumbs:         100,
		thumbSize:      int64(sc(16<<20, 1<<20)),
		wide:           int(sc(10000, 500)),
		treeDirs:       int(sc(200, 10)),
		treePerDir:     100,
		small:          int(sc(1000, 50)),
		smallSize:      4 << 10,
		copyIn:         int64(sc(1<<30, 16<<20)),
		randomReads:    300,
		thumbReadBytes: 64 << 10,
		lsScale:        []int{int(sc(1000, 100)), int(sc(10_000, 300)), int(sc(100_000, 1000))},
		pinFiles:       1000,
		pinSize:        int64(sc(64<<10, 4<<10)),
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-serve-mount" {
		os.Exit(serveMount(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "-worker" {
		os.Exit(worker(os.Args[2:]))
	}
	var c config
	var systems string
	flag.Float64Var(&c.scale, "scale", 1, "size of the data set (1 = 1 GiB files, 10,000-entry folder, ...)")
	flag.StringVar(&systems, "systems", "curl,ocm-agent,rclone-off,rclone-mount2", "what to measure, comma-separated (also: rclone-full, davfs2)")
	flag.StringVar(&c.workdir, "workdir", "", "directory for the data and mounts (default: a new temporary directory)")
	flag.IntVar(&c.reps, "reps", 3, "runs of the short metadata workloads (ls, find), each on a fresh mount; the best is kept")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (and reuse its data next time with -workdir)")
	only := flag.String("only", "", "run only these workloads, comma-separated: ls,find,scale,thumbs,rand,seq,small,copy,cached,pin")
	flag.Parse()
	if *only != "" {
		c.only = map[string]bool{}
		for _, w := range strings.Split(*only, ",") {
			c.only[strings.TrimSpace(w)] = true
		}
	}
	c.systems = strings.Split(systems, ",")
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func run(c config) error {
	if c.workdir == "" {
		d, err := os.MkdirTemp("", "ocm-bench-")
		if err != nil {
			return err
		}
		c.workdir = d
	}
	if !c.keep {
		defer os.RemoveAll(c.workdir)
	}
	sz := sizesFor(c.scale)
	data := filepath.Join(c.workdir, "data")
	local := filepath.Join(c.workdir, "local")
	fmt.Fprintf(os.Stderr, "generating the tree in %s (scale %g)...\n", data, c.scale)
	if err := generateFor(c, data, local, sz); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	token := randomToken()
	ng, err := startNginx(filepath.Join(c.workdir, "nginx"), data, token, "bench")
	if err != nil {
		return err
	}
	defer ng.stop()

	b := &bench{c: c, sz: sz, ng: ng, token: token, data: data, local: local, res: newResults()}
	if b.want("cached") || b.want("pin") {
		if b.dav, err = startGoDAV(data, token); err != nil {
			return err
		}
		defer b.dav.stop()
	}
	if b.want("ls") {
		b.localWorkloads()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, name := range c.systems {
		if ctx.Err() != nil {
			break
		}
		name = strings.TrimSpace(name)
		fmt.Fprintf(os.Stderr, "== %s\n", name)
		if err := b.runSystem(ctx, name); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			b.res.note(name, err.Error())
		}
	}
	b.res.print(os.Stdout, c, sz)
	return nil
}

// want reports whether workload w is to run.
func (b *bench) want(w string) bool { return b.c.only == nil || b.c.only[w] }

type bench struct {
	c     config
	sz    sizes
	ng    *nginxServer
	token string
	data  string
	local string
	res   *results
	dav   *goDAV // for the cache workloads (cache.go)
	// mountPID is the process serving the ocm-agent mount, for its memory.
	mountPID int
}

// serveMount is the ocm-agent mount in its own process (as the agent runs it):
// -serve-mount DIR URL SPOOL, the bearer token in BENCH_TOKEN.
func serveMount(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: -serve-mount DIR URL SPOOL")
		return 2
	}
	level := slog.LevelWarn
	if os.Getenv("BENCH_DEBUG") != "" { // every FUSE operation, with READ offsets and sizes
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cache, err := openBenchCache()
	if err != nil {
		fmt.Fprintln(os.Stderr, "content cache:", err)
		return 1
	}
	o := ocmfs.Options{Dir: args[0], SpoolDir: args[2], Logger: log, Cache: cache}
	if os.Getenv("BENCH_DIRECT_READS") != "" { // as mount-direct-reads
		o.DirectReadMin = ocmfs.DirectReadSize
	}
	if kb, err := strconv.ParseInt(os.Getenv("BENCH_READ_AHEAD_KB"), 10, 64); err == nil { // as root
		o.KernelReadAhead = kb << 10
	}
	f, err := ocmfs.Mount(context.Background(), o, staticAuth(os.Getenv("BENCH_TOKEN")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "mount:", err)
		return 1
	}
	// BENCH_READONLY: a share that grants reading only (as most do).
	writable := os.Getenv("BENCH_READONLY") == ""
	f.SetEntries([]ocmfs.Entry{{ID: "bench", Name: "bench", Origin: "bench@127.0.0.1", IsDir: true, URL: args[1], Writable: writable}})
	if cache != nil {
		defer cache.Close()
		go serveCommands(f, cache, args[2])
	}
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		// One file per mount process: each rep of a workload mounts afresh.
		if pf, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid())); err == nil {
			_ = pprof.StartCPUProfile(pf)
			defer func() { pprof.StopCPUProfile(); pf.Close() }()
		}
	}
	if path := os.Getenv("BENCH_MEMPROFILE"); path != "" {
		// A heap profile each time SIGUSR1 comes, for the memory per entry.
		usr := make(chan os.Signal, 1)
		signal.Notify(usr, syscall.SIGUSR1)
		go func() {
			for range usr {
				// Written aside and renamed: a reader sees it whole.
				if pf, err := os.Create(path + ".tmp"); err == nil {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms) // before the GC: what the listing left
					fmt.Fprintf(os.Stderr, "mount memory: heap in use %d, idle %d, released %d, goal %d, stacks %d, sys %d\n",
						ms.HeapInuse, ms.HeapIdle, ms.HeapReleased, ms.NextGC, ms.StackInuse, ms.Sys)
					runtime.GC()
					_ = pprof.WriteHeapProfile(pf)
					if pf.Close() == nil {
						_ = os.Rename(path+".tmp", path)
					}
				}
			}
		}()
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if err := f.Unmount(); err != nil {
		fmt.Fprintln(os.Stderr, "unmount:", err)
		return 1
	}
	return 0
}

type staticAuth string

func (a staticAuth) Authorize(_ context.Context, _ string, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+string(a))
	return nil
}

func (a staticAuth) Invalidate(string) {}

// waitLine waits for a line on r (bounded).
func waitLine(sc *bufio.Scanner, want string, d time.Duration) error {
	got := make(chan error, 1)
	go func() {
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == want {
				got <- nil
				return
			}
		}
		got <- fmt.Errorf("exited before %q", want)
	}()
	select {
	case err := <-got:
		return err
	case <-time.After(d):
		return fmt.Errorf("no %q within %v", want, d)
	}
}

// mounted reports whether dir is a mount point.
func mounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

func unmount(dir string) {
	for _, prog := range [][]string{{"fusermount3", "-u", dir}, {"umount", dir}, {"fusermount3", "-u", "-z", dir}, {"umount", "-l", dir}} {
		if !mounted(dir) {
			return
		}
		_ = exec.Command(prog[0], prog[1:]...).Run()
		time.Sleep(100 * time.Millisecond)
	}
}
