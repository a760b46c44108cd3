package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

// flakySecrets keeps secrets in memory and refuses the next fail writes.
type flakySecrets struct {
	mu   sync.Mutex
	m    map[string][]byte
	fail atomic.Int32
}

func (s *flakySecrets) Backend() string { return "test" }

func (s *flakySecrets) Put(ctx context.Context, key string, value []byte) error {
	return s.PutMany(ctx, map[string][]byte{key: value})
}

func (s *flakySecrets) PutMany(_ context.Context, items map[string][]byte) error {
	if s.fail.Add(-1) >= 0 {
		return errors.New("disk full")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range items {
		s.m[k] = v
	}
	return nil
}

func (s *flakySecrets) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, tokens.ErrSecretNotFound
	}
	return v, nil
}

func (s *flakySecrets) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// Batches that fail (the secret store refusing a few writes) answer an
// error and leave nothing half stored, while the batches around them go
// on; every share stored has its own secret, and a re-send stores it.
func TestReceiptFailuresLeaveNoHalfShares(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secrets := &flakySecrets{m: map[string][]byte{}}
	a := New(Options{Store: st, Secrets: secrets, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	answered := map[string]string{} // id answered without error: its providerId
	send := func(failAt int32) (ok, failed int) {
		var n atomic.Int32
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					if n.Add(1) == failAt {
						secrets.fail.Store(3)
					}
					pid := fmt.Sprintf("p%d", (w+i)%30) // re-sends across batches
					sh := store.Share{Peer: "peer.example.org", ProviderID: pid, Name: "n", ShareWith: "bob@me.example.org",
						Owner: "a@peer.example.org", Sender: "a@peer.example.org", ShareType: "user", ResourceType: "file", State: store.StatePending}
					r := a.storeReceipt(ctx, sh, []byte("secret-"+pid), Peer{Host: "peer.example.org", Signed: true})
					mu.Lock()
					if r.err != nil {
						failed++
					} else {
						ok++
						answered[r.stored.ID] = pid
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return ok, failed
	}
	check := func() int {
		t.Helper()
		shares, err := st.Shares(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[string]string{}
		for _, sh := range shares {
			byID[sh.ID] = sh.ProviderID
		}
		for id, pid := range answered {
			if byID[id] != pid {
				t.Fatalf("share %q (%s) was answered as stored, the database has %q", id, pid, byID[id])
			}
		}
		for _, sh := range shares {
			if v, err := secrets.Get(ctx, secretKey(sh.ID)); err != nil || string(v) != "secret-"+sh.ProviderID {
				t.Fatalf("share %s (%s) stored with secret %q, %v", sh.ID, sh.ProviderID, v, err)
			}
		}
		return len(shares)
	}
	if ok, failed := send(100); failed == 0 || ok == 0 {
		t.Fatalf("%d stored, %d failed: the failure did not happen mid-load", ok, failed)
	}
	check()
	if ok, failed := send(-1); failed != 0 || ok != 300 {
		t.Fatalf("after the store recovered: %d stored, %d failed", ok, failed)
	}
	if n := check(); n != 30 {
		t.Fatalf("%d shares, want 30", n)
	}
}
