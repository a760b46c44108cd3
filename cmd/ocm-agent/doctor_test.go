package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/doctor"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
	"github.com/ocm-agent/ocm-agent/tokens/keyringtest"
)

// buildAgent builds this command, as a user would run it, into a
// temporary directory.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ocm-agent")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// userEnv is the environment of one test user: home, XDG directories and
// a PATH in temporary directories, nothing inherited that could point at
// the real user's agent, keyring or configuration.
type userEnv struct {
	home, runtime, configHome, stateHome, bin string
	extra                                     []string
}

func newUserEnv(t *testing.T) *userEnv {
	t.Helper()
	base := t.TempDir()
	u := &userEnv{
		home:       filepath.Join(base, "home"),
		runtime:    filepath.Join(base, "run"),
		configHome: filepath.Join(base, "home", ".config"),
		stateHome:  filepath.Join(base, "home", ".local", "state"),
		bin:        filepath.Join(base, "bin"),
	}
	for _, d := range []string{u.home, u.runtime, u.configHome, u.stateHome, u.bin} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// environ is the process environment for the test user. PATH holds only
// u.bin, where tests link the programs they want found.
func (u *userEnv) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "USER", k == "PATH", k == "DBUS_SESSION_BUS_ADDRESS", strings.HasPrefix(k, "XDG_"), strings.HasPrefix(k, "OCM_AGENT_"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+u.home, "USER=alice", "PATH="+u.bin,
		"XDG_RUNTIME_DIR="+u.runtime, "XDG_CONFIG_HOME="+u.configHome, "XDG_STATE_HOME="+u.stateHome,
		"DBUS_SESSION_BUS_ADDRESS=disabled:")
	return append(env, u.extra...)
}

// linkTool makes the program name found in the test user's PATH.
func (u *userEnv) linkTool(t *testing.T, name string) {
	t.Helper()
	p, err := exec.LookPath(name)
	testenv.Need(t, name, err)
	if err := os.Symlink(p, filepath.Join(u.bin, name)); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
}

func (u *userEnv) socket() string { return filepath.Join(u.runtime, "ocm-agent.sock") }

