package ocmfs

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// setReadAhead sets the page cache's read-ahead of the filesystem mounted
// at dir to n bytes (rounded to KiB), through its backing device in sysfs.
// Files opened from then on use it.
func setReadAhead(dir string, n int64) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return err
	}
	// The device number as Linux encodes it (see makedev(3)).
	major := (st.Dev>>8)&0xfff | (st.Dev>>32)&^0xfff
	minor := st.Dev&0xff | (st.Dev>>12)&^0xff
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", major, minor)
	if err := os.WriteFile(p, []byte(strconv.FormatInt(max(n>>10, 4), 10)), 0); err != nil {
		return fmt.Errorf("read-ahead: %w", err)
	}
	return nil
}
