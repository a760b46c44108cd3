package contentcache

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const bs = 4096

func open(t *testing.T, dir string, max int64) *Cache {
	t.Helper()
	c, err := Open(Options{Dir: dir, MaxBytes: max, BlockSize: bs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func content(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// store caches all of data as k at etag.
func store(t *testing.T, c *Cache, k Key, etag string, data []byte) {
	t.Helper()
	f, err := c.File(k, etag, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
}

// readAll reads k at etag from the cache alone.
func readAll(t *testing.T, c *Cache, k Key, etag string, size int) ([]byte, bool) {
	t.Helper()
	f, err := c.File(k, etag, int64(size))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	p := make([]byte, size)
	n, ok := f.ReadAt(p, 0)
	return p[:n], ok
}

func TestPersistsAcrossCloseAndOpen(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	k := Key{"s1", "docs/a.bin"}
	data := content(3*bs+100, 1)
	store(t, c, k, `"v1"`, data)
	if err := c.Pin("s1", "docs"); err != nil {
		t.Fatal(err)
	}
	if err := c.PutListing("s1", "docs", []byte("listing")); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c = open(t, dir, 1<<20)
	got, ok := readAll(t, c, k, `"v1"`, len(data))
	if !ok || !bytes.Equal(got, data) {
		t.Fatalf("after reopening: ok=%v, equal=%v", ok, bytes.Equal(got, data))
	}
	f, etag, size, ok := c.Stored(Key{"s1", "/docs/a.bin/"})
	if !ok || etag != `"v1"` || size != int64(len(data)) || !f.Complete() {
		t.Fatalf("Stored = %v %q %d", ok, etag, size)
	}
	f.Release()
	if !c.Pinned(k) || len(c.Pins()) != 1 {
		t.Fatalf("pins lost: %v", c.Pins())
	}
	if l, ok := c.Listing("s1", "docs"); !ok || string(l) != "listing" {
		t.Fatalf("listing lost: %q %v", l, ok)
	}
	if u := c.Usage(); u.Files != 1 || u.Bytes != int64(len(data)) || u.PinnedBytes != u.Bytes || u.Shares["s1"].Files != 1 {
		t.Fatalf("usage %+v", u)
	}
}

func TestPartialBlocksAndUnalignedWrites(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	k := Key{"s", "f"}
	data := content(5*bs+7, 2)
	f, err := c.File(k, `"e"`, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	// covers block 1 wholly and parts of 0 and 2: only block 1 is stored
	if err := f.WriteAt(data[100:3*bs-1], 100); err != nil {
		t.Fatal(err)
	}
	if f.Has(0, bs) || !f.Has(bs, bs) || f.Has(bs, bs+1) {
		t.Fatal("Has does not match the blocks stored")
	}
	p := make([]byte, 10)
	if n, ok := f.ReadAt(p, bs+5); !ok || n != 10 || !bytes.Equal(p, data[bs+5:bs+15]) {
		t.Fatalf("ReadAt inside a stored block: %d %v", n, ok)
	}
	if _, ok := f.ReadAt(p, bs-5); ok {
		t.Fatal("ReadAt across a missing block succeeded")
	}
	// the tail reaches Size: the short last block is stored
	if err := f.WriteAt(data[5*bs-3:], 5*bs-3); err != nil {
		t.Fatal(err)
	}
	if !f.Has(5*bs, 7) {
		t.Fatal("last short block not stored")
	}
	p = make([]byte, 100)
	if n, ok := f.ReadAt(p, 5*bs); !ok || n != 7 || !bytes.Equal(p[:n], data[5*bs:]) {
		t.Fatalf("ReadAt at the end: %d %v", n, ok)
	}
	if f.Complete() {
		t.Fatal("Complete with blocks missing")
	}
	if err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if !f.Complete() || !f.Verify() {
		t.Fatal("not complete after storing everything")
	}
}

func TestEvictsLeastRecentlyUsedBeyondMaxBytes(t *testing.T) {
	now := time.Unix(1e9, 0)
	var clockMu sync.Mutex
	tick := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		now = now.Add(time.Second)
		return now
	}
	const max = 20 * bs
	c, err := Open(Options{Dir: t.TempDir(), MaxBytes: max, BlockSize: bs, Now: tick})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pinned := Key{"s", "keep/big"}
	if err := c.Pin("s", "keep"); err != nil {
		t.Fatal(err)
	}
	pdata := content(8*bs, 3)
	store(t, c, pinned, `"p"`, pdata)

	held := Key{"s", "held"}
	hdata := content(4*bs, 4)
	hf, err := c.File(held, `"h"`, int64(len(hdata)))
	if err != nil {
		t.Fatal(err)
	}
	if err := hf.WriteAt(hdata, 0); err != nil {
		t.Fatal(err)
	}

	// 40 files of 3 blocks: six times what is left of the limit
	for i := range 40 {
		store(t, c, Key{"s", "w/" + string(rune('a'+i))}, `"w"`, content(3*bs, uint64(10+i)))
		if u := c.Usage(); u.Bytes-u.PinnedBytes > max {
			t.Fatalf("after file %d: unpinned bytes %d > %d", i, u.Bytes-u.PinnedBytes, max)
		}
	}
	if got, ok := readAll(t, c, pinned, `"p"`, len(pdata)); !ok || !bytes.Equal(got, pdata) {
		t.Fatal("a pinned file was evicted")
	}
	p := make([]byte, len(hdata))
	if n, ok := hf.ReadAt(p, 0); !ok || n != len(hdata) || !bytes.Equal(p, hdata) {
		t.Fatal("a held file was evicted under its reader")
	}
	hf.Release()
	// the newest written survive, the oldest went
	if _, ok := readAll(t, c, Key{"s", "w/" + string(rune('a'+39))}, `"w"`, 3*bs); !ok {
		t.Fatal("the most recent file was evicted")
	}
	if _, ok := readAll(t, c, Key{"s", "w/a"}, `"w"`, 3*bs); ok {
		t.Fatal("the oldest file survived")
	}
	// the files on disk agree with the accounting
	var onDisk int64
	des, _ := os.ReadDir(filepath.Join(c.o.Dir, "files"))
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".data") {
			onDisk++
		}
	}
	if u := c.Usage(); int64(u.Files) != onDisk {
		t.Fatalf("%d files accounted, %d data files on disk", u.Files, onDisk)
	}

	// a single unpinned file bigger than the limit is not kept
	store(t, c, Key{"s", "huge"}, `"x"`, content(max+bs, 5))
	if u := c.Usage(); u.Bytes-u.PinnedBytes > max {
		t.Fatalf("unpinned bytes %d > %d", u.Bytes-u.PinnedBytes, max)
	}
	// unpinning makes the pinned file evictable
	if err := c.Unpin("s", "keep"); err != nil {
		t.Fatal(err)
	}
	if u := c.Usage(); u.Bytes > max {
		t.Fatalf("bytes %d > %d after unpinning", u.Bytes, max)
	}
}

// dataFile returns the path of k's data file.
func dataFile(c *Cache, k Key) string { return c.dataPath(fileID(k.clean())) }

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// storedAndClosed stores n bytes as k at "e" in a new cache, closed, and
// returns its directory and the bytes.
func storedAndClosed(t *testing.T, k Key, n int, seed uint64) (dir string, data []byte) {
	t.Helper()
	dir = t.TempDir()
	c := open(t, dir, 1<<20)
	data = content(n, seed)
	store(t, c, k, `"e"`, data)
	c.Close()
	return dir, data
}

func TestCorruptBlockIsDroppedNeverServed(t *testing.T) {
	k := Key{"s", "f"}
	dir, data := storedAndClosed(t, k, 4*bs, 6)
	c := open(t, dir, 1<<20)
	flipByte(t, dataFile(c, k), 2*bs+17)

	f, err := c.File(k, `"e"`, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 100)
	if _, ok := f.ReadAt(p, 2*bs); ok {
		t.Fatal("a corrupted block was served")
	}
	if f.Has(2*bs, 1) {
		t.Fatal("the corrupted block is still present")
	}
	if _, ok := f.ReadAt(p, bs); !ok {
		t.Fatal("a sound block was not served")
	}
	if f.Verify() {
		t.Fatal("Verify passed with a block missing")
	}
	// fetched again and stored: served right
	if err := f.WriteAt(data[2*bs:3*bs], 2*bs); err != nil {
		t.Fatal(err)
	}
	if !f.Verify() {
		t.Fatal("Verify failed after the block was stored again")
	}
	f.Release()
	if got, ok := readAll(t, c, k, `"e"`, len(data)); !ok || !bytes.Equal(got, data) {
		t.Fatal("content differs after refetching the block")
	}

	// corrupted while closed in this process too: checked on the next open
	flipByte(t, dataFile(c, k), 17)
	if _, ok := readAll(t, c, k, `"e"`, len(data)); ok {
		t.Fatal("corruption between two opens was served")
	}
}

// journalRecords returns the records of the journal in dir, in order,
// with the id of the file each is of.
func journalRecords(t *testing.T, dir string) (recs [][]byte, ids []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	for len(b) > 0 {
		rec, rest, ok := nextRecord(b)
		if !ok {
			t.Fatalf("the index has a damaged record")
		}
		var h metaHeader
		if _, err := decodeRecord(rec, kindMeta, &h); err != nil {
			t.Fatal(err)
		}
		recs, ids = append(recs, rec), append(ids, fileID(Key{h.Share, h.Path}))
		b = rest
	}
	return recs, ids
}

// hasRecord reports whether the journal in dir has a record of k.
func hasRecord(t *testing.T, dir string, k Key) bool {
	_, ids := journalRecords(t, dir)
	return slices.Contains(ids, fileID(k.clean()))
}

// rewriteJournal leaves in dir's journal the last record of each of keys,
// in that order, and returns where each starts and ends.
func rewriteJournal(t *testing.T, dir string, keys ...Key) (at [][2]int) {
	t.Helper()
	recs, ids := journalRecords(t, dir)
	var b []byte
	for _, k := range keys {
		last := -1
		for j, id := range ids {
			if id == fileID(k.clean()) {
				last = j
			}
		}
		if last < 0 {
			t.Fatalf("no record of %v", k)
		}
		at = append(at, [2]int{len(b), len(b) + len(recs[last])})
		b = append(b, recs[last]...)
	}
	if err := os.WriteFile(filepath.Join(dir, "index"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return at
}

// A record damaged by a crash (torn at the end of the index, a byte
// wrong, zeroed) drops its file with its data; the records after it count.
func TestDamagedMetadataIsDroppedOnOpen(t *testing.T) {
	k, good := Key{"s", "damaged"}, Key{"s", "good"}
	for name, damage := range map[string]func(t *testing.T, dir string){
		"torn at the end": func(t *testing.T, dir string) {
			at := rewriteJournal(t, dir, good, k)
			if err := os.Truncate(filepath.Join(dir, "index"), int64(at[1][0]+(at[1][1]-at[1][0])/2)); err != nil {
				t.Fatal(err)
			}
		},
		"flipped": func(t *testing.T, dir string) {
			at := rewriteJournal(t, dir, k, good)
			flipByte(t, filepath.Join(dir, "index"), int64(at[0][1]-10))
		},
		"length flipped": func(t *testing.T, dir string) {
			at := rewriteJournal(t, dir, k, good)
			flipByte(t, filepath.Join(dir, "index"), int64(at[0][0]+6))
		},
		"zeroed": func(t *testing.T, dir string) {
			at := rewriteJournal(t, dir, k, good)
			f, err := os.OpenFile(filepath.Join(dir, "index"), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, at[0][1]-at[0][0]), int64(at[0][0])); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c := open(t, dir, 1<<20)
			store(t, c, k, `"e"`, content(2*bs, 7))
			store(t, c, good, `"e"`, content(2*bs, 8))
			c.Close()
			damage(t, dir)
			// a temporary file left by a crash
			os.WriteFile(filepath.Join(dir, "files", ".tmp-123"), []byte("x"), 0o600)

			c = open(t, dir, 1<<20)
			if f, _, _, ok := c.Stored(k); ok {
				f.Release()
				t.Fatal("a file with damaged metadata is still cached")
			}
			for _, p := range []string{dataFile(c, k), filepath.Join(dir, "files", ".tmp-123")} {
				if _, err := os.Stat(p); err == nil {
					t.Fatalf("%s left on disk", filepath.Base(p))
				}
			}
			if got, ok := readAll(t, c, good, `"e"`, 2*bs); !ok || !bytes.Equal(got, content(2*bs, 8)) {
				t.Fatal("a sound file was dropped")
			}
		})
	}
}

// A record whose header claims more blocks than its body holds is damaged,
// and is refused before anything is allocated for those blocks (a sound
// checksum does not make a huge size true).
func TestRecordClaimingHugeSizeIsRefused(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	k := Key{"s", "huge"}
	for _, h := range []metaHeader{
		{Share: k.Share, Path: k.Path, ETag: `"e"`, Size: 1 << 50, Block: 1},
		{Share: k.Share, Path: k.Path, ETag: `"e"`, Size: 1<<62 + 1, Block: 1 << 20},
	} {
		rec, err := encodeRecord(kindMeta, h, make([]byte, 5))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.loadEntry(fileID(k), rec); !errors.Is(err, errDamaged) {
			t.Fatalf("size %d in blocks of %d with a 5-byte body: %v, want a damaged record", h.Size, h.Block, err)
		}
	}
}

// Nothing is synced: after a crash, the index may name blocks whose bytes
// never reached the disk. They read as zeros (a hole) or as other bytes,
// fail their checksum, and are never served.
func TestUnwrittenBlocksAfterACrashAreNeverServed(t *testing.T) {
	data := content(4*bs, 21)
	other := content(4*bs, 22) // another version's bytes
	for name, lose := range map[string]func(t *testing.T, path string){
		"zeroed block": func(t *testing.T, path string) {
			writeAt(t, path, make([]byte, bs), bs)
		},
		"another version's block": func(t *testing.T, path string) {
			writeAt(t, path, other[bs:2*bs], bs)
		},
		"all holes": func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, int64(len(data))); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c := open(t, dir, 1<<20)
			k := Key{"s", "f"}
			store(t, c, k, `"e"`, data)
			c.Close()
			lose(t, dataFile(c, k))

			c = open(t, dir, 1<<20)
			f, err := c.File(k, `"e"`, int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Release()
			p := make([]byte, bs)
			if _, ok := f.ReadAt(p, bs); ok {
				t.Fatal("a block that never reached the disk was served")
			}
			if f.Verify() {
				t.Fatal("Verify passed")
			}
			for i := int64(0); i < 4; i++ {
				if n, ok := f.ReadAt(p, i*bs); ok && (n != bs || !bytes.Equal(p, data[i*bs:(i+1)*bs])) {
					t.Fatalf("block %d served wrong", i)
				}
			}
		})
	}
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// Storing and releasing files syncs nothing (the checksums keep the cache
// right); a pin, a person's choice, is synced.
func TestStoringFilesSyncsNothing(t *testing.T) {
	var syncs atomic.Int32
	syncFile = func(f *os.File) error { syncs.Add(1); return f.Sync() }
	t.Cleanup(func() { syncFile = (*os.File).Sync })
	c := open(t, t.TempDir(), 1<<30)
	for i := range 20 {
		store(t, c, Key{"s", fmt.Sprint(i)}, `"e"`, content(3*bs, uint64(i)))
	}
	c.PutListing("s", "", []byte("listing"))
	if n := syncs.Load(); n != 0 {
		t.Fatalf("%d syncs to store 20 files", n)
	}
	if err := c.Pin("s", "x"); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 1 {
		t.Fatalf("%d syncs to pin, want 1", n)
	}
}

// A crash before the first metadata write leaves only data, which the
// next Open removes; after a batch, what the metadata names is served.
func TestCrashKeepsOnlyRecordedBlocks(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<30)
	k := Key{"s", "f"}
	data := content((flushBlocks+3)*bs, 16)
	f, err := c.File(k, `"e"`, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteAt(data[:bs], 0); err != nil {
		t.Fatal(err)
	}
	if hasRecord(t, dir, k) {
		t.Fatal("metadata written for a single block")
	}
	// the process dies here: another one opens the directory
	c2 := open(t, dir, 1<<30)
	if _, _, _, ok := c2.Stored(k); ok {
		t.Fatal("a file without metadata is cached")
	}
	if _, err := os.Stat(dataFile(c, k)); err == nil {
		t.Fatal("orphaned data kept")
	}
	c2.Close()

	f.Release()
	dir3 := t.TempDir()
	c3 := open(t, dir3, 1<<30)
	f, err = c3.File(k, `"e"`, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteAt(data, 0); err != nil { // a batch is due: metadata written
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !hasRecord(t, dir3, k); {
		if time.Now().After(deadline) {
			t.Fatal("no metadata written after a batch of blocks")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c4 := open(t, dir3, 1<<30)
	g, _, _, ok := c4.Stored(k)
	if !ok {
		t.Fatal("a batch of blocks was not recorded")
	}
	p := make([]byte, bs)
	if n, ok := g.ReadAt(p, 0); !ok || n != bs || !bytes.Equal(p, data[:bs]) {
		t.Fatal("a recorded block was not served")
	}
	g.Release()
	f.Release()
}

func TestNewVersionDropsOldContent(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	k := Key{"s", "f"}
	old := content(3*bs, 9)
	store(t, c, k, `"1"`, old)

	// a reader of the old version keeps reading it
	held, _, _, ok := c.Stored(k)
	if !ok {
		t.Fatal("not stored")
	}
	for _, v := range []struct {
		etag string
		size int64
	}{{`"2"`, 3 * bs}, {`"2"`, 3*bs + 1}} {
		f, err := c.File(k, v.etag, v.size)
		if err != nil {
			t.Fatal(err)
		}
		if f.Has(0, 1) {
			t.Fatalf("%s/%d: old content kept", v.etag, v.size)
		}
		f.Release()
	}
	p := make([]byte, len(old))
	if n, ok := held.ReadAt(p, 0); !ok || n != len(old) || !bytes.Equal(p, old) {
		t.Fatal("the holder of the old version lost it")
	}
	// and cannot store into the new one
	if err := held.WriteAt(old, 0); err != nil {
		t.Fatal(err)
	}
	held.Release()
	if _, ok := readAll(t, c, k, `"2"`, 3*bs+1); ok {
		t.Fatal("old content served as the new version")
	}
	if u := c.Usage(); u.Bytes != 0 {
		t.Fatalf("usage %d after the version changed", u.Bytes)
	}
	if _, err := c.File(k, "", 1); err == nil {
		t.Fatal("File without an ETag accepted")
	}
}

func TestFilesArePrivateAndNamedByHash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "content")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := open(t, dir, 1<<20)
	store(t, c, Key{"share-secret", "Private/Payroll.xlsx"}, `"e"`, content(bs+1, 10))
	c.PutListing("share-secret", "Private", []byte("x"))
	c.Pin("share-secret", "Private")
	c.Close()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range []string{"Payroll", "Private", "secret"} {
			if strings.Contains(rel, s) {
				t.Errorf("%s names the content", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRemoveShareAndClear(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	store(t, c, Key{"a", "x"}, `"e"`, content(bs, 11))
	store(t, c, Key{"a", "p/y"}, `"e"`, content(bs, 12))
	store(t, c, Key{"b", "x"}, `"e"`, content(2*bs, 13))
	store(t, c, Key{"b", "p/y"}, `"e"`, content(bs, 14))
	c.Pin("a", "p")
	c.Pin("b", "p")
	c.PutListing("a", "", []byte("root"))
	c.PutListing("b", "", []byte("root"))
	c.PutListing("b", "p", []byte("p"))

	c.PutListing("c", "", []byte("only a listing"))
	if got := c.Shares(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Shares = %q", got)
	}
	if err := c.RemoveShare("c"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveShare("a"); err != nil {
		t.Fatal(err)
	}
	u := c.Usage()
	if _, ok := u.Shares["a"]; ok || u.Files != 2 {
		t.Fatalf("after RemoveShare: %+v", u)
	}
	if _, ok := c.Listing("a", ""); ok {
		t.Fatal("listing of a removed share kept")
	}
	if ps := c.Pins(); len(ps) != 1 || ps[0].Share != "b" || ps[0].Path != "p" {
		t.Fatalf("pins after RemoveShare: %v", ps)
	}
	// nothing in the index names the removed share's files any more
	for _, k := range []Key{{"a", "x"}, {"a", "p/y"}} {
		if hasRecord(t, dir, k) {
			t.Fatalf("the index still names %v", k)
		}
	}
	if !hasRecord(t, dir, Key{"b", "x"}) {
		t.Fatal("the index lost another share's file")
	}

	freed, err := c.Clear(false)
	if err != nil || freed != 2*bs {
		t.Fatalf("Clear(false) freed %d, %v", freed, err)
	}
	if files, complete, b := c.PinUsage("b", "p"); files != 1 || complete != 1 || b != bs {
		t.Fatalf("pinned content after Clear(false): %d %d %d", files, complete, b)
	}
	if _, ok := c.Listing("b", "p"); !ok {
		t.Fatal("listing of a pinned folder cleared")
	}
	if _, ok := c.Listing("b", ""); ok {
		t.Fatal("listing of an unpinned folder kept")
	}
	freed, err = c.Clear(true)
	if err != nil || freed != bs {
		t.Fatalf("Clear(true) freed %d, %v", freed, err)
	}
	if u := c.Usage(); u.Files != 0 || u.Bytes != 0 {
		t.Fatalf("after Clear(true): %+v", u)
	}
	if len(c.Pins()) != 1 {
		t.Fatal("Clear removed a pin")
	}
	des, _ := os.ReadDir(filepath.Join(c.o.Dir, "files"))
	if len(des) != 0 {
		t.Fatalf("%d files left on disk", len(des))
	}
}

func TestListingsAreBounded(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(Options{Dir: dir, MaxBytes: 1 << 20, MaxListingBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 30 {
		if err := c.PutListing("s", strings.Repeat("d", i+1), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	des, _ := os.ReadDir(filepath.Join(dir, "listings"))
	if len(des) > 10 {
		t.Fatalf("%d listings kept within 1000 bytes", len(des))
	}
	if _, ok := c.Listing("s", strings.Repeat("d", 30)); !ok {
		t.Fatal("the newest listing was dropped")
	}
	// a damaged listing is not returned
	flipByte(t, filepath.Join(dir, "listings", listingID("s", strings.Repeat("d", 30))), 30)
	if _, ok := c.Listing("s", strings.Repeat("d", 30)); ok {
		t.Fatal("a damaged listing was returned")
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	c := open(t, t.TempDir(), 64*bs)
	data := content(16*bs, 15)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := Key{"s", string(rune('a' + (g+i)%6))}
				f, err := c.File(k, `"e"`, int64(len(data)))
				if err != nil {
					t.Error(err)
					return
				}
				off := int64(i%15) * bs
				f.WriteAt(data[off:off+2*bs], off)
				p := make([]byte, bs)
				if n, ok := f.ReadAt(p, off); ok && (n != bs || !bytes.Equal(p, data[off:off+bs])) {
					t.Error("wrong bytes served")
				}
				f.Release()
			}
		}()
	}
	wg.Wait()
	if u := c.Usage(); u.Bytes > 64*bs {
		t.Fatalf("bytes %d beyond the limit", u.Bytes)
	}
}

// A file released with nothing stored leaves nothing behind, unless it is
// pinned (or empty: then it is complete).
func TestNothingStoredLeavesNothing(t *testing.T) {
	c := open(t, t.TempDir(), 1<<20)
	c.Pin("s", "keep")
	for _, k := range []Key{{"s", "opened"}, {"s", "keep/x"}, {"s", "empty"}} {
		size := int64(3 * bs)
		if k.Path == "empty" {
			size = 0
		}
		f, err := c.File(k, `"e"`, size)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(make([]byte, 100), 10) // no whole block
		f.Release()
	}
	if _, _, _, ok := c.Stored(Key{"s", "opened"}); ok {
		t.Error("a file with nothing stored was kept")
	}
	for _, p := range []string{"keep/x", "empty"} {
		f, _, _, ok := c.Stored(Key{"s", p})
		if !ok {
			t.Errorf("%s was dropped", p)
			continue
		}
		f.Release()
	}
	if _, err := os.Stat(dataFile(c, Key{"s", "opened"})); err == nil {
		t.Error("the data file of a file with nothing stored is left")
	}
}

// The index is compacted while files are stored: each file's last record
// survives, and the index shrinks to about one record per file.
func TestCompactionWhileStoringKeepsEveryFile(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<30)
	const n = 60
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 3 {
				store(t, c, Key{"s", fmt.Sprint(i)}, `"e"`, content(2*bs, uint64(i)))
			}
		}()
	}
	for range 5 {
		if err := c.compact(true); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, dir, 1<<30)
	for i := range n {
		if got, ok := readAll(t, c, Key{"s", fmt.Sprint(i)}, `"e"`, 2*bs); !ok || !bytes.Equal(got, content(2*bs, uint64(i))) {
			t.Fatalf("file %d lost or wrong after compactions", i)
		}
	}
	if recs, _ := journalRecords(t, dir); len(recs) != n {
		t.Fatalf("%d records after Open for %d files", len(recs), n)
	}
}

// A cache of the older layout (a metadata file per file, id.meta) is
// taken into the index on Open.
func TestOlderLayoutIsTakenIntoTheIndex(t *testing.T) {
	k := Key{"s", "old"}
	dir, data := storedAndClosed(t, k, 3*bs, 23)
	recs, ids := journalRecords(t, dir)
	meta := filepath.Join(dir, "files", fileID(k)+".meta")
	if err := os.WriteFile(meta, recs[slices.Index(ids, fileID(k))], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}

	c := open(t, dir, 1<<20)
	if got, ok := readAll(t, c, k, `"e"`, len(data)); !ok || !bytes.Equal(got, data) {
		t.Fatal("the file of the older layout was not kept")
	}
	if _, err := os.Stat(meta); err == nil {
		t.Fatal("the older metadata file is left")
	}
	if !hasRecord(t, dir, k) {
		t.Fatal("the index has no record of the file")
	}
}

// A listing's version is kept with it, across a reopening, and replaced
// with the listing; a listing stored again the same but with another
// version takes that version.
func TestListingVersionPersists(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 1<<20)
	if _, ok := c.ListingVersion("s1", "docs"); ok {
		t.Fatal("a version for a listing never stored")
	}
	if err := c.PutListingVersion("s1", "docs", 7, []byte("listing")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = open(t, dir, 1<<20)
	if v, ok := c.ListingVersion("s1", "/docs/"); !ok || v != 7 {
		t.Fatalf("after reopening: version %d %v, want 7", v, ok)
	}
	if err := c.PutListingVersion("s1", "docs", 8, []byte("listing")); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.ListingVersion("s1", "docs"); v != 8 {
		t.Fatalf("version %d after storing the same listing as version 8", v)
	}
	if err := c.PutListing("s1", "docs", []byte("other")); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.ListingVersion("s1", "docs"); !ok || v != 0 {
		t.Fatalf("version %d %v after a listing stored without one", v, ok)
	}
	if l, ok := c.Listing("s1", "docs"); !ok || string(l) != "other" {
		t.Fatalf("listing %q %v", l, ok)
	}
}
