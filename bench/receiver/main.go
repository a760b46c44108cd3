package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/store"
)

type options struct {
	workers     int
	duration    time.Duration
	shares      int
	starts      int
	settle      time.Duration
	bin         string
	workdir     string
	keep        bool
	profile     string
	skipMount   bool
	skipStorage bool
	skipTmpfs   bool
	preload     int
}

func main() {
	var o options
	flag.IntVar(&o.workers, "workers", 16, "concurrent clients of the load generator")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "how long each load runs")
	flag.IntVar(&o.shares, "shares", 100, "accepted shares for the memory and start-up figures")
	flag.IntVar(&o.starts, "starts", 5, "start-ups measured (the median is reported)")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait before reading memory")
	flag.StringVar(&o.bin, "bin", "", "ocm-agent binary to measure (default: built from ./cmd/ocm-agent)")
	flag.StringVar(&o.workdir, "workdir", "", "work directory (default: a new temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, state)")
	flag.StringVar(&o.profile, "profile", "", "run the agent in this process and write CPU and heap profiles of the share load into this directory")
	flag.BoolVar(&o.skipMount, "skip-mount", false, "skip the memory and start-up figures that need FUSE")
	flag.BoolVar(&o.skipStorage, "skip-storage", false, "skip the storage cost figures")
	flag.BoolVar(&o.skipTmpfs, "skip-tmpfs", false, "skip the share load with the state on tmpfs (/dev/shm)")
	flag.IntVar(&o.preload, "stored", 10_000, "shares stored before the second share load on disk (0: no second load)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/receiver:", err)
		os.Exit(1)
	}
}

// row is one line of the results table.
type row struct{ figure, value, target, met string }

