package ocmfs

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A large file read sequentially reaches the program mostly from what
// read-ahead pushed into the page cache: fewer READs than the kernel's
// 128 KiB requests would be, among them the probes, every byte exact.
func TestSequentialReadIsPushedIntoThePageCache(t *testing.T) {
	e := newEnv(t)
	const size = 48<<20 + 4321
	fh := servedAndReadInPieces(t, e, "push.bin", pattern(size, 7), 1<<20)
	defer fh.Close()
	reads := strings.Count(e.logs.String(), "fuse op start\" component=mount op=readh.Read ")
	kernel := size / (128 << 10)
	t.Logf("%d READs for a file the kernel reads in %d", reads, kernel)
	if reads == 0 {
		t.Fatal("no READ logged")
	}
	// How many the program's reads overtake pushing varies with the
	// machine's load; the probes (a page every pushProbeEvery) do not.
	if reads > kernel*3/4 {
		t.Errorf("%d READs for %d requests of 128 KiB: little pushed", reads, kernel)
	}
	probes := 0
	for _, m := range regexp.MustCompile(`fuse op start" component=mount op=readh.Read off=(\d+) size=(\d+)`).FindAllStringSubmatch(e.logs.String(), -1) {
		off, _ := strconv.ParseInt(m[1], 10, 64)
		if off > 0 && off%pushProbeEvery == 0 && m[2] == strconv.Itoa(pageSize) {
			probes++
		}
	}
	if probes == 0 {
		t.Errorf("no READ of a probe page")
	}
}
