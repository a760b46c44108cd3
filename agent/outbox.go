package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ocm-agent/ocm-agent/discovery"
	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

// RetryPolicy is how the outbox retries a notification the peer did not
// take: after First, then twice as long each time (with jitter) up to
// Max, until GiveUp after it was queued.
type RetryPolicy struct {
	First  time.Duration
	Max    time.Duration
	GiveUp time.Duration
}

// DefaultRetryPolicy retries for two days: a laptop's peer may be down
// over a weekend.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{First: 10 * time.Second, Max: time.Hour, GiveUp: 48 * time.Hour}
}

// SetNotifyRetry replaces the outbox's retry policy (zero fields keep
// their defaults).
func (a *Agent) SetNotifyRetry(p RetryPolicy) { a.setNotifyRetry(p, true) }

// setNotifyRetry sets the policy; without replace, only when none was set.
func (a *Agent) setNotifyRetry(p RetryPolicy, replace bool) {
	d := DefaultRetryPolicy()
	if p.First <= 0 {
		p.First = d.First
	}
	if p.Max <= 0 {
		p.Max = max(d.Max, p.First)
	}
	if p.GiveUp <= 0 {
		p.GiveUp = d.GiveUp
	}
	l := a.life()
	l.mu.Lock()
	if replace || !l.retrySet {
		l.retry, l.retrySet = p, true
	}
	l.mu.Unlock()
}

func (a *Agent) retryPolicy() RetryPolicy {
	l := a.life()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.retrySet {
		return DefaultRetryPolicy()
	}
	return l.retry
}

// backoff is the delay before attempt n+1 after n failures: First·2^(n-1)
// capped at Max, drawn from its upper half so that many agents retrying
// one peer spread out.
func backoff(p RetryPolicy, n int, retryAfter time.Duration) time.Duration {
	d := p.First
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, p.Max)
	}
	return d
}

func outboxSecretKey(id string) string { return "outbox/" + id + "/secret" }

// outboxPass sizes: items per pass, and the timeout of one delivery.
const (
	outboxBatch   = 50
	outboxTimeout = 30 * time.Second
	maxNotifyBody = 64 << 10
)

// runOutbox delivers queued notifications until ctx ends: at once when
// kicked, otherwise when the next one is due.
func (a *Agent) runOutbox(ctx context.Context) {
	l := a.life()
	for ctx.Err() == nil {
		troubled := a.flushOutbox(ctx)
		wait := time.Hour
		if next, ok, err := a.store.NextOutboxAttempt(ctx); err != nil {
			troubled = true
		} else if ok {
			wait = min(wait, time.Until(next))
		}
		if troubled {
			wait = max(wait, time.Second) // never spin on a failing database
		}
		wait = max(wait, 5*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-l.outboxKick:
		case <-t.C:
		}
		t.Stop()
	}
}

// flushOutbox sends what is due; it reports whether the database failed.
func (a *Agent) flushOutbox(ctx context.Context) (troubled bool) {
	items, err := a.store.DueOutbox(ctx, time.Now(), outboxBatch)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("cannot read the notification outbox", "err", err)
		}
		return true
	}
	p := a.retryPolicy()
	// A peer that failed in this pass is not tried again in it: its other
	// items wait as long as the first.
	failed := map[string]time.Time{}
	for _, it := range items {
		if ctx.Err() != nil {
			return false
		}
		if next, ok := failed[it.Peer]; ok {
			it.NextAttempt = next
			if err := a.store.UpdateOutbox(ctx, it, ""); err != nil && !errors.Is(err, store.ErrConflict) {
				troubled = true
			}
			continue
		}
		it = a.attempt(ctx, it, p)
		if it.State == store.OutboxPending {
			failed[it.Peer] = it.NextAttempt
		}
		if err := a.saveAttempt(ctx, it); err != nil {
			troubled = true
		}
	}
	return troubled
}

// attempt sends one item and returns it with its new state.
func (a *Agent) attempt(ctx context.Context, it store.OutboxItem, p RetryPolicy) store.OutboxItem {
	status, retryAfter, err := a.deliver(ctx, it)
	it.Attempts++
	it.LastStatus = status
	it.LastError = ""
	if err != nil {
		it.LastError = err.Error()
	}
	switch {
	case err == nil && status >= 200 && status < 300:
		it.State = store.OutboxSent
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed || status == http.StatusGone || status == http.StatusNotImplemented:
		it.State = store.OutboxUnsupported
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
		// The peer's final answer (a 409 conflict, a 401 after both
		// signature profiles were tried): repeating it would not change it.
		it.State = store.OutboxFailed
		it.LastError = "refused by " + it.Peer + ": " + it.LastError
	case time.Since(it.CreatedAt) >= p.GiveUp:
		it.State = store.OutboxFailed
		it.LastError = fmt.Sprintf("not delivered within %s (last: %s)", p.GiveUp, it.LastError)
	default:
		it.State = store.OutboxPending
		it.NextAttempt = time.Now().Add(backoff(p, it.Attempts, retryAfter))
		// Do not retry past the give-up time by more than one attempt.
		if deadline := it.CreatedAt.Add(p.GiveUp); it.NextAttempt.After(deadline) {
			it.NextAttempt = deadline
		}
	}
	return it
}

