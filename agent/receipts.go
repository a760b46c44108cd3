package agent

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/ocm-agent/ocm-agent/store"
)

// Group commit of received shares. A share is answered 201 only once it
// and its secret are durable, and a durable write costs an fsync or two
// whatever its size. So concurrent receipts are written together: the
// first one writes, those arriving meanwhile queue up, and when a write
// finishes the oldest queued receipt writes the whole queue as the next
// batch (one secret-store write and one SQLite transaction). Under no load
// a batch is one share and nothing waits.

// receipt is one received share on its way to storage.
type receipt struct {
	sh     store.Share // ID is filled in by the batch
	secret []byte
	lead   chan struct{} // this receipt's goroutine writes the next batch
	done   chan struct{} // closed once the outcome below is set
	stored store.Share
	isNew  bool
	err    error
}

type receiptQueue struct {
	mu      sync.Mutex
	queue   []*receipt
	writing bool
}

// storeReceipt makes sh (with secret) durable, batched with concurrent
// receipts, and reports what was stored and whether it is a new share.
func (a *Agent) storeReceipt(ctx context.Context, sh store.Share, secret []byte) (store.Share, bool, error) {
	r := &receipt{sh: sh, secret: secret, lead: make(chan struct{}, 1), done: make(chan struct{})}
	q := &a.receipts
	q.mu.Lock()
	q.queue = append(q.queue, r)
	if q.writing {
		q.mu.Unlock()
		select {
		case <-r.done:
			return r.stored, r.isNew, r.err
		case <-r.lead:
		}
	} else {
		q.writing = true
		q.mu.Unlock()
	}
	q.mu.Lock()
	batch := q.queue
	q.queue = nil
	q.mu.Unlock()
	// The batch holds other requests' shares: a client that gives up
	// must not abort their write.
	a.writeReceipts(context.WithoutCancel(ctx), batch)
	q.mu.Lock()
	if len(q.queue) > 0 {
		q.queue[0].lead <- struct{}{}
	} else {
		q.writing = false
	}
	q.mu.Unlock()
	return r.stored, r.isNew, r.err
}

// writeReceipts stores one batch: ids first (an update keeps its share's
// id), then every secret in one write, then every row in one transaction.
// A row never exists without its secret.
func (a *Agent) writeReceipts(ctx context.Context, batch []*receipt) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	pairs := make([][2]string, len(batch))
	for i, r := range batch {
		pairs[i] = [2]string{r.sh.Peer, r.sh.ProviderID}
	}
	ids, err := a.store.ShareIDs(ctx, pairs)
	if err != nil {
		e := a.unavailable("look up shares", err)
		for _, r := range batch {
			r.err = e
		}
		return
	}
	secrets := map[string][]byte{}
	var live []*receipt
	var caps *pendingCaps
	for _, r := range batch {
		key := r.sh.Peer + "\x00" + r.sh.ProviderID
		if id, ok := ids[key]; ok {
			r.sh.ID = id // stored already, or by an earlier receipt of this batch
		} else {
			if caps == nil {
				if caps, err = a.loadPendingCaps(ctx, batch); err != nil {
					r.err = a.unavailable("count pending shares", err)
					caps = nil
					continue
				}
			}
			if r.err = caps.take(r.sh.Peer, r.sh.FromContact); r.err != nil {
				continue
			}
			r.sh.ID, r.isNew = newShareID(), true
			ids[key] = r.sh.ID
		}
		secrets[secretKey(r.sh.ID)] = r.secret
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	fail := func(what string, err error) {
		e := a.unavailable(what, err)
		for _, r := range live {
			r.err = e
		}
	}
	if err := a.putSecrets(ctx, secrets); err != nil {
		fail("store share secrets", err)
		return
	}
	shares := make([]store.Share, len(live))
	for i, r := range live {
		shares[i] = r.sh
	}
	stored, _, err := a.store.PutShares(ctx, shares)
	if err != nil {
		for _, r := range live {
			if r.isNew {
				if derr := a.secrets.Delete(ctx, secretKey(r.sh.ID)); derr != nil {
					a.log.Warn("could not delete the secret of a share that was not stored", "share", r.sh.ID, "err", derr)
				}
			}
		}
		fail("store shares", err)
		return
	}
	for i, r := range live {
		r.stored = stored[i]
	}
}

// putSecrets writes several secrets at once where the store can.
func (a *Agent) putSecrets(ctx context.Context, items map[string][]byte) error {
	if b, ok := a.secrets.(interface {
		PutMany(context.Context, map[string][]byte) error
	}); ok {
		return b.PutMany(ctx, items)
	}
	for k, v := range items {
		if err := a.secrets.Put(ctx, k, v); err != nil {
			return err
		}
	}
	return nil
}

// pendingCaps bounds the shares waiting for the person's decision, per
// sending server and in all: strangers cannot fill the list (or the disk).
// Batches are written one at a time, so counting here is exact.
type pendingCaps struct {
	perPeer, all int
	total        int
	byPeer       map[string]int
}

func (a *Agent) loadPendingCaps(ctx context.Context, batch []*receipt) (*pendingCaps, error) {
	peers := make([]string, len(batch))
	for i, r := range batch {
		peers[i] = r.sh.Peer
	}
	total, byPeer, err := a.store.PendingCounts(ctx, peers)
	if err != nil {
		return nil, err
	}
	return &pendingCaps{perPeer: a.cfg.MaxPendingPerPeer, all: a.cfg.MaxPending, total: total, byPeer: byPeer}, nil
}

// take counts one more pending share from peer, or says why not. A
// contact's share is not held up by strangers filling the total.
func (c *pendingCaps) take(peer string, fromContact bool) error {
	if c.perPeer > 0 && c.byPeer[peer] >= c.perPeer {
		return errorf(http.StatusTooManyRequests, fmt.Sprintf("%s already has %d shares waiting for this user's decision (the most allowed); send more once some are accepted or declined", peer, c.byPeer[peer]))
	}
	if c.all > 0 && c.total >= c.all && !fromContact {
		return errorf(http.StatusTooManyRequests, fmt.Sprintf("this user already has %d shares waiting for a decision (the most allowed); send it again later", c.total))
	}
	c.byPeer[peer]++
	c.total++
	return nil
}
