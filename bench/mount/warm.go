package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Every system meets the server in the same state: what a workload reads is
// in the server's page cache, as it is after generating the tree (when curl,
// measured first, runs). The cache workloads empty the page cache (as root)
// and other programs on the machine may too; without warming, the systems
// measured after them would be timed against the server's disk while curl
// was timed against its memory (thumbnails 8-12x curl, random reads 5x,
// only in a full run).

// warmFiles reads the served files (paths relative to the served tree; a
// folder is every file in it) to their ends.
func (b *bench) warmFiles(rel ...string) error {
	buf := make([]byte, 1<<20)
	for _, p := range rel {
		err := filepath.WalkDir(filepath.Join(b.data, p), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
			return err
		})
		if err != nil {
			return fmt.Errorf("warm the server's page cache: %w", err)
		}
	}
	return nil
}

// warmTree stats every entry under the served folders, as a listing of
// them does on the server.
func (b *bench) warmTree(rel ...string) error {
	for _, p := range rel {
		err := filepath.WalkDir(filepath.Join(b.data, p), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			_, err = d.Info()
			return err
		})
		if err != nil {
			return fmt.Errorf("warm the server's inode cache: %w", err)
		}
	}
	return nil
}

// warm runs fn on the served paths before metric is measured on sys; a
// failure is noted with the metric.
func (b *bench) warm(sys, metric string, fn func(...string) error, rel ...string) {
	if err := fn(rel...); err != nil {
		fmt.Fprintf(os.Stderr, "  %s: %v\n", metric, err)
		b.res.note(sys, metric+": "+err.Error())
	}
}

// listedDirs are the served folders the metadata workloads list.
func (b *bench) listedDirs() []string {
	dirs := []string{"wide", "tree"}
	for _, n := range b.sz.lsScale {
		dirs = append(dirs, scaleDir(n))
	}
	return dirs
}
