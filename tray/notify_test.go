package tray

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

func openRecord(t *testing.T, path string) *Notified {
	t.Helper()
	rec, err := OpenNotified(path)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func titles(notes []Note) []string {
	var out []string
	for _, n := range notes {
		out = append(out, n.Title)
	}
	return out
}

// step applies Notes and saves the record as the tray does.
func step(t *testing.T, prev, next Snapshot, rec *Notified) []Note {
	t.Helper()
	notes, changed := Notes(prev, next, rec, t0)
	if changed {
		if err := rec.Save(); err != nil {
			t.Fatal(err)
		}
	}
	return notes
}

func TestNotesShareLifecycleSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", NotifiedFile)
	rec := openRecord(t, path)
	if !rec.Fresh() {
		t.Fatal("a missing record is not fresh")
	}
	pending := connected(share("s1", "Holiday photos", StatePending))
	notes := step(t, Snapshot{}, pending, rec)
	if len(notes) != 1 || notes[0].Title != "New share from Bob Builder" || !strings.Contains(notes[0].Body, "Holiday photos") {
		t.Fatalf("arrival notes %+v", notes)
	}
	if notes := step(t, pending, pending, rec); len(notes) != 0 {
		t.Errorf("the same share notified again: %v", titles(notes))
	}

	// Restart: a new record from the same file, a first snapshot again.
	rec = openRecord(t, path)
	if rec.Fresh() {
		t.Error("a saved record is fresh")
	}
	if notes := step(t, Snapshot{}, pending, rec); len(notes) != 0 {
		t.Errorf("after a restart the share was notified again: %v", titles(notes))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record file mode %v, %v; want 0600", fi.Mode(), err)
	}

	// The sender unshares it while the tray is not running.
	removed := share("s1", "Holiday photos", StateRemoved)
	removed.Error = "unshared by the sender"
	rec = openRecord(t, path)
	notes = step(t, Snapshot{}, connected(removed), rec)
	if len(notes) != 1 || !strings.Contains(notes[0].Title, "no longer shared") || !strings.HasPrefix(notes[0].Body, "Unshared by the sender.") {
		t.Fatalf("removal notes %+v", notes)
	}
	rec = openRecord(t, path)
	if notes := step(t, Snapshot{}, connected(removed), rec); len(notes) != 0 {
		t.Errorf("removal notified twice: %v", titles(notes))
	}
}

func TestNotesOnlyWhatNeedsTelling(t *testing.T) {
	rec := openRecord(t, filepath.Join(t.TempDir(), NotifiedFile))
	accepted := share("s2", "Budget", StateAccepted)
	userRemoved := share("s3", "Old", StateRemoved) // no reason: the user removed it
	oldHistory := share("s4", "Ancient", StateRemoved)
	oldHistory.Error = "unshared by the sender" // removed before the tray ever saw it
	if notes := step(t, Snapshot{}, connected(accepted, userRemoved, oldHistory), rec); len(notes) != 0 {
		t.Fatalf("history was notified: %v", titles(notes))
	}
	// A share the tray saw accepted and that then expires is notified.
	expired := accepted
	expired.State, expired.Error = StateRemoved, "expired"
	notes := step(t, connected(accepted), connected(expired), rec)
	if len(notes) != 1 || !strings.HasPrefix(notes[0].Body, "Expired.") {
		t.Errorf("expiry notes %+v", notes)
	}
	// A failed share is notified once.
	failed := share("s5", "Broken", StateError)
	failed.Error = "the peer refused the token exchange"
	notes = step(t, Snapshot{}, connected(failed), rec)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "The peer refused the token exchange.") {
		t.Errorf("failure notes %+v", notes)
	}
	if notes := step(t, connected(failed), connected(failed), rec); len(notes) != 0 {
		t.Errorf("failure notified twice: %v", titles(notes))
	}
}

