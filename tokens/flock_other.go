//go:build !unix

package tokens

import "os"

// flock is a no-op where flock(2) does not exist: one process per state
// directory.
func flock(*os.File, bool) error { return nil }
