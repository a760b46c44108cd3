package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// How a contact came into the address book.
const (
	// SourceAcceptedTheirInvite: the user accepted the contact's invite.
	SourceAcceptedTheirInvite = "accepted-their-invite"
	// SourceAcceptedOurInvite: the contact accepted an invite the user made.
	SourceAcceptedOurInvite = "accepted-our-invite"
)

// Contact states.
const (
	ContactActive = "active"
	// ContactRemovedByPeer: the contact's server said (USER_REMOVED) that
	// the contact no longer trusts the user; kept for the UI, not trusted.
	ContactRemovedByPeer = "removed-by-peer"
)

// Contact is one entry of the address book.
type Contact struct {
	ID        string    `json:"id"`
	Address   string    `json:"address"` // OCM address, user@host[:port]
	UserID    string    `json:"userId"`
	Server    string    `json:"server"` // host[:port] of the contact's OCM server
	Name      string    `json:"name,omitempty"`
	Email     string    `json:"email,omitempty"`
	Source    string    `json:"source"`
	InviteID  string    `json:"inviteId,omitempty"` // our invite, for SourceAcceptedOurInvite
	State     string    `json:"state"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

const contactColumns = `id, address, user_id, server, name, email, source, invite_id, state, created_at, updated_at`

func scanContact(r scanner) (Contact, error) {
	var c Contact
	var created, updated int64
	err := r.Scan(&c.ID, &c.Address, &c.UserID, &c.Server, &c.Name, &c.Email, &c.Source, &c.InviteID, &c.State, &created, &updated)
	c.CreatedAt, c.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return c, err
}

// PutContact adds a contact, or refreshes the one with the same address
// (keeping its id and creation time, making it active again). c.Address
// must be set; c.ID is used for a new row.
func (s *Store) PutContact(ctx context.Context, c Contact) (Contact, error) {
	defer s.forgetContacts()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Contact{}, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	c, err = putContactTx(ctx, tx, c)
	if err != nil {
		return Contact{}, err
	}
	if err := tx.Commit(); err != nil {
		return Contact{}, fmt.Errorf("store: commit contact: %w", err)
	}
	return c, nil
}

func putContactTx(ctx context.Context, tx *sql.Tx, c Contact) (Contact, error) {
	if c.Address == "" || c.ID == "" {
		return Contact{}, errors.New("store: a contact needs an id and an address")
	}
	now := time.Now().UTC()
	existing, err := scanContact(tx.QueryRowContext(ctx, `SELECT `+contactColumns+` FROM contacts WHERE address = ?`, c.Address))
	switch {
	case err == nil:
		c.ID, c.CreatedAt = existing.ID, existing.CreatedAt
	case errors.Is(err, sql.ErrNoRows):
		c.CreatedAt = now
	default:
		return Contact{}, fmt.Errorf("store: look up contact: %w", err)
	}
	c.UpdatedAt, c.State = now, ContactActive
	_, err = tx.ExecContext(ctx, `INSERT INTO contacts (`+contactColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET user_id=excluded.user_id, server=excluded.server, name=excluded.name,
		email=excluded.email, source=excluded.source, invite_id=excluded.invite_id, state=excluded.state,
		updated_at=excluded.updated_at`,
		c.ID, c.Address, c.UserID, c.Server, c.Name, c.Email, c.Source, c.InviteID, c.State,
		c.CreatedAt.UnixNano(), c.UpdatedAt.UnixNano())
	if err != nil {
		return Contact{}, fmt.Errorf("store: write contact: %w", err)
	}
	return c, nil
}

// Contacts lists the address book, newest first.
func (s *Store) Contacts(ctx context.Context) ([]Contact, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+contactColumns+` FROM contacts ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list contacts: %w", err)
	}
	defer rows.Close()
	out := []Contact{}
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list contacts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Contact returns one contact by id.
func (s *Store) Contact(ctx context.Context, id string) (Contact, error) {
	c, err := scanContact(s.db.QueryRowContext(ctx, `SELECT `+contactColumns+` FROM contacts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, fmt.Errorf("contact %q: %w", id, ErrNotFound)
	}
	return c, err
}

// ContactByAddress returns the contact with an OCM address (in the
// canonical user@host form). Every received share asks, so the address
// book is kept in memory (see contactCache).
func (s *Store) ContactByAddress(ctx context.Context, address string) (Contact, error) {
	s.contacts.mu.Lock()
	book, gen := s.contacts.byAddress, s.contacts.gen
	s.contacts.mu.Unlock()
	if book == nil {
		all, err := s.Contacts(ctx)
		if err != nil {
			return Contact{}, err
		}
		book = make(map[string]Contact, len(all))
		for _, c := range all {
			book[c.Address] = c
		}
		s.contacts.mu.Lock()
		if s.contacts.gen == gen { // no write since the read began
			s.contacts.byAddress = book
		}
		s.contacts.mu.Unlock()
	}
	c, ok := book[address]
	if !ok {
		return Contact{}, fmt.Errorf("contact %q: %w", address, ErrNotFound)
	}
	return c, nil
}

// contactCache is the address book as ContactByAddress last read it. A
// write to the contacts table forgets it once committed (a read begun
// before then is not kept).
type contactCache struct {
	mu        sync.Mutex
	gen       uint64
	byAddress map[string]Contact // nil: not read
}

// forgetContacts is called after every write to the contacts table.
func (s *Store) forgetContacts() {
	s.contacts.mu.Lock()
	s.contacts.gen++
	s.contacts.byAddress = nil
	s.contacts.mu.Unlock()
}

// DeleteContact removes a contact and returns what it was.
func (s *Store) DeleteContact(ctx context.Context, id string) (Contact, error) {
	defer s.forgetContacts()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Contact{}, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	c, err := scanContact(tx.QueryRowContext(ctx, `SELECT `+contactColumns+` FROM contacts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, fmt.Errorf("contact %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Contact{}, fmt.Errorf("store: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM contacts WHERE id = ?`, id); err != nil {
		return Contact{}, fmt.Errorf("store: delete contact: %w", err)
	}
	return c, tx.Commit()
}

// MarkContactRemovedByPeer marks the active contact with the given
// address as removed by its own server, returning it (ErrNotFound when
// there is no such active contact).
func (s *Store) MarkContactRemovedByPeer(ctx context.Context, address string) (Contact, error) {
	now := time.Now().UTC()
	res, err := s.db.ExecContext(ctx, `UPDATE contacts SET state = ?, updated_at = ? WHERE address = ? AND state = ?`,
		ContactRemovedByPeer, now.UnixNano(), address, ContactActive)
	if err != nil {
		return Contact{}, fmt.Errorf("store: update contact: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Contact{}, fmt.Errorf("active contact %q: %w", address, ErrNotFound)
	}
	s.forgetContacts()
	return s.ContactByAddress(ctx, address)
}
