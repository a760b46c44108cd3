package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
)

// mountResult is memory and start-up with shares mounted.
type mountResult struct {
	Shares        int
	IdleEmpty     memory // fresh agent, no shares
	IdleShares    memory // restarted with the accepted shares, before any access
	AfterFind     memory // with the shares mounted, after find over all of them
	FindEntries   int
	FindTook      time.Duration
	StartMounted  []time.Duration // exec -> the mount is in the mount table
	StartEndpoint []time.Duration // exec -> endpoint answers
	StartListed   []time.Duration // exec -> the mount's root lists every share
}

func haveFUSE() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return err
	}
	_, err := exec.LookPath("fusermount3")
	return err
}

// measureMount runs the memory and start-up measurements with n shares.
func measureMount(bin, dir string, n, starts int, settle time.Duration) (mountResult, error) {
	r := mountResult{Shares: n}
	peerDir := filepath.Join(dir, "peer")
	for i := 0; i < n; i++ {
		d := filepath.Join(peerDir, fmt.Sprintf("share-%03d", i), "sub")
		if err := os.MkdirAll(d, 0o755); err != nil {
			return r, err
		}
		for j, p := range []string{"../readme.txt", "../data.csv", "../notes.md", "a.txt", "b.txt"} {
			if err := os.WriteFile(filepath.Join(d, p), bytes.Repeat([]byte{'a' + byte(j)}, 512), 0o644); err != nil {
				return r, err
			}
		}
	}
	peer, err := ocmtest.New(ocmtest.Options{User: "alice", DisplayName: "Alice", Dir: peerDir})
	if err != nil {
		return r, err
	}
	if err := peer.Start(); err != nil {
		return r, err
	}
	defer peer.Close()

	mnt := filepath.Join(dir, "mnt")
	// The shares all come from loopback at once, from one sender: lift the
	// per-client limit and the caps on pending shares.
	a, err := newAgentProc(bin, filepath.Join(dir, "agent"), mnt, "--rate-limit", "1000000", "--rate-burst", "1000000",
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
	time.Sleep(settle)
	if r.IdleEmpty, err = a.memory(); err != nil {
		return r, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := 0; i < n; i++ {
		if _, err := peer.CreateShare(ctx, ocmtest.ShareRequest{To: a.address(), ReceiverBase: a.base(),
			Path: fmt.Sprintf("share-%03d", i)}); err != nil {
			return r, fmt.Errorf("share %d: %w", i, err)
		}
	}
	c := a.control()
	shares, err := c.Shares(ctx, false)
	if err != nil {
		return r, err
	}
	for _, s := range shares {
		if _, err := c.ShareAction(ctx, s.ID, "accept"); err != nil {
			return r, fmt.Errorf("accept %s: %w", s.ID, err)
		}
	}
	if !waitEntries(mnt, n, 30*time.Second) {
		return r, fmt.Errorf("the mount does not show %d shares", n)
	}
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "find", mnt).Output()
	r.FindTook = time.Since(t0)
	if err != nil {
		return r, fmt.Errorf("find over the mount: %w", err)
	}
	r.FindEntries = bytes.Count(out, []byte{'\n'})
	time.Sleep(settle)
	if r.AfterFind, err = a.memory(); err != nil {
		return r, err
	}
	a.stop()

	for i := 0; i < starts; i++ {
		if err := a.start(); err != nil {
			return r, err
		}
		mt, ep, ls, err := waitStarted(a, mnt, n, 30*time.Second)
		if err != nil {
			return r, err
		}
		r.StartMounted = append(r.StartMounted, mt)
		r.StartEndpoint = append(r.StartEndpoint, ep)
		r.StartListed = append(r.StartListed, ls)
		if i == 0 {
			time.Sleep(settle)
			if r.IdleShares, err = a.memory(); err != nil {
				return r, err
			}
		}
		a.stop()
	}
	return r, nil
}

// waitStarted measures, from the exec on, when the mount appears in the
// mount table and when the endpoint answers; then, once both are there,
// when the mount's root lists the n shares. Nothing touches the mount
// before it is in the mount table and the endpoint answers: a listing
// during start-up makes the kernel look up every share (see the report).
func waitStarted(a *agentProc, mnt string, n int, limit time.Duration) (mounted, endpoint, listed time.Duration, err error) {
	epc := make(chan error, 1)
	go func() {
		d, err := a.waitEndpoint(limit)
		endpoint = d
		epc <- err
	}()
	deadline := a.started.Add(limit)
	for ; time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if isMounted(mnt) {
			mounted = time.Since(a.started)
			break
		}
	}
	if err := <-epc; err != nil {
		return 0, 0, 0, err
	}
	if mounted == 0 {
		return 0, 0, 0, errors.New("the shares folder was not mounted")
	}
	for ; time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if ents, err := os.ReadDir(mnt); err == nil && len(ents) >= n {
			return mounted, endpoint, time.Since(a.started), nil
		}
	}
	return 0, 0, 0, errors.New("the mount did not list the shares")
}

// isMounted reports whether dir is a mount point in /proc/self/mountinfo.
func isMounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) > 4 && string(f[4]) == dir {
			return true
		}
	}
	return false
}

func waitEntries(dir string, n int, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ents, err := os.ReadDir(dir); err == nil && len(ents) >= n {
			return true
		}
	}
	return false
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
