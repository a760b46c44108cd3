package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/discovery"
	"github.com/ocm-agent/ocm-agent/fuse/contentcache"
	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/receiver"
	"github.com/ocm-agent/ocm-agent/store"
)

// SecretStore keeps secrets outside the database (the OS keyring, or an
// encrypted file on headless machines).
type SecretStore interface {
	Put(ctx context.Context, key string, value []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	Backend() string
}

// Mounter is the filesystem as the agent sees it: told which shares are
// accepted, it shows them.
type Mounter interface {
	SetEntries(entries []MountEntry)
}

// MountEntry is one accepted share as the mount needs it.
type MountEntry struct {
	ID       string
	Name     string
	Origin   string
	IsDir    bool
	URL      string
	Writable bool
	// RightsFromServer: the share body gave no list of permissions
	// (Nextcloud's property name): the server's WebDAV says.
	RightsFromServer bool
}

// Version is set by the build.
var Version = "dev"

// Agent is the running daemon's core.
type Agent struct {
	cfg     config.Config
	store   *store.Store
	secrets SecretStore
	log     *slog.Logger
	events  *bus
	started time.Time

	receipts receiptQueue // group commit of received shares
	// mountMu orders refreshes of the mount, so that an older list never
	// lands after a newer one. It is never held across a network call.
	mountMu sync.Mutex
	urls    webdavURLs // shares' WebDAV URLs, resolved in the background (mount.go)
	// mountReports runs what the mount reports outside its operations (access.go).
	mountReports mountReports

	mu            sync.Mutex
	mounter       Mounter
	resolver      URLResolver
	mountErr      string
	errs          []string
	trust         PeerTrust
	secretsStatus SecretsStatus
	certStatus    func() control.Status    // the ACME certificate, if any (acme.go)
	rootFail      map[string]*rootFailures // share id: its root's server errors in a row
	cache         *contentcache.Cache      // content cache of the mount, nil for none (cache.go)
	offline       map[string]bool          // shares whose server the mount cannot reach (cache.go)

	// Published in the discovery document by the parts that implement them.
	capabilities  []string
	jwksURI       string
	legacyKey     *ocm.LegacyPublicKey
	tokenEndPoint string
	inviteDialog  string

	keys       Keys
	discovery  *discovery.Client
	peerClient *http.Client
	tokenMgr   TokenManager

	lifecycle lifecycleState // outbox worker and expiry timer (lifecycle.go)
	pins      pinHolder      // content cache and pins, while mounted (pins.go)
}

// URLResolver turns a share's webdav URI into an absolute URL, discovering
// the sender's WebDAV root where the URI is relative.
type URLResolver interface {
	ResolveWebDAV(ctx context.Context, peer, uri string) (string, error)
}

// Options are the parts an Agent is built from.
type Options struct {
	Config  config.Config
	Store   *store.Store
	Secrets SecretStore
	Logger  *slog.Logger
}

// New builds an agent over an open store and secret store.
func New(o Options) *Agent {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Agent{cfg: o.Config, store: o.Store, secrets: o.Secrets, log: o.Logger, events: newBus(), started: time.Now()}
}

// Config is the configuration the agent runs with.
func (a *Agent) Config() config.Config { return a.cfg }

// Store is the agent's database.
func (a *Agent) Store() *store.Store { return a.store }

// SetMounter connects the filesystem; nil disconnects it.
func (a *Agent) SetMounter(m Mounter, r URLResolver) {
	a.mu.Lock()
	a.mounter, a.resolver = m, r
	a.mu.Unlock()
}

// SetMountError records why the mount is not available ("" when it is).
func (a *Agent) SetMountError(msg string) {
	a.mu.Lock()
	a.mountErr = msg
	a.mu.Unlock()
	a.events.publish("status", "", "")
}

func (a *Agent) recordError(msg string) {
	a.mu.Lock()
	a.errs = append(a.errs, time.Now().UTC().Format(time.RFC3339)+" "+msg)
	if len(a.errs) > 20 {
		a.errs = a.errs[len(a.errs)-20:]
	}
	a.mu.Unlock()
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the platform is broken; nothing safe to do
	}
	return hex.EncodeToString(b[:])
}

