package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Outbox item states.
const (
	OutboxPending = "pending"
	OutboxSent    = "sent"
	// OutboxUnsupported: the peer takes no notifications (404, 501); not retried.
	OutboxUnsupported = "unsupported"
	// OutboxFailed: refused for good, or not delivered before the give-up time.
	OutboxFailed = "failed"
	// OutboxSuperseded: a later decision on the same share replaced it
	// before it was sent (accept, then remove: only the decline goes).
	OutboxSuperseded = "superseded"
)

// Share.NotifyState values (the failures carry ": <reason>").
const (
	NotifyQueued      = "queued"
	NotifySent        = "sent"
	NotifyUnsupported = "unsupported"
	NotifyFailed      = "failed"
)

// OutboxItem is one notification to send to a peer about a share.
type OutboxItem struct {
	ID           string    `json:"id"`
	ShareID      string    `json:"shareId"`
	Peer         string    `json:"peer"`
	Type         string    `json:"type"`
	ProviderID   string    `json:"providerId"`
	ResourceType string    `json:"resourceType"`
	WithSecret   bool      `json:"withSecret,omitempty"` // the body carries the share's secret, kept in the secret store
	State        string    `json:"state"`
	Attempts     int       `json:"attempts"`
	NextAttempt  time.Time `json:"nextAttempt"`
	LastStatus   int       `json:"lastStatus,omitempty"`
	LastError    string    `json:"lastError,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	DoneAt       time.Time `json:"doneAt,omitzero"`
}

const outboxColumns = `id, share_id, peer, type, provider_id, resource_type, with_secret, state, attempts,
	next_attempt, last_status, last_error, created_at, updated_at, done_at`

func scanOutbox(r scanner) (OutboxItem, error) {
	var o OutboxItem
	var withSecret int
	var next, created, updated, done int64
	err := r.Scan(&o.ID, &o.ShareID, &o.Peer, &o.Type, &o.ProviderID, &o.ResourceType, &withSecret, &o.State, &o.Attempts,
		&next, &o.LastStatus, &o.LastError, &created, &updated, &done)
	o.WithSecret = withSecret != 0
	o.NextAttempt, o.CreatedAt, o.UpdatedAt = time.Unix(0, next).UTC(), time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	if done > 0 {
		o.DoneAt = time.Unix(0, done).UTC()
	}
	return o, err
}

// Notify asks SetShareStateNotify to queue a notification with the state
// change.
type Notify struct {
	ID         string // id of the outbox row (unique; the caller makes it)
	Type       string // SHARE_ACCEPTED, SHARE_DECLINED, ...
	WithSecret bool
	// OnlyFrom, when set, queues the item only if the share was in one of
	// these states before the change.
	OnlyFrom []string
	// Supersede lists types whose unsent items for the same share are
	// dropped by this one.
	Supersede []string
}

// SetShareStateNotify is SetShareState that also queues n (when not nil,
// and allowed by n.OnlyFrom) in the same transaction, so the notification
// is durable exactly when the state change is; queued says whether it was.
// The share's NotifyState then becomes NotifyQueued.
func (s *Store) SetShareStateNotify(ctx context.Context, id, state, errText string, n *Notify, from ...string) (sh Share, queued bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Share{}, false, fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	var prev string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM shares WHERE id = ?`, id).Scan(&prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Share{}, false, fmt.Errorf("store: %w", err)
	}
	sh, err = s.setShareStateTx(ctx, tx, id, state, errText, from...)
	if err != nil {
		return sh, false, err
	}
	if n != nil && len(n.OnlyFrom) > 0 && !slices.Contains(n.OnlyFrom, prev) {
		n = nil
	}
	if n != nil {
		now := time.Now().UTC()
		for _, t := range n.Supersede {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, updated_at = ?, done_at = ? WHERE share_id = ? AND type = ? AND state = ?`,
				OutboxSuperseded, now.UnixNano(), now.UnixNano(), id, t, OutboxPending); err != nil {
				return Share{}, false, fmt.Errorf("store: supersede notification: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, seq, share_id, peer, type, provider_id, resource_type, with_secret, state,
			next_attempt, created_at, updated_at) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?,?,?,?,?,?,?,?,?,?)`,
			n.ID, id, sh.Peer, n.Type, sh.ProviderID, sh.ResourceType, boolInt(n.WithSecret), OutboxPending,
			now.UnixNano(), now.UnixNano(), now.UnixNano())
		if err != nil {
			return Share{}, false, fmt.Errorf("store: queue notification: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE shares SET notify_state = ? WHERE id = ?`, NotifyQueued, id); err != nil {
			return Share{}, false, fmt.Errorf("store: queue notification: %w", err)
		}
		sh.NotifyState = NotifyQueued
	}
	if err := tx.Commit(); err != nil {
		return Share{}, false, fmt.Errorf("store: commit: %w", err)
	}
	return sh, n != nil, nil
}

