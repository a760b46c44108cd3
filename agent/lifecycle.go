package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
)

// lifecycleState is the agent's share lifecycle machinery: the wake-up
// channels of the outbox worker and the expiry timer, and the retry policy.
// Its zero value is ready to use.
type lifecycleState struct {
	once       sync.Once
	outboxKick chan struct{}
	expiryKick chan struct{}

	mu       sync.Mutex
	retry    RetryPolicy
	retrySet bool
}

func (a *Agent) life() *lifecycleState {
	l := &a.lifecycle
	l.once.Do(func() {
		l.outboxKick = make(chan struct{}, 1)
		l.expiryKick = make(chan struct{}, 1)
	})
	return l
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// kickOutbox wakes the outbox worker (something was queued).
func (a *Agent) kickOutbox() { kick(a.life().outboxKick) }

// kickExpiry re-arms the expiry timer (a share with an expiration arrived).
func (a *Agent) kickExpiry() { kick(a.life().expiryKick) }

// RunBackground runs the outbox worker and the expiry timer until ctx
// ends. The retry policy is the one SetNotifyRetry set (the daemon sets
// it from notify-retry, notify-retry-max and notify-give-up), else the
// default.
func (a *Agent) RunBackground(ctx context.Context) {
	l := a.life()
	l.mu.Lock()
	if !l.retrySet {
		l.retry, l.retrySet = DefaultRetryPolicy(), true
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.runOutbox(ctx) }()
	go func() { defer wg.Done(); a.runExpiry(ctx) }()
	wg.Wait()
}

// notificationFor decides what the sender is told when the user moves a
// share to state: SHARE_ACCEPTED on accepting a pending share,
// SHARE_DECLINED on declining or removing a pending one (or an accepted
// one whose acceptance was never sent: it is superseded), SHARE_UNSHARED
// on removing an accepted one. For senders that verify the share's secret
// in notifications (the OCM 1.0 options form Nextcloud sends), the secret
// is copied to the secret store under the outbox item's key, since the
// share's own is deleted with the decision.
func (a *Agent) notificationFor(ctx context.Context, id, to string) *store.Notify {
	n := &store.Notify{ID: newID()}
	switch to {
	case store.StateAccepted:
		n.Type, n.OnlyFrom = ocm.ShareAccepted, []string{store.StatePending}
	case store.StateDeclined, store.StateRemoved:
		n.Type, n.Supersede = ocm.ShareDeclined, []string{ocm.ShareAccepted}
	default:
		return nil
	}
	sh, err := a.store.Share(ctx, id)
	if err != nil {
		return n // the state change reports the problem
	}
	if to == store.StateRemoved && sh.State != store.StatePending && a.acceptanceWentOut(ctx, id) {
		n.Type, n.Supersede = ocm.ShareUnshared, nil
	}
	if sh.Dialect == string(ocm.DialectLegacyOptions) {
		if secret, err := a.secrets.Get(ctx, secretKey(id)); err == nil {
			if err := a.secrets.Put(ctx, outboxSecretKey(n.ID), secret); err == nil {
				n.WithSecret = true
			} else {
				a.log.Warn("could not keep the share's secret for the notification", "share", id, "err", err)
			}
		}
	}
	return n
}

// acceptanceWentOut reports whether a SHARE_ACCEPTED for the share left
// the outbox (delivered, or refused or given up on: the sender may have
// taken it all the same); a pending one is superseded by a decline.
func (a *Agent) acceptanceWentOut(ctx context.Context, id string) bool {
	items, err := a.store.OutboxForShare(ctx, id)
	if err != nil {
		return true
	}
	for _, it := range items {
		if it.Type == ocm.ShareAccepted && it.State == store.OutboxPending {
			return false
		}
	}
	return true
}

// notificationQueued finishes a state change that queued n (or did not):
// it drops the copied secrets nobody will send and wakes the worker.
func (a *Agent) notificationQueued(ctx context.Context, n *store.Notify, sh store.Share, queued bool) {
	if n == nil {
		return
	}
	if !queued {
		if n.WithSecret {
			a.deleteSecret(ctx, outboxSecretKey(n.ID))
		}
		return
	}
	items, lerr := a.store.OutboxForShare(ctx, sh.ID)
	if lerr == nil {
		for _, it := range items {
			if it.State == store.OutboxSuperseded && it.WithSecret {
				a.deleteSecret(ctx, outboxSecretKey(it.ID))
			}
		}
	}
	a.kickOutbox()
}

// runExpiry removes shares when their expiration passes: a timer set to
// the next expiration, re-armed when a share arrives.
func (a *Agent) runExpiry(ctx context.Context) {
	l := a.life()
	for ctx.Err() == nil {
		troubled := a.expireShares(ctx)
		wait := time.Hour
		if next, ok, err := a.store.NextExpiry(ctx); err != nil {
			troubled = true
		} else if ok {
			wait = min(wait, time.Until(next)+10*time.Millisecond)
		}
		if troubled {
			wait = max(wait, time.Second)
		}
		wait = max(wait, 5*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-l.expiryKick:
		case <-t.C:
		}
		t.Stop()
	}
}

// expireShares removes every live share whose expiration has passed:
// state removed, secret and tokens forgotten, mount refreshed. It reports
// whether the database failed.
func (a *Agent) expireShares(ctx context.Context) (troubled bool) {
	shares, err := a.store.ExpiredShares(ctx, time.Now())
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("cannot look for expired shares", "err", err)
		}
		return true
	}
	mounted := false
	for _, sh := range shares {
		_, err := a.store.SetShareState(ctx, sh.ID, store.StateRemoved, "expired", store.StatePending, store.StateAccepted, store.StateError)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue // decided meanwhile
		}
		if err != nil {
			if ctx.Err() == nil {
				a.log.Error("cannot remove an expired share", "share", sh.ID, "err", err)
			}
			troubled = true
			continue
		}
		a.forgetSecret(ctx, sh.ID)
		a.log.Info("share expired", "share", sh.ID, "name", sh.Name, "expiration", sh.Expiration)
		a.events.publish("share", sh.ID, store.StateRemoved)
		mounted = mounted || sh.State == store.StateAccepted
	}
	if mounted {
		a.refreshMount(ctx)
	}
	return troubled
}

