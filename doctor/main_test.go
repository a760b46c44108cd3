package doctor

import (
	"fmt"
	"os"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
)

// TestMain doubles as the FUSE server of TestStaleMount: with
// DOCTOR_TEST_FUSE_MOUNT set, the test binary mounts an empty file system
// there, says "mounted" and serves until it is killed.
func TestMain(m *testing.M) {
	if mnt := os.Getenv("DOCTOR_TEST_FUSE_MOUNT"); mnt != "" {
		server, err := fs.Mount(mnt, &fs.Inode{}, &fs.Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("mounted")
		server.Wait()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
