package agent

import (
	"net/http"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/config"
)

// TestUnreachableAfterErrorsInARow: a share shows as unreachable only
// after unreachableCount server errors in a row for its root, spread over
// unreachable-after; a success starts the count again and clears it.
func TestUnreachableAfterErrorsInARow(t *testing.T) {
	slow := startDaemon(t, func(c *config.Config) { c.UnreachableAfter.Duration = time.Hour })
	for range 5 {
		slow.Agent.shareRoot("s1", http.StatusInternalServerError)
	}
	if since, _ := slow.Agent.unreachable("s1"); !since.IsZero() {
		t.Fatal("unreachable before unreachable-after passed")
	}

	td := startDaemon(t, func(c *config.Config) { c.UnreachableAfter.Duration = 0 })
	a := td.Agent
	before := time.Now()
	a.shareRoot("s1", http.StatusInternalServerError)
	a.shareRoot("s1", http.StatusBadGateway)
	if since, _ := a.unreachable("s1"); !since.IsZero() {
		t.Fatal("unreachable after two errors")
	}
	a.shareRoot("s1", http.StatusOK) // answered: the run ends
	a.shareRoot("s1", http.StatusInternalServerError)
	a.shareRoot("s1", http.StatusInternalServerError)
	if since, _ := a.unreachable("s1"); !since.IsZero() {
		t.Fatal("errors before a success counted")
	}
	a.shareRoot("s1", http.StatusInternalServerError)
	since, last := a.unreachable("s1")
	if since.Before(before) || last != "HTTP 500 Internal Server Error" {
		t.Fatalf("after three errors: since %v, last %q", since, last)
	}
	if other, _ := a.unreachable("s2"); !other.IsZero() {
		t.Fatal("another share is unreachable too")
	}
	a.shareRoot("s1", http.StatusMultiStatus)
	if since, _ := a.unreachable("s1"); !since.IsZero() {
		t.Fatal("still unreachable after the server answered")
	}
}

// TestNotUploadedPicksTheShare: the spool's lines are the share's by its
// name in the mount, a file share's as well as a folder's.
func TestNotUploadedPicksTheShare(t *testing.T) {
	pending := []string{"Team/a.txt (3 bytes): HTTP 500", "Team (2)/b.txt (1 bytes)", "notes.txt (9 bytes)", "Teamwork/c (1 bytes)"}
	if got := notUploaded(pending, "Team"); len(got) != 1 || got[0] != pending[0] {
		t.Errorf("Team: %q", got)
	}
	if got := notUploaded(pending, "notes.txt"); len(got) != 1 || got[0] != pending[2] {
		t.Errorf("notes.txt: %q", got)
	}
	if got := notUploaded(pending, ""); got != nil {
		t.Errorf("no name: %q", got)
	}
}
