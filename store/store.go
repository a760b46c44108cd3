package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// Store is the agent's database.
type Store struct {
	db   *sql.DB
	path string
	hot  hotStatements
	// contacts is the address book in memory, for ContactByAddress.
	contacts contactCache
}

// hotStatements are the queries of every received share, prepared on
// first use and kept: parsing their SQL cost more CPU than running them.
type hotStatements struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// stmt returns the prepared statement of query.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.hot.mu.Lock()
	defer s.hot.mu.Unlock()
	if st, ok := s.hot.stmts[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	if s.hot.stmts == nil {
		s.hot.stmts = map[string]*sql.Stmt{}
	}
	s.hot.stmts[query] = st
	return st, nil
}

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create state directory: %w", err)
	}
	// Created private before SQLite sees it: its -wal and -shm files take
	// the database file's mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// One writer at a time is what SQLite does anyway; a small pool lets
	// readers proceed under WAL. The pool keeps all its connections: one
	// closed when idle is opened again under load, reading the schema and
	// preparing every statement anew.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	s := &Store{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("store: restrict %s: %w", p, err)
		}
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() } // closes the statements too

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// migrations are applied in order; each runs once, in its own transaction.
var migrations = []string{
	// 1: shares
	`CREATE TABLE shares (
		id TEXT PRIMARY KEY,
		peer TEXT NOT NULL,
		provider_id TEXT NOT NULL,
		name TEXT NOT NULL,
		description TEXT NOT NULL DEFAULT '',
		share_with TEXT NOT NULL,
		owner TEXT NOT NULL,
		sender TEXT NOT NULL,
		owner_display_name TEXT NOT NULL DEFAULT '',
		sender_display_name TEXT NOT NULL DEFAULT '',
		share_type TEXT NOT NULL,
		resource_type TEXT NOT NULL,
		expiration INTEGER NOT NULL DEFAULT 0,
		dialect TEXT NOT NULL DEFAULT '',
		protocols TEXT NOT NULL DEFAULT '[]',
		webdav_uri TEXT NOT NULL DEFAULT '',
		permissions TEXT NOT NULL DEFAULT '[]',
		legacy_permissions TEXT NOT NULL DEFAULT '',
		requirements TEXT NOT NULL DEFAULT '[]',
		access_types TEXT NOT NULL DEFAULT '[]',
		size INTEGER NOT NULL DEFAULT 0,
		legacy_code INTEGER NOT NULL DEFAULT 0,
		signed_by TEXT NOT NULL DEFAULT '',
		state TEXT NOT NULL,
		error TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		UNIQUE (peer, provider_id)
	);
	CREATE INDEX shares_state ON shares(state);`,
	// 2: notifications received, kept as history
	`CREATE TABLE notifications (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		peer TEXT NOT NULL,
		type TEXT NOT NULL,
		resource_type TEXT NOT NULL,
		provider_id TEXT NOT NULL,
		share_id TEXT NOT NULL DEFAULT '',
		payload TEXT NOT NULL DEFAULT '',
		received_at INTEGER NOT NULL
	);`,
	// 3: the address book, invites we issued (token kept only as its
	// SHA-256), the outbox of notifications to peers, and the share columns
	// the policy and the outbox fill in.
	`CREATE TABLE contacts (
		id TEXT PRIMARY KEY,
		address TEXT NOT NULL UNIQUE,
		user_id TEXT NOT NULL,
		server TEXT NOT NULL,
		name TEXT NOT NULL DEFAULT '',
		email TEXT NOT NULL DEFAULT '',
		source TEXT NOT NULL,
		invite_id TEXT NOT NULL DEFAULT '',
		state TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	);
	CREATE INDEX contacts_server ON contacts(server);
	CREATE TABLE invites (
		id TEXT PRIMARY KEY,
		token_hash BLOB NOT NULL UNIQUE,
		note TEXT NOT NULL DEFAULT '',
		state TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		accepted_at INTEGER NOT NULL DEFAULT 0,
		accepted_by TEXT NOT NULL DEFAULT '',
		contact_id TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE outbox (
		id TEXT PRIMARY KEY,
		seq INTEGER NOT NULL,
		share_id TEXT NOT NULL,
		peer TEXT NOT NULL,
		type TEXT NOT NULL,
		provider_id TEXT NOT NULL,
		resource_type TEXT NOT NULL,
		with_secret INTEGER NOT NULL DEFAULT 0,
		state TEXT NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0,
		next_attempt INTEGER NOT NULL,
		last_status INTEGER NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		done_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX outbox_due ON outbox(state, next_attempt);
	CREATE INDEX outbox_share ON outbox(share_id);
	ALTER TABLE shares ADD COLUMN from_contact INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE shares ADD COLUMN notify_state TEXT NOT NULL DEFAULT '';
	CREATE INDEX shares_expiration ON shares(expiration) WHERE expiration > 0;`,
	// 4: what the sender last changed in an accepted share, for the person
	// to see; notifications are pruned by age and count.
	`ALTER TABLE shares ADD COLUMN changed TEXT NOT NULL DEFAULT '';
	CREATE INDEX notifications_received ON notifications(received_at);`,
	// 5: what the share's WebDAV showed it to be (folder or file), and its
	// name in the mount when it left it (to find its unsent writes).
	`ALTER TABLE shares ADD COLUMN kind_seen TEXT NOT NULL DEFAULT '';
	ALTER TABLE shares ADD COLUMN mount_name TEXT NOT NULL DEFAULT '';`,
	// 6: pending shares counted as they come and go, per sending server and
	// in all, so that the caps checked on every received share cost the
	// same with 10,000 shares stored as with none (a COUNT(*) reads them
	// all). Triggers keep the counts whichever statement changes a share.
	`CREATE TABLE pending_counts (peer TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
	CREATE TABLE pending_total (one INTEGER PRIMARY KEY CHECK (one = 1), n INTEGER NOT NULL);
	INSERT INTO pending_counts (peer, n) SELECT peer, COUNT(*) FROM shares WHERE state = 'pending' GROUP BY peer;
	INSERT INTO pending_total (one, n) SELECT 1, COUNT(*) FROM shares WHERE state = 'pending';
	CREATE TRIGGER pending_in AFTER INSERT ON shares WHEN new.state = 'pending' BEGIN
		INSERT INTO pending_counts (peer, n) VALUES (new.peer, 1) ON CONFLICT (peer) DO UPDATE SET n = n + 1;
		UPDATE pending_total SET n = n + 1;
	END;
	CREATE TRIGGER pending_out AFTER DELETE ON shares WHEN old.state = 'pending' BEGIN
		UPDATE pending_counts SET n = n - 1 WHERE peer = old.peer;
		UPDATE pending_total SET n = n - 1;
	END;
	CREATE TRIGGER pending_left AFTER UPDATE OF state, peer ON shares
		WHEN old.state = 'pending' AND (new.state <> 'pending' OR new.peer <> old.peer) BEGIN
		UPDATE pending_counts SET n = n - 1 WHERE peer = old.peer;
		UPDATE pending_total SET n = n - 1;
	END;
	CREATE TRIGGER pending_came AFTER UPDATE OF state, peer ON shares
		WHEN new.state = 'pending' AND (old.state <> 'pending' OR new.peer <> old.peer) BEGIN
		INSERT INTO pending_counts (peer, n) VALUES (new.peer, 1) ON CONFLICT (peer) DO UPDATE SET n = n + 1;
		UPDATE pending_total SET n = n + 1;
	END;`,
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("store: database schema version %d is newer than this program knows (%d); upgrade ocm-agent", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migrate to %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate to %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, i+1); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate to %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migrate to %d: %w", i+1, err)
		}
	}
	return nil
}
