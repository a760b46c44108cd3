package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

func shareBody(to, from, providerID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"shareWith": to, "name": "doc-" + providerID, "providerId": providerID,
		"owner": "alice@" + from, "sender": "alice@" + from,
		"shareType": "user", "resourceType": "file",
		"protocol": map[string]any{"name": "multi", "webdav": map[string]any{
			"uri": providerID, "sharedSecret": "secret-" + providerID, "permissions": []string{"read"}}},
	})
	return b
}

// TestSIGKILLLosesNoAcknowledgedShare posts shares from several clients,
// kills the daemon with SIGKILL in the middle, restarts it, and checks that
// every share that got a 201 is there, whole, with its secret.
func TestSIGKILLLosesNoAcknowledgedShare(t *testing.T) {
	// One client address and one sender send everything: lift the
	// per-client limit and the caps on pending shares.
	a := newAgent(t, "--rate-limit", "100000", "--rate-burst", "100000", "--max-pending-per-server", "100000", "--max-pending", "100000")
	a.start()
	peer := keylessPeer(t)

	var (
		mu    sync.Mutex
		acked []string
		sent  atomic.Int64
	)
	client := &http.Client{Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 2000 && ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				sent.Add(1)
				resp, err := client.Post(a.base+"/ocm/shares", "application/json", bytes.NewReader(shareBody(a.address(), peer, id)))
				if err != nil {
					return // the daemon is gone
				}
				resp.Body.Close()
				if resp.StatusCode == 201 {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}(w)
	}
	// Kill once a good number of shares are in flight and acknowledged.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) { // polling, at most 15 s
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 150 {
			break
		}
	}
	a.kill()
	cancel()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no share was acknowledged before the kill; log:\n%s", a.log)
	}
	t.Logf("%d shares acknowledged of %d sent before SIGKILL", len(acked), sent.Load())

	a.start()
	out := a.mustCLI("shares", "list", "--all", "--json")
	var listed []struct{ ID, ProviderID, Name, State, Sender string }
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("shares list --json: %v\n%s", err, out)
	}
	byProvider := map[string]int{}
	for _, s := range listed {
		byProvider[s.ProviderID]++
		if s.Name != "doc-"+s.ProviderID || s.State != store.StatePending || s.Sender != "alice@"+peer {
			t.Errorf("half-written share: %+v", s)
		}
	}
	for _, id := range acked {
		if byProvider[id] != 1 {
			t.Errorf("acknowledged share %s appears %d times after the restart", id, byProvider[id])
		}
	}
	// Every stored share has its secret: stop the agent and open its secret store.
	a.cmd.Process.Signal(interruptSignal)
	a.cmd.Wait()
	secrets, _, err := tokens.Open(context.Background(), tokens.OpenOptions{Backend: "file",
		StateDir: filepath.Join(a.dir, "state"), ConfigDir: filepath.Join(a.dir, "config", "ocm-agent")})
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, s := range listed {
		v, err := secrets.Get(context.Background(), "share/"+s.ID+"/secret")
		if err != nil || string(v) != "secret-"+s.ProviderID {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d stored shares have no (or a wrong) secret", missing, len(listed))
	}
}
