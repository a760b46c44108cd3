package tray

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

// Note is one desktop notification to show.
type Note struct {
	// Key is what the record remembers; empty for notes that are not
	// remembered across restarts ("the agent stopped").
	Key   string
	Title string
	Body  string
}

// Keys the notification record uses.
func keyShareSeen(id string) string    { return "share/" + id + "/seen" }
func keyShareRemoved(id string) string { return "share/" + id + "/removed" }
func keyShareError(id string) string   { return "share/" + id + "/error" }
func keyShareRevoked(id string) string { return "share/" + id + "/revoked" }
func keyShareChanged(id, when string) string {
	return "share/" + id + "/changed/" + when
}
func keyContact(c Contact) string {
	return "contact/" + firstNonEmpty(c.ID, strings.ToLower(c.Address))
}

const problemPrefix = "problem/"

// Notes decides which notifications the change from prev to next calls
// for and records them in rec, so that none is shown twice, even after a
// restart of the tray. changed reports whether rec needs saving.
//
// A share is notified when it is first seen pending (also when it arrived
// while the tray was not running), when its sender removes it or it
// expires, and when it fails. A contact is notified when it appears
// (on the very first run the existing ones are recorded silently). A
// problem is notified when it appears and forgotten when it goes, so a
// recurrence is notified again. Losing the daemon is notified only when
// it was reachable before.
func Notes(prev, next Snapshot, rec *Notified, now time.Time) (notes []Note, changed bool) {
	switch next.Conn {
	case Disconnected:
		if prev.Conn == Connected {
			p := next.Problems()[0]
			notes = append(notes, Note{Title: "The OCM agent stopped", Body: p.Detail})
		}
		return notes, false
	case Connecting:
		return nil, false
	}
	firstRun := rec.Fresh() && prev.Conn != Connected

	var arrived []control.Share
	for _, sh := range next.Shares {
		seen := rec.Has(keyShareSeen(sh.ID))
		switch sh.State {
		case StatePending:
			if rec.Add(keyShareSeen(sh.ID), now) {
				changed = true
				arrived = append(arrived, sh)
			}
		case StateAccepted:
			changed = rec.Add(keyShareSeen(sh.ID), now) || changed
			if sh.Changed == "" {
				continue
			}
			// Changed starts with when: each change is told once.
			when, _, _ := strings.Cut(sh.Changed, " ")
			k := keyShareChanged(sh.ID, when)
			if rec.Add(k, now) {
				changed = true
				if !firstRun {
					notes = append(notes, Note{
						Key:   k,
						Title: "“" + ShareName(sh) + "” was changed by its sender",
						Body:  "Changed: " + sh.Changed + ". It is from " + next.SenderLine(sh) + ".",
					})
				}
			}
		case StateRemoved:
			old, wasLive := prev.Find(sh.ID)
			wasLive = wasLive && (old.State == StatePending || old.State == StateAccepted)
			if sh.Error == "" || !(seen || wasLive) {
				continue // removed by the user, or never shown
			}
			if rec.Add(keyShareRemoved(sh.ID), now) {
				changed = true
				notes = append(notes, Note{
					Key:   keyShareRemoved(sh.ID),
					Title: "“" + ShareName(sh) + "” is no longer shared with you",
					Body:  sentence(sh.Error) + " It was from " + next.SenderLine(sh) + ".",
				})
			}
		case StateRevoked:
			changed = rec.Add(keyShareSeen(sh.ID), now) || changed
			if rec.Add(keyShareRevoked(sh.ID), now) {
				changed = true
				body := "Its server no longer serves it; it left your shares folder. Open the OCM window to try again or remove it."
				if len(sh.NotUploaded) > 0 {
					body += " " + strings.SplitN(KeptLine(sh), "\n", 2)[0] + "."
				}
				notes = append(notes, Note{
					Key:   keyShareRevoked(sh.ID),
					Title: "“" + ShareName(sh) + "” was revoked by " + next.SenderName(sh),
					Body:  body,
				})
			}
		case StateError:
			changed = rec.Add(keyShareSeen(sh.ID), now) || changed
			if rec.Add(keyShareError(sh.ID), now) {
				changed = true
				notes = append(notes, Note{
					Key:   keyShareError(sh.ID),
					Title: "Problem with the share “" + ShareName(sh) + "”",
					Body:  sentence(firstNonEmpty(sh.Error, "it failed")) + " Open the OCM window to retry or remove it.",
				})
			}
		}
	}

	notes = append(notes, arrivalNotes(arrived)...)

	if next.ContactsSupported {
		for _, c := range next.Contacts {
			n, notify, recorded := contactNote(c, rec, now, firstRun)
			if notify {
				notes = append(notes, n)
			}
			changed = changed || recorded
		}
	}

	current := map[string]bool{}
	for _, p := range next.Problems() {
		k := problemPrefix + p.Key
		current[k] = true
		if rec.Add(k, now) {
			changed = true
			notes = append(notes, Note{Key: k, Title: p.Title, Body: p.Detail})
		}
	}
	for _, k := range rec.Keys(problemPrefix) {
		if !current[k] {
			changed = rec.Remove(k) || changed
		}
	}
	return notes, changed
}

