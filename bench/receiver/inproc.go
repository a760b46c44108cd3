package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/ocm-agent/ocm-agent/agent"
	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
)

// runProfile runs the agent inside this process (same code as the binary,
// without the CLI) so that the share load can be profiled. The load
// generator shares the process: its own functions show in the profile and
// are told apart by package.
func runProfile(o options, dir string) error {
	if err := os.MkdirAll(o.profile, 0o755); err != nil {
		return err
	}
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	cfg := config.Default()
	cfg.Listen = listen
	cfg.User, cfg.DisplayName = "bob", "Bob"
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Socket = filepath.Join(dir, "ocm-agent.sock")
	cfg.Secrets = "file"
	cfg.SecretsKeyFile = filepath.Join(dir, "config", "secrets.key")
	cfg.Mount = ""
	cfg.AllowInsecurePeers = true
	cfg.DNSServer = "127.0.0.1:9"
	cfg.RateLimit, cfg.RateBurst, cfg.MaxConcurrent = 1e6, 1e6, 1024
	cfg.MaxPendingPerPeer, cfg.MaxPending = 1e9, 1e9
	if err := cfg.Finish(); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	var w io.Writer = logf
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := agent.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- d.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	base := "http://" + listen
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(base + "/.well-known/ocm")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			return err
		}
	}

	sender, err := ocmtest.New(ocmtest.Options{User: "alice", DisplayName: "Alice"})
	if err != nil {
		return err
	}
	if err := sender.Start(); err != nil {
		return err
	}
	defer sender.Close()
	client := newLoadClient(o.workers)
	to := "bob@" + listen
	if err := warmUp(client, sender, base, to); err != nil {
		return err
	}
	if o.preload > 0 {
		// Profile the load with the store filled, where a cost that grows
		// with the shares stored shows.
		fmt.Printf("storing %d shares ...\n", o.preload)
		if _, err := fill(o.workers, o.preload, shareRequests(client, sender, base, to, "fill", ocmtest.SignRFC9421)); err != nil {
			return err
		}
	}
	cpu, err := os.Create(filepath.Join(o.profile, "cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	// Where requests wait (locks, channels, the database pool), not only
	// where they run.
	runtime.SetBlockProfileRate(int(time.Microsecond))
	runtime.SetMutexProfileFraction(5)
	r := runLoad("signed POST /ocm/shares (in-process)", o.workers, o.duration, shareRequests(client, sender, base, to, "prof", ocmtest.SignRFC9421))
	pprof.StopCPUProfile()
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
	printLoad(r)
	for _, name := range []string{"block", "mutex"} {
		f, err := os.Create(filepath.Join(o.profile, name+".pprof"))
		if err != nil {
			return err
		}
		err = pprof.Lookup(name).WriteTo(f, 0)
		f.Close()
		if err != nil {
			return err
		}
	}

	cpu2, err := os.Create(filepath.Join(o.profile, "cpu-discovery.pprof"))
	if err != nil {
		return err
	}
	defer cpu2.Close()
	if err := pprof.StartCPUProfile(cpu2); err != nil {
		return err
	}
	r = runLoad("GET /.well-known/ocm (in-process)", o.workers, o.duration, getRequests(client, base+"/.well-known/ocm"))
	pprof.StopCPUProfile()
	printLoad(r)

	runtime.GC()
	heap, err := os.Create(filepath.Join(o.profile, "heap.pprof"))
	if err != nil {
		return err
	}
	defer heap.Close()
	if err := pprof.WriteHeapProfile(heap); err != nil {
		return err
	}
	fmt.Printf("profiles in %s: go tool pprof -top %s\n", o.profile, filepath.Join(o.profile, "cpu.pprof"))
	return nil
}
