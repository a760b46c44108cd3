package control

import (
	"errors"
	"time"
)

// Errors a Backend returns, mapped to 404, 409 and 400.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid request")
)

// Share is a received share as the API shows it. Its fields match the
// store's row type one to one so the daemon converts without copying by hand.
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
	PendingUploads []string  `json:"pendingUploads,omitempty"`
	StartedAt      time.Time `json:"startedAt"`
	// With acme: the name of the certificate the agent gets itself, its
	// issuer and end (zero before the first one arrives), and the last
	// failure to obtain or renew it ("time message"; empty since a success).
	CertName     string    `json:"certName,omitempty"`
	CertIssuer   string    `json:"certIssuer,omitempty"`
	CertNotAfter time.Time `json:"certNotAfter,omitzero"`
	CertError    string    `json:"certError,omitempty"`
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
