package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"

	"github.com/ocm-agent/ocm-agent/store"
)

// Group commit of received shares. A share is answered 201 only once it
// and its secret are durable, and a durable write costs an fsync or two
// whatever its size. So concurrent receipts are written together: the
// first one writes, those arriving meanwhile queue up, and when a batch's
// secrets are written the oldest queued receipt takes the queue as the
// next batch. Under no load a batch is one share and nothing waits.
//
// A batch is written in two stages: its secrets (one secret-store write),
// then its rows (one SQLite transaction), so that a row never exists
// without its secret. The stages of consecutive batches overlap: while
// batch N commits its rows, batch N+1 writes its secrets, and the two
// fsyncs run at once. Batch N+1 sees what N is writing (its ids and
// pending counts, the flight below) as if N were committed; it commits
// after N, and fails if N failed and it relied on N's ids.

// receipt is one received share on its way to storage.
type receipt struct {
	sh     store.Share // ID and Changed are filled in by the batch
	secret []byte
	peer   Peer
	lead   chan struct{} // this receipt's goroutine writes the next batch
	done   chan struct{} // closed once the outcome below is set
	stored store.Share
	isNew  bool
	// accepted: it updated an accepted share (whose cached credentials
	// are then forgotten); sh.Changed says what changed.
	accepted bool
	err      error
}

type receiptQueue struct {
	mu      sync.Mutex
	queue   []*receipt
	writing bool    // a batch is in its first stage
	flight  *flight // the batch in its second stage, if any
	// rows is held by the batch writing its rows; batches take it in
	// turn, so rows are committed in the order of the batches.
	rows sync.Mutex
}

// flight is a batch whose secrets are written, as the next batch needs
// to know it before its rows are committed.
type flight struct {
	ids  map[string]string // receiptKey: id, of every share of the batch
	caps *pendingCaps      // the pending counts with the batch's new shares; nil if it counted none
	// failed is set before rows is released, when the rows were not
	// stored.
	failed bool
}

func receiptKey(sh store.Share) string { return sh.Peer + "\x00" + sh.ProviderID }

// storeReceipt makes sh (with secret) from peer durable, batched with
// concurrent receipts, and reports what was stored, whether it is a new
// share, and what it changed.
func (a *Agent) storeReceipt(ctx context.Context, sh store.Share, secret []byte, peer Peer) *receipt {
	r := &receipt{sh: sh, secret: secret, peer: peer, lead: make(chan struct{}, 1), done: make(chan struct{})}
	q := &a.receipts
	q.mu.Lock()
	q.queue = append(q.queue, r)
	if q.writing {
		q.mu.Unlock()
		select {
		case <-r.done:
			return r
		case <-r.lead:
		}
		q.mu.Lock()
	} else {
		q.writing = true
	}
	batch, prev := q.queue, q.flight
	q.queue = nil
	q.mu.Unlock()
	// The batch holds other requests' shares: a client that gives up
	// must not abort their write.
	a.writeReceipts(context.WithoutCancel(ctx), batch, prev)
	return r
}

// writeReceipts stores one batch: ids first (an update keeps its share's
// id), then every secret in one write, then every row in one transaction.
// prev is the batch still committing its rows, if any.
func (a *Agent) writeReceipts(ctx context.Context, batch []*receipt, prev *flight) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	q := &a.receipts
	f, live, borrowed := a.writeSecrets(ctx, batch, prev)
	q.rows.Lock()
	defer q.rows.Unlock()
	// prev's rows are committed (or failed) now: the next batch may start
	// its first stage, overlapping this one's commit.
	q.mu.Lock()
	q.flight = f
	if len(q.queue) > 0 {
		q.queue[0].lead <- struct{}{}
	} else {
		q.writing = false
	}
	q.mu.Unlock()
	if !a.writeRows(ctx, live, borrowed && prev.failed) {
		f.failed = true
	}
	q.mu.Lock()
	if q.flight == f {
		q.flight = nil
	}
	q.mu.Unlock()
}