func run(o options) error {
	dir := o.workdir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "ocm-bench-receiver-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !o.keep && o.workdir == "" {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("work directory:", dir)
	}
	if o.profile != "" {
		return runProfile(o, dir)
	}
	bin := o.bin
	if bin == "" {
		fmt.Println("building ocm-agent ...")
		var err error
		if bin, err = buildAgent(dir); err != nil {
			return err
		}
	}
	fmt.Printf("machine: %d CPUs, %s/%s, %s; load: %d workers, %v per run\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), o.workers, o.duration)

	var rows []row
	add := func(figure, value, target, met string) { rows = append(rows, row{figure, value, target, met}) }

	// Endpoint throughput.
	sender, err := ocmtest.New(ocmtest.Options{User: "alice", DisplayName: "Alice"})
	if err != nil {
		return err
	}
	if err := sender.Start(); err != nil {
		return err
	}
	defer sender.Close()
	fmt.Println("state directory on disk:", dir)
	disk, err := measureReceiver(bin, filepath.Join(dir, "receiver"), sender, o, true)
	if err != nil {
		return err
	}
	sh, disc := disk.shares, disk.discovery
	non201 := sh.Requests - sh.Statuses[201]
	add("signed shares per second", fmt.Sprintf("%.0f", sh.RPS()), ">= 1000", met(sh.RPS() >= 1000))
	add("signed shares p50 latency", ms(sh.P50), "", "")
	add("signed shares p99 latency", ms(sh.P99), "< 20 ms", met(sh.P99 < 20*time.Millisecond))
	add("answers other than 201", fmt.Sprintf("%d of %d (+%d errors)", non201, sh.Requests, sh.Errors), "0", met(non201 == 0 && sh.Errors == 0))
	add("201s durable after SIGKILL and restart", fmt.Sprintf("%d of %d", disk.acked-disk.lost, disk.acked), "all", met(disk.lost == 0))
	if full := disk.full; full.Requests > 0 {
		ratio := full.RPS() / sh.RPS()
		add(fmt.Sprintf("signed shares per second with %d already stored", disk.stored), fmt.Sprintf("%.0f (%.0f%% of the empty store's)", full.RPS(), 100*ratio),
			"same as empty", met(ratio >= 0.9))
		add(fmt.Sprintf("signed shares p99 latency with %d already stored", disk.stored), ms(full.P99), "< 20 ms", met(full.P99 < 20*time.Millisecond))
	}
	add("discovery requests per second", fmt.Sprintf("%.0f", disc.RPS()), ">= 5000", met(disc.RPS() >= 5000))
	add("discovery p99 latency", ms(disc.P99), "", "")
	add("RSS idle (no mount, 1 share)", mib(disk.idle.RSS), "", "")
	add(fmt.Sprintf("RSS after the share load (peak %s)", mib(disk.after.HWM)), mib(disk.after.RSS), "", "")

	// The same on tmpfs, where fsync costs nothing: what is left is CPU.
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && !o.skipTmpfs {
		shm, err := os.MkdirTemp("/dev/shm", "ocm-bench-receiver-")
		if err == nil {
			defer os.RemoveAll(shm)
			fmt.Println("state directory on tmpfs:", shm)
			mem, err := measureReceiver(bin, shm, sender, o, false)
			if err != nil {
				return err
			}
			add("signed shares per second, state on tmpfs", fmt.Sprintf("%.0f", mem.shares.RPS()), "", "")
			add("signed shares p99 latency, state on tmpfs", ms(mem.shares.P99), "", "")
		}
	}

	if !o.skipStorage {
		fmt.Println("storage cost ...")
		st, err := measureStorage(filepath.Join(dir, "storage"))
		if err != nil {
			fmt.Println("  storage measurement failed:", err)
		} else {
			add("fsync of 4 KiB (state dir filesystem)", ms(st.Fsync), "", "")
			add("SQLite PutShare, one writer", ms(st.SQLiteSerial), "", "")
			add(fmt.Sprintf("SQLite PutShare, 16 writers at once: %.0f/s, slowest", st.SQLiteConc.PerSecond), ms(st.SQLiteConc.Max), "", "")
			add(fmt.Sprintf("SQLite PutShare, 16 writers taking turns: %.0f/s, slowest", st.SQLiteMutex.PerSecond), ms(st.SQLiteMutex.Max), "", "")
			add("SQLite insert, 16 rows per commit (per row)", ms(st.SQLiteBatch), "", "")
			for _, p := range st.FilePut {
				add(fmt.Sprintf("secrets=file Put at %d secrets (%d KiB file)", p.Secrets, p.Bytes>>10), ms(p.Per), "", "")
			}
		}
	}

	if !o.skipMount {
		if err := haveFUSE(); err != nil {
			add("memory and start-up with shares mounted", "skipped: no FUSE ("+err.Error()+")", "", "")
		} else {
			fmt.Printf("memory and start-up with %d shares mounted ...\n", o.shares)
			m, err := measureMount(bin, filepath.Join(dir, "mount"), o.shares, o.starts, o.settle)
			if err != nil {
				add("memory and start-up with shares mounted", "failed: "+err.Error(), "", "")
			} else {
				add("RSS idle, mount on, no shares", mib(m.IdleEmpty.RSS), "", "")
				add(fmt.Sprintf("RSS idle with %d shares (after restart)", m.Shares), mib(m.IdleShares.RSS), "< 40 MiB", met(m.IdleShares.RSS < 40<<10))
				add(fmt.Sprintf("RSS with %d shares after find (%d entries, %s)", m.Shares, m.FindEntries, ms(m.FindTook)),
					mib(m.AfterFind.RSS), "< 40 MiB", met(m.AfterFind.RSS < 40<<10))
				add(fmt.Sprintf("start-up to mount in mount table, %d shares (median of %d)", m.Shares, len(m.StartMounted)), ms(median(m.StartMounted)), "< 300 ms", met(median(m.StartMounted) < 300*time.Millisecond))
				add(fmt.Sprintf("start-up to endpoint answering, %d shares (median)", m.Shares), ms(median(m.StartEndpoint)), "< 300 ms", met(median(m.StartEndpoint) < 300*time.Millisecond))
				add(fmt.Sprintf("start-up to root listing %d shares (median)", m.Shares), ms(median(m.StartListed)), "< 300 ms", met(median(m.StartListed) < 300*time.Millisecond))
			}
		}
	}

	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget\tmet?")
	fmt.Fprintln(tw, "------\t-----\t------\t----")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.figure, r.value, r.target, r.met)
	}
	return tw.Flush()
}

// warmUp sends one signed share; it must be accepted.
func warmUp(client *http.Client, sender *ocmtest.Server, base, to string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, _, _, err := shareRequests(client, sender, base, to, "warm", ocmtest.SignRFC9421)(ctx, 0, 0)
	if err != nil {
		return fmt.Errorf("warm-up share: %w", err)
	}
	if st != 201 {
		return fmt.Errorf("the warm-up share was answered %d", st)
	}
	return nil
}

type receiverResult struct {
	shares, discovery loadResult
	full              loadResult // the share load with o.preload shares stored
	stored            int
	acked             int // 201s checked after the restart
	lost              int
	idle, after       memory
}

