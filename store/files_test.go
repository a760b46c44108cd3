package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestDatabaseFilesPrivate: the database and its -wal and -shm files are
// 0600 whatever the umask, as they hold who shares what with the user.
func TestDatabaseFilesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.PutShare(context.Background(), testShare("s1", "p1")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want -rw-------", filepath.Base(p), fi.Mode().Perm())
		}
	}
}