// writeSecrets is a batch's first stage: it finds the shares the
// receipts update (checking each update, see checkUpdate), applies the
// caps on pending shares and writes the secrets of the receipts that pass
// (live). borrowed says that some id came from prev, not the database.
func (a *Agent) writeSecrets(ctx context.Context, batch []*receipt, prev *flight) (f *flight, live []*receipt, borrowed bool) {
	f = &flight{ids: map[string]string{}}
	pairs := make([][2]string, len(batch))
	for i, r := range batch {
		pairs[i] = [2]string{r.sh.Peer, r.sh.ProviderID}
	}
	stored, err := a.store.SharesByPeerAndProviderID(ctx, pairs)
	if err != nil {
		e := a.unavailable("look up shares", err)
		for _, r := range batch {
			r.err = e
		}
		return f, nil, false
	}
	secrets := map[string][]byte{}
	for _, r := range batch {
		key := receiptKey(r.sh)
		if old, ok := stored[key]; ok {
			if r.sh.Changed, r.accepted, r.err = a.checkUpdate(ctx, old, r.sh, r.secret, r.peer); r.err != nil {
				continue
			}
			r.sh.ID = old.ID
		} else if id, ok := f.ids[key]; ok {
			r.sh.ID = id // by an earlier receipt of this batch
		} else if id, ok := prevID(prev, key); ok {
			r.sh.ID, borrowed = id, true // by the batch committing now
		} else {
			if f.caps == nil {
				if f.caps, err = a.loadPendingCaps(ctx, batch, prev); err != nil {
					r.err = a.unavailable("count pending shares", err)
					f.caps = nil
					continue
				}
			}
			if r.err = f.caps.take(r.sh.Peer, r.sh.FromContact); r.err != nil {
				continue
			}
			r.sh.ID, r.isNew = newShareID(), true
		}
		f.ids[key] = r.sh.ID
		secrets[secretKey(r.sh.ID)] = r.secret
		live = append(live, r)
	}
	if len(live) == 0 {
		return f, nil, false
	}
	if err := a.putSecrets(ctx, secrets); err != nil {
		e := a.unavailable("store share secrets", err)
		for _, r := range live {
			r.err = e
		}
		f.failed = true // its ids are not to be relied on
		return f, nil, false
	}
	return f, live, borrowed
}

func prevID(prev *flight, key string) (string, bool) {
	if prev == nil {
		return "", false
	}
	id, ok := prev.ids[key]
	return id, ok
}

// writeRows is a batch's second stage: its rows in one transaction. With
// prevFailed, the batch relied on ids of a batch whose rows were not
// stored, and fails too. It reports whether the rows were stored.
func (a *Agent) writeRows(ctx context.Context, live []*receipt, prevFailed bool) bool {
	if len(live) == 0 {
		return true
	}
	var stored []store.Share
	var err error
	if prevFailed {
		err = errors.New("the batch before, whose ids this one took, was not stored")
	} else {
		shares := make([]store.Share, len(live))
		for i, r := range live {
			shares[i] = r.sh
		}
		stored, _, err = a.store.PutShares(ctx, shares)
	}
	if err != nil {
		for _, r := range live {
			if r.isNew {
				if derr := a.secrets.Delete(ctx, secretKey(r.sh.ID)); derr != nil {
					a.log.Warn("could not delete the secret of a share that was not stored", "share", r.sh.ID, "err", derr)
				}
			}
		}
		e := a.unavailable("store shares", err)
		for _, r := range live {
			r.err = e
		}
		return false
	}
	for i, r := range live {
		r.stored = stored[i]
	}
	return true
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
// Batches are counted one at a time, each from where the one before left
// the counts, so counting here is exact.
type pendingCaps struct {
	perPeer, all int
	total        int
	byPeer       map[string]int
}

// loadPendingCaps counts the pending shares of the batch's senders. While
// prev commits, its counts are the database's with its new shares added:
// they are taken over, and only senders it did not count (which it has no
// new shares of) are counted in the database.
func (a *Agent) loadPendingCaps(ctx context.Context, batch []*receipt, prev *flight) (*pendingCaps, error) {
	c := &pendingCaps{perPeer: a.cfg.MaxPendingPerPeer, all: a.cfg.MaxPending, byPeer: map[string]int{}}
	fresh := prev == nil || prev.caps == nil
	if !fresh {
		c.total, c.byPeer = prev.caps.total, maps.Clone(prev.caps.byPeer)
	}
	var peers []string
	for _, r := range batch {
		if _, ok := c.byPeer[r.sh.Peer]; !ok {
			peers = append(peers, r.sh.Peer)
		}
	}
	if len(peers) == 0 && !fresh {
		return c, nil
	}
	total, byPeer, err := a.store.PendingCounts(ctx, peers)
	if err != nil {
		return nil, err
	}
	if fresh {
		c.total = total
	}
	maps.Copy(c.byPeer, byPeer)
	return c, nil
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
