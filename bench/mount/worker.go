package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// worker runs one workload against a directory, in its own process (never in
// the process serving a mount):
//
//	-worker thumbs DIR N BYTES      read the first BYTES of DIR/t000.jpg ...
//	-worker rand FILE SIZE N SEED   N random 4 KiB preads; prints latencies (s), one a line
//	-worker write DIR N BYTES       write N files of BYTES each into DIR
func worker(args []string) int {
	if len(args) < 1 {
		return 2
	}
	var err error
	switch args[0] {
	case "thumbs":
		err = thumbs(args[1], atoi(args[2]), atoi(args[3]))
	case "rand":
		err = randReads(args[1], int64(atoi(args[2])), atoi(args[3]), uint64(atoi(args[4])))
	case "write":
		err = writeSmall(args[1], atoi(args[2]), atoi(args[3]))
	default:
		err = fmt.Errorf("unknown worker %q", args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func thumbs(dir string, n, size int) error {
	buf := make([]byte, size)
	for i := range n {
		f, err := os.Open(filepath.Join(dir, fmt.Sprintf("t%03d.jpg", i)))
		if err != nil {
			return err
		}
		if _, err := io.ReadFull(f, buf); err != nil {
			f.Close()
			return err
		}
		f.Close()
	}
	return nil
}

// randOffsets is the same list of 4 KiB-aligned offsets for every system.
func randOffsets(size int64, n int, seed uint64) []int64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]int64, n)
	for i := range out {
		out[i] = rng.Int64N(size/4096-1) * 4096
	}
	return out
}

func randReads(path string, size int64, n int, seed uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	lat := make([]float64, 0, n)
	for _, off := range randOffsets(size, n, seed) {
		t0 := time.Now()
		if _, err := f.ReadAt(buf, off); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0).Seconds())
	}
	for _, l := range lat {
		fmt.Println(l)
	}
	return nil
}

func writeSmall(dir string, n, size int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.bin", i)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}
