package tray

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/ocm-agent/ocm-agent/control"
)

// InviteOutcome is how accepting an invite ended.
type InviteOutcome int

// The outcomes the dialog tells apart.
const (
	InviteAccepted        InviteOutcome = iota
	InviteEmpty                         // nothing was pasted
	InviteInvalid                       // 400: malformed, unknown or expired
	InviteNotTrusted                    // 403: the inviting server refuses us
	InviteAlreadyUsed                   // 409
	InviteUnreachable                   // 502, 504: the inviting server did not answer
	InviteUnsupported                   // the daemon has no invites API
	InviteAgentNotRunning               // nothing answers on the control socket
	InviteFailed                        // anything else
)

func (o InviteOutcome) String() string {
	return [...]string{"accepted", "empty", "invalid", "not trusted", "already used", "server unreachable",
		"unsupported", "agent not running", "failed"}[o]
}

// InviteResult is what the dialog shows after an attempt.
type InviteResult struct {
	Outcome InviteOutcome
	// Title is the headline; Detail explains (the daemon's message when it has one).
	Title, Detail string
	// Contact is the new contact, when the daemon returned one.
	Contact Contact
}

// OK says whether the invite was accepted.
func (r InviteResult) OK() bool { return r.Outcome == InviteAccepted }

// inviteAnswer is the daemon's answer to POST /v1/invites/accept: a
// contact, either bare or under "contact".
type inviteAnswer struct {
	Nested *Contact `json:"contact"`
	Contact
}

// AcceptInvite asks the daemon to accept invite (any form a person may
// paste: invite string, token@provider, or a link) and says how it went in
// words a person understands. The invite is a secret: it is sent in the
// request body only, and never appears in the result.
func AcceptInvite(ctx context.Context, c *control.Client, invite string) InviteResult {
	invite = strings.TrimSpace(invite)
	if invite == "" {
		return InviteResult{Outcome: InviteEmpty, Title: "Paste an invite first",
			Detail: "An invite looks like a long code, token@server, or a link you were sent."}
	}
	var ans inviteAnswer
	err := c.Do(ctx, http.MethodPost, "/v1/invites/accept", map[string]string{"invite": invite}, &ans)
	if err == nil {
		ct := ans.Contact
		if ans.Nested != nil {
			ct = *ans.Nested
		}
		detail := "You can now share with each other."
		if ct.Label() != "(unnamed contact)" {
			who := ct.Label()
			if ct.Address != "" && ct.Address != who {
				who += " (" + ct.Address + ")"
			}
			detail = who + " is now in your contacts. " + detail
		}
		return InviteResult{Outcome: InviteAccepted, Title: "Invite accepted", Detail: detail, Contact: ct}
	}
	return inviteError(err)
}

func inviteError(err error) InviteResult {
	if errors.Is(err, control.ErrNotRunning) {
		return InviteResult{Outcome: InviteAgentNotRunning, Title: "The agent is not running",
			Detail: "Start the OCM agent, then try again."}
	}
	if IsMissingRoute(err) {
		return InviteResult{Outcome: InviteUnsupported, Title: "Not supported by this agent version",
			Detail: "This version of the OCM agent cannot accept invites. Update it, then try again."}
	}
	var ae *control.APIError
	if !errors.As(err, &ae) {
		return InviteResult{Outcome: InviteFailed, Title: "The invite could not be accepted", Detail: sentence(err.Error())}
	}
	msg := sentence(ae.Message)
	switch ae.Status {
	case http.StatusBadRequest:
		return InviteResult{Outcome: InviteInvalid, Title: "This invite is not valid",
			Detail: join(msg, "Check that you pasted all of it, or ask the sender for a new one.")}
	case http.StatusForbidden:
		return InviteResult{Outcome: InviteNotTrusted, Title: "The inviting server does not trust this agent",
			Detail: join(msg, "Ask the sender whether their server accepts invites from yours.")}
	case http.StatusConflict:
		return InviteResult{Outcome: InviteAlreadyUsed, Title: "This invite was already used",
			Detail: join(msg, "An invite works once. Ask the sender for a new one if you need it.")}
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return InviteResult{Outcome: InviteUnreachable, Title: "The inviting server could not be reached",
			Detail: join(msg, "Check your connection and try again later.")}
	case http.StatusNotFound:
		return InviteResult{Outcome: InviteInvalid, Title: "This invite is not valid",
			Detail: join(msg, "Ask the sender for a new one.")}
	}
	return InviteResult{Outcome: InviteFailed, Title: "The invite could not be accepted", Detail: msg}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}
