// Package ocmfs is the ocm-agent filesystem: one FUSE mount (go-fuse v2) whose
// root holds one entry per accepted share, a folder share as a directory and a
// file share as a file, each backed by the sender's WebDAV server.
//
// It is the go-fuse layer over the FUSE-free core in package vfs (WebDAV
// client, PROPFIND parsing, directory cache, spool and uploads, error kinds;
// see its doc for where the mount differs from POSIX). This package keeps the
// nodes and handles, the share table, ranged reads with sequential
// read-ahead, the one mapping of the core's error kinds to errno (errnoOf,
// logging what it cannot classify) and a debug trace on entry and exit of
// every FUSE operation. Credentials come from an Authorizer; neither package
// sees how they are stored.
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
// Waiting on a peer is bounded by Options.Timeout, not by the kernel's
// interrupts: a signal to one program (the Go runtime's preemption signals
// among them) must not abort a listing or a read-ahead that others share.
// A metadata operation (a listing with its checks, a PROPFIND or HEAD) ends
// within the timeout however slowly the answer trickles in; a READ within the
// timeout plus its size at a minimal rate; transfers shared by many reads or
// an upload fail after the timeout without progress. A listing holds at most
// Options.MaxEntries entries, and only a few run at once, so that what a
// server sends cannot grow the agent's memory without bound. A program
// killed while it waits on a listing or a read is released at once: on the
// kernel's interrupt, the handler checks for a pending SIGKILL.
//
// A read never ends early: a server that refuses byte ranges or ignores them
// is read with one plain GET of the whole file, and less data than the known
// size is an error (EIO), not the end of the file.
//
// With a content cache (Options.Cache, package contentcache), files with a
// strong ETag are read through it: what it holds of the version the server
// has is served from local disk, what is fetched is stored; a complete,
// verified file on a read-only share is read by the kernel from the cache
// itself (FUSE passthrough, where the kernel allows it). While a share's
// server cannot be reached (Options.OnShareOffline hears it), its folders
// show their last listing and its cached files are read at the version
// cached; what is not cached fails with EHOSTUNREACH (ETIMEDOUT for a
// server that does not answer) within the timeout. Listings stored are
// then served at once while a probe in the background finds out when the
// server answers again; other operations still ask the server first.
package ocmfs
