package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runSystem mounts one system (curl mounts nothing), runs every workload on
// it and unmounts.
func (b *bench) runSystem(ctx context.Context, name string) error {
	if name == "curl" {
		if _, err := exec.LookPath("curl"); err != nil {
			return fmt.Errorf("curl not installed")
		}
		return b.curlWorkloads(name)
	}
	mnt := filepath.Join(b.c.workdir, "mnt-"+name)
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return err
	}
	var mount func(string) (string, func(), error)
	switch name {
	case "ocm-agent":
		mount = b.mountOurs
	case "rclone-off":
		mount = func(m string) (string, func(), error) { return b.mountRclone(m, "mount", "off") }
	case "rclone-full":
		mount = func(m string) (string, func(), error) { return b.mountRclone(m, "mount", "full") }
	case "rclone-mount2":
		mount = func(m string) (string, func(), error) { return b.mountRclone(m, "mount2", "full") }
	case "davfs2":
		mount = b.mountDavfs
	default:
		return fmt.Errorf("unknown system %q", name)
	}
	if name == "ocm-agent" && (b.want("cached") || b.want("pin")) {
		if err := b.cacheWorkloads(ctx, mnt); err != nil {
			return err
		}
	}
	if !b.wantMount() {
		return nil
	}
	// The short metadata workloads run on a fresh mount each time (they
	// measure cold caches); the best of -reps runs is kept.
	if b.want("ls") || b.want("find") || b.want("scale") {
		for range b.c.reps {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			root, stop, err := mount(mnt)
			if err != nil {
				return err
			}
			err = b.metadataWorkloads(name, root)
			stop()
			if err != nil {
				return err
			}
		}
	}
	root, stop, err := mount(mnt)
	if err != nil {
		return err
	}
	defer stop()
	return b.mountWorkloads(name, root)
}

func (b *bench) mountOurs(mnt string) (string, func(), error) {
	cmd := exec.Command(os.Args[0], "-serve-mount", mnt, b.ng.url("/"), filepath.Join(b.c.workdir, "spool"))
	cmd.Env = append(os.Environ(), "BENCH_TOKEN="+b.token)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	b.mountPID = cmd.Process.Pid
	stop := func() {
		terminate(cmd, 30*time.Second)
		unmount(mnt)
	}
	if err := waitLine(bufio.NewScanner(out), "ready", 30*time.Second); err != nil {
		stop()
		return "", nil, fmt.Errorf("ocm-agent mount: %w", err)
	}
	return filepath.Join(mnt, "bench"), stop, nil
}

// mountRclone mounts with "rclone mount" or "rclone mount2" (go-fuse, as
// ours) in a VFS cache mode.
func (b *bench) mountRclone(mnt, command, mode string) (string, func(), error) {
	if _, err := exec.LookPath("rclone"); err != nil {
		return "", nil, fmt.Errorf("rclone not installed")
	}
	cache := filepath.Join(b.c.workdir, "rclone-cache-"+command+"-"+mode)
	cmd := exec.Command("rclone", command, "bench:", mnt, "--vfs-cache-mode", mode, "--cache-dir", cache)
	// The remote, with its bearer token, comes from the environment, not
	// the command line.
	cmd.Env = append(os.Environ(),
		"RCLONE_CONFIG_BENCH_TYPE=webdav",
		"RCLONE_CONFIG_BENCH_URL="+b.ng.url("/"),
		"RCLONE_CONFIG_BENCH_VENDOR=other",
		"RCLONE_CONFIG_BENCH_BEARER_TOKEN="+b.token,
	)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		terminate(cmd, 60*time.Second)
		unmount(mnt)
	}
	if err := waitMounted(mnt, 30*time.Second); err != nil {
		stop()
		return "", nil, fmt.Errorf("rclone mount: %w", err)
	}
	return mnt, stop, nil
}

func (b *bench) mountDavfs(mnt string) (string, func(), error) {
	prog, err := exec.LookPath("mount.davfs")
	if err != nil {
		return "", nil, fmt.Errorf("davfs2 not installed")
	}
	dir := filepath.Join(b.c.workdir, "davfs2")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	// davfs2 cannot send a bearer token: it authenticates with Basic, the
	// token as password (nginx accepts both). Credentials in a 0600 file.
	secrets := filepath.Join(dir, "secrets")
	if err := os.WriteFile(secrets, []byte(fmt.Sprintf("%s bench %s\n", b.ng.url("/"), b.token)), 0o600); err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "davfs2.conf")
	// The cache stays davfs2's own (/var/cache/davfs2 for root): it must
	// belong to its unprivileged user.
	c := fmt.Sprintf("secrets %s\nuse_locks 0\ndelay_upload 0\nask_auth 0\n", secrets)
	if err := os.WriteFile(conf, []byte(c), 0o600); err != nil {
		return "", nil, err
	}
	out, err := exec.Command(prog, b.ng.url("/"), mnt, "-o", "conf="+conf).CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("mount.davfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	stop := func() {
		_ = exec.Command("umount", mnt).Run()
		unmount(mnt)
	}
	if err := waitMounted(mnt, 30*time.Second); err != nil {
		stop()
		return "", nil, fmt.Errorf("davfs2: %w", err)
	}
	return mnt, stop, nil
}

func waitMounted(dir string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for !mounted(dir) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not mounted within %v", dir, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// terminate asks a mount's process to stop (it unmounts and flushes), and
// kills it when it has not exited within grace.
func terminate(cmd *exec.Cmd, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
	}
}
