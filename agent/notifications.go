package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
)

// PeerTrust decides whether a peer may talk to us unsigned: only peers
// that publish no keys (reva, oCIS sign nothing), and never when policy
// requires signatures.
type PeerTrust interface {
	UnsignedAllowed(ctx context.Context, host string) (bool, error)
}

// SetTrust connects the signature policy; nil allows unsigned requests
// unless the configuration requires signatures.
func (a *Agent) SetTrust(t PeerTrust) {
	a.mu.Lock()
	a.trust = t
	a.mu.Unlock()
}

// UnsignedAllowed reports whether an unsigned request attributed to host
// may be accepted.
func (a *Agent) UnsignedAllowed(ctx context.Context, host string) (bool, error) {
	if a.cfg.RequireSignatures {
		return false, nil
	}
	a.mu.Lock()
	t := a.trust
	a.mu.Unlock()
	if t == nil {
		return true, nil
	}
	return t.UnsignedAllowed(ctx, host)
}

// ReceiveNotification applies a notification from peer. A signed request
// names its server through its key; an unsigned one is matched by
// providerId, and only against shares of peers allowed to be unsigned.
func (a *Agent) ReceiveNotification(ctx context.Context, n *ocm.Notification, peer Peer) error {
	if !ocm.KnownNotification(n.NotificationType) {
		return errorf(http.StatusNotImplemented, "notification type "+n.NotificationType+" is not supported")
	}
	var payload ocm.NotificationPayload
	if len(n.Notification) > 0 {
		_ = json.Unmarshal(n.Notification, &payload) // optional fields; the object shape was checked by the parser
	}
	if n.ResourceType == "user" || n.NotificationType == ocm.UserRemoved {
		// Kept only when it is about one of our contacts: what matches
		// nothing would be a stranger's free disk space.
		if n.NotificationType == ocm.UserRemoved && a.contactRemovedByPeer(ctx, n, peer) {
			a.record(ctx, peer.Host, n, "")
		}
		return nil
	}
	sh, err := a.shareForNotification(ctx, n, peer, payload.SharedSecret)
	if err != nil {
		return err
	}
	a.record(ctx, sh.Peer, n, sh.ID)
	switch n.NotificationType {
	case ocm.ShareUnshared:
		if sh.State == store.StateRemoved {
			return nil
		}
		if _, err := a.store.SetShareState(ctx, sh.ID, store.StateRemoved, "unshared by the sender"); err != nil {
			return a.unavailable("mark share removed", err)
		}
		a.forgetSecret(ctx, sh.ID)
		a.log.Info("share unshared by its sender", "share", sh.ID, "peer", sh.Peer)
		a.events.publish("share", sh.ID, store.StateRemoved)
		a.refreshMount(ctx)
	default:
		a.log.Info("notification recorded", "type", n.NotificationType, "share", sh.ID, "peer", sh.Peer)
		a.events.publish("share", sh.ID, sh.State)
	}
	return nil
}

func (a *Agent) shareForNotification(ctx context.Context, n *ocm.Notification, peer Peer, secret string) (store.Share, error) {
	unknown := invalid("providerId", "no share with this providerId from your server")
	if peer.Signed {
		sh, err := a.store.ShareByProviderID(ctx, peer.Host, n.ProviderID)
		if errors.Is(err, store.ErrNotFound) {
			return sh, unknown
		}
		if err != nil {
			return sh, a.unavailable("look up share", err)
		}
		return sh, nil
	}
	candidates, err := a.store.SharesByProviderID(ctx, n.ProviderID)
	if err != nil {
		return store.Share{}, a.unavailable("look up share", err)
	}
	if len(candidates) == 0 {
		return store.Share{}, unknown
	}
	// Anyone can claim to be a server that does not sign: only the share's
	// secret shows that the notification comes from its sender.
	if secret == "" {
		return store.Share{}, errorf(http.StatusForbidden, "an unsigned notification must carry the share's sharedSecret (or be signed)")
	}
	var match []store.Share
	for _, sh := range candidates {
		stored, err := a.ShareSecret(ctx, sh.ID)
		if err != nil || subtle.ConstantTimeCompare([]byte(stored), []byte(secret)) != 1 {
			continue
		}
		if ok, err := a.UnsignedAllowed(ctx, sh.Peer); err != nil || !ok {
			if len(candidates) == 1 {
				return sh, errorf(http.StatusUnauthorized, "this server signs its requests: the notification must be signed")
			}
			continue
		}
		match = append(match, sh)
	}
	switch len(match) {
	case 0:
		return store.Share{}, errorf(http.StatusForbidden, "no share with this providerId and sharedSecret")
	case 1:
		return match[0], nil
	default:
		return store.Share{}, errorf(http.StatusUnauthorized, "providerId is ambiguous; sign the notification")
	}
}

func (a *Agent) record(ctx context.Context, peer string, n *ocm.Notification, shareID string) {
	var m map[string]any
	payload := ""
	if len(n.Notification) > 0 && json.Unmarshal(n.Notification, &m) == nil {
		for k := range m {
			if k == "sharedSecret" || k == "secret" || k == "code" || k == "token" {
				m[k] = "[redacted]"
			}
		}
		b, _ := json.Marshal(m)
		payload = string(b)
		if len(payload) > maxRecordedPayload {
			payload = `{"truncated":true}`
		}
	}
	if err := a.store.AddNotification(ctx, store.Notification{Peer: peer, Type: n.NotificationType,
		ResourceType: n.ResourceType, ProviderID: n.ProviderID, ShareID: shareID, Payload: payload}); err != nil {
		a.log.Warn("could not record a notification", "err", err)
		return
	}
	if err := a.store.PruneNotifications(ctx, maxNotifications, time.Now().Add(-maxNotificationAge)); err != nil {
		a.log.Warn("could not prune recorded notifications", "err", err)
	}
}

// Recorded notifications are history for the person, bounded so that a
// chatty or hostile sender cannot fill the disk.
const (
	maxRecordedPayload = 4 << 10
	maxNotifications   = 1000
	maxNotificationAge = 180 * 24 * time.Hour
)