// agentProcess is a running 'ocm-agent serve'.
type agentProcess struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startAgent runs 'serve' with args for the test user and waits until
// its control socket answers.
func startAgent(t *testing.T, bin string, u *userEnv, args ...string) *agentProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = u.environ()
	p := &agentProcess{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	c := control.NewClient(u.socket())
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Status(ctx)
		cancel()
		if err == nil {
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("serve exited: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) || i > 400 {
			t.Fatalf("the agent did not answer on %s: %v\n%s", u.socket(), err, p.stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
}

// stop ends the agent with SIGTERM, as systemd does, and waits.
func (p *agentProcess) stop(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("the agent did not stop within 15s after SIGTERM\n%s", p.stderr)
	}
}

// runDoctor runs 'doctor --json' for the test user and returns the
// report and the exit code.
func runDoctor(t *testing.T, bin string, u *userEnv, args ...string) (doctor.Report, int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--socket", u.socket(), "doctor", "--json"}, args...)...)
	cmd.Env = u.environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var rep doctor.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("doctor --json printed no report (%v):\n%s\n%s", err, stdout.String(), stderr.String())
	}
	return rep, code, stderr.String()
}

type want struct {
	outcome doctor.Outcome
	detail  string
}

func checkReport(t *testing.T, rep doctor.Report, wants map[string]want) {
	t.Helper()
	for id, w := range wants {
		res, ok := rep.Get(id)
		if !ok {
			t.Errorf("no %s check in the report", id)
			continue
		}
		if res.Outcome != w.outcome || !strings.Contains(res.Detail, w.detail) {
			t.Errorf("%s: got %s %q (fix %q); want %s containing %q", id, res.Outcome, res.Detail, res.Fix, w.outcome, w.detail)
		}
	}
}

// TestDoctorAgainstRunningDaemon runs the real binary's doctor against a
// real daemon (and against none) and asserts every check's outcome.
func TestDoctorAgainstRunningDaemon(t *testing.T) {
	_, err := os.Stat("/dev/fuse")
	testenv.Need(t, "/dev/fuse", err)
	bin := buildAgent(t)

	t.Run("running, file secrets, loopback", func(t *testing.T) {
		u := newUserEnv(t)
		u.linkTool(t, "fusermount3")
		listen := testenv.FreeAddr(t)
		startAgent(t, bin, u, "--listen", listen, "--mount", "", "--secrets", "file")
		rep, code, stderr := runDoctor(t, bin, u)
		checkReport(t, rep, map[string]want{
			doctor.CheckConfig:    {doctor.Pass, "built-in defaults"},
			doctor.CheckFUSE:      {doctor.Pass, "fusermount3"},
			doctor.CheckMount:     {doctor.Skip, "disabled"},
			doctor.CheckSecrets:   {doctor.Pass, "encrypted file store, as configured"},
			doctor.CheckEndpoint:  {doctor.Pass, "listens on " + listen},
			doctor.CheckPublicURL: {doctor.Warn, "valid discovery document"},
			doctor.CheckTLS:       {doctor.Skip, "plain http on loopback"},
			doctor.CheckSRV:       {doctor.Skip, "not a DNS domain"},
			doctor.CheckClock:     {doctor.Skip, "served from this machine"},
			doctor.CheckSystemd:   {doctor.Warn, "systemctl is not in PATH"},
		})
		if len(rep.Checks) != len(doctor.Checks()) {
			t.Errorf("%d checks reported, want %d", len(rep.Checks), len(doctor.Checks()))
		}
		if code != 0 || rep.Failed != 0 {
			t.Errorf("exit code %d with %d failures; want 0 (warnings do not fail)\n%s", code, rep.Failed, stderr)
		}

		// The text form: one line per check, and the summary.
		cmd := exec.Command(bin, "--socket", u.socket(), "doctor")
		cmd.Env = u.environ()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
		text := string(out)
		for _, w := range []string{"PASS  Endpoint", "WARN  Public URL", "fix: ", "11 checks: 4 passed, 2 warnings, 0 failed, 5 skipped"} {
			if !strings.Contains(text, w) {
				t.Errorf("text output lacks %q:\n%s", w, text)
			}
		}
	})

	t.Run("systemd user service active", func(t *testing.T) {
		u := newUserEnv(t)
		u.linkTool(t, "fusermount3")
		// No systemd user manager can run in the test environment (it is
		// not booted with systemd), so a stand-in systemctl answers as one
		// would for an enabled, active service.
		stub := "#!/bin/sh\ncase \"$2\" in is-active) echo active ;; is-enabled) echo enabled ;; *) exit 1 ;; esac\n"
		if err := os.WriteFile(filepath.Join(u.bin, "systemctl"), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
		startAgent(t, bin, u, "--listen", testenv.FreeAddr(t), "--mount", "", "--secrets", "file")
		rep, code, _ := runDoctor(t, bin, u)
		checkReport(t, rep, map[string]want{doctor.CheckSystemd: {doctor.Pass, "active and enabled"}})
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
	})

	t.Run("keyring unlocked", func(t *testing.T) {
		testenv.Need(t, "a keyring", keyringtest.Available())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		env, err := keyringtest.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer env.Close()
		u := newUserEnv(t)
		u.linkTool(t, "fusermount3")
		u.extra = []string{"DBUS_SESSION_BUS_ADDRESS=" + env.Address}
		startAgent(t, bin, u, "--listen", testenv.FreeAddr(t), "--mount", "", "--secrets", "keyring")
		rep, code, stderr := runDoctor(t, bin, u)
		checkReport(t, rep, map[string]want{doctor.CheckSecrets: {doctor.Pass, "reachable and unlocked"}})
		if code != 0 {
			t.Errorf("exit code %d\n%s", code, stderr)
		}
	})

	t.Run("no keyring, file fallback", func(t *testing.T) {
		testenv.Need(t, "a keyring", keyringtest.Available())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		env, err := keyringtest.StartBusOnly(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer env.Close()
		u := newUserEnv(t)
		u.linkTool(t, "fusermount3")
		u.extra = []string{"DBUS_SESSION_BUS_ADDRESS=" + env.Address}
		startAgent(t, bin, u, "--listen", testenv.FreeAddr(t), "--mount", "", "--secrets", "auto")
		rep, code, _ := runDoctor(t, bin, u)
		res, _ := rep.Get(doctor.CheckSecrets)
		checkReport(t, rep, map[string]want{doctor.CheckSecrets: {doctor.Warn, "falling back to the encrypted file store"}})
		if !strings.Contains(res.Fix, "Secret Service") {
			t.Errorf("fix %q does not say how to get a keyring", res.Fix)
		}
		if code != 0 {
			t.Errorf("exit code %d; a warning must not fail", code)
		}
	})

	t.Run("daemon down", func(t *testing.T) {
		u := newUserEnv(t)
		u.linkTool(t, "fusermount3")
		p := startAgent(t, bin, u, "--listen", testenv.FreeAddr(t), "--mount", "", "--secrets", "file")
		p.stop(t)
		rep, code, stderr := runDoctor(t, bin, u)
		checkReport(t, rep, map[string]want{
			doctor.CheckEndpoint:  {doctor.Fail, "not running"},
			doctor.CheckSecrets:   {doctor.Skip, "not running"},
			doctor.CheckPublicURL: {doctor.Fail, "connection refused"},
		})
		if code != 1 || !strings.Contains(stderr, "checks failed") {
			t.Errorf("exit code %d, stderr %q; want 1 and the number of failed checks", code, stderr)
		}
	})

	t.Run("public URL not served", func(t *testing.T) {
		u := newUserEnv(t)
		u.linkTool(t, "fusermount3")
		wrong := testenv.ClosedAddr(t) // never the agent's own port
		startAgent(t, bin, u, "--listen", testenv.FreeAddr(t), "--public-url", "http://"+wrong, "--mount", "", "--secrets", "file")
		rep, code, _ := runDoctor(t, bin, u)
		checkReport(t, rep, map[string]want{
			doctor.CheckEndpoint:  {doctor.Pass, "listens on"},
			doctor.CheckPublicURL: {doctor.Fail, fmt.Sprintf("GET http://%s/.well-known/ocm", wrong)},
		})
		if code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
	})

	t.Run("bad config file", func(t *testing.T) {
		u := newUserEnv(t)
		u.linkTool(t, "fusermount3")
		dir := filepath.Join(u.configHome, "ocm-agent")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte("lisen = \"127.0.0.1:1\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rep, code, _ := runDoctor(t, bin, u)
		checkReport(t, rep, map[string]want{doctor.CheckConfig: {doctor.Fail, "lisen"}})
		if code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
	})
}
