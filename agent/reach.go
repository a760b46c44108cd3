package agent

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/ocm-agent/ocm-agent/store"
)

// unreachableCount is how many server errors in a row (over at least
// unreachable-after) make a share unreachable. OpenCloud answers 500 for a
// share it removed; a server that is down for a moment answers one or two.
const unreachableCount = 3

// rootFailures counts a share root's server errors in a row.
type rootFailures struct {
	first   time.Time // the first error of the run
	count   int
	lastErr string
	shown   bool // the share shows as unreachable
}

// shareRoot hears how a share's server answered the share root: a server
// error (5xx, with fresh credentials), or the first success after them.
// After unreachableCount errors over at least unreachable-after, the share
// shows as unreachable (shares, status, tray); it stays mounted (it is not
// revoked) and shows as reachable again once the server answers.
func (a *Agent) shareRoot(shareID string, status int) {
	now := time.Now()
	a.mu.Lock()
	if a.rootFail == nil {
		a.rootFail = map[string]*rootFailures{}
	}
	f := a.rootFail[shareID]
	if status < 500 {
		delete(a.rootFail, shareID)
		a.mu.Unlock()
		if f != nil && f.shown {
			a.log.Info("the share's server answers again", "share", shareID)
			a.events.publish("share", shareID, store.StateAccepted)
			a.events.publish("status", "", "")
		}
		return
	}
	if f == nil {
		f = &rootFailures{first: now}
		a.rootFail[shareID] = f
	}
	f.count++
	f.lastErr = fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	became := !f.shown && f.count >= unreachableCount && now.Sub(f.first) >= a.cfg.UnreachableAfter.Duration
	if became {
		f.shown = true
	}
	a.mu.Unlock()
	if became {
		a.log.Warn("share unreachable: its server answers with errors", "share", shareID, "since", f.first, "last", f.lastErr)
		a.events.publish("share", shareID, store.StateAccepted)
		a.events.publish("status", "", "")
	}
}

// forgetRootFailures drops the counts of shares that left the mount: a
// share accepted again starts afresh.
func (a *Agent) forgetRootFailures(accepted []store.Share) {
	keep := make(map[string]bool, len(accepted))
	for _, sh := range accepted {
		keep[sh.ID] = true
	}
	a.mu.Lock()
	for id := range a.rootFail {
		if !keep[id] {
			delete(a.rootFail, id)
		}
	}
	a.mu.Unlock()
}

// unreachable returns since when the share shows as unreachable and the
// last error; a zero time when it does not.
func (a *Agent) unreachable(shareID string) (time.Time, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.rootFail[shareID]; f != nil && f.shown {
		return f.first, f.lastErr
	}
	return time.Time{}, ""
}

// shareKind records what a share's root turned out to be (Nextcloud calls
// folders "file"); lists show it, notifications keep the sender's word.
func (a *Agent) shareKind(shareID string, dir bool) {
	kind := "file"
	if dir {
		kind = "folder"
	}
	if err := a.store.SetShareKindSeen(context.Background(), shareID, kind); err != nil {
		a.log.Warn("cannot record what the share is", "share", shareID, "err", err)
		return
	}
	a.log.Info("share type as its server shows it", "share", shareID, "kind", kind)
	a.events.publish("share", shareID, "")
}

// spoolDir is where the mount keeps writes until they are uploaded.
func (a *Agent) spoolDir() string { return filepath.Join(a.cfg.StateDir, "spool") }

// mountState is what the mount reports: writes not uploaded, and the
// names of mounted shares.
func (a *Agent) mountState() (pending []string, entryName func(string) string) {
	a.mu.Lock()
	m := a.mounter
	a.mu.Unlock()
	entryName = func(string) string { return "" }
	if p, ok := m.(interface{ PendingUploads() []string }); ok {
		pending = p.PendingUploads()
	}
	if n, ok := m.(interface{ EntryName(string) string }); ok {
		entryName = n.EntryName
	}
	return pending, entryName
}

