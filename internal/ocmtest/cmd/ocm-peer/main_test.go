package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// receiver is a bare OCM receiver that accepts every share.
func receiver(t *testing.T) (*httptest.Server, *[][]byte) {
	var mu sync.Mutex
	var got [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/ocm":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"enabled": true, "apiVersion": "1.4.0",
				"endPoint": "http://" + r.Host + "/ocm", "resourceTypes": []any{}})
		case "/ocm/shares":
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			mu.Lock()
			got = append(got, b)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestPeerSharesAtStartAndTakesCommands(t *testing.T) {
	recv, got := receiver(t)
	host := strings.TrimPrefix(recv.URL, "http://")
	dir := t.TempDir()
	var out lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stdin := strings.NewReader("shares\ninvite\nbogus\nquit\n")
	err := run(ctx, []string{"--listen", "127.0.0.1:0", "--dir", dir, "--share-to", "bob@" + host, "--share-wait", "10s"},
		stdin, &out, io.Discard)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"ocm-peer: made a sample folder in " + filepath.Join(dir, "sample"),
		"ocm-peer: serving http://127.0.0.1:",
		`ocm-peer: shared folder "sample" with bob@` + host,
		"ocm-peer: invite: ",
		`unknown command "bogus"`,
		"ocm-peer: stopping",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if len(*got) != 1 || !bytes.Contains((*got)[0], []byte(`"name":"sample"`)) {
		t.Fatalf("receiver got %d shares", len(*got))
	}
	if _, err := os.Stat(filepath.Join(dir, "sample", "hello.txt")); err != nil {
		t.Fatalf("sample folder: %v", err)
	}
	if strings.Contains(text, "sharedSecret") {
		t.Fatal("the output shows a secret")
	}
}

func TestPeerReportsAnUnreachableReceiver(t *testing.T) {
	var out lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"--listen", "127.0.0.1:0", "--dir", t.TempDir(), "--share-to", "bob@127.0.0.1:1",
		"--share-wait", "1s"}, strings.NewReader("quit\n"), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ocm-peer: share failed:") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestPeerRejectsBadFlags(t *testing.T) {
	if err := run(context.Background(), []string{"--no-such-flag"}, nil, io.Discard, io.Discard); err == nil {
		t.Fatal("no error for an unknown flag")
	}
}