// measureReceiver runs the share load (and the discovery load when asked)
// against an agent with its state in dir, then kills it with SIGKILL,
// restarts it and counts the acknowledged shares that are missing.
func measureReceiver(bin, dir string, sender *ocmtest.Server, o options, withDiscovery bool) (receiverResult, error) {
	var r receiverResult
	a, err := newAgentProc(bin, dir, "",
		// Loopback is one client address and one sender: lift their limits
		// for the measurement.
		"--rate-limit", "1000000", "--rate-burst", "1000000", "--max-concurrent", "1024",
		"--max-pending-per-server", "1000000000", "--max-pending", "1000000000")
	if err != nil {
		return r, err
	}
	if err := a.start(); err != nil {
		return r, err
	}
	defer a.stop()
	if _, err := a.waitEndpoint(30 * time.Second); err != nil {
		return r, err
	}
	if err := a.waitControl(10 * time.Second); err != nil {
		return r, err
	}
	client := newLoadClient(o.workers)
	defer client.CloseIdleConnections()
	// The first share makes the agent fetch the sender's discovery document
	// and JWKS; later ones use its cache.
	if err := warmUp(client, sender, a.base(), a.address()); err != nil {
		return r, fmt.Errorf("%w; see %s", err, a.logPath())
	}
	r.idle, _ = a.memory()

	fmt.Println("signed POST /ocm/shares ...")
	r.shares = runLoad("signed POST /ocm/shares", o.workers, o.duration, shareRequests(client, sender, a.base(), a.address(), "load", ocmtest.SignRFC9421))
	r.after, _ = a.memory()
	printLoad(r.shares)
	acked := r.shares.Acked
	if withDiscovery && o.preload > 0 {
		// Fill the store up, then measure again: the cost of a share must
		// not grow with the shares already there. (A fast first load may
		// have stored that many already.)
		more := max(0, o.preload-len(acked)-1)
		fmt.Printf("storing %d more shares ...\n", more)
		filled, err := fill(o.workers, more, shareRequests(client, sender, a.base(), a.address(), "fill", ocmtest.SignRFC9421))
		if err != nil {
			return r, fmt.Errorf("filling the store: %w", err)
		}
		acked = append(acked, filled...)
		r.stored = len(acked) + 1
		fmt.Printf("signed POST /ocm/shares with %d stored ...\n", r.stored)
		r.full = runLoad("signed POST /ocm/shares, store filled", o.workers, o.duration, shareRequests(client, sender, a.base(), a.address(), "full", ocmtest.SignRFC9421))
		printLoad(r.full)
		acked = append(acked, r.full.Acked...)
	}

	// Durability: SIGKILL, restart, and look for every acknowledged share.
	a.cmd.Process.Kill()
	<-a.done
	if err := a.start(); err != nil {
		return r, err
	}
	if _, err := a.waitEndpoint(30 * time.Second); err != nil {
		return r, err
	}
	if err := a.waitControl(10 * time.Second); err != nil {
		return r, err
	}
	// Read from the database the restarted agent opened: the control
	// socket's answer is capped at 16 MiB (about 25,000 shares).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	listed, err := storedShares(ctx, a.databasePath())
	cancel()
	if err != nil {
		return r, fmt.Errorf("list shares after the restart: %w", err)
	}
	present := make(map[string]bool, len(listed))
	for _, s := range listed {
		present[s.ProviderID] = true
	}
	r.acked = len(acked)
	for _, id := range acked {
		if !present[id] {
			r.lost++
		}
	}
	if withDiscovery {
		fmt.Println("GET /.well-known/ocm ...")
		client.CloseIdleConnections()
		r.discovery = runLoad("GET /.well-known/ocm", o.workers, o.duration, getRequests(client, a.base()+"/.well-known/ocm"))
		printLoad(r.discovery)
	}
	return r, nil
}

// storedShares reads every share of the database at path (the agent
// holding it open: WAL lets readers in).
func storedShares(ctx context.Context, path string) ([]store.Share, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err // store.Open would make a new one
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.Shares(ctx)
}

func printLoad(r loadResult) {
	var st []string
	for code, n := range r.Statuses {
		st = append(st, fmt.Sprintf("%d×%d", n, code))
	}
	fmt.Printf("  %s: %d requests in %.1fs = %.0f/s, p50 %s, p99 %s, max %s, statuses %s, errors %d\n",
		r.Name, r.Requests, r.Elapsed.Seconds(), r.RPS(), ms(r.P50), ms(r.P99), ms(r.Max), strings.Join(st, " "), r.Errors)
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
