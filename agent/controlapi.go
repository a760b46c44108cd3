package agent

import (
	"context"
	"errors"
	"net/http"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
)

// ControlBackend adapts the agent to the control API. The API's types are
// control's own: the rows of the store are converted field by field, so
// that a column can be added without the API showing it.
func (a *Agent) ControlBackend() control.Backend { return controlBackend{a} }

type controlBackend struct{ a *Agent }

func shareToControl(sh store.Share) control.Share {
	return control.Share{
		ID: sh.ID, Peer: sh.Peer, ProviderID: sh.ProviderID, Name: sh.Name, Description: sh.Description,
		ShareWith: sh.ShareWith, Owner: sh.Owner, Sender: sh.Sender,
		OwnerDisplayName: sh.OwnerDisplayName, SenderDisplayName: sh.SenderDisplayName,
		ShareType: sh.ShareType, ResourceType: sh.ResourceType, Expiration: sh.Expiration, Dialect: sh.Dialect,
		Protocols: sh.Protocols, WebDAVURI: sh.WebDAVURI, Permissions: sh.Permissions,
		LegacyPermissions: sh.LegacyPermissions, Requirements: sh.Requirements, AccessTypes: sh.AccessTypes,
		Size: sh.Size, LegacyCode: sh.LegacyCode, SignedBy: sh.SignedBy, State: sh.State, Error: sh.Error,
		CreatedAt: sh.CreatedAt, UpdatedAt: sh.UpdatedAt, FromContact: sh.FromContact, NotifyState: sh.NotifyState,
		Changed: sh.Changed,
		Kind:    sh.Kind(), UnreachableSince: sh.UnreachableSince, UnreachableError: sh.UnreachableError,
		NotUploaded: sh.NotUploaded, KeptIn: sh.KeptIn,
	}
}

func inviteToControl(inv store.Invite) control.Invite {
	return control.Invite{
		ID: inv.ID, Note: inv.Note, State: inv.State, CreatedAt: inv.CreatedAt, ExpiresAt: inv.ExpiresAt,
		AcceptedAt: inv.AcceptedAt, AcceptedBy: inv.AcceptedBy, ContactID: inv.ContactID,
	}
}

