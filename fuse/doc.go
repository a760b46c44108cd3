// Package ocmfs is the ocm-agent filesystem: one FUSE mount (go-fuse v2) whose
// root holds one entry per accepted share, a folder share as a directory and a
// file share as a file, each backed by the sender's WebDAV server.
//
// It owns the safe naming of root entries, the metadata cache (one PROPFIND
// Depth 1 per directory, short TTL, ETag revalidation), ranged reads with
// sequential read-ahead, the write-back spool (local files uploaded with a
// streamed PUT on close/fsync, kept until the server has them) and the mapping
// of network failures to errno values within a bounded time. Credentials come
// from an Authorizer; this package never sees how they are stored.
//
// Where it differs from a local disk: a write is on the server only once
// close(2) or fsync(2) returned without error (until then, and after a
// failed upload, it is in the spool, fsync'd, and retried); an upload
// replaces only the version the file was opened with (If-Match), and when
// the server's file changed meanwhile the local version is saved beside it
// as "name (conflicted copy YYYY-MM-DD HHMMSS).ext" (see Conflicts); a share
// whose server has not been reached is shown, and its operations fail with
// EHOSTUNREACH.
//
// Requests to a peer are bounded by Options.Timeout (no progress for that
// long fails them), not by the kernel's interrupts: a signal to one program
// (the Go runtime's preemption signals among them) must not abort a listing
// or a read-ahead that others share.
package ocmfs
