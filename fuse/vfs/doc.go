// Package vfs is the FUSE-free core of the ocm-agent filesystem: what the
// mount knows and does in terms of WebDAV, with no kernel in sight. The
// go-fuse layer (package ocmfs, one directory up) keeps the nodes and turns
// the core's answers into attributes and errno values; the core never imports
// go-fuse (a test checks it), so that it is tested without /dev/fuse.
//
// It holds the safe naming of root entries, the WebDAV client (plain
// net/http on the hot path, gowebdav for MKCOL and DELETE) behind the WebDAV
// interface, with its progress watchdog; the PROPFIND parser with its bounds;
// the directory cache (DirCache: one listing per directory, kept for a TTL on
// an injected clock, shared by concurrent callers); the whole-file fallback
// for servers that refuse byte ranges; the write-back spool with its
// conditional uploads and conflicted copies (Spool, whose clock is injected
// too); and the error kinds (Kind, KindOf) that the mount maps to errno in
// one place.
//
// # Where the mount differs from POSIX
//
//   - A write reaches the server only when close(2) or fsync(2) returns
//     without error. Until then it is in the spool; after a failed upload
//     it is there fsync'd, with its record, before close(2) or fsync(2)
//     report the error, and is retried. A successful upload needs no
//     fsync: the server has the data. After a power cut, a copy that was
//     never fsync'd goes to lost+found, not to the server. Other clients
//     of the server see the old version until the upload.
//   - No silent overwrite: an upload replaces only the version the file was
//     opened with (If-Match on its ETag; If-None-Match: * for a new file).
//     When the server's file changed meanwhile the local version is saved
//     beside it as "name (conflicted copy YYYY-MM-DD HHMMSS).ext". Servers
//     that send no ETags, or only weak ones, get last-writer-wins.
//   - Metadata is cached for a TTL (Options.MetadataTTL): changes made on the
//     server by others show up after it, not at once.
//   - mtime comes from the server (getlastmodified). utimes(2) on a file
//     being written sets the mtime sent with the upload (X-OC-Mtime, honoured
//     by ownCloud-lineage servers only); atime and ctime equal mtime.
//   - No hard links, symbolic links or device nodes (EPERM). No extended
//     attributes, no locks beyond the kernel's own.
//   - chmod is accepted and ignored on a writable share (cp -a and rsync
//     work) and refused with EROFS on a read-only one; chown is ignored, and
//     so is anything but truncation set on a folder. Modes are 0444/0555,
//     plus the owner's write bit where the share allows writing; every file
//     belongs to the user who mounted.
//   - rename(2) across shares fails with EXDEV (programs copy instead), into
//     or out of the root with EACCES; RENAME_EXCHANGE is not supported
//     (EINVAL). A rename is a WebDAV MOVE, atomic only as far as the server
//     makes it.
//   - The root is read-only: one entry per accepted share, named by the
//     mount (sanitized, with the sender's address added on collisions).
//   - A share whose server has not been reached is shown; its operations fail
//     with EHOSTUNREACH. A share that left the mount gives ESTALE to files
//     still open.
//   - Waits on a peer are bounded by Options.Timeout (ETIMEDOUT), not by
//     signals: a killed program is released at once, other signals do not
//     abort a shared listing or read.
//   - A read never ends early: fewer bytes than the known size is EIO.
//   - Free space is reported as very large: the servers' quotas are not known.
package vfs
