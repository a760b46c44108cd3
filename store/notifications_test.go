package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestPruneNotificationsBoundsHistory: pruning keeps the newest few and
// drops what is older than the cut-off, whatever share they are about.
func TestPruneNotificationsBoundsHistory(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if err := s.AddNotification(ctx, Notification{Peer: "p", Type: "SHARE_ACCEPTED", ResourceType: "file", ProviderID: fmt.Sprint(i), ShareID: "s1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PruneNotifications(ctx, 10, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	l, err := s.Notifications(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 10 || l[0].ProviderID != "20" || l[9].ProviderID != "29" {
		t.Fatalf("after pruning to 10: %d kept, first %+v", len(l), l[0])
	}
	if err := s.PruneNotifications(ctx, 10, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if l, _ = s.Notifications(ctx, "s1"); len(l) != 0 {
		t.Fatalf("%d notifications older than the cut-off kept", len(l))
	}
}