func TestNotesContactsAndProblems(t *testing.T) {
	rec := openRecord(t, filepath.Join(t.TempDir(), NotifiedFile))
	s := connected()
	s.Contacts = []Contact{{ID: "c1", Address: "dave@cloud.example", Name: "Dave"}}
	if notes := step(t, Snapshot{}, s, rec); len(notes) != 0 {
		t.Errorf("existing contacts notified on the first run: %v", titles(notes))
	}
	s2 := s
	s2.Contacts = append(s.Contacts, Contact{ID: "c2", Address: "erin@other.example", Name: "Erin"})
	notes := step(t, s, s2, rec)
	if len(notes) != 1 || notes[0].Title != "New contact: Erin" || !strings.Contains(notes[0].Body, "erin@other.example") {
		t.Errorf("contact notes %+v", notes)
	}

	// Someone accepting the user's invite is news; the user accepting
	// someone's invite is not (they just did it); being dropped is.
	s3 := s2
	s3.Contacts = append(slices.Clone(s2.Contacts),
		Contact{ID: "c3", Address: "finn@third.example", Name: "Finn", Source: "accepted-our-invite"},
		Contact{ID: "c4", Address: "gail@fourth.example", Name: "Gail", Source: "accepted-their-invite"})
	notes = step(t, s2, s3, rec)
	if got := titles(notes); !slices.Equal(got, []string{"Finn accepted your invite"}) {
		t.Errorf("contact notes %v", got)
	}
	s4 := s3
	s4.Contacts = slices.Clone(s3.Contacts)
	s4.Contacts[0].State = "removed-by-peer"
	notes = step(t, s3, s4, rec)
	if got := titles(notes); !slices.Equal(got, []string{"Dave removed you from their contacts"}) {
		t.Errorf("removal notes %v", got)
	}
	if notes := step(t, s4, s4, rec); len(notes) != 0 {
		t.Errorf("contact notes repeated: %v", titles(notes))
	}

	locked := s2
	locked.Status.KeyringUnlocked = false
	notes = step(t, s2, locked, rec)
	if len(notes) != 1 || notes[0].Title != "The keyring is locked" {
		t.Fatalf("problem notes %+v", notes)
	}
	if notes := step(t, locked, locked, rec); len(notes) != 0 {
		t.Errorf("problem notified twice: %v", titles(notes))
	}
	if notes := step(t, locked, s2, rec); len(notes) != 0 || rec.Has(problemPrefix+"keyring-locked") {
		t.Errorf("a solved problem is still remembered (notes %v)", titles(notes))
	}
	if notes := step(t, s2, locked, rec); len(notes) != 1 {
		t.Errorf("a recurring problem was not notified: %v", titles(notes))
	}
}

func TestNotesAgentStopped(t *testing.T) {
	rec := openRecord(t, filepath.Join(t.TempDir(), NotifiedFile))
	down := Snapshot{Conn: Disconnected, Err: "the ocm-agent daemon is not running"}
	if notes := step(t, Snapshot{}, down, rec); len(notes) != 0 {
		t.Errorf("a daemon not yet started was notified as stopped: %v", titles(notes))
	}
	notes := step(t, connected(), down, rec)
	if len(notes) != 1 || notes[0].Title != "The OCM agent stopped" || notes[0].Key != "" {
		t.Errorf("stop notes %+v", notes)
	}
	if notes := step(t, down, down, rec); len(notes) != 0 {
		t.Errorf("a still-stopped daemon notified again: %v", titles(notes))
	}
}

func TestEventNoteInvites(t *testing.T) {
	rec := openRecord(t, filepath.Join(t.TempDir(), NotifiedFile))
	ev := control.Event{Seq: 7, Type: "invite", ID: "inv1", State: "received"}
	n, ok := EventNote(ev, rec, t0)
	if !ok || n.Title != "New invite" {
		t.Fatalf("note %+v, %v", n, ok)
	}
	if _, ok := EventNote(ev, rec, t0); ok {
		t.Error("the same invite event notified twice")
	}
	// The user's own invites: made, withdrawn, accepted (that one shows
	// as a new contact).
	for _, ev := range []control.Event{{Type: "share", ID: "s", State: "pending"}, {Type: "invite", ID: "x", State: "open"},
		{Type: "invite", ID: "x", State: "revoked"}, {Type: "invite", ID: "x", State: "accepted"}, {Type: "invite", State: "received"}} {
		if _, ok := EventNote(ev, rec, t0); ok {
			t.Errorf("event %+v notified", ev)
		}
	}
}

