package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Invite states as stored; InviteExpired is reported for open invites
// whose time is up.
const (
	InviteOpen     = "open"
	InviteAccepted = "accepted"
	InviteRevoked  = "revoked"
	InviteExpired  = "expired"
)

// Errors of RedeemInvite.
var (
	ErrInviteUnknown = errors.New("unknown invite token")
	ErrInviteExpired = errors.New("invite expired")
	ErrInviteRevoked = errors.New("invite revoked")
	ErrInviteUsed    = errors.New("invite already accepted")
)

// Invite is an invite the user issued. The token itself is never stored:
// TokenHash is its SHA-256.
type Invite struct {
	ID         string    `json:"id"`
	TokenHash  []byte    `json:"-"`
	Note       string    `json:"note,omitempty"`
	State      string    `json:"state"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	AcceptedAt time.Time `json:"acceptedAt,omitzero"`
	AcceptedBy string    `json:"acceptedBy,omitempty"` // OCM address of whoever accepted it
	ContactID  string    `json:"contactId,omitempty"`
}

const inviteColumns = `id, token_hash, note, state, created_at, expires_at, accepted_at, accepted_by, contact_id`

func scanInvite(r scanner, now time.Time) (Invite, error) {
	var inv Invite
	var created, expires, accepted int64
	err := r.Scan(&inv.ID, &inv.TokenHash, &inv.Note, &inv.State, &created, &expires, &accepted, &inv.AcceptedBy, &inv.ContactID)
	inv.CreatedAt, inv.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	if accepted > 0 {
		inv.AcceptedAt = time.Unix(0, accepted).UTC()
	}
	if inv.State == InviteOpen && !now.Before(inv.ExpiresAt) {
		inv.State = InviteExpired
	}
	return inv, err
}

// AddInvite stores a new open invite (ID, TokenHash, Note, ExpiresAt set
// by the caller).
func (s *Store) AddInvite(ctx context.Context, inv Invite) (Invite, error) {
	if inv.ID == "" || len(inv.TokenHash) != 32 {
		return Invite{}, errors.New("store: an invite needs an id and a SHA-256 token hash")
	}
	inv.CreatedAt, inv.State = time.Now().UTC(), InviteOpen
	_, err := s.db.ExecContext(ctx, `INSERT INTO invites (`+inviteColumns+`) VALUES (?,?,?,?,?,?,0,'','')`,
		inv.ID, inv.TokenHash, inv.Note, inv.State, inv.CreatedAt.UnixNano(), inv.ExpiresAt.UnixNano())
	if err != nil {
		return Invite{}, fmt.Errorf("store: add invite: %w", err)
	}
	return inv, nil
}

// Invites lists the invites issued, newest first.
func (s *Store) Invites(ctx context.Context) ([]Invite, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+inviteColumns+` FROM invites ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list invites: %w", err)
	}
	defer rows.Close()
	now := time.Now()
	out := []Invite{}
	for rows.Next() {
		inv, err := scanInvite(rows, now)
		if err != nil {
			return nil, fmt.Errorf("store: list invites: %w", err)
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

// Invite returns one invite by id.
func (s *Store) Invite(ctx context.Context, id string) (Invite, error) {
	inv, err := scanInvite(s.db.QueryRowContext(ctx, `SELECT `+inviteColumns+` FROM invites WHERE id = ?`, id), time.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return Invite{}, fmt.Errorf("invite %q: %w", id, ErrNotFound)
	}
	return inv, err
}

// RevokeInvite makes an open (or expired) invite unusable. Revoking an
// accepted invite is ErrConflict; revoking a revoked one is a no-op.
func (s *Store) RevokeInvite(ctx context.Context, id string) (Invite, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Invite{}, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	inv, err := scanInvite(tx.QueryRowContext(ctx, `SELECT `+inviteColumns+` FROM invites WHERE id = ?`, id), time.Now())
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Invite{}, fmt.Errorf("invite %q: %w", id, ErrNotFound)
	case err != nil:
		return Invite{}, fmt.Errorf("store: %w", err)
	case inv.State == InviteAccepted:
		return inv, fmt.Errorf("invite %s was already accepted: %w", id, ErrConflict)
	case inv.State == InviteRevoked:
		return inv, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE invites SET state = ? WHERE id = ?`, InviteRevoked, id); err != nil {
		return Invite{}, fmt.Errorf("store: revoke invite: %w", err)
	}
	inv.State = InviteRevoked
	return inv, tx.Commit()
}

// RedeemInvite uses the invite whose token hashes to tokenHash, once: in
// one transaction it checks the invite (ErrInviteUnknown, ErrInviteRevoked,
// ErrInviteExpired, ErrInviteUsed), marks it accepted by c.Address and
// adds (or refreshes) the contact c. The hashes are compared in constant
// time.
func (s *Store) RedeemInvite(ctx context.Context, tokenHash []byte, now time.Time, c Contact) (Invite, Contact, error) {
	defer s.forgetContacts()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Invite{}, Contact{}, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	inv, err := scanInvite(tx.QueryRowContext(ctx, `SELECT `+inviteColumns+` FROM invites WHERE token_hash = ?`, tokenHash), now)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(inv.TokenHash, tokenHash) != 1) {
		return Invite{}, Contact{}, ErrInviteUnknown
	}
	if err != nil {
		return Invite{}, Contact{}, fmt.Errorf("store: look up invite: %w", err)
	}
	switch inv.State {
	case InviteAccepted:
		return inv, Contact{}, ErrInviteUsed
	case InviteRevoked:
		return inv, Contact{}, ErrInviteRevoked
	case InviteExpired:
		return inv, Contact{}, ErrInviteExpired
	}
	c.InviteID = inv.ID
	c, err = putContactTx(ctx, tx, c)
	if err != nil {
		return Invite{}, Contact{}, err
	}
	inv.State, inv.AcceptedAt, inv.AcceptedBy, inv.ContactID = InviteAccepted, now.UTC(), c.Address, c.ID
	if _, err := tx.ExecContext(ctx, `UPDATE invites SET state = ?, accepted_at = ?, accepted_by = ?, contact_id = ? WHERE id = ? AND state = ?`,
		inv.State, now.UnixNano(), inv.AcceptedBy, inv.ContactID, inv.ID, InviteOpen); err != nil {
		return Invite{}, Contact{}, fmt.Errorf("store: accept invite: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Invite{}, Contact{}, fmt.Errorf("store: commit invite: %w", err)
	}
	return inv, c, nil
}
