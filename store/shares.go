package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Share states.
const (
	StatePending  = "pending"
	StateAccepted = "accepted"
	StateDeclined = "declined"
	StateRemoved  = "removed" // unshared by the sender, removed by the user, or expired
	StateError    = "error"
	// StateRevoked: the sender stopped serving an accepted share without
	// telling (its WebDAV refuses fresh credentials); a retry may bring
	// it back.
	StateRevoked = "revoked"
)

// Share is one received share, without its secret.
type Share struct {
	ID                string    `json:"id"`
	Peer              string    `json:"peer"` // sender's provider host[:port], the trusted origin
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
	// FromContact says the sender is in the address book; shares from
	// strangers are flagged for the UI by its absence.
	FromContact bool `json:"fromContact"`
	// NotifyState is how telling the sender about the user's decision went:
	// "" (nothing to tell), NotifyQueued, NotifySent, NotifyUnsupported or
	// NotifyFailed, the last two with a reason after ": ".
	NotifyState string `json:"notifyState,omitempty"`
	// Changed says when and what the sender last changed in the share
	// after the user accepted it ("" when nothing): the person sees it.
	Changed string `json:"changed,omitempty"`
	// KindSeen is "folder" or "file" as the share root's WebDAV answer
	// showed it, "" until then; ResourceType keeps the sender's word
	// (Nextcloud calls folders "file"), which notifications repeat.
	KindSeen string `json:"kindSeen,omitempty"`
	// MountName is the share's name in the mount when it left it
	// (revoked): its writes not uploaded are kept under that name.
	MountName string `json:"mountName,omitempty"`

	// Filled by the agent from the mount, not stored:
	// UnreachableSince is when the share's server began answering its
	// root with server errors (the share stays mounted, reads fail until
	// it answers again); UnreachableError is its last answer.
	UnreachableSince time.Time `json:"unreachableSince,omitzero"`
	UnreachableError string    `json:"unreachableError,omitempty"`
	// NotUploaded are the files written into the share that its server
	// does not have, as the mount's spool describes them.
	NotUploaded []string `json:"notUploaded,omitempty"`
	// KeptIn is the directory that keeps them.
	KeptIn string `json:"keptIn,omitempty"`
}

// Kind is "folder" or "file": as the share's WebDAV showed it, else as
// the sender said.
func (sh Share) Kind() string {
	if sh.KindSeen != "" {
		return sh.KindSeen
	}
	return sh.ResourceType
}

const shareColumns = `id, peer, provider_id, name, description, share_with, owner, sender,
	owner_display_name, sender_display_name, share_type, resource_type, expiration, dialect,
	protocols, webdav_uri, permissions, legacy_permissions, requirements, access_types, size,
	legacy_code, signed_by, state, error, created_at, updated_at, from_contact, notify_state, changed,
	kind_seen, mount_name`

type scanner interface{ Scan(...any) error }

