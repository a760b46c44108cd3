package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
	"github.com/ocm-agent/ocm-agent/tokens"
	"github.com/ocm-agent/ocm-agent/tokens/keyringtest"
)

// mountTmpfs mounts a tmpfs of the given size at dir until the test ends.
// It needs root; without it the test fails under CI and is skipped
// elsewhere.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		testenv.Need(t, "a tmpfs mount (root needed)", fmt.Errorf("%v %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", dir).Run()
			t.Logf("umount %s: %v %s", dir, err, out)
		}
	})
}

// fillDisk writes path until the filesystem is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for i := 0; i < 1<<16; i++ {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			// Fill the last partial chunk's worth too.
			for j := 0; j < 1<<10; j++ {
				if _, err := f.Write(chunk[:512]); err != nil {
					break
				}
			}
			return
		}
	}
	t.Fatal("the disk did not fill up")
}

// TestDiskFullAnswers503 fills the state directory's filesystem while
// shares arrive: the agent answers 503 with Retry-After, keeps running,
// loses no acknowledged share, and takes shares again once there is space.
// With secrets=file the secret write is the first to fail; with the
// keyring (outside the full disk) the database commit is.
func TestDiskFullAnswers503(t *testing.T) {
	t.Run("secrets=file", func(t *testing.T) { testDiskFull(t, "file") })
	t.Run("secrets=keyring", func(t *testing.T) { testDiskFull(t, "keyring") })
}

func testDiskFull(t *testing.T, backend string) {
	a := newAgent(t, "--rate-limit", "1000", "--rate-burst", "1000", "--max-pending-per-server", "100000", "--max-pending", "100000")
	if backend == "keyring" {
		testenv.Need(t, "a keyring", keyringtest.Available())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		env, err := keyringtest.Start(ctx)
		cancel()
		testenv.Need(t, "a keyring", err)
		t.Cleanup(env.Close)
		a.args = append(a.args, "--secrets", "keyring")
		a.extraEnv = []string{"DBUS_SESSION_BUS_ADDRESS=" + env.Address}
	}
	state := filepath.Join(a.dir, "state")
	mountTmpfs(t, state, "16m")
	a.start()
	peer := keylessPeer(t)

	type answer struct {
		id         string
		status     int
		retryAfter string
	}
	var (
		mu      sync.Mutex
		answers []answer
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	count := func(status int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, x := range answers {
			if x.status == status {
				n++
			}
		}
		return n
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				resp, err := client.Post(a.base+"/ocm/shares", "application/json", bytes.NewReader(shareBody(a.address(), peer, id)))
				if err != nil {
					t.Errorf("share %s: %v", id, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				answers = append(answers, answer{id, resp.StatusCode, resp.Header.Get("Retry-After")})
				mu.Unlock()
			}
		}(w)
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	if !eventually(10*time.Second, func() bool { return count(201) >= 20 }) {
		t.Fatalf("shares not accepted before the disk filled: %d\n%s", count(201), a.log)
	}
	filler := filepath.Join(state, "filler")
	fillDisk(t, filler)
	if !eventually(15*time.Second, func() bool { return count(503) >= 10 }) {
		t.Fatalf("no 503 with the disk full (%d so far)\n%s", count(503), a.log)
	}
	// Still running and answering.
	resp, err := client.Get(a.base + "/.well-known/ocm")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery with the disk full: %v %v", resp, err)
	}
	resp.Body.Close()
	a.mustCLI("status")

	okBefore := count(201)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !eventually(15*time.Second, func() bool { return count(201) >= okBefore+20 }) {
		t.Fatalf("shares not accepted again after space returned (%d more)\n%s", count(201)-okBefore, a.log)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	var acked []string
	other := map[int]int{}
	for _, x := range answers {
		switch x.status {
		case 201:
			acked = append(acked, x.id)
		case 503:
			if x.retryAfter == "" {
				t.Errorf("503 without Retry-After for %s", x.id)
			}
		default:
			other[x.status]++
		}
	}
	mu.Unlock()
	if len(other) > 0 {
		t.Errorf("answers other than 201 and 503: %v", other)
	}
	t.Logf("%d shares acknowledged, %d refused with 503", len(acked), count(503))

	// Every acknowledged share survives a restart, with its secret.
	a.cmd.Process.Signal(interruptSignal)
	a.cmd.Wait()
	a.start()
	listed := a.shares(true)
	byProvider := map[string]string{}
	for _, s := range listed {
		byProvider[s.ProviderID] = s.ID
	}
	for _, id := range acked {
		if byProvider[id] == "" {
			t.Errorf("acknowledged share %s is gone", id)
		}
	}
	if backend != "file" {
		return
	}
	a.cmd.Process.Signal(interruptSignal)
	a.cmd.Wait()
	secrets, _, err := tokens.Open(context.Background(), tokens.OpenOptions{Backend: "file",
		StateDir: state, ConfigDir: filepath.Join(a.dir, "config", "ocm-agent")})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		v, err := secrets.Get(context.Background(), "share/"+byProvider[id]+"/secret")
		if err != nil || string(v) != "secret-"+id {
			t.Errorf("acknowledged share %s lost its secret: %v", id, err)
		}
	}
}