// newShareID is a newID whose first 4 bytes are the time in seconds, the
// other 8 random: ids of shares received together sort together, so the
// database inserts them into the same index pages instead of one page per
// share, and a batch's commit stays as small with 10,000 shares stored as
// with none.
func newShareID() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(time.Now().Unix()))
	if _, err := rand.Read(b[4:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

func secretKey(shareID string) string { return "share/" + shareID + "/secret" }

// Peer is who sent a request, as the receiver established it.
type Peer = receiver.Peer

// ReceiveShare stores a Share Creation Notification from peer. It returns
// only once the share and its secret are durable. The returned string is
// the recipient display name for the 201 answer.
func (a *Agent) ReceiveShare(ctx context.Context, ns *ocm.NewShare, peer Peer) (string, error) {
	if !ocm.SameProvider(ns.ShareWith.Host, a.cfg.PublicHost()) || ns.ShareWith.User != a.cfg.User {
		return "", invalid("shareWith", "NOT_FOUND: no such user on this server")
	}
	if !ns.Expiration.IsZero() && !ns.Expiration.After(time.Now()) {
		return "", invalid("expiration", "the share has already expired")
	}
	if err := a.checkPolicy(peer.Host); err != nil {
		return "", err
	}
	fromContact := a.isContact(ctx, shareSender(ns))
	if a.cfg.AcceptFrom == "contacts" && !fromContact {
		return "", errorf(http.StatusForbidden, "this user only accepts shares from contacts: ask them for an invite, or send them one")
	}
	if ns.Secret() == "" {
		return "", invalid("protocol.webdav.sharedSecret", "is required")
	}
	sh := store.Share{
		Peer: peer.Host, ProviderID: ns.ProviderID, Name: stripFormat(ns.Name), Description: stripFormat(ns.Description),
		ShareWith: ns.ShareWith.String(), Owner: ns.Owner.String(), Sender: ns.Sender.String(),
		OwnerDisplayName: stripFormat(ns.OwnerDisplayName), SenderDisplayName: stripFormat(ns.SenderDisplayName),
		ShareType: ns.ShareType, ResourceType: ns.ResourceType, Expiration: ns.Expiration,
		Dialect: string(ns.Dialect), Protocols: ns.Protocols, Requirements: ns.Requirements,
		LegacyCode: ns.Code != "" && (ns.WebDAV == nil || ns.WebDAV.SharedSecret == ""),
		State:      store.StatePending, FromContact: fromContact,
	}
	if peer.Signed {
		sh.SignedBy = peer.Profile + " " + peer.KeyID
	}
	if w := ns.WebDAV; w != nil {
		sh.WebDAVURI, sh.Permissions, sh.LegacyPermissions, sh.AccessTypes, sh.Size = w.URI, w.Permissions, w.LegacyPermissions, w.AccessTypes, w.Size
	}
	if err := a.checkShareURI(ctx, peer.Host, sh.WebDAVURI); err != nil {
		return "", err
	}
	// A re-send of a stored share is checked (checkUpdate) in its batch,
	// against the share as the batch finds it.
	r := a.storeReceipt(ctx, sh, []byte(ns.Secret()), peer)
	if r.err != nil {
		return "", r.err
	}
	stored, isNew, accepted, change := r.stored, r.isNew, r.accepted, r.sh.Changed
	a.log.Info("share received", "share", stored.ID, "name", stored.Name, "from", stored.Sender,
		"peer", stored.Peer, "dialect", stored.Dialect, "signed", peer.Signed, "update", !isNew)
	if accepted && !isNew {
		// Whatever the sender changed, credentials cached for the old
		// secret or address are not used again.
		a.resetAccess(ctx, stored.ID)
		if change != "" {
			a.log.Warn("the sender changed an accepted share", "share", stored.ID, "peer", stored.Peer, "change", change)
		}
	}
	a.events.publish("share", stored.ID, stored.State)
	if !stored.Expiration.IsZero() {
		a.kickExpiry()
	}
	if fromContact && a.cfg.AutoAcceptContacts && stored.State == store.StatePending {
		if _, err := a.AcceptShare(ctx, stored.ID); err != nil {
			a.log.Warn("could not accept a contact's share automatically", "share", stored.ID, "err", err)
		}
		return a.cfg.DisplayName, nil // AcceptShare refreshed the mount
	}
	if stored.State == store.StateAccepted {
		a.refreshMount(ctx)
	}
	return a.cfg.DisplayName, nil
}

// unavailable maps a storage failure onto 503, logging the cause.
func (a *Agent) unavailable(what string, err error) error {
	a.log.Error("storage failure", "op", what, "err", err)
	a.recordError(what + ": " + err.Error())
	return &Error{Status: http.StatusServiceUnavailable, Message: "TEMPORARILY_UNAVAILABLE"}
}

// checkPolicy applies the allow and deny lists to a peer host.
func (a *Agent) checkPolicy(host string) error {
	if !a.serverAllowed(host) {
		return errorf(http.StatusForbidden, "this server is not allowed to share with this user")
	}
	return nil
}

// serverAllowed applies the allow and deny lists to a peer host (an entry
// without a port matches every port of its host).
func (a *Agent) serverAllowed(host string) bool {
	for _, d := range a.cfg.DenyServers {
		if ocm.SameProvider(d, host) || ocm.SameProvider(d, ocm.HostOnly(host)) {
			return false
		}
	}
	if len(a.cfg.AllowServers) > 0 {
		for _, d := range a.cfg.AllowServers {
			if ocm.SameProvider(d, host) || ocm.SameProvider(d, ocm.HostOnly(host)) {
				return true
			}
		}
		return false
	}
	return true
}

// Shares lists shares: all of them, or the live ones (pending, accepted,
// error, revoked), with what the mount knows of them now.
func (a *Agent) Shares(ctx context.Context, all bool) ([]store.Share, error) {
	var shares []store.Share
	var err error
	if all {
		shares, err = a.store.Shares(ctx)
	} else {
		shares, err = a.store.Shares(ctx, store.StatePending, store.StateAccepted, store.StateError, store.StateRevoked)
	}
	if err != nil {
		return shares, err
	}
	return a.withLive(shares), nil
}

// Share returns one share by id, with what the mount knows of it now.
func (a *Agent) Share(ctx context.Context, id string) (store.Share, error) {
	sh, err := a.store.Share(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return sh, fmt.Errorf("no share with id %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return sh, err
	}
	return a.withLive([]store.Share{sh})[0], nil
}

// AcceptShare accepts a pending share (or retries one in error or
// revoked: only a pending share's acceptance is told to the sender).
func (a *Agent) AcceptShare(ctx context.Context, id string) (store.Share, error) {
	sh, err := a.changeState(ctx, id, store.StateAccepted, store.StatePending, store.StateError, store.StateRevoked)
	if err != nil {
		return sh, err
	}
	a.refreshMount(ctx)
	return sh, nil
}

// DeclineShare declines a pending share and forgets its secret.
func (a *Agent) DeclineShare(ctx context.Context, id string) (store.Share, error) {
	sh, err := a.changeState(ctx, id, store.StateDeclined, store.StatePending, store.StateError)
	if err != nil {
		return sh, err
	}
	a.forgetSecret(ctx, id)
	return sh, nil
}

// RemoveShare removes an accepted share on the user's side.
func (a *Agent) RemoveShare(ctx context.Context, id string) (store.Share, error) {
	sh, err := a.changeState(ctx, id, store.StateRemoved, store.StateAccepted, store.StatePending, store.StateError, store.StateRevoked)
	if err != nil {
		return sh, err
	}
	a.rememberMountName(ctx, id)
	a.forgetSecret(ctx, id)
	a.refreshMount(ctx)
	return sh, nil
}

// changeState moves a share to state to on the user's decision, queueing
// the notification that tells its sender in the same transaction.
func (a *Agent) changeState(ctx context.Context, id, to string, from ...string) (store.Share, error) {
	n := a.notificationFor(ctx, id, to)
	sh, queued, err := a.store.SetShareStateNotify(ctx, id, to, "", n, from...)
	a.notificationQueued(ctx, n, sh, queued)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return sh, fmt.Errorf("no share with id %q: %w", id, ErrNotFound)
	case errors.Is(err, store.ErrConflict):
		return sh, fmt.Errorf("share %s is %s and cannot become %s: %w", id, sh.State, to, ErrConflict)
	case err != nil:
		return sh, err
	}
	a.log.Info("share state changed", "share", id, "state", to)
	a.events.publish("share", id, to)
	return sh, nil
}

func (a *Agent) forgetSecret(ctx context.Context, id string) {
	a.mu.Lock()
	tm := a.tokenMgr
	a.mu.Unlock()
	if tm != nil {
		if err := tm.Forget(context.WithoutCancel(ctx), id); err != nil {
			a.log.Warn("could not forget a share's tokens", "share", id, "err", err)
		}
	}
	if err := a.secrets.Delete(context.WithoutCancel(ctx), secretKey(id)); err != nil {
		a.log.Warn("could not delete a share's secret", "share", id, "err", err)
		a.recordError("delete secret of share " + id + ": " + err.Error())
	}
}

// ShareSecret returns the stored secret of a share (for the token code).
func (a *Agent) ShareSecret(ctx context.Context, id string) (string, error) {
	b, err := a.secrets.Get(ctx, secretKey(id))
	if err != nil {
		return "", fmt.Errorf("secret of share %s: %w", id, err)
	}
	return string(b), nil
}

// Subscribe streams events after seq; see bus.subscribe.
func (a *Agent) Subscribe(after uint64) ([]Event, <-chan Event, func()) {
	return a.events.subscribe(after)
}

// refreshMount tells the mount which shares are accepted now. It does not
// wait on any peer: a share whose WebDAV URL is not known yet is shown
// anyway (its reads fail until it is found, see webdavURL).
func (a *Agent) refreshMount(ctx context.Context) {
	a.mountMu.Lock()
	defer a.mountMu.Unlock()
	a.mu.Lock()
	m, r := a.mounter, a.resolver
	a.mu.Unlock()
	if m == nil {
		return
	}
	shares, err := a.store.Shares(ctx, store.StateAccepted)
	if err != nil {
		a.log.Error("cannot list accepted shares for the mount", "err", err)
		return
	}
	a.forgetRootFailures(shares)
	entries := make([]MountEntry, 0, len(shares))
	ids := make(map[string]bool, len(shares))
	for _, sh := range shares {
		ids[sh.ID] = true
		entries = append(entries, MountEntry{ID: sh.ID, Name: sh.Name, Origin: sh.Sender,
			IsDir: sh.Kind() == "folder", URL: a.webdavURL(sh, r), Writable: slices.Contains(sh.Permissions, "write"),
			RightsFromServer: len(sh.Permissions) == 0 && sh.LegacyPermissions != ""})
	}
	a.keepURLs(ids)
	m.SetEntries(entries)
	a.dropCachedShares(ids)
}

// foreignShare moves an accepted share whose address is not on its
// sender's server to the error state, where the person sees why; its
// credentials are never sent there.
func (a *Agent) foreignShare(ctx context.Context, sh store.Share, err error) {
	msg := "not mounted: " + err.Error() + " (" + sh.Peer + "); credentials are only sent to the sharing server"
	if _, serr := a.store.SetShareState(ctx, sh.ID, store.StateError, msg, store.StateAccepted); serr != nil {
		a.log.Warn("could not mark a share in error", "share", sh.ID, "err", serr)
		return
	}
	a.log.Warn("share moved to error", "share", sh.ID, "reason", msg)
	a.recordError("share " + sh.Name + ": " + msg)
	a.events.publish("share", sh.ID, store.StateError)
}
