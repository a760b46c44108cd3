package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
)

// Contacts lists the address book.
func (a *Agent) Contacts(ctx context.Context) ([]store.Contact, error) { return a.store.Contacts(ctx) }

// RemoveContact deletes a contact; shares from them count as a stranger's
// from then on. The contact is not told (the spec lets either side forget
// the other silently).
func (a *Agent) RemoveContact(ctx context.Context, id string) (store.Contact, error) {
	c, err := a.store.DeleteContact(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return c, fmt.Errorf("no contact with id %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, err
	}
	a.log.Info("contact removed", "contact", c.Address)
	a.events.publish("contact", c.ID, "removed")
	return c, nil
}

// isContact reports whether addr is an active contact. A lookup failure
// counts as "not a contact": the share is then treated as a stranger's,
// which is the cautious side.
func (a *Agent) isContact(ctx context.Context, addr ocm.Address) bool {
	if addr.User == "" || addr.Host == "" {
		return false
	}
	c, err := a.store.ContactByAddress(ctx, addr.String())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			a.log.Warn("cannot look up a contact", "err", err)
		}
		return false
	}
	return c.State == store.ContactActive
}

// shareSender is whom a share comes from for the address book: its
// sender, or its owner when a dialect names no sender.
func shareSender(ns *ocm.NewShare) ocm.Address {
	if ns.Sender.User != "" {
		return ns.Sender
	}
	return ns.Owner
}

// contactRemovedByPeer applies USER_REMOVED: the peer's user no longer
// trusts ours. Only a signed notification can say so (an unsigned one
// names no server we could trust); the contact is marked, not deleted, so
// the user sees what happened, and stops counting as a contact. The
// notification names the user by providerId.
func (a *Agent) contactRemovedByPeer(ctx context.Context, n *ocm.Notification, peer Peer) bool {
	if !peer.Signed || peer.Host == "" {
		a.log.Info("unsigned USER_REMOVED ignored: it cannot be attributed to a server")
		return false
	}
	addr := ocm.Address{User: n.ProviderID, Host: peer.Host}
	if full, err := ocm.ParseAddress(n.ProviderID); err == nil && ocm.SameProvider(full.Host, peer.Host) {
		addr = ocm.Address{User: full.User, Host: peer.Host}
	}
	c, err := a.store.MarkContactRemovedByPeer(ctx, addr.String())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			a.log.Warn("cannot mark a contact removed", "contact", addr.String(), "err", err)
		}
		return false
	}
	a.log.Info("contact removed by their server", "contact", c.Address)
	a.events.publish("contact", c.ID, store.ContactRemovedByPeer)
	return true
}
