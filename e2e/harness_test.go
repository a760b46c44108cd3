package e2e

import (
	"github.com/ocm-agent/ocm-agent/internal/testenv"

	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ocm-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	agentBin = filepath.Join(dir, "ocm-agent")
	build := exec.Command("go", "build", "-o", agentBin, "../cmd/ocm-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building ocm-agent: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agentProc is one run of `ocm-agent serve` on a loopback port.
type agentProc struct {
	t      *testing.T
	dir    string
	listen string
	base   string
	socket string
	args   []string
	cmd    *exec.Cmd
	log    *testenv.Buffer
	// extraEnv is added to the daemon's and the CLI's environment.
	extraEnv []string
}

// newAgent prepares an agent for user bob with all state under a temp dir.
func newAgent(t *testing.T, extra ...string) *agentProc {
	dir := t.TempDir()
	a := &agentProc{t: t, dir: dir, listen: testenv.FreeAddr(t), socket: filepath.Join(dir, "run", "ocm-agent.sock")}
	a.base = "http://" + a.listen
	a.args = append([]string{"serve", "--listen", a.listen, "--user", "bob", "--display-name", "Bob",
		"--state-dir", filepath.Join(dir, "state"), "--socket", a.socket, "--secrets", "file",
		"--mount", "", "--allow-insecure-peers", "--log-level", "debug",
		// Any name lookup goes to a closed loopback port: tests never reach
		// a real DNS server.
		"--dns-server", "127.0.0.1:9"}, extra...)
	return a
}

func (a *agentProc) env() []string {
	return append(append(os.Environ(), a.extraEnv...), "XDG_CONFIG_HOME="+filepath.Join(a.dir, "config"),
		"XDG_STATE_HOME="+filepath.Join(a.dir, "xdgstate"), "XDG_RUNTIME_DIR="+filepath.Join(a.dir, "run"),
		"XDG_DATA_HOME="+filepath.Join(a.dir, "data"))
}

// start runs the daemon and waits (bounded) until its endpoint answers.
func (a *agentProc) start() {
	a.t.Helper()
	a.log = &testenv.Buffer{}
	a.cmd = exec.Command(agentBin, a.args...)
	a.cmd.Env = a.env()
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	cmd := a.cmd
	a.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
			}
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(a.base + "/.well-known/ocm")
		if err == nil {
			resp.Body.Close()
			if _, err := os.Stat(a.socket); err == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
	a.t.Fatalf("agent did not start within 15 s; log:\n%s", a.log)
}

// kill ends the daemon with SIGKILL, as a crash would.
func (a *agentProc) kill() {
	a.cmd.Process.Kill()
	a.cmd.Wait()
}

// cli runs an ocm-agent client command against this agent.
func (a *agentProc) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBin, append([]string{"--socket", a.socket}, args...)...)
	cmd.Env = a.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (a *agentProc) mustCLI(args ...string) string {
	a.t.Helper()
	out, err := a.cli(args...)
	if err != nil {
		a.t.Fatalf("ocm-agent %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// address is bob's OCM address at this agent.
func (a *agentProc) address() string { return "bob@" + a.listen }

// keylessPeer serves the discovery document of an OCM server that signs
// nothing (as reva and oCIS), on loopback; it returns its host:port.
func keylessPeer(t *testing.T) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/ocm" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"enabled":true,"apiVersion":"1.1.0","endPoint":"%s/ocm","resourceTypes":[{"name":"file","shareTypes":["user"],"protocols":{"webdav":"/webdav/"}}]}`, srv.URL)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
