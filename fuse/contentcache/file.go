package contentcache

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Metadata is written when this many blocks were stored since the last
// write, or this long after it, and when the last holder releases the file.
const (
	flushBlocks = 64
	flushEvery  = 2 * time.Second
)

// metaHeader is the header of a file's record in the journal; its body is the presence
// bitmap followed by one little-endian CRC-32C per block.
type metaHeader struct {
	Share string `json:"share"`
	Path  string `json:"path"`
	ETag  string `json:"etag"`
	Size  int64  `json:"size"`
	Block int64  `json:"block"`
	Used  int64  `json:"used"` // unix nanoseconds
}

// entry is one cached file (one version of it).
type entry struct {
	c     *Cache
	id    string
	key   Key
	etag  string
	size  int64
	block int64

	flushMu sync.Mutex // serialises metadata writes, in order
	recLen  int64      // of the last record written, guarded by flushMu

	mu       sync.Mutex
	refs     int // guarded by c.mu (eviction reads it under c.mu only)
	fd       *os.File
	present  []byte // bitmap
	verified []byte // bitmap: written or checked by this process, see stamp
	stamp    stamp  // of the data file after the last write or check
	sums     []uint32
	bytes    int64        // bytes of present blocks
	used     atomic.Int64 // last use, unix nanoseconds (read for eviction under c.mu only)
	dirty    bool
	pending  int // blocks stored since the last metadata write
	flushing bool
	flushed  time.Time
	gone     bool // removed from the cache: store nothing, write no metadata
}

func newEntry(c *Cache, id string, k Key, etag string, size, block int64) *entry {
	nb := (size + block - 1) / block
	e := &entry{
		c: c, id: id, key: k, etag: etag, size: size, block: block,
		present:  make([]byte, (nb+7)/8),
		verified: make([]byte, (nb+7)/8),
		sums:     make([]uint32, nb),
		flushed:  c.o.Now(),
	}
	e.used.Store(c.o.Now().UnixNano())
	return e
}

func (e *entry) nblocks() int64 { return int64(len(e.sums)) }

func bit(b []byte, i int64) bool { return b[i/8]&(1<<(i%8)) != 0 }
func setBit(b []byte, i int64)   { b[i/8] |= 1 << (i % 8) }
func clearBit(b []byte, i int64) { b[i/8] &^= 1 << (i % 8) }

// blockLen is the length of block i (the last one may be short).
func (e *entry) blockLen(i int64) int64 { return min(e.block, e.size-i*e.block) }

func (e *entry) decodeBlocks(body []byte) error {
	nb := e.nblocks()
	if int64(len(body)) != int64(len(e.present))+4*nb {
		return errDamaged
	}
	copy(e.present, body)
	sums := body[len(e.present):]
	for i := range nb {
		e.sums[i] = binary.LittleEndian.Uint32(sums[4*i:])
		if bit(e.present, i) {
			e.bytes += e.blockLen(i)
		}
	}
	// bits beyond the last block must be clear
	for i := nb; i < int64(len(e.present))*8; i++ {
		if bit(e.present, i) {
			return errDamaged
		}
	}
	return nil
}

func (e *entry) storedBytes() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bytes
}

func (e *entry) complete() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.completeLocked()
}

func (e *entry) completeLocked() bool { return e.bytes == e.size }

// flush appends e's metadata to the journal if it changed (or always,
// with force, to keep the last use). Neither the data nor the record is
// synced: after a crash, a block the record names but whose bytes did not
// reach the disk reads as zeros or as older bytes, which fail its
// checksum, and a torn record fails its own (see the package doc).
func (e *entry) flush(force bool) error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	e.mu.Lock()
	if e.gone || !e.dirty && !force {
		e.mu.Unlock()
		return nil
	}
	rec, err := e.recordLocked()
	e.dirty = false
	e.pending = 0
	e.flushed = e.c.o.Now()
	e.mu.Unlock()
	compact := false
	if err == nil {
		e.c.recBytes.Add(int64(len(rec)) - e.recLen)
		e.recLen = int64(len(rec))
		compact, err = e.c.journal.append(rec, e.c.recBytes.Load())
	}
	if errors.Is(err, errJournalClosed) {
		return nil
	}
	if err != nil {
		e.mu.Lock()
		e.dirty = true
		e.mu.Unlock()
		e.c.log.Warn("contentcache: cannot write metadata", "id", e.id, "err", err)
		return err
	}
	if compact {
		e.c.bg.Add(1)
		go func() {
			defer e.c.bg.Done()
			if err := e.c.compact(false); err != nil {
				e.c.log.Warn("contentcache: cannot compact the index", "err", err)
			}
		}()
	}
	return nil
}

