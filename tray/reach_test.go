package tray

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

const (
	revaUUID = "4c510ada-c86b-4815-8820-42cdf82c3d51"
	ocmgoID  = "aHR0cHM6Ly9vY20uZXhhbXBsZS9hbGljZUBvY20uZXhhbXBsZT9zb21lLW9wYXF1ZS1zdHVmZg"
)

// TestOpaqueSendersByName: reva's UUIDs and opencloudmesh-go's long ids
// mean nothing to a person: the tray names the sender by display name,
// by contact name, or as "someone at host"; the id is only in the details.
func TestOpaqueSendersByName(t *testing.T) {
	named := share("a", "Report", StatePending)
	named.Sender, named.Owner, named.Peer = revaUUID+"@cernbox.example", revaUUID+"@cernbox.example", "cernbox.example"
	named.SenderDisplayName, named.OwnerDisplayName = "Carol", ""
	if got := SenderLine(named); got != "Carol (cernbox.example)" {
		t.Errorf("SenderLine of a named reva sender %q", got)
	}
	if got := MenuLabel(named); strings.Contains(got, revaUUID) || !strings.Contains(got, "Carol") {
		t.Errorf("MenuLabel %q", got)
	}

	anon := named
	anon.SenderDisplayName = ""
	anon.Sender, anon.Owner, anon.Peer = ocmgoID+"@ocm.example", ocmgoID+"@ocm.example", "ocm.example"
	for _, got := range []string{SenderName(anon), SenderLine(anon), MenuLabel(anon)} {
		if strings.Contains(got, ocmgoID) || !strings.Contains(got, "someone at ocm.example") {
			t.Errorf("an unnamed opaque sender shows as %q", got)
		}
	}
	s := connected(anon)
	s.Contacts = []Contact{{ID: "c", Address: anon.Sender, Name: "Dave", State: "active"}}
	if got := s.SenderLine(anon); got != "Dave (ocm.example)" {
		t.Errorf("a contact's opaque address shows as %q, want the contact's name", got)
	}
	plain := share("b", "B", StatePending)
	if got := SenderLine(plain); got != "Bob Builder (bob@cloud.example)" {
		t.Errorf("a readable address is hidden: %q", got)
	}
	if OpaqueSender(plain) || !OpaqueSender(anon) || !OpaqueSender(named) {
		t.Error("OpaqueSender misjudges")
	}
}

// TestKindAsTheServerShows: Nextcloud sends resourceType "file" for
// folders; once the agent knows better (kind), the tray says folder.
func TestKindAsTheServerShows(t *testing.T) {
	sh := share("a", "Team", StatePending)
	sh.ResourceType, sh.Kind = "file", "folder"
	if got := Kind(sh); got != "folder" {
		t.Errorf("Kind %q", got)
	}
	if got := MenuLabel(sh); !strings.HasSuffix(got, "(folder)") {
		t.Errorf("MenuLabel %q", got)
	}
	sh.Kind = ""
	if got := Kind(sh); got != "file" {
		t.Errorf("without kind: %q", got)
	}
}

// TestUnreachableRevokedAndKeptWrites: an unreachable share, a revoked
// one with writes kept, and the status lines about them show in the
// window, the problems and the notifications.
func TestUnreachableRevokedAndKeptWrites(t *testing.T) {
	b := newFakeBackend()
	un := share("u1", "Slides", StateAccepted)
	un.UnreachableSince, un.UnreachableError = t0.Add(-10*time.Minute), "HTTP 500 Internal Server Error"
	rv := share("r1", "Drafts", StateRevoked)
	rv.Error = "the sender's server refuses the share (HTTP 401)"
	rv.NotUploaded, rv.KeptIn = []string{"Drafts/plan.txt (12 bytes): HTTP 401"}, "/state/spool"
	team := share("t1", "Team", StateAccepted)
	team.Sender, team.Owner, team.SenderDisplayName = revaUUID+"@cernbox.example", revaUUID+"@cernbox.example", ""
	team.ResourceType, team.Kind = "file", "folder"
	b.shares = []control.Share{un, rv, team}
	b.setStatus(func(st *control.Status) {
		st.Unreachable = []control.UnreachableShare{{ID: "u1", Name: "Slides", Since: un.UnreachableSince, Error: un.UnreachableError}}
		st.KeptWrites = []string{"Drafts (r1, revoked): 1 file written here was not uploaded; it is kept in /state/spool"}
	})
	u := newUI(t, b, true)
	u.mainWindow()
	m := u.tr.main
	if !slices.Contains(m.roots, "state:revoked") {
		t.Fatalf("no group for revoked shares: %v", m.roots)
	}
	m.tree.Select("u1")
	if d := strings.Join(labels(m.detail), "\n"); !strings.Contains(d, "does not answer it since") || !strings.Contains(d, "HTTP 500") {
		t.Errorf("unreachable share details:\n%s", d)
	}
	m.tree.Select("r1")
	d := strings.Join(labels(m.detail), "\n")
	for _, want := range []string{"revoked by the sender", "1 file written here was not uploaded; it is kept in /state/spool", "Drafts/plan.txt"} {
		if !strings.Contains(d, want) {
			t.Errorf("revoked share details lack %q:\n%s", want, d)
		}
	}
	button(t, u.tr.MainWindow().Canvas(), "Try again")
	m.tree.Select("t1")
	d = strings.Join(labels(m.detail), "\n")
	if !strings.Contains(d, "Sender ID") || !strings.Contains(d, "folder") {
		t.Errorf("details of an opaque sender's folder:\n%s", d)
	}
	for _, o := range labels(m.tree) {
		if strings.Contains(o, revaUUID) {
			t.Errorf("the list shows an opaque id: %q", o)
		}
	}
	var titles []string
	for _, p := range u.tr.snap.Problems() {
		titles = append(titles, p.Title)
	}
	if !slices.Contains(titles, "A share's server does not answer") || !slices.Contains(titles, "Files you wrote were not uploaded") {
		t.Errorf("problems %q", titles)
	}
	var notes []string
	for _, n := range u.notes {
		notes = append(notes, n.Title+": "+n.Content)
	}
	if j := strings.Join(notes, "\n"); !strings.Contains(j, "“Drafts” was revoked") || !strings.Contains(j, "1 file written here was not uploaded") {
		t.Errorf("notifications:\n%s", j)
	}
}
