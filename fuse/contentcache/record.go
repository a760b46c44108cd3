package contentcache

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// A record is the on-disk form of metadata, listings and pins:
//
//	"OCC1" kind(1) hdrLen(u32) hdr(JSON) bodyLen(u64) body crc32c(u32)
//
// the checksum covering every byte before it, so that a short or damaged
// record is recognised as such.

const (
	recordMagic = "OCC1"
	kindMeta    = 'm'
	kindListing = 'l'
	kindPins    = 'p'
	// maxRecord bounds what Open reads from one record.
	maxRecord = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errDamaged = errors.New("damaged record")

func encodeRecord(kind byte, hdr any, body []byte) ([]byte, error) {
	h, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(recordMagic)+1+4+len(h)+8+len(body)+4)
	b = append(b, recordMagic...)
	b = append(b, kind)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(h)))
	b = append(b, h...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(body)))
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// decodeRecord checks the framing and checksum of b and unmarshals its
// header into hdr; it returns the body (a slice of b).
func decodeRecord(b []byte, kind byte, hdr any) ([]byte, error) {
	if len(b) < len(recordMagic)+1+4+8+4 || string(b[:4]) != recordMagic || b[4] != kind {
		return nil, errDamaged
	}
	sum := binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(b[:len(b)-4], castagnoli) != sum {
		return nil, errDamaged
	}
	rest := b[5 : len(b)-4]
	hl := uint64(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if hl+8 > uint64(len(rest)) {
		return nil, errDamaged
	}
	h := rest[:hl]
	rest = rest[hl:]
	bl := binary.LittleEndian.Uint64(rest)
	rest = rest[8:]
	if bl != uint64(len(rest)) {
		return nil, errDamaged
	}
	if err := json.Unmarshal(h, hdr); err != nil {
		return nil, fmt.Errorf("%w: %v", errDamaged, err)
	}
	return rest, nil
}

func readRecord(path string, kind byte, hdr any) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxRecord {
		return nil, errDamaged
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeRecord(b, kind, hdr)
}

// writeAtomic replaces path with b: a temporary file beside it, synced,
// then renamed over it, so that path holds either the old or the new
// bytes. Only for what is not a cache (the pins, a person's choice).
func writeAtomic(path string, b []byte) error { return replaceFile(path, b, true) }

// replaceFile is writeAtomic, without the sync when sync is false: for
// records whose loss after a crash costs nothing (their checksum catches a
// torn one). The rename still leaves the old record or the new one whole
// while the system runs.
func replaceFile(path string, b []byte, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil && sync {
		err = syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// syncFile is (*os.File).Sync; tests count its calls.
var syncFile = (*os.File).Sync
