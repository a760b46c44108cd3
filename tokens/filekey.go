package tokens

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// CredentialName is the systemd credential (LoadCredential= or
// LoadCredentialEncrypted=) that holds the key of the secrets file; it is
// read from $CREDENTIALS_DIRECTORY.
const CredentialName = "ocm-agent-secrets-key"

// GeneratedKeyName is the key file created in the configuration directory
// when no other key is provided.
const GeneratedKeyName = "secrets.key"

// minKeyMaterial is the least key material accepted from a key file.
const minKeyMaterial = 16

// maxKeyFile bounds what is read from a key file.
const maxKeyFile = 4096

// resolveFileKey finds the key of the secrets file, in this order:
//
//  1. o.KeyFile, when set (created when missing and allowed);
//  2. $CREDENTIALS_DIRECTORY/ocm-agent-secrets-key (systemd credentials;
//     never created);
//  3. <ConfigDir>/secrets.key, created when missing and allowed, with a
//     warning that the key then sits on the same disk as the state.
//
// The AES-256 key is derived with HKDF-SHA256 from the file's content with
// surrounding white space removed, so a key file may hold raw bytes, base64,
// hex or a long passphrase. mayCreate is false once a secrets file exists: a
// new key could not decrypt it.
func resolveFileKey(o FileOptions, mayCreate bool, logger *slog.Logger) ([]byte, string, error) {
	stateDir := filepath.Clean(o.StateDir)
	if o.KeyFile != "" {
		path := filepath.Clean(o.KeyFile)
		if filepath.Dir(path) == stateDir {
			logger.Warn("secrets: the key file is next to the secrets file it protects; keep it elsewhere", "key_file", path)
		}
		return loadOrCreateKey(path, mayCreate, "configured key file")
	}
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		path := filepath.Join(dir, CredentialName)
		if _, err := os.Stat(path); err == nil {
			return loadOrCreateKey(path, false, "systemd credential")
		}
	}
	cfg := o.ConfigDir
	if cfg == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return nil, "", fmt.Errorf("file store: no key file configured and no configuration directory: %w", err)
		}
		cfg = filepath.Join(base, "ocm-agent")
	}
	path := filepath.Join(filepath.Clean(cfg), GeneratedKeyName)
	if filepath.Clean(cfg) == stateDir {
		logger.Warn("secrets: the key file is next to the secrets file it protects; keep it elsewhere", "key_file", path)
	}
	logger.Warn("secrets: the key of the secrets file is a file on this disk; "+
		"for better protection provide it as the systemd credential "+CredentialName+
		" (LoadCredentialEncrypted=) or use an unlocked keyring", "key_file", path)
	return loadOrCreateKey(path, mayCreate, "key file")
}

func loadOrCreateKey(path string, mayCreate bool, kind string) ([]byte, string, error) {
	source := kind + " " + path
	material, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) && mayCreate {
		if err := createKeyFile(path); err != nil {
			return nil, "", fmt.Errorf("file store: creating the key file %s: %w", path, err)
		}
		material, err = readKeyFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("file store: the key file %s is missing, and a secrets file encrypted with it exists; restore the key or move the secrets file away", path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("file store: %w", err)
	}
	defer clear(material)
	key, err := hkdf.Key(sha256.New, material, nil, "ocm-agent secrets file v1", 32)
	if err != nil {
		return nil, "", fmt.Errorf("file store: deriving the key: %w", err)
	}
	return key, source, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("the key file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the key file %s is accessible by other users (mode %v); run chmod 600 on it", path, fi.Mode().Perm())
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxKeyFile {
		clear(raw)
		return nil, fmt.Errorf("the key file %s is larger than %d bytes", path, maxKeyFile)
	}
	material := bytes.TrimSpace(raw)
	if len(material) < minKeyMaterial {
		clear(raw)
		return nil, fmt.Errorf("the key file %s holds less than %d bytes of key material", path, minKeyMaterial)
	}
	return material, nil
}

// createKeyFile writes 32 random bytes, base64-encoded, to path (mode
// 0600, directory 0700) unless a file is already there: it is written to a
// temporary file and hard-linked into place, so two processes cannot end
// up with different keys.
func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return err
	}
	text := []byte(base64.StdEncoding.EncodeToString(key[:]) + "\n")
	clear(key[:])
	defer clear(text)
	_, err := placeFile(path, text, false)
	if errors.Is(err, fs.ErrExist) {
		return syncDir(dir) // another process made it first: use theirs
	}
	return err
}