// recordLocked encodes e's metadata. e.mu is held.
func (e *entry) recordLocked() ([]byte, error) {
	h := metaHeader{Share: e.key.Share, Path: e.key.Path, ETag: e.etag, Size: e.size, Block: e.block, Used: e.used.Load()}
	body := make([]byte, 0, len(e.present)+4*len(e.sums))
	body = append(body, e.present...)
	for _, s := range e.sums {
		body = binary.LittleEndian.AppendUint32(body, s)
	}
	return encodeRecord(kindMeta, h, body)
}

// File is a held cached file. Its methods are safe for concurrent use.
type File struct {
	e        *entry
	released atomic.Bool
}

// Size is the file's size (of the cached version).
func (f *File) Size() int64 { return f.e.size }

// BlockSize is the unit in which f is stored.
func (f *File) BlockSize() int64 { return f.e.block }

// ETag is the version f holds.
func (f *File) ETag() string { return f.e.etag }

// blocks returns the blocks covering [off, off+n) clipped at the size.
func (e *entry) blocks(off, n int64) (first, last int64, ok bool) {
	if off < 0 || n < 0 {
		return 0, 0, false
	}
	end := min(off+n, e.size)
	if off >= end {
		return 0, -1, true
	}
	return off / e.block, (end - 1) / e.block, true
}

