package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Every system meets the same machine state: what a workload reads (on the
// server, or the local file copied in) is in the page cache, as it is
// after generating the tree, when curl, measured first, runs. The cache
// workloads empty the page cache (as root), and other programs on the
// machine may too; without warming, the systems measured after them were
// timed against the disk while curl was timed against memory (thumbnails
// 8-12x curl, random reads 5x, cold listings 4x, only in a full run).
// Warming is done for every system alike, outside the timed part.

// warmFiles reads the files (a folder: every file in it) to their ends.
func warmFiles(paths ...string) error {
	buf := make([]byte, 1<<20)
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
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
			return fmt.Errorf("warm the page cache: %w", err)
		}
	}
	return nil
}

// warmTree stats every entry under the folders, as a listing of them does
// on the server.
func warmTree(dirs ...string) error {
	for _, p := range dirs {
		err := filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			_, err = d.Info()
			return err
		})
		if err != nil {
			return fmt.Errorf("warm the inode cache: %w", err)
		}
	}
	return nil
}

// warm runs fn on paths before metric is measured on sys, once what
// earlier workloads wrote is on the disk (its writing back would take the
// CPU from whichever system comes next); a failure is noted with the
// metric.
func (b *bench) warm(sys, metric string, fn func(...string) error, paths ...string) {
	syscall.Sync()
	if err := fn(paths...); err != nil {
		fmt.Fprintf(os.Stderr, "  %s: %v\n", metric, err)
		b.res.note(sys, metric+": "+err.Error())
	}
}

// served is the paths of the served tree's entries rel.
func (b *bench) served(rel ...string) []string {
	out := make([]string, len(rel))
	for i, r := range rel {
		out[i] = filepath.Join(b.data, r)
	}
	return out
}

// listedDirs are the served folders the metadata workloads list.
func (b *bench) listedDirs() []string {
	dirs := []string{"wide", "tree"}
	for _, n := range b.sz.lsScale {
		dirs = append(dirs, scaleDir(n))
	}
	return b.served(dirs...)
}