func TestNotifiedRecordBoundsAndDamage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, NotifiedFile)
	rec := openRecord(t, path)
	for i := range maxNotified + 10 {
		rec.Add(fmt.Sprintf("share/%d/seen", i), t0.Add(time.Duration(i)*time.Second))
	}
	if rec.Has("share/0/seen") || !rec.Has(fmt.Sprintf("share/%d/seen", maxNotified+9)) {
		t.Error("the record does not drop its oldest keys first")
	}
	if n := len(rec.Keys("share/")); n != maxNotified {
		t.Errorf("record holds %d keys, want %d", n, maxNotified)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec, err := OpenNotified(path)
	if err == nil || rec == nil || rec.Has("share/5/seen") {
		t.Errorf("damaged record: %v, %v", rec, err)
	}
	rec.Add("k", t0)
	if err := rec.Save(); err != nil {
		t.Errorf("a damaged record cannot be replaced: %v", err)
	}
	if !openRecord(t, path).Has("k") {
		t.Error("replaced record lost its key")
	}
}

func TestDefaultNotifiedPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/tmp/xdgstate")
	if got := DefaultNotifiedPath(); got != "/var/tmp/xdgstate/ocm-agent/tray-notified.json" {
		t.Errorf("DefaultNotifiedPath %q", got)
	}
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	t.Setenv("HOME", "/home/alice")
	if got := DefaultNotifiedPath(); got != "/home/alice/.local/state/ocm-agent/tray-notified.json" {
		t.Errorf("DefaultNotifiedPath %q", got)
	}
}

// TestNotesSummariseAFlood: many shares arriving at once make one note,
// not one each; each is still recorded as seen.
func TestNotesSummariseAFlood(t *testing.T) {
	rec := openRecord(t, filepath.Join(t.TempDir(), NotifiedFile))
	var flood []control.Share
	for i := 0; i < 50; i++ {
		sh := share(fmt.Sprintf("f%d", i), fmt.Sprintf("Spam %d", i), StatePending)
		sh.SenderDisplayName = fmt.Sprintf("Sender %d", i%7)
		flood = append(flood, sh)
	}
	notes := step(t, Snapshot{}, connected(flood...), rec)
	if len(notes) != 1 || notes[0].Title != "50 new shares" || !strings.Contains(notes[0].Body, "and 4 others") {
		t.Fatalf("flood notes %+v", notes)
	}
	if notes := step(t, connected(flood...), connected(flood...), rec); len(notes) != 0 {
		t.Fatalf("the flood was notified again: %v", titles(notes))
	}
	few := []control.Share{share("n1", "One", StatePending), share("n2", "Two", StatePending)}
	if notes := step(t, connected(flood...), connected(append(flood, few...)...), rec); len(notes) != 2 {
		t.Fatalf("two new shares after the flood: %v", titles(notes))
	}
}

// TestNotesChangedBySender: a change the sender made to an accepted share
// is told once.
func TestNotesChangedBySender(t *testing.T) {
	rec := openRecord(t, filepath.Join(t.TempDir(), NotifiedFile))
	accepted := share("c1", "Budget", StateAccepted)
	step(t, Snapshot{}, connected(accepted), rec)
	moved := accepted
	moved.Changed = "2026-12-03T12:00:00Z address, secret (signed)"
	notes := step(t, connected(accepted), connected(moved), rec)
	if len(notes) != 1 || !strings.Contains(notes[0].Title, "changed by its sender") || !strings.Contains(notes[0].Body, "address, secret") {
		t.Fatalf("change notes %+v", notes)
	}
	if notes := step(t, connected(moved), connected(moved), rec); len(notes) != 0 {
		t.Fatalf("the change was told twice: %v", titles(notes))
	}
}
