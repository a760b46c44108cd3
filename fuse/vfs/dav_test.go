package vfs

import "testing"

// Content-Range as Nextcloud 34 and opencloudmesh-go send it (captured), and
// answers for another range than asked.
func TestRangeStartsAt(t *testing.T) {
	for _, c := range []struct {
		header string
		off    int64
		want   bool
	}{
		{"bytes 0-65535/200000", 0, true},
		{"bytes 199990-199999/200000", 199990, true},
		{"", 42, true},
		{"bytes 0-65535/200000", 65536, false},
		{"bytes */200000", 0, false},
		{"items 0-1/2", 0, false},
	} {
		if got := RangeStartsAt(c.header, c.off); got != c.want {
			t.Errorf("RangeStartsAt(%q, %d) = %v", c.header, c.off, got)
		}
	}
}
