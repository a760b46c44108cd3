package control

import (
	"errors"
	"log/slog"
	"time"
)

// Errors a Backend returns, mapped to 404, 409 and 400.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid request")
)

// Share is a received share as the API shows it.
type Share struct {
	ID                string    `json:"id"`
	Peer              string    `json:"peer"`
	ProviderID        string    `json:"providerId"`
	Name              string    `json:"name"`
	Description       string    `json:"description,omitempty"`
	ShareWith         string    `json:"shareWith"`
	Owner             string    `json:"owner"`
	Sender            string    `json:"sender"`
	OwnerDisplayName  string    `json:"ownerDisplayName,omitempty"`
	SenderDisplayName string    `json:"senderDisplayName,omitempty"`
	ShareType         string    `json:"shareType"`
	ResourceType      string    `json:"resourceType"`
	Expiration        time.Time `json:"expiration,omitzero"`
	Dialect           string    `json:"dialect,omitempty"`
	Protocols         []string  `json:"protocols,omitempty"`
	WebDAVURI         string    `json:"webdavUri,omitempty"`
	Permissions       []string  `json:"permissions"`
	LegacyPermissions string    `json:"legacyPermissions,omitempty"`
	Requirements      []string  `json:"requirements,omitempty"`
	AccessTypes       []string  `json:"accessTypes,omitempty"`
	Size              int64     `json:"size,omitempty"`
	LegacyCode        bool      `json:"legacyCode,omitempty"`
	SignedBy          string    `json:"signedBy,omitempty"`
	State             string    `json:"state"`
	Error             string    `json:"error,omitempty"`
	CreatedAt         time.Time `json:"createdAt"`
	UpdatedAt         time.Time `json:"updatedAt"`
	// FromContact says the sender is in the address book; a share without
	// it comes from a stranger and the UI says so.
	FromContact bool `json:"fromContact"`
	// NotifyState says whether the sender was told about the user's
	// decision: "" (nothing to tell), "queued", "sent", "unsupported: ..."
	// (the sender takes no notifications) or "failed: ...".
	NotifyState string `json:"notifyState,omitempty"`
	// Changed says when and what the sender last changed in the share
	// after it was accepted ("" when nothing).
	Changed string `json:"changed,omitempty"`
	// Kind is "folder" or "file": what the share's WebDAV showed it to be
	// once the mount asked, else the sender's resourceType (which
	// Nextcloud sets to "file" for folders too).
	Kind string `json:"kind"`
	// UnreachableSince, when set, is since when the share's server answers
	// the share with errors (3 in a row at least); the share stays in the
	// mount, reads fail until the server answers again. UnreachableError
	// is its last answer.
	UnreachableSince time.Time `json:"unreachableSince,omitzero"`
	UnreachableError string    `json:"unreachableError,omitempty"`
	// NotUploaded are files written into the share that its server does
	// not have ("Name/path (N bytes): last error"), kept in the directory
	// KeptIn (also after the share was revoked or removed).
	NotUploaded []string `json:"notUploaded,omitempty"`
	KeptIn      string   `json:"keptIn,omitempty"`
}

