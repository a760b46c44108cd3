package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

// testDaemon is a real daemon on a loopback port with its state in a
// temp dir, a file secret store and no mount.
type testDaemon struct {
	*Daemon
	cfg    config.Config
	base   string
	client *control.Client
	logs   *bytes.Buffer
	cancel context.CancelFunc
	done   chan error
}

func startDaemon(t *testing.T, mutate func(*config.Config)) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	cfg := config.Default()
	cfg.Listen = testenv.FreeAddr(t)
	cfg.User = "bob"
	cfg.DisplayName = "Bob Receiver"
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Socket = filepath.Join(dir, "run", "ocm-agent.sock")
	cfg.Secrets = "file"
	cfg.Mount = ""
	cfg.LogLevel = "debug"
	cfg.DNSServer = "127.0.0.1:9" // no lookup ever leaves loopback
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	d, err := Start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// The fixtures come from servers that do not exist: skip the key
	// lookup that would decide whether they may send unsigned requests.
	d.Agent.SetTrust(nil)
	td := &testDaemon{Daemon: d, cfg: cfg, base: cfg.PublicURL, client: control.NewClient(cfg.Socket), logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { td.done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-td.done:
		case <-time.After(15 * time.Second):
			t.Error("daemon did not stop within 15 s")
		}
	})
	return td
}

type lockedWriter struct {
	mu chan struct{}
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	if l.mu == nil {
		l.mu = make(chan struct{}, 1)
	}
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.w.Write(p)
}

// post sends a JSON body and returns the status and decoded body.
func (td *testDaemon) post(t *testing.T, path string, body []byte) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(td.base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	data, _ := io.ReadAll(resp.Body)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s answered %d with non-JSON %q", path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, m
}

// fixture loads an ocm/testdata share and addresses it to this daemon.
func (td *testDaemon) fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "ocm", "testdata", "shares", name))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte("bob@agent.example.org"), []byte("bob@"+td.cfg.PublicHost()))
	b = bytes.ReplaceAll(b, []byte("bob@https://agent.example.org"), []byte("bob@http://"+td.cfg.PublicHost()))
	return b
}
