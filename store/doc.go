// Package store keeps the agent's durable state in one SQLite file
// (modernc.org/sqlite, pure Go): received shares, and the tables later
// features add (contacts, invites, the notification outbox). It opens the
// database in WAL mode with synchronous=FULL, so a committed write survives
// a crash, and applies versioned migrations on open.
//
// Secrets are never stored here: only whether a share has one.
package store
