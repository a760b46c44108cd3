package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

// buildAgent compiles cmd/ocm-agent as the release build does.
func buildAgent(dir string) (string, error) {
	bin := filepath.Join(dir, "ocm-agent")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/ocm-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ocm-agent: %w\n%s", err, out)
	}
	return bin, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// agentProc is one ocm-agent serve process with its state in dir.
type agentProc struct {
	bin, dir, listen, socket, mount string
	extra                           []string
	cmd                             *exec.Cmd
	done                            chan struct{}
	logFile                         *os.File
	started                         time.Time
}

func newAgentProc(bin, dir, mount string, extra ...string) (*agentProc, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return &agentProc{bin: bin, dir: dir, listen: listen, socket: filepath.Join(dir, "run", "ocm-agent.sock"),
		mount: mount, extra: extra}, nil
}

func (a *agentProc) base() string    { return "http://" + a.listen }
func (a *agentProc) address() string { return "bob@" + a.listen }

func (a *agentProc) env() []string {
	return append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(a.dir, "config"),
		"XDG_STATE_HOME="+filepath.Join(a.dir, "xdgstate"), "XDG_RUNTIME_DIR="+filepath.Join(a.dir, "run"),
		"XDG_DATA_HOME="+filepath.Join(a.dir, "data"))
}

// databasePath is the agent's database, in the state directory start
// gives it.
func (a *agentProc) databasePath() string { return filepath.Join(a.dir, "state", "agent.db") }

// start execs the agent; it does not wait for it.
func (a *agentProc) start() error {
	if err := os.MkdirAll(filepath.Join(a.dir, "run"), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(a.dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if a.logFile != nil {
		a.logFile.Close()
	}
	a.logFile = f
	args := append([]string{"serve", "--listen", a.listen, "--user", "bob", "--display-name", "Bob",
		"--state-dir", filepath.Dir(a.databasePath()), "--socket", a.socket, "--secrets", "file",
		"--mount", a.mount, "--allow-insecure-peers", "--dns-server", "127.0.0.1:9"}, a.extra...)
	a.cmd = exec.Command(a.bin, args...)
	a.cmd.Env = a.env()
	a.cmd.Stdout, a.cmd.Stderr = f, f
	a.started = time.Now()
	if err := a.cmd.Start(); err != nil {
		return err
	}
	a.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(a.cmd, a.done)
	return nil
}

// waitEndpoint polls until GET /.well-known/ocm answers 200 and returns the
// time from exec.
func (a *agentProc) waitEndpoint(limit time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	for deadline := a.started.Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		resp, err := client.Get(a.base() + "/.well-known/ocm")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(a.started), nil
			}
		}
		if a.exited() {
			return 0, fmt.Errorf("the agent exited; see %s", a.logPath())
		}
	}
	return 0, fmt.Errorf("the endpoint did not answer within %v; see %s", limit, a.logPath())
}

// waitControl polls until the control socket answers.
func (a *agentProc) waitControl(limit time.Duration) error {
	c := control.NewClient(a.socket)
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Status(ctx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return errors.New("the control socket did not answer")
}

func (a *agentProc) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

func (a *agentProc) control() *control.Client { return control.NewClient(a.socket) }

// stop ends the agent with SIGTERM (SIGKILL after 10 s).
func (a *agentProc) stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		a.cmd.Process.Kill()
		<-a.done
	}
	if a.logFile != nil {
		a.logFile.Close()
		a.logFile = nil
	}
	if a.mount != "" {
		// A killed agent leaves its mount behind.
		exec.Command("fusermount3", "-u", "-z", a.mount).Run()
	}
	a.cmd = nil
}

// memory is what /proc/<pid>/status says of a process, in KiB.
type memory struct{ RSS, HWM int64 }

func (a *agentProc) memory() (memory, error) {
	return procMemory(a.cmd.Process.Pid)
}

func procMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n
		case "VmHWM":
			m.HWM = n
		}
	}
	return m, sc.Err()
}

func (a *agentProc) logPath() string { return filepath.Join(a.dir, "agent.log") }