func scanShare(r scanner) (Share, error) {
	var sh Share
	var exp, created, updated int64
	var protocols, perms, reqs, access string
	var legacy, fromContact int
	err := r.Scan(&sh.ID, &sh.Peer, &sh.ProviderID, &sh.Name, &sh.Description, &sh.ShareWith, &sh.Owner, &sh.Sender,
		&sh.OwnerDisplayName, &sh.SenderDisplayName, &sh.ShareType, &sh.ResourceType, &exp, &sh.Dialect,
		&protocols, &sh.WebDAVURI, &perms, &sh.LegacyPermissions, &reqs, &access, &sh.Size,
		&legacy, &sh.SignedBy, &sh.State, &sh.Error, &created, &updated, &fromContact, &sh.NotifyState, &sh.Changed,
		&sh.KindSeen, &sh.MountName)
	if err != nil {
		return sh, err
	}
	if exp > 0 {
		sh.Expiration = time.Unix(exp, 0).UTC()
	}
	sh.CreatedAt = time.Unix(0, created).UTC()
	sh.UpdatedAt = time.Unix(0, updated).UTC()
	sh.LegacyCode = legacy != 0
	sh.FromContact = fromContact != 0
	for _, p := range []struct {
		s   string
		dst *[]string
	}{{protocols, &sh.Protocols}, {perms, &sh.Permissions}, {reqs, &sh.Requirements}, {access, &sh.AccessTypes}} {
		if err := json.Unmarshal([]byte(p.s), p.dst); err != nil {
			return sh, fmt.Errorf("store: share %s has a corrupt list column: %w", sh.ID, err)
		}
	}
	if sh.Permissions == nil {
		sh.Permissions = []string{}
	}
	return sh, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// UpsertResult says what PutShare did.
type UpsertResult int

// What PutShare did with a share.
const (
	Inserted UpsertResult = iota
	Updated
)

// PutShare stores a received share. A share with the same peer and
// providerId as an existing one updates it (keeping its id and, unless it
// had been removed or declined, its state); otherwise it is inserted with
// sh.ID. The returned Share is what is stored.
func (s *Store) PutShare(ctx context.Context, sh Share) (Share, UpsertResult, error) {
	out, res, err := s.PutShares(ctx, []Share{sh})
	if err != nil {
		return Share{}, 0, err
	}
	return out[0], res[0], nil
}

// PutShares stores several received shares in one transaction (one
// fsync for all), each as PutShare would. Later entries with the same peer
// and providerId as earlier ones update them. Either all are stored or
// none.
func (s *Store) PutShares(ctx context.Context, shares []Share) ([]Share, []UpsertResult, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	// Prepared once on the connection: parsing SQL is a good part of a
	// write's CPU.
	prepared, err := s.stmt(ctx, upsertShareSQL)
	if err != nil {
		return nil, nil, err
	}
	upsert := tx.StmtContext(ctx, prepared)
	defer upsert.Close()
	out := make([]Share, len(shares))
	results := make([]UpsertResult, len(shares))
	for i, sh := range shares {
		if out[i], results[i], err = putShareTx(ctx, upsert, sh); err != nil {
			return nil, nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("store: commit shares: %w", err)
	}
	return out, results, nil
}

const shareByProviderIDSQL = `SELECT ` + shareColumns + ` FROM shares WHERE peer = ? AND provider_id = ?`

// upsertShareSQL inserts a share or updates the one with its peer and
// providerId, in one statement (no look-up first): the update keeps the
// stored id, creation time and what the mount learnt; it keeps the state
// unless the share was over (the person decides again), and the notify
// state while the state stays; it keeps the last change when this one
// names none. It returns what is stored.
const upsertShareSQL = `INSERT INTO shares (` + shareColumns + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(peer, provider_id) DO UPDATE SET name=excluded.name, description=excluded.description,
		share_with=excluded.share_with, owner=excluded.owner, sender=excluded.sender,
		owner_display_name=excluded.owner_display_name, sender_display_name=excluded.sender_display_name,
		share_type=excluded.share_type, resource_type=excluded.resource_type, expiration=excluded.expiration,
		dialect=excluded.dialect, protocols=excluded.protocols, webdav_uri=excluded.webdav_uri,
		permissions=excluded.permissions, legacy_permissions=excluded.legacy_permissions,
		requirements=excluded.requirements, access_types=excluded.access_types, size=excluded.size,
		legacy_code=excluded.legacy_code, signed_by=excluded.signed_by,
		state=CASE WHEN shares.state IN ('` + StateRemoved + `','` + StateDeclined + `','` + StateError + `','` + StateRevoked + `')
			THEN excluded.state ELSE shares.state END,
		notify_state=CASE WHEN shares.state NOT IN ('` + StateRemoved + `','` + StateDeclined + `','` + StateError + `','` + StateRevoked + `')
			OR excluded.state = shares.state THEN shares.notify_state ELSE excluded.notify_state END,
		changed=CASE WHEN excluded.changed = '' THEN shares.changed ELSE excluded.changed END,
		error=excluded.error, updated_at=excluded.updated_at, from_contact=excluded.from_contact
		RETURNING id, state, notify_state, changed, kind_seen, mount_name, created_at`

func putShareTx(ctx context.Context, upsert *sql.Stmt, sh Share) (Share, UpsertResult, error) {
	now := time.Now().UTC()
	var exp int64
	if !sh.Expiration.IsZero() {
		exp = sh.Expiration.Unix()
	}
	var created int64
	err := upsert.QueryRowContext(ctx,
		sh.ID, sh.Peer, sh.ProviderID, sh.Name, sh.Description, sh.ShareWith, sh.Owner, sh.Sender,
		sh.OwnerDisplayName, sh.SenderDisplayName, sh.ShareType, sh.ResourceType, exp, sh.Dialect,
		jsonList(sh.Protocols), sh.WebDAVURI, jsonList(sh.Permissions), sh.LegacyPermissions,
		jsonList(sh.Requirements), jsonList(sh.AccessTypes), sh.Size, boolInt(sh.LegacyCode), sh.SignedBy, sh.State,
		sh.Error, now.UnixNano(), now.UnixNano(), boolInt(sh.FromContact), sh.NotifyState, sh.Changed,
		sh.KindSeen, sh.MountName).Scan(&sh.ID, &sh.State, &sh.NotifyState, &sh.Changed, &sh.KindSeen, &sh.MountName, &created)
	if err != nil {
		return Share{}, 0, fmt.Errorf("store: write share: %w", err)
	}
	result := Inserted
	if created != now.UnixNano() {
		result = Updated
	}
	sh.CreatedAt, sh.UpdatedAt = time.Unix(0, created).UTC(), now
	if sh.Permissions == nil {
		sh.Permissions = []string{}
	}
	return sh, result, nil
}

// Share returns the share with the given id.
func (s *Store) Share(ctx context.Context, id string) (Share, error) {
	sh, err := scanShare(s.db.QueryRowContext(ctx, `SELECT `+shareColumns+` FROM shares WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Share{}, fmt.Errorf("share %q: %w", id, ErrNotFound)
	}
	return sh, err
}