// Status is the daemon's state at a glance.
type Status struct {
	Version         string   `json:"version"`
	User            string   `json:"user"`
	Address         string   `json:"address"`
	PublicURL       string   `json:"publicUrl"`
	Listen          string   `json:"listen"`
	Mount           string   `json:"mount"`
	MountState      string   `json:"mountState"` // mounted, disabled, error: ...
	SecretsBackend  string   `json:"secretsBackend"`
	SecretsReason   string   `json:"secretsReason,omitempty"`
	KeyringUnlocked bool     `json:"keyringUnlocked"`
	Pending         int      `json:"pending"`
	PendingInvites  int      `json:"pendingInvites"`
	Errors          []string `json:"errors,omitempty"`
	// PendingUploads are files written through the mount that the server
	// does not have yet ("Share/path (N bytes): last error").
	PendingUploads []string `json:"pendingUploads,omitempty"`
	// LostFound are files kept in the state directory's lost+found: data
	// written through the mount that a crash left without its record.
	LostFound []string `json:"lostFound,omitempty"`
	// Conflicts are recent files that changed on the server while written
	// here; the local version was saved beside them as a conflicted copy.
	Conflicts []string `json:"conflicts,omitempty"`
	// Unreachable are accepted shares whose server could not be reached,
	// or answers them with errors; they stay in the mount and are tried
	// again (in the background, or at the next access).
	Unreachable []UnreachableShare `json:"unreachable,omitempty"`
	// Offline are accepted shares whose server stopped answering (no
	// connection, timeouts): files kept on this device and cached ones
	// are read from the cache meanwhile.
	Offline []UnreachableShare `json:"offline,omitempty"`
	// KeptWrites are shares that left the mount (revoked, removed) with
	// writes not uploaded, and where those are kept.
	KeptWrites []string  `json:"keptWrites,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	// With acme: the name of the certificate the agent gets itself, its
	// issuer and end (zero before the first one arrives), and the last
	// failure to obtain or renew it ("time message"; empty since a success).
	CertName     string    `json:"certName,omitempty"`
	CertIssuer   string    `json:"certIssuer,omitempty"`
	CertNotAfter time.Time `json:"certNotAfter,omitzero"`
	CertError    string    `json:"certError,omitempty"`
}

// UnreachableShare is an accepted share whose server has not answered, or
// answers its root with server errors (3 in a row at least, over
// unreachable-after: OpenCloud does so for a share it removed).
type UnreachableShare struct {
	ID    string    `json:"id"`
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
	Error string    `json:"error,omitempty"`
}

// Event is one change on the feed.
type Event struct {
	Seq   uint64    `json:"seq"`
	Type  string    `json:"type"` // share, invite, contact, status
	ID    string    `json:"id,omitempty"`
	State string    `json:"state,omitempty"`
	Time  time.Time `json:"time"`
}

// ErrorBody is the body of every non-2xx answer.
type ErrorBody struct {
	Message string `json:"message"`
}

// Invite states.
const (
	InviteOpen     = "open"
	InviteAccepted = "accepted"
	InviteRevoked  = "revoked"
	InviteExpired  = "expired"
)

// Invite is an invite the user made, without its token (the agent keeps
// only a hash of it).
type Invite struct {
	ID         string    `json:"id"`
	Note       string    `json:"note,omitempty"`
	State      string    `json:"state"` // one of the Invite* states
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	AcceptedAt time.Time `json:"acceptedAt,omitzero"`
	AcceptedBy string    `json:"acceptedBy,omitempty"` // OCM address of whoever accepted it
	ContactID  string    `json:"contactId,omitempty"`
}

// InviteRequest is the body of POST /v1/invites.
type InviteRequest struct {
	Note string `json:"note,omitempty"`
	// Expires is how long the invite stays valid: a Go duration ("36h")
	// or a number of days ("7d"); empty means seven days.
	Expires string `json:"expires,omitempty"`
}

// CreatedInvite is a new invite as its maker sees it, once: the invite
// code and the link carry the token.
type CreatedInvite struct {
	Invite       Invite `json:"invite"`
	InviteString string `json:"inviteString"`
	Link         string `json:"link"`
}

// String describes the invite without its token.
func (c CreatedInvite) String() string { return "invite " + c.Invite.ID }

// LogValue keeps the token out of structured logs.
func (c CreatedInvite) LogValue() slog.Value { return slog.StringValue(c.String()) }

// AcceptInviteRequest is the body of POST /v1/invites/accept: an invite
// in any form a person may paste (code, token@provider, link), or its
// token and provider apart.
type AcceptInviteRequest struct {
	Invite   string `json:"invite,omitempty"`
	Token    string `json:"token,omitempty"`
	Provider string `json:"provider,omitempty"`
}

// String keeps the invite out of logs.
func (r AcceptInviteRequest) String() string { return "accept invite request" }

// LogValue keeps the invite out of structured logs.
func (r AcceptInviteRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// How a contact came to be (Contact.Source), and its states.
const (
	SourceAcceptedTheirInvite = "accepted-their-invite" // the user accepted their invite
	SourceAcceptedOurInvite   = "accepted-our-invite"   // they accepted the user's invite
	ContactActive             = "active"
	ContactRemovedByPeer      = "removed-by-peer"
)

// Contact is someone the user exchanged an invite with.
type Contact struct {
	ID        string    `json:"id"`
	Address   string    `json:"address"` // OCM address, user@host[:port]
	UserID    string    `json:"userId"`
	Server    string    `json:"server"` // host[:port] of their OCM server
	Name      string    `json:"name,omitempty"`
	Email     string    `json:"email,omitempty"`
	Source    string    `json:"source"`             // one of the Source* values
	InviteID  string    `json:"inviteId,omitempty"` // the user's invite they accepted
	State     string    `json:"state"`              // ContactActive or ContactRemovedByPeer
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}
