package ocmfs

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// dropPageCache empties the kernel's page cache (root only), so that the
// next reads come from the disk; false when it cannot.
func dropPageCache(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	syncFS()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200) == nil
}

// readRate reads path whole in pieces of 1 MiB and returns MiB/s, and the
// bytes read.
func readRate(t *testing.T, path string) (float64, []byte) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var all bytes.Buffer
	start := time.Now()
	buf := make([]byte, 1<<20)
	for {
		n, err := fh.Read(buf)
		all.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	return float64(all.Len()) / (1 << 20) / took.Seconds(), all.Bytes()
}

// A complete cached file is re-read without the server, at about the
// speed of reading the cache's own file: through the kernel's passthrough
// where it may (root), through the mount otherwise. The figures are logged
// when OCM_CACHE_BENCH_MIB sets the size (1024 for the 1 GiB measurement),
// each read after dropping the page cache; the test asserts only the bytes
// and that the server was not asked.
func TestCachedRereadSpeed(t *testing.T) {
	size := 64 << 20
	measure := false // drop the page cache (global to the machine) only when asked
	if s := os.Getenv("OCM_CACHE_BENCH_MIB"); s != "" {
		mib, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		size, measure = mib<<20, true
	}
	ce := newCacheEnv(t, int64(size)*2, infoLogs, func(o *Options) { o.MetadataTTL = time.Hour; o.DirectReadMin = 0 })
	data := pattern(size, 42)
	ce.srv.write("/shares/p/big.bin", data)
	ce.fs.SetEntries([]Entry{ce.folder("s1", "P", "/shares/p", false)})
	first, got := readRate(t, ce.path("P", "big.bin"))
	if !bytes.Equal(got, data) {
		t.Fatal("first read: wrong bytes")
	}
	files := cachedDataFiles(t, ce.dir)
	if len(files) != 1 {
		t.Fatalf("%d data files in the cache", len(files))
	}
	eventually(t, 30*time.Second, "the cached file released", func() bool { return !openHere(t, files[0]) })
	if _, complete, _ := ce.cache.PinUsage("s1", ""); complete != 1 {
		t.Fatal("the file is not complete in the cache")
	}
	ce.srv.resetLog()
	// Each way three times, interleaved (the disk's own caches and other
	// work on the machine vary); the best of each is compared.
	var dropped bool
	var local float64
	rates := map[bool]float64{}
	for range 3 {
		dropped = measure && dropPageCache(t)
		r, _ := readRate(t, files[0])
		local = max(local, r)
		for _, pt := range []bool{true, false} {
			noPassthrough.Store(!pt)
			if measure {
				dropPageCache(t)
			}
			rate, got := readRate(t, ce.path("P", "big.bin"))
			if !bytes.Equal(got, data) {
				t.Fatalf("cached re-read (passthrough %v): wrong bytes", pt)
			}
			rates[pt] = max(rates[pt], rate)
		}
	}
	noPassthrough.Store(false)
	if n, _ := ce.gets("/shares/p/big.bin"); n != 0 {
		t.Errorf("cached re-reads sent %d GETs", n)
	}
	t.Logf("%d MiB (page cache dropped: %v): first read %.0f MiB/s; cache file read directly %.0f MiB/s; cached re-read with passthrough %.0f MiB/s (%.0f%%), through the mount %.0f MiB/s (%.0f%%)",
		size>>20, dropped, first, local, rates[true], 100*rates[true]/local, rates[false], 100*rates[false]/local)
}

func syncFS() { syscall.Sync() }