// contactNote records a contact and says whether it calls for a note:
// someone who accepted the user's invite, or a contact who removed the
// user. Contacts the user made (accepting their invite) are not
// notified: the user just did it.
func contactNote(c Contact, rec *Notified, now time.Time, firstRun bool) (n Note, notify, recorded bool) {
	key := keyContact(c)
	if !c.Active() {
		removedKey := key + "/removed"
		if !rec.Add(removedKey, now) {
			return Note{}, false, false
		}
		return Note{Key: removedKey, Title: c.Label() + " removed you from their contacts",
			Body: "Shares from " + firstNonEmpty(c.Address, c.Label()) + " are no longer expected."}, !firstRun, true
	}
	if !rec.Add(key, now) {
		return Note{}, false, false
	}
	if firstRun || c.Source == "accepted-their-invite" {
		return Note{}, false, true
	}
	title := "New contact: " + c.Label()
	if c.Source == "accepted-our-invite" {
		title = c.Label() + " accepted your invite"
	}
	body := "You can now share with each other."
	if c.Address != "" {
		body = c.Address + " is now in your contacts. " + body
	}
	return Note{Key: key, Title: title, Body: body}, true, true
}

// EventNote decides whether one event of the feed calls for a note of
// its own: an invite offered to the user, which has no list to compare.
// Shares, contacts and problems are notified from snapshots.
func EventNote(ev control.Event, rec *Notified, now time.Time) (Note, bool) {
	if ev.Type != "invite" || ev.ID == "" {
		return Note{}, false
	}
	var n Note
	switch ev.State {
	case "received", "pending", "new":
		n = Note{Title: "New invite", Body: "Someone invited you to share with them. Open the OCM window to accept it."}
	default: // the user's own invites (open, revoked, expired); an accepted one shows as a new contact
		return Note{}, false
	}
	n.Key = "invite/" + ev.ID + "/" + ev.State
	if !rec.Add(n.Key, now) {
		return Note{}, false
	}
	return n, true
}

// sentence turns a reason such as "unshared by the sender" into a sentence.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// maxArrivalNotes is how many new shares are notified one by one; more
// arriving at once (a flood, or a long absence) get one summary.
const maxArrivalNotes = 3

func arrivalNotes(arrived []control.Share) []Note {
	if len(arrived) <= maxArrivalNotes {
		var notes []Note
		for _, sh := range arrived {
			notes = append(notes, Note{
				Key:   keyShareSeen(sh.ID),
				Title: "New share from " + SenderName(sh),
				Body:  "“" + ShareName(sh) + "” (" + Kind(sh) + "). Accept or decline it from the OCM icon.",
			})
		}
		return notes
	}
	var senders []string
	for _, sh := range arrived {
		if n := SenderName(sh); !slices.Contains(senders, n) {
			senders = append(senders, n)
		}
	}
	from := strings.Join(senders, ", ")
	if len(senders) > maxArrivalNotes {
		from = strings.Join(senders[:maxArrivalNotes], ", ") + fmt.Sprintf(" and %d others", len(senders)-maxArrivalNotes)
	}
	return []Note{{
		Title: fmt.Sprintf("%d new shares", len(arrived)),
		Body:  "From " + from + ". Accept or decline them from the OCM icon.",
	}}
}