// DueOutbox lists pending items whose next attempt is at or before now,
// oldest first, at most limit.
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE state = ? AND next_attempt <= ? ORDER BY seq LIMIT ?`,
		OutboxPending, now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: due notifications: %w", err)
	}
	return collectOutbox(rows)
}

// NextOutboxAttempt is when the earliest pending item is due; ok is false
// when nothing is pending.
func (s *Store) NextOutboxAttempt(ctx context.Context) (next time.Time, ok bool, err error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(next_attempt) FROM outbox WHERE state = ?`, OutboxPending).Scan(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("store: next notification: %w", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, v.Int64), true, nil
}

// OutboxForShare lists the notifications queued about a share, oldest first.
func (s *Store) OutboxForShare(ctx context.Context, shareID string) ([]OutboxItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE share_id = ? ORDER BY seq`, shareID)
	if err != nil {
		return nil, fmt.Errorf("store: list notifications: %w", err)
	}
	return collectOutbox(rows)
}

func collectOutbox(rows *sql.Rows) ([]OutboxItem, error) {
	defer rows.Close()
	out := []OutboxItem{}
	for rows.Next() {
		o, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("store: read notification: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// UpdateOutbox records the outcome of an attempt: the item's state,
// attempts, next attempt and last answer, and (when notifyState is not
// empty) the share's NotifyState. An item no longer pending (superseded
// meanwhile) is left alone: ErrConflict.
func (s *Store) UpdateOutbox(ctx context.Context, o OutboxItem, notifyState string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	var done int64
	if o.State != OutboxPending {
		done = now.UnixNano()
	}
	res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, attempts = ?, next_attempt = ?, last_status = ?, last_error = ?,
		updated_at = ?, done_at = ? WHERE id = ? AND state = ?`,
		o.State, o.Attempts, o.NextAttempt.UnixNano(), o.LastStatus, o.LastError, now.UnixNano(), done, o.ID, OutboxPending)
	if err != nil {
		return fmt.Errorf("store: update notification: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("notification %s is no longer pending: %w", o.ID, ErrConflict)
	}
	if notifyState != "" {
		// Only the newest item of a share speaks for it.
		if _, err := tx.ExecContext(ctx, `UPDATE shares SET notify_state = ? WHERE id = ?
			AND NOT EXISTS (SELECT 1 FROM outbox WHERE share_id = ? AND seq > (SELECT seq FROM outbox WHERE id = ?))`,
			notifyState, o.ShareID, o.ShareID, o.ID); err != nil {
			return fmt.Errorf("store: update share notification state: %w", err)
		}
	}
	return tx.Commit()
}

// ExpiredShares lists the live shares (pending, accepted, error) whose
// expiration is at or before now.
func (s *Store) ExpiredShares(ctx context.Context, now time.Time) ([]Share, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+shareColumns+` FROM shares WHERE expiration > 0 AND expiration <= ?
		AND state IN (?,?,?) ORDER BY expiration`, now.Unix(), StatePending, StateAccepted, StateError)
	if err != nil {
		return nil, fmt.Errorf("store: expired shares: %w", err)
	}
	defer rows.Close()
	out := []Share{}
	for rows.Next() {
		sh, err := scanShare(rows)
		if err != nil {
			return nil, fmt.Errorf("store: expired shares: %w", err)
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}

// NextExpiry is the earliest expiration of a live share; ok is false when
// no live share expires.
func (s *Store) NextExpiry(ctx context.Context) (next time.Time, ok bool, err error) {
	var v sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT MIN(expiration) FROM shares WHERE expiration > 0 AND state IN (?,?,?)`,
		StatePending, StateAccepted, StateError).Scan(&v)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: next expiry: %w", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(v.Int64, 0), true, nil
}
