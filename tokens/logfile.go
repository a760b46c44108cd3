package tokens

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// The secrets file, second version:
//
//	header  "OCM-AGENT-SECRETS v2\n", 16 random bytes (the file's salt)
//	record  4-byte length n, then n bytes: 12-byte nonce, AES-256-GCM
//	        ciphertext and tag
//	...
//
// A record's additional data is the magic, the salt and the record's
// offset, so records cannot be moved within a file or between files. Its
// plaintext is a list of operations, each a kind byte (1 put, 2 delete),
// the key (uvarint length, bytes) and for a put the value (same). The first
// record, written with the file, holds every secret of the file at that
// time and may be empty: a wrong key shows on open even then.
//
// A crash during an append leaves a torn tail: a record shorter than its
// length, a zero length (a region the file system extended with zeros), or
// a last record whose tag is all zeros. Such a tail was never acknowledged;
// readers ignore it and the next writer cuts it off. Any other record that
// fails to open is damage and an error: nothing is dropped silently.

var (
	// fileMagic starts the file of the second version (a log).
	fileMagic = []byte("OCM-AGENT-SECRETS v2\n")
	// fileMagicV1 starts the file of the first version: one sealed JSON
	// document, converted to a log on open.
	fileMagicV1 = []byte("OCM-AGENT-SECRETS v1\n")
)

const (
	saltSize  = 16
	headerLen = int64(len("OCM-AGENT-SECRETS v2\n")) + saltSize
	// maxRecord bounds one record; a compacted file is one record.
	maxRecord = maxSecretsFile
	opPut     = 1
	opDelete  = 2
)

// logOp is one put or delete.
type logOp struct {
	key   string
	value []byte
	del   bool
}

// logState is where the FileStore is in the file it last read.
type logState struct {
	file      os.FileInfo // the file read, for os.SameFile
	salt      []byte
	legacy    bool  // a file of the first version, to be converted
	start     int64 // offset of the first record
	end       int64 // end of the last whole record
	size      int64 // file size (more than end: a torn tail)
	liveBytes int64 // what the live secrets take in a record
}

func (s *logState) setFile(fi os.FileInfo) {
	s.file, s.size = fi, fi.Size()
}

// same reports whether fi is the file s describes (device and inode; the
// salt tells a reused inode apart, see catchUpLocked).
func (s *logState) same(fi os.FileInfo) bool {
	return s.file != nil && os.SameFile(s.file, fi)
}

// entrySize is what a put of key and value takes in a record.
func entrySize(key string, value []byte) int64 {
	return int64(1 + 2*binary.MaxVarintLen32 + len(key) + len(value))
}

func liveSize(data map[string][]byte) int64 {
	var n int64
	for k, v := range data {
		n += entrySize(k, v)
	}
	return n
}

func encodeOps(ops []logOp) []byte {
	var n int64
	for _, op := range ops {
		n += entrySize(op.key, op.value)
	}
	b := make([]byte, 0, n)
	for _, op := range ops {
		if op.del {
			b = append(b, opDelete)
			b = binary.AppendUvarint(b, uint64(len(op.key)))
			b = append(b, op.key...)
			continue
		}
		b = append(b, opPut)
		b = binary.AppendUvarint(b, uint64(len(op.key)))
		b = append(b, op.key...)
		b = binary.AppendUvarint(b, uint64(len(op.value)))
		b = append(b, op.value...)
	}
	return b
}

var errBadOps = errors.New("malformed record")

// applyOps decodes plain into data, keeping live (the size of the live
// secrets) up to date. Values are copied out of plain.
func applyOps(plain []byte, data map[string][]byte, live *int64) error {
	field := func() ([]byte, error) {
		n, k := binary.Uvarint(plain)
		if k <= 0 || n > uint64(len(plain)-k) {
			return nil, errBadOps
		}
		v := plain[k : k+int(n)]
		plain = plain[k+int(n):]
		return v, nil
	}
	for len(plain) > 0 {
		kind := plain[0]
		plain = plain[1:]
		kb, err := field()
		if err != nil {
			return err
		}
		key := string(kb)
		if checkKey(key) != nil {
			return errBadOps
		}
		if old, ok := data[key]; ok {
			*live -= entrySize(key, old)
		}
		switch kind {
		case opPut:
			v, err := field()
			if err != nil {
				return err
			}
			data[key] = bytes.Clone(v)
			*live += entrySize(key, v)
		case opDelete:
			delete(data, key)
		default:
			return errBadOps
		}
	}
	return nil
}

func (f *FileStore) additionalData(salt []byte, off int64) []byte {
	ad := make([]byte, 0, len(fileMagic)+len(salt)+8)
	ad = append(ad, fileMagic...)
	ad = append(ad, salt...)
	return binary.BigEndian.AppendUint64(ad, uint64(off))
}

// seal makes the record of plain at offset off of the current file, and
// clears plain.
func (f *FileStore) seal(plain []byte, off int64) ([]byte, error) {
	return f.sealWith(f.log.salt, plain, off)
}

