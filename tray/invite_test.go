package tray

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocm-agent/ocm-agent/control"
)

const testInvite = "c2VjcmV0LXRva2VuQGNsb3VkLmV4YW1wbGU" // base64url of secret-token@cloud.example

func TestAcceptInviteOutcomes(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(*fakeBackend)
		want    InviteOutcome
		title   string
		message string
	}{
		{"accepted", func(*fakeBackend) {}, InviteAccepted, "Invite accepted", "Carol (carol@cloud.example) is now in your contacts."},
		{"invalid", func(b *fakeBackend) {
			b.inviteStatus, b.inviteMsg = 400, "the invite is not base64url of token@provider"
		},
			InviteInvalid, "This invite is not valid", "The invite is not base64url of token@provider."},
		{"not trusted", func(b *fakeBackend) {
			b.inviteStatus, b.inviteMsg = 403, "cloud.example does not accept invites from agent.example"
		},
			InviteNotTrusted, "The inviting server does not trust this agent", "Cloud.example does not accept"},
		{"already used", func(b *fakeBackend) { b.inviteStatus, b.inviteMsg = 409, "invite already accepted" },
			InviteAlreadyUsed, "This invite was already used", "An invite works once."},
		{"bad gateway", func(b *fakeBackend) { b.inviteStatus, b.inviteMsg = 502, "cloud.example answered 500" },
			InviteUnreachable, "The inviting server could not be reached", "try again later."},
		{"gateway timeout", func(b *fakeBackend) { b.inviteStatus, b.inviteMsg = 504, "cloud.example did not answer in time" },
			InviteUnreachable, "The inviting server could not be reached", "did not answer in time."},
		{"other failure", func(b *fakeBackend) { b.inviteStatus, b.inviteMsg = 500, "database is locked" },
			InviteFailed, "The invite could not be accepted", "Database is locked."},
		{"old agent", func(b *fakeBackend) { b.noInviteAPI = true },
			InviteUnsupported, "Not supported by this agent version", "cannot accept invites"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFakeBackend()
			c.setup(b)
			d := serveFake(t, b, "")
			r := AcceptInvite(context.Background(), d.client(), "  "+testInvite+"\n")
			if r.Outcome != c.want || r.Title != c.title || !strings.Contains(r.Detail, c.message) {
				t.Errorf("got %v %q %q; want %v %q containing %q", r.Outcome, r.Title, r.Detail, c.want, c.title, c.message)
			}
			if strings.Contains(r.Title+r.Detail, testInvite) {
				t.Error("the invite appears in the result")
			}
			if !b.noInviteAPI && (len(b.invites) != 1 || b.invites[0] != testInvite) {
				t.Errorf("daemon got invites %q, want the trimmed invite once", b.invites)
			}
		})
	}

	if r := AcceptInvite(context.Background(), control.NewClient(filepath.Join(t.TempDir(), "none.sock")), testInvite); r.Outcome != InviteAgentNotRunning {
		t.Errorf("without a daemon: %+v", r)
	}
	if r := AcceptInvite(context.Background(), nil, " \t"); r.Outcome != InviteEmpty {
		t.Errorf("empty invite: %+v", r)
	}
}

func TestIsMissingRoute(t *testing.T) {
	if !IsMissingRoute(&control.APIError{Status: http.StatusNotFound, Message: "no such API: GET /v1/contacts"}) {
		t.Error("a missing route is not recognised")
	}
	if IsMissingRoute(&control.APIError{Status: http.StatusNotFound, Message: "no share with id \"x\""}) {
		t.Error("a missing share is taken for a missing route")
	}
}
