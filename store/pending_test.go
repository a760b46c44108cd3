package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkPendingCounts compares the kept counts with a count of the rows.
func checkPendingCounts(t *testing.T, s *Store, peers []string) {
	t.Helper()
	ctx := context.Background()
	total, byPeer, err := s.PendingCounts(ctx, peers)
	if err != nil {
		t.Fatal(err)
	}
	var want int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM shares WHERE state = ?`, StatePending).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if total != want {
		t.Fatalf("pending total %d, the table has %d", total, want)
	}
	for _, p := range peers {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM shares WHERE peer = ? AND state = ?`, p, StatePending).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if byPeer[p] != n {
			t.Fatalf("pending of %s: %d, the table has %d", p, byPeer[p], n)
		}
	}
}

// The pending counts follow every way a share comes, changes state, is
// sent again or goes, as a count of the rows would.
func TestPendingCountsFollowEveryChange(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	peers := []string{"a.example.org", "b.example.org", "c.example.org:8443"}
	rng := rand.New(rand.NewPCG(1, 2))
	states := []string{StatePending, StateAccepted, StateDeclined, StateRemoved, StateError, StateRevoked}
	var ids []string
	for i := range 400 {
		switch op := rng.IntN(5); {
		case op <= 1 || len(ids) == 0: // a share, new or sent again (same provider id)
			sh := testShare(fmt.Sprintf("s%d", i), fmt.Sprintf("p%d", rng.IntN(60)))
			sh.Peer = peers[rng.IntN(len(peers))]
			out, _, err := s.PutShare(ctx, sh)
			if err != nil {
				t.Fatal(err)
			}
			if out.ID == sh.ID {
				ids = append(ids, sh.ID)
			}
		case op == 2: // several in one transaction
			batch := make([]Share, 3)
			for j := range batch {
				batch[j] = testShare(fmt.Sprintf("s%d-%d", i, j), fmt.Sprintf("p%d", rng.IntN(60)))
				batch[j].Peer = peers[rng.IntN(len(peers))]
			}
			out, _, err := s.PutShares(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			for j, sh := range out {
				if sh.ID == batch[j].ID {
					ids = append(ids, sh.ID)
				}
			}
		case op == 3: // the person's decision, expiry, revocation
			id := ids[rng.IntN(len(ids))]
			if _, err := s.SetShareState(ctx, id, states[rng.IntN(len(states))], ""); err != nil {
				t.Fatal(err)
			}
		default: // a decision that queues a notification
			id := ids[rng.IntN(len(ids))]
			n := &Notify{ID: fmt.Sprintf("n%d", i), Type: "SHARE_DECLINED"}
			if _, _, err := s.SetShareStateNotify(ctx, id, StateDeclined, "", n); err != nil {
				t.Fatal(err)
			}
		}
		checkPendingCounts(t, s, append(peers, "nobody.example.org"))
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM shares WHERE peer = ?`, peers[0]); err != nil {
		t.Fatal(err)
	}
	checkPendingCounts(t, s, peers)
}

// A database from before the counts were kept starts with the counts of
// the shares it has.
func TestPendingCountsOfAnOlderDatabase(t *testing.T) {
	s := openMigrated(t, 5, func(old *Store) error {
		for i, st := range []string{StatePending, StatePending, StateAccepted, StatePending} {
			sh := testShare(fmt.Sprintf("s%d", i), fmt.Sprintf("p%d", i))
			sh.State = st
			if i == 3 {
				sh.Peer = "other.example.org"
			}
			if _, _, err := old.PutShare(context.Background(), sh); err != nil {
				return err
			}
		}
		return nil
	})
	total, byPeer, err := s.PendingCounts(context.Background(), []string{"peer.example.org", "other.example.org"})
	if err != nil || total != 3 || byPeer["peer.example.org"] != 2 || byPeer["other.example.org"] != 1 {
		t.Fatalf("counts %d %v, %v; want 3, 2 and 1", total, byPeer, err)
	}
}

// A re-sent share updates the stored one in place: its id, creation time
// and what the mount learnt stay; its state stays unless it was over; its
// notify state stays while the state does; its last change stays unless
// the new one names one.
func TestResentShareUpdatesInPlace(t *testing.T) {
	ctx := context.Background()
	for _, prev := range []string{StatePending, StateAccepted, StateDeclined, StateRemoved, StateError, StateRevoked} {
		t.Run(prev, func(t *testing.T) {
			s := openTest(t)
			first, res, err := s.PutShares(ctx, []Share{testShare("a", "p1")})
			if err != nil || res[0] != Inserted {
				t.Fatalf("first: %v %v", res, err)
			}
			if _, err := s.db.ExecContext(ctx, `UPDATE shares SET state = ?, notify_state = 'sent', changed = 'c1', kind_seen = 'folder', mount_name = 'm' WHERE id = 'a'`, prev); err != nil {
				t.Fatal(err)
			}
			again := testShare("b", "p1")
			again.Name = "renamed"
			got, res, err := s.PutShares(ctx, []Share{again})
			if err != nil || res[0] != Updated {
				t.Fatalf("again: %v %v", res, err)
			}
			stored, err := s.Share(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			over := prev != StatePending && prev != StateAccepted
			wantState, wantNotify := prev, "sent"
			if over {
				wantState, wantNotify = StatePending, ""
			}
			for _, sh := range []Share{got[0], stored} {
				if sh.ID != "a" || sh.Name != "renamed" || sh.State != wantState || sh.NotifyState != wantNotify ||
					sh.Changed != "c1" || sh.KindSeen != "folder" || sh.MountName != "m" || !sh.CreatedAt.Equal(first[0].CreatedAt) {
					t.Fatalf("after the re-send: %+v; want id a, state %s, notify %q, change, kind, mount name and creation kept", sh, wantState, wantNotify)
				}
			}
			again.Changed = "c2"
			if got, _, err = s.PutShares(ctx, []Share{again}); err != nil || got[0].Changed != "c2" {
				t.Fatalf("a named change: %q %v", got[0].Changed, err)
			}
		})
	}
}
