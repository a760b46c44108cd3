package ocmfs

import (
	"net/http"
	"strings"
)

// shareRefused passes a refusal on to Options.OnShareRefused, and server
// errors for the share root (and the first success after them) to
// Options.OnShareRoot. A 403 or 404 below the root is an ordinary missing
// or protected file.
func (f *FS) shareRefused(shareID, url string, status int) {
	f.mu.Lock()
	sh := f.shares[shareID]
	f.mu.Unlock()
	if sh == nil {
		return
	}
	if status != http.StatusUnauthorized {
		_, cur, _ := sh.state()
		u := strings.TrimSuffix(url, "/")
		if u != strings.TrimSuffix(sh.entry.URL, "/") && u != strings.TrimSuffix(cur, "/") {
			return
		}
	}
	switch {
	case status >= 500:
		f.noteReach(shareID, false)
		sh.mu.Lock()
		first := !sh.rootFailing
		sh.rootFailing = true
		sh.mu.Unlock()
		if first {
			// The next tries get fresh credentials: their answers are the
			// server's word on the share, not on a stale token. Once per
			// run of errors, so that a failing server costs one renewal.
			f.auth.Invalidate(shareID)
		}
		f.tellRoot(shareID, status)
		return
	case status < 300:
		sh.mu.Lock()
		was := sh.rootFailing
		sh.rootFailing = false
		sh.mu.Unlock()
		if was {
			f.tellRoot(shareID, status)
		}
		return
	}
	if f.o.OnShareRefused == nil {
		return
	}
	f.log.Warn("the sender no longer serves the share", "share", shareID, "status", status)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.o.OnShareRefused(shareID, status)
	}()
}

func (f *FS) tellRoot(shareID string, status int) {
	if f.o.OnShareRoot == nil {
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.o.OnShareRoot(shareID, status)
	}()
}

// EntryName is the name the share with id has at the mount's root, ""
// when it is not mounted.
func (f *FS) EntryName(id string) string {
	if sh := f.shareByID(id); sh != nil {
		return sh.name
	}
	return ""
}

// tellKind passes what the share root turned out to be to
// Options.OnShareKind when it is not what the entry said.
func (f *FS) tellKind(sh *share, dir bool) {
	if f.o.OnShareKind == nil || dir == sh.entry.IsDir {
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.o.OnShareKind(sh.id, dir)
	}()
}