func contactToControl(c store.Contact) control.Contact {
	return control.Contact{
		ID: c.ID, Address: c.Address, UserID: c.UserID, Server: c.Server, Name: c.Name, Email: c.Email,
		Source: c.Source, InviteID: c.InviteID, State: c.State, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

// toControl converts what a store call returned, keeping its error.
func toControl[T, W any](conv func(T) W) func(T, error) (W, error) {
	return func(v T, err error) (W, error) { return conv(v), err }
}

func toControlList[T, W any](conv func(T) W) func([]T, error) ([]W, error) {
	return func(l []T, err error) ([]W, error) {
		out := make([]W, len(l))
		for i, v := range l {
			out[i] = conv(v)
		}
		return out, err
	}
}

func (b controlBackend) Status(ctx context.Context) control.Status { return b.a.Status(ctx) }

func (b controlBackend) Shares(ctx context.Context, all bool) ([]control.Share, error) {
	return toControlList(shareToControl)(b.a.Shares(ctx, all))
}

func (b controlBackend) Share(ctx context.Context, id string) (control.Share, error) {
	return toControl(shareToControl)(b.a.Share(ctx, id))
}

func (b controlBackend) AcceptShare(ctx context.Context, id string) (control.Share, error) {
	return toControl(shareToControl)(b.a.AcceptShare(ctx, id))
}

func (b controlBackend) DeclineShare(ctx context.Context, id string) (control.Share, error) {
	return toControl(shareToControl)(b.a.DeclineShare(ctx, id))
}

func (b controlBackend) RemoveShare(ctx context.Context, id string) (control.Share, error) {
	return toControl(shareToControl)(b.a.RemoveShare(ctx, id))
}

func (b controlBackend) Invites(ctx context.Context) ([]control.Invite, error) {
	return toControlList(inviteToControl)(b.a.Invites(ctx))
}

func (b controlBackend) CreateInvite(ctx context.Context, req control.InviteRequest) (control.CreatedInvite, error) {
	ttl, err := ParseTTL(req.Expires)
	if err != nil {
		return control.CreatedInvite{}, errorf(http.StatusBadRequest, "expires "+err.Error())
	}
	ci, err := b.a.CreateInvite(ctx, req.Note, ttl)
	return control.CreatedInvite{Invite: inviteToControl(ci.Invite), InviteString: ci.InviteString, Link: ci.Link}, err
}

func (b controlBackend) RevokeInvite(ctx context.Context, id string) (control.Invite, error) {
	return toControl(inviteToControl)(b.a.RevokeInvite(ctx, id))
}

func (b controlBackend) AcceptInvite(ctx context.Context, req control.AcceptInviteRequest) (control.Contact, error) {
	var inv ocm.Invite
	var err error
	switch {
	case req.Invite != "" && (req.Token != "" || req.Provider != ""):
		err = errors.New("give either an invite or a token and a provider, not both")
	case req.Invite != "":
		inv, err = ocm.ParseInvite(req.Invite)
	case req.Token != "" || req.Provider != "":
		inv, err = ocm.ParseInviteParts(req.Token, req.Provider)
	default:
		err = errors.New("no invite given: paste the invite code or link you received")
	}
	if err != nil {
		return control.Contact{}, errorf(http.StatusBadRequest, err.Error())
	}
	return toControl(contactToControl)(b.a.AcceptInvite(ctx, inv))
}

func (b controlBackend) Contacts(ctx context.Context) ([]control.Contact, error) {
	return toControlList(contactToControl)(b.a.Contacts(ctx))
}

func (b controlBackend) RemoveContact(ctx context.Context, id string) (control.Contact, error) {
	return toControl(contactToControl)(b.a.RemoveContact(ctx, id))
}

func (b controlBackend) Subscribe(after uint64) ([]control.Event, <-chan control.Event, func()) {
	return b.a.Subscribe(after)
}

// SecretsStatus is what the secret store reported at start.
type SecretsStatus struct {
	Backend  string
	Reason   string
	Unlocked bool
}

// SetSecretsStatus records the secret store's state for status reports.
func (a *Agent) SetSecretsStatus(s SecretsStatus) {
	a.mu.Lock()
	a.secretsStatus = s
	a.mu.Unlock()
}

// SetCertStatus connects the certificate manager: f fills the Cert*
// fields of the status.
func (a *Agent) SetCertStatus(f func() control.Status) {
	a.mu.Lock()
	a.certStatus = f
	a.mu.Unlock()
}

// Status reports the daemon's state.
func (a *Agent) Status(ctx context.Context) control.Status {
	a.mu.Lock()
	st := control.Status{
		Version: Version, User: a.cfg.User, Address: a.cfg.PeerAddress(), PublicURL: a.cfg.PublicURL,
		Listen: a.cfg.Listen, Mount: a.cfg.Mount, SecretsBackend: a.secrets.Backend(),
		SecretsReason: a.secretsStatus.Reason, KeyringUnlocked: a.secretsStatus.Unlocked,
		Errors: append([]string(nil), a.errs...), StartedAt: a.started.UTC(),
	}
	switch {
	case a.cfg.Mount == "":
		st.MountState = "disabled"
	case a.mountErr != "":
		st.MountState = "error: " + a.mountErr
	case a.mounter != nil:
		st.MountState = "mounted"
		if p, ok := a.mounter.(interface{ PendingUploads() []string }); ok {
			st.PendingUploads = p.PendingUploads()
		}
		if p, ok := a.mounter.(interface {
			LostFound() []string
			Conflicts() []string
		}); ok {
			st.LostFound, st.Conflicts = p.LostFound(), p.Conflicts()
		}
	default:
		st.MountState = "not mounted"
	}
	certStatus := a.certStatus
	a.mu.Unlock()
	if certStatus != nil {
		c := certStatus()
		st.CertName, st.CertIssuer, st.CertNotAfter, st.CertError = c.CertName, c.CertIssuer, c.CertNotAfter, c.CertError
	}
	// The count the triggers keep: reading every pending share took
	// seconds with tens of thousands of them.
	if pending, _, err := a.store.PendingCounts(ctx, nil); err == nil {
		st.Pending = pending
	}
	st.Unreachable, st.KeptWrites = a.shareNotices(ctx)
	st.Offline = a.offlineShares(ctx)
	return st
}
