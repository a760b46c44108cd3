// Package contentcache keeps the content of files read through the mount on
// local disk, so that a second read does not go to the sender's server and
// cached files stay readable when the server cannot be reached. It knows
// nothing of FUSE or WebDAV: the mount asks it for blocks and hands it what
// it fetched.
//
// # Layout
//
// Everything lives under Options.Dir (0700; every file 0600):
//
//	files/<id>.data   the file's content, sparse, at its full size
//	index             a journal of the files' metadata: per file, its
//	                  version (ETag, size), block size, and a CRC-32C
//	                  (Castagnoli) per present block; the last record of
//	                  a file wins
//	listings/<id>     a directory listing kept for offline use
//	pins              the pinned shares, folders and files
//
// <id> is a hash of the share and the path: names on disk never reveal
// paths. Every record (of the index, a listing, the pins) ends with a
// CRC-32C of all its bytes. A file's metadata is appended to the index, so
// that storing a file creates one file on disk, not two; the index is
// rewritten with one record per file (compacted) on Open when it holds
// stale records, when it grows well beyond that, and when a share or the
// cache is cleared (so that it names no removed file). A damaged record is
// skipped (and its file dropped with its data); listings and the pins are
// replaced by a rename.
//
// # Why a wrong block is never served
//
// Only the pins and a compacted index (both rare) are synced to disk: the
// cache is a cache, and checksums, not fsync, keep it right. A block is written to the data file
// before its checksum is recorded; metadata is written in batches (every
// few dozen blocks, a few seconds, and when the last user of the file
// releases it), not per block. After a crash, the system may have kept a
// record without the blocks it names: such a block reads as zeros (a hole
// or an unwritten extent) or as other bytes, and fails its checksum; a
// record torn or zeroed fails its own and is skipped (an older record of
// the file, if any, counts, its blocks checked the same way). So
// every block is checked against its checksum before it is first returned;
// a block that fails is dropped (so it is fetched again) and nothing of it
// is returned. A block stays checked while its data file is unchanged
// (size, mtime, ctime and inode as this process last wrote or checked
// it), so that a file read again is not read twice: a change from outside,
// and every new process, makes every block checked again.
//
// # Eviction and pins
//
// Content beyond Options.MaxBytes is evicted least recently used first.
// Pinned files (a pin names a share, a folder or a file) are never evicted,
// and neither is a file that someone holds (File or Stored without Release
// yet). RemoveShare and Clear remove files even while held: the holder keeps
// reading what it has through its open descriptor, and stores nothing more.
//
// Nothing of a file's content or path is logged; log lines name files by id.
package contentcache
