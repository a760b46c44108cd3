package bookmarks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// record is what Install has done, kept in a small JSON file.
type record struct {
	Version int `json:"version"`
	// Done maps each bookmarks file handled to its entry.
	Done map[string]entry `json:"done"`
}

// entry is the folder a bookmarks file has an entry for, and whether the
// entry is ours (Added) or was there before (then it is never removed but
// by Uninstall).
type entry struct {
	Dir   string `json:"dir"`
	Added bool   `json:"added,omitempty"`
}

func loadRecord(path string) (record, error) {
	rec := record{Version: 1, Done: map[string]entry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", path, err)
	}
	if rec.Done == nil {
		rec.Done = map[string]entry{}
	}
	return rec, nil
}

func (r record) save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeAtomic(path, append(b, '\n'), 0o600)
}

// Change is one entry added to or removed from a bookmarks file.
type Change struct {
	File string // the bookmarks file
	Dir  string // the folder of the entry
}

func (c Change) String() string { return c.File + " (" + c.Dir + ")" }

// Install adds an entry for dir to each file the record at recordPath
// does not list yet, and lists there each file that has one now: an entry
// the person removes by hand stays removed. A missing file that is not
// created (the KDE places of a person who never ran Dolphin) is left for a
// later call. When dir differs from the folder recorded for a file, an
// old entry of ours is replaced if it is still there.
func Install(files []File, dir, label, recordPath string) ([]Change, error) {
	dir = filepath.Clean(dir)
	rec, err := loadRecord(recordPath)
	if err != nil {
		// Without the record every start would add the entry again.
		return nil, err
	}
	var added []Change
	var errs []error
	for _, f := range files {
		prev, done := rec.Done[f.Path]
		if done && prev.Dir == dir {
			continue
		}
		if done && prev.Added {
			had, err := Remove(f, prev.Dir)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !had { // removed by hand: do not bring it back
				rec.Done[f.Path] = entry{Dir: dir}
				continue
			}
		}
		res, err := Add(f, dir, label)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch res {
		case Missing:
			delete(rec.Done, f.Path)
		case Added:
			added = append(added, Change{f.Path, dir})
			rec.Done[f.Path] = entry{Dir: dir, Added: true}
		case Present:
			rec.Done[f.Path] = entry{Dir: dir}
		}
	}
	if err := rec.save(recordPath); err != nil {
		errs = append(errs, err)
	}
	return added, errors.Join(errs...)
}

// Withdraw removes the entries Install added, as the record at recordPath
// lists them, and then the record, so that a later Install adds them
// again. It is for turning the setting off: entries the person made are
// not touched.
func Withdraw(files []File, recordPath string) ([]Change, error) {
	rec, err := loadRecord(recordPath)
	if err != nil {
		return nil, err
	}
	var removed []Change
	var errs []error
	for _, f := range files {
		e, done := rec.Done[f.Path]
		if !done {
			continue
		}
		if e.Added {
			had, err := Remove(f, e.Dir)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if had {
				removed = append(removed, Change{f.Path, e.Dir})
			}
		}
		delete(rec.Done, f.Path)
	}
	if len(rec.Done) == 0 {
		if err := os.Remove(recordPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	} else if err := rec.save(recordPath); err != nil {
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

// Uninstall removes every entry for dir, and for the folders in the
// record at recordPath, from every file, and records each file as done, so
// that the agent does not add them again at its next start. An empty
// recordPath keeps no record.
func Uninstall(files []File, dir, recordPath string) ([]Change, error) {
	rec := record{Version: 1, Done: map[string]entry{}}
	if recordPath != "" {
		var err error
		if rec, err = loadRecord(recordPath); err != nil {
			// Still remove what can be found; the record is rewritten.
			rec = record{Version: 1, Done: map[string]entry{}}
		}
	}
	var removed []Change
	var errs []error
	for _, f := range files {
		dirs := []string{}
		if dir != "" {
			dirs = append(dirs, filepath.Clean(dir))
		}
		if prev, ok := rec.Done[f.Path]; ok && prev.Dir != "" && (dir == "" || prev.Dir != filepath.Clean(dir)) {
			dirs = append(dirs, prev.Dir)
		}
		for _, d := range dirs {
			had, err := Remove(f, d)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if had {
				removed = append(removed, Change{f.Path, d})
			}
		}
		if dir != "" {
			rec.Done[f.Path] = entry{Dir: filepath.Clean(dir)}
		}
	}
	if recordPath != "" {
		if err := rec.save(recordPath); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// RecordPath is the record of Install in the agent's state directory.
func RecordPath(stateDir string) string { return filepath.Join(stateDir, "bookmarks.json") }
