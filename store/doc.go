// Package store keeps the agent's durable state in one SQLite file
// (modernc.org/sqlite, pure Go): received shares, the address book, the
// invites the user issued (their tokens only as SHA-256 hashes), and the
// outbox of notifications to peers, written in the same transaction as the
// share state change they report. It opens the database in WAL mode with
// synchronous=FULL, so a committed write survives a crash, and applies
// versioned migrations on open.
//
// Secrets are never stored here: only whether a share has one.
package store