// withLive adds to stored shares what the mount knows now: unreachable
// servers and writes not uploaded.
func (a *Agent) withLive(shares []store.Share) []store.Share {
	pending, entryName := a.mountState()
	unresolved := map[string]control.UnreachableShare{}
	for _, u := range a.unreachableShares() {
		unresolved[u.ID] = u
	}
	for i := range shares {
		sh := &shares[i]
		if sh.State == store.StateAccepted {
			sh.UnreachableSince, sh.UnreachableError = a.unreachable(sh.ID)
			if u, ok := unresolved[sh.ID]; ok && sh.UnreachableSince.IsZero() {
				sh.UnreachableSince, sh.UnreachableError = u.Since, u.Error
			}
		}
		sh.NotUploaded = notUploaded(pending, a.nameInSpool(*sh, entryName))
		if len(sh.NotUploaded) > 0 {
			sh.KeptIn = a.spoolDir()
		}
	}
	return shares
}

// nameInSpool is the name the spool files a share's writes under: its
// name in the mount now (else its own name), or when it left it.
func (a *Agent) nameInSpool(sh store.Share, entryName func(string) string) string {
	if sh.State != store.StateAccepted {
		return sh.MountName // "" when it never left the mount with writes pending
	}
	if n := entryName(sh.ID); n != "" {
		return n
	}
	return sh.Name
}

// rememberMountName records the share's name in the mount before it
// leaves it, so that its writes not uploaded can be reported.
func (a *Agent) rememberMountName(ctx context.Context, shareID string) {
	_, entryName := a.mountState()
	if n := entryName(shareID); n != "" {
		if err := a.store.SetShareMountName(ctx, shareID, n); err != nil {
			a.log.Warn("cannot record the share's name in the mount", "share", shareID, "err", err)
		}
	}
}

// notUploaded picks the spool's lines ("Name/path (N bytes): error") of
// the share named name.
func notUploaded(pending []string, name string) []string {
	if name == "" {
		return nil
	}
	var out []string
	for _, l := range pending {
		rest, file := strings.CutPrefix(l, name+" (")
		if strings.HasPrefix(l, name+"/") || file && isSizeNote(rest) {
			out = append(out, l)
		}
	}
	return out
}

// isSizeNote says whether s starts "N bytes)": the spool's size note
// after a file share's name (and not a name such as "Team (2)").
func isSizeNote(s string) bool {
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	return digits > 0 && strings.HasPrefix(s[digits:], " bytes)")
}

// shareNotices are the status lines about shares: those whose server is
// unreachable (not found, or answering with errors), and writes kept from
// shares that left the mount.
func (a *Agent) shareNotices(ctx context.Context) (unreachable []control.UnreachableShare, kept []string) {
	shares, err := a.store.Shares(ctx, store.StateAccepted, store.StateRevoked, store.StateError, store.StateRemoved)
	if err != nil {
		return a.unreachableShares(), nil
	}
	// withLive gives accepted shares both kinds of unreachable: no WebDAV
	// address found, and a root answering with errors.
	for _, sh := range a.withLive(shares) {
		if !sh.UnreachableSince.IsZero() {
			unreachable = append(unreachable, control.UnreachableShare{ID: sh.ID, Name: sh.Name, Since: sh.UnreachableSince.UTC(), Error: sh.UnreachableError})
		}
		if sh.State != store.StateAccepted && len(sh.NotUploaded) > 0 {
			kept = append(kept, fmt.Sprintf("%s (%s, %s): %s", sh.Name, sh.ID, sh.State, keptMessage(len(sh.NotUploaded), sh.KeptIn)))
		}
	}
	sort.Slice(unreachable, func(i, j int) bool { return unreachable[i].ID < unreachable[j].ID })
	return unreachable, kept
}

// keptMessage says that n files written into a share are kept unsent.
func keptMessage(n int, dir string) string {
	if n == 1 {
		return "1 file written here was not uploaded; it is kept in " + dir
	}
	return fmt.Sprintf("%d files written here were not uploaded; they are kept in %s", n, dir)
}