// saveAttempt records an attempt and tells the share (and the user) how
// it went.
func (a *Agent) saveAttempt(ctx context.Context, it store.OutboxItem) error {
	var notify string
	switch it.State {
	case store.OutboxSent:
		notify = store.NotifySent
		a.log.Info("notification delivered", "type", it.Type, "share", it.ShareID, "peer", it.Peer, "attempts", it.Attempts)
	case store.OutboxUnsupported:
		notify = store.NotifyUnsupported + ": " + it.Peer + " does not take notifications"
		a.log.Info("peer does not take notifications; not retried", "type", it.Type, "share", it.ShareID, "peer", it.Peer, "status", it.LastStatus)
	case store.OutboxFailed:
		notify = store.NotifyFailed + ": " + it.LastError
		a.log.Warn("notification not delivered; given up", "type", it.Type, "share", it.ShareID, "peer", it.Peer, "attempts", it.Attempts, "err", it.LastError)
		a.recordError("could not tell " + it.Peer + " about share " + it.ShareID + " (" + it.Type + "): " + it.LastError)
	default:
		notify = store.NotifyQueued + ": attempt " + strconv.Itoa(it.Attempts) + " failed (" + it.LastError + "), next at " + it.NextAttempt.UTC().Format(time.RFC3339)
		a.log.Info("notification not delivered; will retry", "type", it.Type, "share", it.ShareID, "peer", it.Peer,
			"attempts", it.Attempts, "next", it.NextAttempt, "err", it.LastError)
	}
	err := a.store.UpdateOutbox(ctx, it, notify)
	if errors.Is(err, store.ErrConflict) {
		return nil // superseded while it was being sent
	}
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("cannot record a notification attempt", "err", err)
		}
		return err
	}
	if it.State != store.OutboxPending {
		if it.WithSecret {
			a.deleteSecret(ctx, outboxSecretKey(it.ID))
		}
		if sh, err := a.store.Share(ctx, it.ShareID); err == nil {
			a.events.publish("share", sh.ID, sh.State)
		}
		if it.State == store.OutboxFailed {
			a.events.publish("status", "", "")
		}
	}
	return nil
}

func (a *Agent) deleteSecret(ctx context.Context, key string) {
	if err := a.secrets.Delete(context.WithoutCancel(ctx), key); err != nil {
		a.log.Warn("could not delete a secret", "key", key, "err", err)
	}
}

// deliver POSTs the notification to the peer's <endPoint>/notifications,
// signed by the peer client. It returns the status (0 when there was no
// answer), a Retry-After, and what went wrong.
func (a *Agent) deliver(ctx context.Context, it store.OutboxItem) (int, time.Duration, error) {
	dc, pc := a.Discovery(), a.PeerClient()
	if dc == nil || pc == nil {
		return 0, 0, errors.New("the agent has no peer client yet")
	}
	ctx, cancel := context.WithTimeout(ctx, outboxTimeout)
	defer cancel()
	res, err := dc.Discover(ctx, it.Peer)
	if err != nil {
		return 0, 0, fmt.Errorf("discover %s: %w", it.Peer, err)
	}
	target, err := apiURL(res, "notifications")
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", it.Peer, err)
	}
	payload := map[string]string{"message": notificationMessage(it.Type)}
	var secret string
	if it.WithSecret {
		b, err := a.secrets.Get(ctx, outboxSecretKey(it.ID))
		switch {
		case err == nil:
			secret = string(b)
			payload["sharedSecret"] = secret
		case !errors.Is(err, tokens.ErrSecretNotFound):
			return 0, 0, fmt.Errorf("read the share's secret for the notification: %w", err)
		}
	}
	inner, _ := json.Marshal(payload)
	body, err := json.Marshal(ocm.Notification{NotificationType: it.Type, ResourceType: it.ResourceType,
		ProviderID: it.ProviderID, Notification: inner})
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("%s advertises an unusable end point", it.Peer)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := pc.Do(req)
	if err != nil {
		return 0, 0, errors.New(scrub(redactURLError(err), secret))
	}
	defer resp.Body.Close()
	data, _ := discovery.ReadLimited(resp.Body, maxNotifyBody)
	var retryAfter time.Duration
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	return resp.StatusCode, retryAfter, fmt.Errorf("HTTP %d%s", resp.StatusCode, peerMessage(data, secret))
}

func notificationMessage(typ string) string {
	switch typ {
	case ocm.ShareAccepted:
		return "Recipient accepted the share"
	case ocm.ShareDeclined:
		return "Recipient declined the share"
	case ocm.ShareUnshared:
		return "Recipient removed the share"
	}
	return typ
}
