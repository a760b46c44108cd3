package contentcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// The metadata of every cached file is appended to one journal
// (Options.Dir/index), a record per write, the last record of a file
// winning: storing a file costs one new file (its data) and one append,
// not a metadata file of its own. The journal is rewritten with one record
// per file (compacted) on Open and when it has grown well beyond that.

// Compaction happens when the journal is larger than both of these: a
// floor, and a multiple of what one record per file takes.
const (
	compactMin    = 8 << 20
	compactFactor = 4
)

// maxJournal bounds what Open reads of the journal.
const maxJournal = 1 << 30

// errJournalClosed is what stores after Close meet: their metadata is not
// kept (their blocks are dropped at the next Open).
var errJournalClosed = errors.New("contentcache: index closed")

type journal struct {
	path      string
	compactMu sync.Mutex // one compaction at a time

	mu         sync.Mutex
	f          *os.File // O_APPEND
	size       int64
	compacting bool
	pending    [][]byte // appended while compacting, in order
}

func (c *Cache) journalPath() string { return filepath.Join(c.o.Dir, "index") }

// nextRecord splits the first record off b (checking its framing, not its
// content).
func nextRecord(b []byte) (rec, rest []byte, ok bool) {
	const fixed = len(recordMagic) + 1 + 4
	if len(b) < fixed || string(b[:4]) != recordMagic {
		return nil, nil, false
	}
	hl := uint64(binary.LittleEndian.Uint32(b[5:]))
	if uint64(len(b)-fixed) < hl+8 {
		return nil, nil, false
	}
	bl := binary.LittleEndian.Uint64(b[uint64(fixed)+hl:])
	n := uint64(fixed) + hl + 8
	if uint64(len(b))-n < 4 || bl > uint64(len(b))-n-4 {
		return nil, nil, false
	}
	n += bl + 4
	return b[:n], b[n:], true
}

// readJournal returns the last sound record of each file in the journal,
// by id, and how many bytes the journal had. A damaged record (torn or
// zeroed by a crash) is skipped: the next one is found by its magic, and
// only a record whose checksum is right counts.
func (c *Cache) readJournal() (map[string][]byte, int64, error) {
	recs := map[string][]byte{}
	fi, err := os.Stat(c.journalPath())
	if errors.Is(err, os.ErrNotExist) {
		return recs, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("contentcache: %w", err)
	}
	if fi.Size() > maxJournal {
		c.log.Warn("contentcache: the index is too large; starting empty")
		return recs, fi.Size(), nil
	}
	b, err := os.ReadFile(c.journalPath())
	if err != nil {
		return nil, 0, fmt.Errorf("contentcache: %w", err)
	}
	size := int64(len(b))
	skipped := 0
	for len(b) > 0 {
		rec, rest, ok := nextRecord(b)
		var h metaHeader
		if ok {
			_, err = decodeRecord(rec, kindMeta, &h)
		}
		if !ok || err != nil {
			skipped++
			i := bytes.Index(b[1:], metaMagic)
			if i < 0 {
				break
			}
			b = b[1+i:]
			continue
		}
		recs[fileID(Key{h.Share, h.Path})] = rec
		b = rest
	}
	if skipped > 0 {
		c.log.Warn("contentcache: skipped damaged records in the index", "records", skipped)
	}
	return recs, size, nil
}

// metaMagic starts every record of the journal.
var metaMagic = []byte(recordMagic + string(rune(kindMeta)))

// openJournal opens the journal for appending.
func (j *journal) open() error {
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("contentcache: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("contentcache: %w", err)
	}
	j.f, j.size = f, fi.Size()
	return nil
}

// append adds rec to the journal, and reports whether the journal is due
// for compaction (live: the bytes of one record per file).
func (j *journal) append(rec []byte, live int64) (compact bool, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return false, errJournalClosed
	}
	if _, err := j.f.Write(rec); err != nil {
		return false, err
	}
	j.size += int64(len(rec))
	if j.compacting {
		j.pending = append(j.pending, rec)
		return false, nil
	}
	return j.dueLocked(live), nil
}

// dueLocked reports whether the journal has grown enough to be compacted
// (live: the bytes of one record per file). j.mu is held.
func (j *journal) dueLocked(live int64) bool {
	return j.size > compactMin && j.size > compactFactor*live
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// compact rewrites the journal with one record per file held now (only
// if it is due, unless force). Records appended meanwhile go after those:
// a file's last record is then either its state when it was written here
// or a later one. The new journal is synced before it replaces the old
// (it is rare, and holds every file). Compactions run one at a time, so
// that one forced after a removal starts after it.
func (c *Cache) compact(force bool) error {
	j := &c.journal
	j.compactMu.Lock()
	defer j.compactMu.Unlock()
	j.mu.Lock()
	if j.f == nil || !force && !j.dueLocked(c.recBytes.Load()) {
		j.mu.Unlock()
		return nil
	}
	j.compacting, j.pending = true, nil
	j.mu.Unlock()
	done := func() {
		j.compacting, j.pending = false, nil
	}

	c.mu.Lock()
	es := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		es = append(es, e)
	}
	c.mu.Unlock()
	var b []byte
	for _, e := range es {
		e.mu.Lock()
		gone := e.gone
		rec, err := e.recordLocked()
		e.mu.Unlock()
		if err != nil {
			j.mu.Lock()
			done()
			j.mu.Unlock()
			return err
		}
		if !gone {
			b = append(b, rec...)
		}
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	defer done()
	if j.f == nil {
		return nil
	}
	for _, rec := range j.pending {
		b = append(b, rec...)
	}
	if err := writeAtomic(j.path, b); err != nil {
		return fmt.Errorf("contentcache: compacting the index: %w", err)
	}
	j.f.Close()
	j.f = nil
	if err := j.open(); err != nil {
		return err
	}
	c.log.Debug("contentcache: index compacted", "files", len(es), "bytes", j.size)
	return nil
}
