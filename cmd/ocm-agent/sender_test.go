package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ocm-agent/ocm-agent/control"
)

// Opaque sender ids (reva's UUIDs, opencloudmesh-go's 88-character base64
// ids) are shown by name in lists; the id stays in 'shares show'.
func TestSenderShownByName(t *testing.T) {
	ocmgoID := strings.Repeat("QWxpY2VAZXhhbXBsZS5vcmc", 4)[:88]
	for _, c := range []struct {
		sender, display, want, notWant string
	}{
		{"alice@cloud.example.org", "Alice", "Alice <alice@cloud.example.org>", ""},
		{"4c510ada-c86b-4815-8820-42cdf82c3d51@cernbox.example.org", "Marie Curie", "Marie Curie (cernbox.example.org)", "4c510ada"},
		{ocmgoID + "@127.0.0.1:37515", "", "unnamed user (127.0.0.1:37515)", ocmgoID},
		{"bob@127.0.0.1:9200", "", "bob@127.0.0.1:9200", ""},
	} {
		got := senderOf(control.Share{Sender: c.sender, SenderDisplayName: c.display})
		if got != c.want || (c.notWant != "" && strings.Contains(got, c.notWant)) {
			t.Errorf("senderOf(%q, %q) = %q, want %q", c.sender, c.display, got, c.want)
		}
		var b bytes.Buffer
		printShare(&b, control.Share{ID: "x", Sender: c.sender, SenderDisplayName: c.display})
		if !strings.Contains(b.String(), c.sender) {
			t.Errorf("shares show lacks the sender id %q:\n%s", c.sender, b.String())
		}
	}
}