// Has reports whether all blocks covering [off, off+n) are present (not
// verified).
func (f *File) Has(off, n int64) bool {
	e := f.e
	first, last, ok := e.blocks(off, n)
	if !ok {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := first; i <= last; i++ {
		if !bit(e.present, i) {
			return false
		}
	}
	return true
}

// ReadAt fills p from the cache only if every block covering
// [off, off+len(p)) (clipped at Size) is present and its checksum is
// right. A block failing its checksum is dropped (so it is fetched again)
// and ok is false. It never returns bytes that were not verified. n is
// less than len(p) only at the end of the file.
func (f *File) ReadAt(p []byte, off int64) (n int, ok bool) {
	e := f.e
	first, last, ok := e.blocks(off, int64(len(p)))
	if !ok {
		return 0, false
	}
	end := min(off+int64(len(p)), e.size)
	if end <= off {
		return 0, true
	}
	e.mu.Lock()
	fd := e.fd
	var check []int64
	for i := first; i <= last; i++ {
		if !bit(e.present, i) {
			e.mu.Unlock()
			return 0, false
		}
		if !bit(e.verified, i) {
			check = append(check, i)
		}
	}
	e.used.Store(e.c.o.Now().UnixNano())
	e.mu.Unlock()
	if fd == nil {
		return 0, false
	}
	for _, i := range check {
		if !f.verify(i) {
			return 0, false
		}
	}
	got, err := fd.ReadAt(p[:end-off], off)
	if int64(got) != end-off {
		e.c.log.Debug("contentcache: short read of a data file", "id", e.id, "err", err)
		return 0, false
	}
	return got, true
}

// verify reads block i and checks it against its checksum; a block that
// fails is dropped.
func (f *File) verify(i int64) bool {
	e := f.e
	e.mu.Lock()
	fd, want, present := e.fd, e.sums[i], bit(e.present, i)
	e.mu.Unlock()
	if !present || fd == nil {
		return false
	}
	buf := getBlockBuf(e.blockLen(i))
	defer putBlockBuf(buf)
	before := stampOf(fd)
	got, _ := fd.ReadAt(buf, i*e.block)
	if got == len(buf) && crc32.Checksum(buf, castagnoli) == want {
		e.mu.Lock()
		e.checkStamp(before)
		setBit(e.verified, i)
		e.mu.Unlock()
		return true
	}
	e.c.log.Warn("contentcache: dropped a damaged block", "id", e.id, "block", i)
	e.c.mu.Lock()
	e.mu.Lock()
	if bit(e.present, i) && e.sums[i] == want {
		clearBit(e.present, i)
		clearBit(e.verified, i)
		e.bytes -= e.blockLen(i)
		if !e.gone {
			e.c.total.Add(-e.blockLen(i))
		}
		e.dirty = true
	}
	e.mu.Unlock()
	e.c.mu.Unlock()
	return false
}

// Verify checks every block of f against its checksum, dropping those
// that fail, and reports whether f is complete with every block right:
// then its data file (DataPath) holds exactly the file.
func (f *File) Verify() bool {
	e := f.e
	for i := range e.nblocks() {
		e.mu.Lock()
		present, verified := bit(e.present, i), bit(e.verified, i)
		e.mu.Unlock()
		if !present || !verified && !f.verify(i) {
			return false
		}
	}
	return true
}

// OpenData opens f's data file read-only, for a caller that reads a
// verified, complete file (Verify) without going through ReadAt, such as
// the kernel's passthrough. The caller closes it.
func (f *File) OpenData() (*os.File, error) {
	e := f.e
	e.mu.Lock()
	gone := e.gone
	e.mu.Unlock()
	if gone {
		return nil, errors.New("contentcache: file removed")
	}
	return os.Open(e.c.dataPath(e.id))
}

// WriteAt stores the whole blocks contained in p at off (off need not be
// aligned: only the blocks fully covered, plus the last block of the file
// if p reaches Size, are stored). Blocks already present are kept. Unpinned
// content is stored only within the cache's limit (nothing is stored, and
// no error returned, beyond it).
func (f *File) WriteAt(p []byte, off int64) error {
	e := f.e
	if f.released.Load() {
		return errors.New("contentcache: file released")
	}
	if off < 0 {
		return errors.New("contentcache: negative offset")
	}
	end := min(off+int64(len(p)), e.size)
	first := (off + e.block - 1) / e.block
	var todo []int64
	var add int64
	e.mu.Lock()
	if e.gone || e.fd == nil {
		e.mu.Unlock()
		return nil
	}
	fd := e.fd
	for i := first; i < e.nblocks(); i++ {
		bl := e.blockLen(i)
		if i*e.block+bl > end {
			break
		}
		if !bit(e.present, i) {
			todo = append(todo, i)
			add += bl
		}
	}
	e.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	if !e.c.reserve(e.key, add) {
		return nil
	}
	pre := stampOf(fd)
	e.mu.Lock()
	e.checkStamp(pre)
	e.mu.Unlock()
	stored := 0
	var werr error
	for _, i := range todo {
		start := i * e.block
		b := p[start-off : start-off+e.blockLen(i)]
		// the data first, then (below) its checksum
		if _, err := fd.WriteAt(b, start); err != nil {
			werr = err
			break
		}
		sum := crc32.Checksum(b, castagnoli)
		e.mu.Lock()
		if !e.gone && !bit(e.present, i) {
			setBit(e.present, i)
			setBit(e.verified, i)
			e.sums[i] = sum
			e.bytes += e.blockLen(i)
			e.c.total.Add(e.blockLen(i))
			e.dirty = true
			e.pending++
			stored++
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	if stored > 0 {
		e.stamp = stampOf(fd) // this process's own change
	}
	due := e.dirty && !e.flushing && (e.pending >= flushBlocks || e.c.o.Now().Sub(e.flushed) >= flushEvery)
	if due {
		e.flushing = true
	}
	e.mu.Unlock()
	if due {
		// in the background: the caller is a reader waiting for bytes
		e.c.bg.Add(1)
		go func() {
			defer e.c.bg.Done()
			e.flush(false)
			e.mu.Lock()
			e.flushing = false
			e.mu.Unlock()
		}()
	}
	if werr != nil {
		e.c.log.Warn("contentcache: cannot store a block", "id", e.id, "err", werr)
		return werr
	}
	return nil
}

// Complete reports whether every block is present.
func (f *File) Complete() bool { return f.e.complete() }

// Release gives f back; the last holder's release writes the metadata and
// closes the data file, or removes the file when nothing of it was stored
// (unless it is pinned). Releasing twice is harmless.
func (f *File) Release() {
	if f.released.Swap(true) {
		return
	}
	e := f.e
	c := e.c
	c.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && e.size > 0 && e.storedBytes() == 0 && !e.gone && !c.pinnedLocked(e.key) {
		// Nothing stored (a file opened, or read a little here and
		// there): not worth an entry.
		c.removeLocked(e)
	}
	c.mu.Unlock()
	if !last {
		return
	}
	e.flush(false)
	c.mu.Lock()
	e.mu.Lock()
	if e.refs == 0 && e.fd != nil {
		e.fd.Close()
		e.fd = nil
	}
	gone := e.gone
	e.mu.Unlock()
	if !gone {
		c.evictLocked(0)
	}
	c.mu.Unlock()
}

var blockPool sync.Pool

func getBlockBuf(n int64) []byte {
	if b, ok := blockPool.Get().(*[]byte); ok && int64(cap(*b)) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

func putBlockBuf(b []byte) { blockPool.Put(&b) }

// stamp identifies the state of a data file: a write by anyone changes it.
// Verified blocks stay verified across opens while it is unchanged, so
// that a file read again is not read twice (once to check it); a change
// from outside (a damaged or tampered file) makes every block checked
// again.
type stamp struct {
	size         int64
	mtime, ctime int64
	ino          uint64
}

// stampOf returns the stamp of f, the zero stamp when it cannot be had
// (which no data file has: nothing stays verified).
func stampOf(f *os.File) stamp {
	fi, err := f.Stat()
	if err != nil {
		return stamp{}
	}
	st := stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ctime = sys.Ctim.Nano()
		st.ino = sys.Ino
	}
	return st
}

// checkStamp forgets what was verified if the data file is not as it was
// when it was verified (cur is its stamp now). e.mu is held.
func (e *entry) checkStamp(cur stamp) {
	if cur != e.stamp || cur == (stamp{}) {
		clear(e.verified)
		e.stamp = cur
	}
}