// ShareByProviderID finds the share a peer knows by providerId.
func (s *Store) ShareByProviderID(ctx context.Context, peer, providerID string) (Share, error) {
	find, err := s.stmt(ctx, shareByProviderIDSQL)
	if err != nil {
		return Share{}, err
	}
	sh, err := scanShare(find.QueryRowContext(ctx, peer, providerID))
	if errors.Is(err, sql.ErrNoRows) {
		return Share{}, fmt.Errorf("share %q of %s: %w", providerID, peer, ErrNotFound)
	}
	return sh, err
}

// Shares lists shares, newest first; with no states given, all of them.
func (s *Store) Shares(ctx context.Context, states ...string) ([]Share, error) {
	q := `SELECT ` + shareColumns + ` FROM shares`
	args := make([]any, len(states))
	if len(states) > 0 {
		q += ` WHERE state IN (?` + strings.Repeat(",?", len(states)-1) + `)`
		for i, st := range states {
			args[i] = st
		}
	}
	q += ` ORDER BY created_at DESC, id`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list shares: %w", err)
	}
	defer rows.Close()
	out := []Share{}
	for rows.Next() {
		sh, err := scanShare(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list shares: %w", err)
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}

// SetShareState moves a share to state, recording errText (may be empty),
// provided it is currently in one of from (any state when from is empty).
// It returns the updated share; ErrConflict when the state did not allow it.
func (s *Store) SetShareState(ctx context.Context, id, state, errText string, from ...string) (Share, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Share{}, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	sh, err := s.setShareStateTx(ctx, tx, id, state, errText, from...)
	if err != nil {
		return Share{}, err
	}
	if err := tx.Commit(); err != nil {
		return Share{}, fmt.Errorf("store: commit: %w", err)
	}
	return sh, nil
}

// ErrConflict is returned when a state change is not allowed from the
// current state.
var ErrConflict = errors.New("not allowed in the current state")

func (s *Store) setShareStateTx(ctx context.Context, tx *sql.Tx, id, state, errText string, from ...string) (Share, error) {
	sh, err := scanShare(tx.QueryRowContext(ctx, `SELECT `+shareColumns+` FROM shares WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Share{}, fmt.Errorf("share %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Share{}, fmt.Errorf("store: %w", err)
	}
	if len(from) > 0 {
		ok := false
		for _, f := range from {
			ok = ok || sh.State == f
		}
		if !ok {
			return sh, fmt.Errorf("share %s is %s: %w", id, sh.State, ErrConflict)
		}
	}
	now := time.Now().UTC()
	if _, err := tx.ExecContext(ctx, `UPDATE shares SET state = ?, error = ?, updated_at = ? WHERE id = ?`, state, errText, now.UnixNano(), id); err != nil {
		return Share{}, fmt.Errorf("store: update share state: %w", err)
	}
	sh.State, sh.Error, sh.UpdatedAt = state, errText, now
	return sh, nil
}

// SetShareKindSeen records what the share's WebDAV showed it to be
// ("folder" or "file").
func (s *Store) SetShareKindSeen(ctx context.Context, id, kind string) error {
	return s.setShareColumn(ctx, id, "kind_seen", kind)
}

// SetShareMountName records the share's name in the mount.
func (s *Store) SetShareMountName(ctx context.Context, id, name string) error {
	return s.setShareColumn(ctx, id, "mount_name", name)
}

// setShareColumn sets one text column the mount learnt (column is one of
// this file's constants, never input).
func (s *Store) setShareColumn(ctx context.Context, id, column, value string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE shares SET `+column+` = ? WHERE id = ?`, value, id)
	if err != nil {
		return fmt.Errorf("store: update share %s: %w", column, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("share %q: %w", id, ErrNotFound)
	}
	return nil
}

// SharesByPeerAndProviderID finds shares by (peer, providerId), with one
// prepared statement; absent pairs are absent from the map, whose keys are
// peer + "\x00" + providerId.
func (s *Store) SharesByPeerAndProviderID(ctx context.Context, pairs [][2]string) (map[string]Share, error) {
	find, err := s.stmt(ctx, shareByProviderIDSQL)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Share, len(pairs))
	for _, p := range pairs {
		sh, err := scanShare(find.QueryRowContext(ctx, p[0], p[1]))
		switch {
		case err == nil:
			out[p[0]+"\x00"+p[1]] = sh
		case errors.Is(err, sql.ErrNoRows):
		default:
			return nil, fmt.Errorf("store: look up shares: %w", err)
		}
	}
	return out, nil
}

// PendingCounts counts pending shares: in all, and of each of peers. The
// counts are kept by triggers (migration 6): reading them costs the same
// however many shares are stored.
func (s *Store) PendingCounts(ctx context.Context, peers []string) (int, map[string]int, error) {
	totalStmt, err := s.stmt(ctx, `SELECT n FROM pending_total`)
	if err != nil {
		return 0, nil, err
	}
	peerStmt, err := s.stmt(ctx, `SELECT n FROM pending_counts WHERE peer = ?`)
	if err != nil {
		return 0, nil, err
	}
	var total int
	if err := totalStmt.QueryRowContext(ctx).Scan(&total); err != nil {
		return 0, nil, fmt.Errorf("store: count pending shares: %w", err)
	}
	byPeer := make(map[string]int, len(peers))
	for _, p := range peers {
		if _, done := byPeer[p]; done {
			continue
		}
		var n int
		err := peerStmt.QueryRowContext(ctx, p).Scan(&n)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, nil, fmt.Errorf("store: count pending shares: %w", err)
		}
		byPeer[p] = n
	}
	return total, byPeer, nil
}