// EnableLifecycle switches on invites, contacts and the share lifecycle
// in a started daemon: it advertises the invites capability (publishing
// the discovery documents again), serves the invite dialog page at
// InviteDialogPath, adds the control routes, and runs the
// outbox worker and the expiry timer until ctx ends. Serve calls it
// before it starts serving.
func (d *Daemon) EnableLifecycle(ctx context.Context) {
	// The configuration's policy, unless one was set already (tests).
	d.Agent.setNotifyRetry(RetryPolicy{First: d.cfg.NotifyRetry.Duration, Max: d.cfg.NotifyRetryMax.Duration, GiveUp: d.cfg.NotifyGiveUp.Duration}, false)
	d.Agent.EnableInvites()
	if d.Receiver != nil {
		cur, legacy := d.Agent.DiscoveryDocs()
		if err := d.Receiver.SetDiscovery(cur, legacy); err != nil {
			d.log.Error("cannot publish the discovery document with invites", "err", err)
		}
	}
	if d.public != nil && d.public.Handler != nil {
		// The invite dialog page sits next to the OCM API on the public
		// endpoint (the receiver serves only the API).
		api, dialog := d.public.Handler, d.Agent.InviteDialogHandler()
		d.public.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == InviteDialogPath {
				dialog.ServeHTTP(w, r)
				return
			}
			api.ServeHTTP(w, r)
		})
	}
	go d.Agent.RunBackground(ctx)
}

// ParseTTL reads an invite lifetime: a Go duration ("36h", "90m") or a
// number of days ("7d").
func ParseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 365 {
			return 0, fmt.Errorf("%q: expected a number of days from 1 to 365, like 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: expected a duration like 7d, 36h or 90m", s)
	}
	return d, nil
}
