package store

import (
	"context"
	"fmt"
	"time"
)

// Notification is one notification received from a peer, as history.
type Notification struct {
	ID           int64     `json:"id"`
	Peer         string    `json:"peer"`
	Type         string    `json:"type"`
	ResourceType string    `json:"resourceType"`
	ProviderID   string    `json:"providerId"`
	ShareID      string    `json:"shareId,omitempty"`
	Payload      string    `json:"payload,omitempty"` // JSON, secrets removed by the caller
	ReceivedAt   time.Time `json:"receivedAt"`
}

// AddNotification records a received notification.
func (s *Store) AddNotification(ctx context.Context, n Notification) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO notifications (peer, type, resource_type, provider_id, share_id, payload, received_at) VALUES (?,?,?,?,?,?,?)`,
		n.Peer, n.Type, n.ResourceType, n.ProviderID, n.ShareID, n.Payload, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("store: record notification: %w", err)
	}
	return nil
}

// PruneNotifications keeps at most keep recorded notifications (the
// newest), none received before olderThan.
func (s *Store) PruneNotifications(ctx context.Context, keep int, olderThan time.Time) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM notifications WHERE received_at < ?
		OR id <= (SELECT id FROM notifications ORDER BY id DESC LIMIT 1 OFFSET ?)`, olderThan.UnixNano(), keep)
	if err != nil {
		return fmt.Errorf("store: prune notifications: %w", err)
	}
	return nil
}

// Notifications lists the notifications received about a share, oldest first.
func (s *Store) Notifications(ctx context.Context, shareID string) ([]Notification, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, peer, type, resource_type, provider_id, share_id, payload, received_at FROM notifications WHERE share_id = ? ORDER BY id`, shareID)
	if err != nil {
		return nil, fmt.Errorf("store: list notifications: %w", err)
	}
	defer rows.Close()
	out := []Notification{}
	for rows.Next() {
		var n Notification
		var at int64
		if err := rows.Scan(&n.ID, &n.Peer, &n.Type, &n.ResourceType, &n.ProviderID, &n.ShareID, &n.Payload, &at); err != nil {
			return nil, fmt.Errorf("store: list notifications: %w", err)
		}
		n.ReceivedAt = time.Unix(0, at).UTC()
		out = append(out, n)
	}
	return out, rows.Err()
}

// SharesByProviderID lists the shares any peer knows by providerId.
func (s *Store) SharesByProviderID(ctx context.Context, providerID string) ([]Share, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+shareColumns+` FROM shares WHERE provider_id = ?`, providerID)
	if err != nil {
		return nil, fmt.Errorf("store: find shares: %w", err)
	}
	defer rows.Close()
	var out []Share
	for rows.Next() {
		sh, err := scanShare(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}
