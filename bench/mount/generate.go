package main

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
)

// generate writes the served tree (once per work directory and scale) and
// the local files copied in.
func generate(data, local string, sz sizes) error {
	marker := filepath.Join(data, fmt.Sprintf(".generated-%d-%d-%d", sz.seq, sz.wide, sz.lsScale[len(sz.lsScale)-1]))
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	block := make([]byte, 1<<20)
	if _, err := rand.Read(block); err != nil {
		return err
	}
	for _, d := range []string{"thumbs", "wide", "tree", "upload"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(local, 0o700); err != nil {
		return err
	}
	if err := bigFile(filepath.Join(data, "seq.bin"), sz.seq, block, 1); err != nil {
		return err
	}
	if err := bigFile(filepath.Join(data, "rand.bin"), sz.rand, block, 2); err != nil {
		return err
	}
	if err := bigFile(filepath.Join(local, "big.bin"), sz.copyIn, block, 3); err != nil {
		return err
	}
	for i := range sz.thumbs {
		if err := bigFile(filepath.Join(data, "thumbs", fmt.Sprintf("t%03d.jpg", i)), sz.thumbSize, block, byte(10+i)); err != nil {
			return err
		}
	}
	for i := range sz.wide {
		if err := os.WriteFile(filepath.Join(data, "wide", fmt.Sprintf("entry-%05d.txt", i)), block[i%1000:i%1000+1024], 0o644); err != nil {
			return err
		}
	}
	for d := range sz.treeDirs {
		dir := filepath.Join(data, "tree", fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for f := range sz.treePerDir {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.txt", f)), block[f:f+512], 0o644); err != nil {
				return err
			}
		}
	}
	for _, n := range sz.lsScale {
		dir := filepath.Join(data, scaleDir(n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for i := range n {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("e%06d.txt", i)), block[i%1000:i%1000+16], 0o644); err != nil {
				return err
			}
		}
	}
	return os.WriteFile(marker, nil, 0o644)
}

// bigFile writes size bytes made of block, varied per MiB.
func bigFile(path string, size int64, block []byte, seed byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 4<<20)
	var off int64
	for i := 0; off < size; i++ {
		b := block
		if rest := size - off; rest < int64(len(b)) {
			b = b[:rest]
		}
		// Vary each MiB so that no two blocks are the same.
		head := []byte{seed, byte(i), byte(i >> 8), byte(i >> 16)}
		n := copy(b, head)
		if _, err := w.Write(b); err != nil {
			f.Close()
			return err
		}
		_ = n
		off += int64(len(b))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// scaleDir is the folder of n entries listed to see how listing grows.
func scaleDir(n int) string { return fmt.Sprintf("entries-%d", n) }
