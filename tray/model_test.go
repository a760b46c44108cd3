package tray

import (
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

func connected(shares ...control.Share) Snapshot {
	b := newFakeBackend()
	return Snapshot{Conn: Connected, Status: b.status, Shares: shares, ContactsSupported: true, At: t0}
}

func TestSnapshotIconAndSummary(t *testing.T) {
	locked := connected()
	locked.Status.KeyringUnlocked = false
	mountErr := connected(share("a", "A", StatePending))
	mountErr.Status.MountState = "error: fusermount3: not found"
	invites := connected(share("a", "A", StatePending))
	invites.Status.PendingInvites = 2
	fileSecrets := connected()
	fileSecrets.Status.SecretsBackend, fileSecrets.Status.KeyringUnlocked = "file", false
	withErrors := connected()
	withErrors.Status.Errors = []string{"notification to cloud.example failed"}

	cases := []struct {
		name    string
		s       Snapshot
		icon    IconState
		summary string
	}{
		{"connecting", Snapshot{}, IconIdle, "Connecting to the agent…"},
		{"daemon down", Snapshot{Conn: Disconnected, Err: "no socket"}, IconError, "Agent not running"},
		{"idle", connected(share("a", "A", StateAccepted), share("b", "B", StateDeclined)), IconIdle, "No shares waiting"},
		{"one pending", connected(share("a", "A", StatePending)), IconPending, "1 share waiting"},
		{"two pending", connected(share("a", "A", StatePending), share("b", "B", StatePending)), IconPending, "2 shares waiting"},
		{"shares and invites", invites, IconPending, "1 share and 2 invites waiting"},
		{"keyring locked", locked, IconError, "The keyring is locked"},
		{"mount failed beats pending", mountErr, IconError, "The shares folder could not be mounted"},
		{"file secrets are fine", fileSecrets, IconIdle, "No shares waiting"},
		{"reported errors are not severe", withErrors, IconIdle, "No shares waiting"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.s.Icon(); got != c.icon {
				t.Errorf("icon %v, want %v", got, c.icon)
			}
			if got := c.s.Summary(); got != c.summary {
				t.Errorf("summary %q, want %q", got, c.summary)
			}
		})
	}
	if p := mountErr.Problems(); len(p) != 1 || !strings.Contains(p[0].Detail, "fusermount3: not found") {
		t.Errorf("mount problem %+v does not carry the reason", p)
	}
	if p := withErrors.Problems(); len(p) != 1 || p[0].Severe || p[0].Detail != withErrors.Status.Errors[0] {
		t.Errorf("reported errors give %+v", p)
	}
}

func TestSnapshotOrderAndLookup(t *testing.T) {
	a, b, c := share("a", "A", StatePending), share("b", "B", StatePending), share("c", "C", StateAccepted)
	a.CreatedAt, b.CreatedAt = t0, t0.Add(-time.Minute)
	s := connected(a, c, b)
	if p := s.Pending(); len(p) != 2 || p[0].ID != "b" || p[1].ID != "a" {
		t.Errorf("pending not oldest first: %+v", p)
	}
	if _, ok := s.Find("c"); !ok {
		t.Error("Find misses an accepted share")
	}
	if _, ok := s.Find("zz"); ok {
		t.Error("Find invents a share")
	}
	s.Contacts = []Contact{{ID: "1", Address: "Bob@Cloud.example"}, {ID: "2", Address: "eve@cloud.example", State: "removed-by-peer"}}
	if !s.IsContact("bob@cloud.example") || s.IsContact("eve@cloud.example") || s.IsContact("") {
		t.Error("IsContact is wrong (a contact removed by the peer is not trusted)")
	}
	if (Snapshot{Conn: Disconnected, Shares: []control.Share{a}}).PendingCount() != 0 {
		t.Error("a disconnected snapshot counts pending shares")
	}
}

func TestFormatting(t *testing.T) {
	sh := share("a", "Q1_report", StatePending)
	if got, want := MenuLabel(sh), "Q1_report — from Bob Builder (file)"; got != want {
		t.Errorf("MenuLabel %q, want %q", got, want)
	}
	if got, want := menuText(MenuLabel(sh)), "Q1__report — from Bob Builder (file)"; got != want {
		t.Errorf("menuText %q, want %q (underscores are access keys)", got, want)
	}
	if got, want := SenderLine(sh), "Bob Builder (bob@cloud.example)"; got != want {
		t.Errorf("SenderLine %q, want %q", got, want)
	}
	anon := sh
	anon.SenderDisplayName, anon.OwnerDisplayName = "", ""
	if got := SenderLine(anon); got != "bob@cloud.example" {
		t.Errorf("SenderLine without a name %q", got)
	}
	if got := ShareName(control.Share{Name: "  "}); got != "(unnamed share)" {
		t.Errorf("ShareName of a blank name %q", got)
	}
	group := sh
	group.ShareType = "group"
	if got := Kind(group); got != "file, shared with a group" {
		t.Errorf("Kind %q", got)
	}

	perms := []struct {
		p      []string
		legacy string
		want   string
	}{
		{[]string{"read"}, "", "read only"},
		{[]string{"read", "write", "share"}, "", "read, write, share"},
		{nil, "19", "as granted by the sender (19)"},
		{nil, "", "not stated"},
	}
	for _, c := range perms {
		if got := Permissions(control.Share{Permissions: c.p, LegacyPermissions: c.legacy}); got != c.want {
			t.Errorf("Permissions(%v, %q) = %q, want %q", c.p, c.legacy, got, c.want)
		}
	}

	exp := []struct {
		at   time.Time
		want string
	}{
		{time.Time{}, "never"},
		{t0.Add(-time.Hour), "1 Mar 2026 11:00 (expired)"},
		{t0.Add(10 * time.Minute), "1 Mar 2026 12:10 (in less than an hour)"},
		{t0.Add(5 * time.Hour), "1 Mar 2026 17:00 (in 5 hours)"},
		{t0.Add(72 * time.Hour), "4 Mar 2026 12:00 (in 3 days)"},
	}
	for _, c := range exp {
		if got := Expiry(control.Share{Expiration: c.at}, t0); got != c.want {
			t.Errorf("Expiry(%v) = %q, want %q", c.at, got, c.want)
		}
	}

	sizes := map[int64]string{1: "1 byte", 1000: "1000 bytes", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB"}
	for n, want := range sizes {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	if Size(control.Share{}) != "unknown" {
		t.Error("an unknown size is not said so")
	}
	if got := StateTitle(StatePending, 3); got != "Waiting for you (3)" {
		t.Errorf("StateTitle %q", got)
	}
}