func (f *FileStore) sealWith(salt, plain []byte, off int64) ([]byte, error) {
	defer clear(plain)
	ns := f.aead.NonceSize()
	n := ns + len(plain) + f.aead.Overhead()
	if n > maxRecord {
		return nil, fmt.Errorf("a record of %d bytes is too large", n)
	}
	rec := make([]byte, 4+ns, 4+n)
	be.PutUint32(rec, uint32(n))
	if _, err := rand.Read(rec[4:]); err != nil {
		return nil, err
	}
	return f.aead.Seal(rec, rec[4:4+ns], plain, f.additionalData(salt, off)), nil
}

// encodeWhole makes a new file holding data.
func (f *FileStore) encodeWhole(data map[string][]byte) ([]byte, logState, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, logState{}, err
	}
	ops := make([]logOp, 0, len(data))
	for k, v := range data {
		ops = append(ops, logOp{key: k, value: v})
	}
	rec, err := f.sealWith(salt, encodeOps(ops), headerLen)
	if err != nil {
		return nil, logState{}, err
	}
	raw := make([]byte, 0, headerLen+int64(len(rec)))
	raw = append(raw, fileMagic...)
	raw = append(raw, salt...)
	raw = append(raw, rec...)
	return raw, logState{salt: salt, start: headerLen, end: int64(len(raw)), size: int64(len(raw)), liveBytes: liveSize(data)}, nil
}

// parseWhole reads a whole file of either version.
func (f *FileStore) parseWhole(raw []byte) (map[string][]byte, logState, error) {
	if bytes.HasPrefix(raw, fileMagicV1) {
		data, err := f.decryptV1(raw)
		if err != nil {
			return nil, logState{}, err
		}
		return data, logState{legacy: true, end: int64(len(raw)), size: int64(len(raw))}, nil
	}
	if !bytes.HasPrefix(raw, fileMagic) || int64(len(raw)) < headerLen {
		return nil, logState{}, fmt.Errorf("file store: %s is not a secrets file of this version", f.path)
	}
	st := logState{salt: bytes.Clone(raw[len(fileMagic):headerLen]), start: headerLen, end: headerLen}
	data := map[string][]byte{}
	if err := f.parseRecords(raw[headerLen:], headerLen, data, &st); err != nil {
		return nil, logState{}, err
	}
	if st.end == headerLen {
		return nil, logState{}, fmt.Errorf("file store: %s is damaged: its first record is missing", f.path)
	}
	return data, st, nil
}

// parseRecords applies the whole records of raw, which starts at offset
// base of the file, to data and moves st.end past them; it stops at a torn
// tail.
func (f *FileStore) parseRecords(raw []byte, base int64, data map[string][]byte, st *logState) error {
	ns, tag := f.aead.NonceSize(), f.aead.Overhead()
	for off := 0; off < len(raw); {
		rest := raw[off:]
		if len(rest) < 4 {
			return nil // torn
		}
		n := int(be.Uint32(rest))
		if n == 0 || n > len(rest)-4 {
			return nil // torn: zeros, or cut short
		}
		at := base + int64(off)
		if n < ns+tag || n > maxRecord {
			return fmt.Errorf("file store: %s is damaged at offset %d (a record of %d bytes)", f.path, at, n)
		}
		body := rest[4 : 4+n]
		last := off+4+n == len(raw)
		plain, err := f.aead.Open(nil, body[:ns], body[ns:], f.additionalData(st.salt, at))
		if err != nil {
			if last && bytes.Count(body[n-tag:], []byte{0}) == tag {
				return nil // torn: the end of the record never reached the disk
			}
			if at == st.start {
				return fmt.Errorf("file store: %s cannot be decrypted with the key from %s (was the key replaced?)", f.path, f.keySource)
			}
			return fmt.Errorf("file store: %s is damaged at offset %d (a record that cannot be decrypted)", f.path, at)
		}
		err = applyOps(plain, data, &st.liveBytes)
		clear(plain)
		if err != nil {
			return fmt.Errorf("file store: %s is damaged at offset %d: %w", f.path, at, err)
		}
		off += 4 + n
		st.end = base + int64(off)
	}
	return nil
}

// fileContentV1 is the plaintext of a file of the first version.
type fileContentV1 struct {
	Version int               `json:"version"`
	Secrets map[string][]byte `json:"secrets"`
}

func (f *FileStore) decryptV1(raw []byte) (map[string][]byte, error) {
	ns := f.aead.NonceSize()
	if len(raw) < len(fileMagicV1)+ns+f.aead.Overhead() {
		return nil, fmt.Errorf("file store: %s is not a secrets file of this version", f.path)
	}
	body := raw[len(fileMagicV1):]
	plain, err := f.aead.Open(nil, body[:ns], body[ns:], fileMagicV1)
	if err != nil {
		return nil, fmt.Errorf("file store: %s cannot be decrypted with the key from %s (was the key replaced?)", f.path, f.keySource)
	}
	defer clear(plain)
	var c fileContentV1
	if err := json.Unmarshal(plain, &c); err != nil || c.Version != 1 {
		return nil, fmt.Errorf("file store: %s holds an unexpected layout", f.path)
	}
	if c.Secrets == nil {
		c.Secrets = map[string][]byte{}
	}
	return c.Secrets, nil
}
