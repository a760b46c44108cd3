package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/agent"
	"github.com/ocm-agent/ocm-agent/internal/ocmtest"
	"github.com/ocm-agent/ocm-agent/ocm"
	"github.com/ocm-agent/ocm-agent/store"
)

// cliStdin runs a client command with input on its standard input.
func (a *agentProc) cliStdin(input string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBin, append([]string{"--socket", a.socket}, args...)...)
	cmd.Env = a.env()
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (a *agentProc) contacts() []store.Contact {
	a.t.Helper()
	var l []store.Contact
	if err := json.Unmarshal([]byte(a.mustCLI("contacts", "list", "--json")), &l); err != nil {
		a.t.Fatal(err)
	}
	return l
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestInviteFromPeerAcceptedInEveryForm: an invite the reference peer made
// is accepted with `ocm-agent invites accept` in every form a person may
// paste; the peer sees a signed acceptance with bob's details each time,
// and alice is one contact. Reuse, expiry and garbage give clear errors.
func TestInviteFromPeerAcceptedInEveryForm(t *testing.T) {
	a := newAgent(t, "--email", "bob@mail.example.org")
	a.start()
	p := newPeer(t, ocmtest.Options{Email: "alice@mail.example.org"})
	ctx := testCtx(t)

	forms := []struct {
		name  string
		stdin bool
		args  func(token, str string) []string
	}{
		{"invite string", false, func(_, s string) []string { return []string{s} }},
		{"invite string on stdin", true, func(_, s string) []string { return []string{s} }},
		{"token@provider", false, func(tok, _ string) []string { return []string{tok + "@" + p.Host()} }},
		{"dialog link", false, func(tok, _ string) []string {
			return []string{a.base + agent.InviteDialogPath + "?" + url.Values{"token": {tok}, "providerDomain": {p.Host()}}.Encode()}
		}},
		{"WAYF link", false, func(tok, _ string) []string { return []string{p.URL() + "/wayf?token=" + url.QueryEscape(tok)} }},
		{"--token --provider", false, func(tok, _ string) []string { return []string{"--token", tok, "--provider", p.Host()} }},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			tok, str := p.CreateInvite(ocmtest.InviteOptions{})
			var out string
			var err error
			if f.stdin {
				out, err = a.cliStdin("\n"+strings.Join(f.args(tok, str), " ")+"\n", "invites", "accept")
			} else {
				out, err = a.cli(append([]string{"invites", "accept"}, f.args(tok, str)...)...)
			}
			if err != nil {
				t.Fatalf("invites accept: %v\n%s\nagent log:\n%s", err, out, a.log)
			}
			if !strings.Contains(out, "Alice Sender <alice@"+p.Host()+"> is now in your contacts") {
				t.Fatalf("output %q", out)
			}
			acc, err := p.WaitInviteAcceptance(ctx, func(x ocmtest.InviteAcceptance) bool { return x.Token == tok })
			if err != nil {
				t.Fatal(err)
			}
			if acc.Status != 200 || !acc.Signature.Verified || acc.UserID != "bob" || acc.Name != "Bob" ||
				acc.Email != "bob@mail.example.org" || acc.RecipientProvider != a.listen {
				t.Fatalf("the peer saw %v, signature %+v, fields %q %q %q", acc, acc.Signature, acc.UserID, acc.Name, acc.RecipientProvider)
			}
		})
	}
	l := a.contacts()
	if len(l) != 1 || l[0].Address != "alice@"+p.Host() || l[0].Email != "alice@mail.example.org" || l[0].Source != store.SourceAcceptedTheirInvite {
		t.Fatalf("contacts %+v", l)
	}

	_, used := p.CreateInvite(ocmtest.InviteOptions{})
	a.mustCLI("invites", "accept", used)
	_, expired := p.CreateInvite(ocmtest.InviteOptions{TTL: -time.Minute})
	for _, c := range []struct{ name, invite, want string }{
		{"reuse", used, "already accepted"},
		{"expired", expired, "not valid"},
		{"garbage", "hello world", "expected an invite code"},
	} {
		out, err := a.cli("invites", "accept", c.invite)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, c.want) {
			t.Errorf("%s: %v %q, want exit 1 saying %q", c.name, err, out, c.want)
		}
	}
}

// TestInviteFromAgentAcceptedByPeer: `ocm-agent invites create` makes an
// invite the peer accepts once (200 with bob's details, signed by the
// peer's key), then 409; an expired one gets 400. The accepting party is
// a contact and the invite is listed as accepted.
func TestInviteFromAgentAcceptedByPeer(t *testing.T) {
	a := newAgent(t, "--email", "bob@mail.example.org")
	a.start()
	p := newPeer(t, ocmtest.Options{})
	ctx := testCtx(t)

	var ci agent.CreatedInvite
	if err := json.Unmarshal([]byte(a.mustCLI("invites", "create", "--note", "for carol", "--expires", "2d", "--json")), &ci); err != nil {
		t.Fatal(err)
	}
	inv, err := ocm.ParseInvite(ci.InviteString)
	if err != nil || inv.Provider != a.listen {
		t.Fatalf("invite string reads as %v, %v", inv, err)
	}
	if fromLink, err := ocm.ParseInvite(ci.Link); err != nil || fromLink != inv {
		t.Fatalf("the link reads as %v, %v", fromLink, err)
	}
	text := a.mustCLI("invites", "create")
	if !strings.Contains(text, "Invite code:") || !strings.Contains(text, a.base+agent.InviteDialogPath+"?") {
		t.Fatalf("invites create prints %q", text)
	}

	accept := func(token, user string) (int, []byte) {
		t.Helper()
		body, _ := json.Marshal(ocm.InviteAccepted{RecipientProvider: p.Host(), Token: token, UserID: user, Email: user + "@mail.example.org", Name: strings.ToUpper(user)})
		resp, b, err := p.SendRaw(ctx, a.base, "/ocm/invite-accepted", body, ocmtest.SignRFC9421)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	code, body := accept(inv.Token, "carol")
	var got ocm.InviteAcceptedResponse
	if code != 200 || json.Unmarshal(body, &got) != nil || got.UserID != "bob" || got.Name != "Bob" || got.Email != "bob@mail.example.org" {
		t.Fatalf("first acceptance: %d %s", code, body)
	}
	if code, body := accept(inv.Token, "mallory"); code != 409 {
		t.Fatalf("second acceptance: %d %s", code, body)
	}

	var short agent.CreatedInvite
	json.Unmarshal([]byte(a.mustCLI("invites", "create", "--expires", "1s", "--json")), &short)
	shortInv, _ := ocm.ParseInvite(short.InviteString)
	if !eventually(10*time.Second, func() bool { return time.Now().After(short.Invite.ExpiresAt) }) {
		t.Fatal("clock did not move")
	}
	if code, body := accept(shortInv.Token, "dave"); code != 400 {
		t.Fatalf("expired invite: %d %s", code, body)
	}
	if code, body := accept("made-up-token", "erin"); code != 400 {
		t.Fatalf("unknown token: %d %s", code, body)
	}

	l := a.contacts()
	if len(l) != 1 || l[0].Address != "carol@"+p.Host() || l[0].Name != "CAROL" || l[0].Source != store.SourceAcceptedOurInvite {
		t.Fatalf("contacts %+v", l)
	}
	var invites []store.Invite
	json.Unmarshal([]byte(a.mustCLI("invites", "list", "--all", "--json")), &invites)
	states := map[string]string{}
	for _, i := range invites {
		states[i.ID] = i.State
	}
	if states[ci.Invite.ID] != store.InviteAccepted || states[short.Invite.ID] != store.InviteExpired || len(invites) != 3 {
		t.Fatalf("invites %+v", invites)
	}
	out := a.mustCLI("invites", "revoke", strings.Fields(strings.Split(text, "Invite ")[1])[0])
	if !strings.Contains(out, "withdrawn") {
		t.Fatalf("revoke: %q", out)
	}
	if open := a.mustCLI("invites", "list"); !strings.Contains(open, "No open invites") {
		t.Fatalf("open invites after revoking the last: %q", open)
	}
	if out := a.mustCLI("contacts", "remove", l[0].ID); !strings.Contains(out, "removed") {
		t.Fatalf("contacts remove: %q", out)
	}
	if len(a.contacts()) != 0 {
		t.Fatal("contact not removed")
	}
	if strings.Contains(a.log.String(), inv.Token) {
		t.Fatal("an invite token is in the agent's log")
	}
}

// TestContactsOnlyRefusesStrangers: with accept-from = contacts a share
// from someone who is not a contact gets 403 and nothing is stored; after
// accepting their invite the same sender's share arrives, flagged as from
// a contact.
func TestContactsOnlyRefusesStrangers(t *testing.T) {
	a := newAgent(t, "--accept-from", "contacts")
	a.start()
	p := newPeer(t, ocmtest.Options{})
	writeFile(t, p, "doc.txt", []byte("hello"))
	ctx := testCtx(t)

	_, err := p.CreateShare(ctx, ocmtest.ShareRequest{To: a.address(), ReceiverBase: a.base, Path: "doc.txt"})
	var se *ocmtest.StatusError
	if !errors.As(err, &se) || se.Status != 403 || !strings.Contains(string(se.Body), "only accepts shares from contacts") {
		t.Fatalf("a stranger's share: %v", err)
	}
	if l := a.shares(true); len(l) != 0 {
		t.Fatalf("a refused share was stored: %+v", l)
	}
	var doc ocm.Discovery
	if b, err := getBody(a.base + "/.well-known/ocm"); err != nil || json.Unmarshal(b, &doc) != nil {
		t.Fatalf("discovery: %v", err)
	}
	if !strings.Contains(strings.Join(doc.Criteria, ","), "must-invite") || !doc.HasCapability("invites") {
		t.Fatalf("discovery criteria %v capabilities %v", doc.Criteria, doc.Capabilities)
	}

	_, str := p.CreateInvite(ocmtest.InviteOptions{})
	a.mustCLI("invites", "accept", str)
	sh := a.share(t, p, ocmtest.ShareRequest{Path: "doc.txt"})
	got := a.showShare(t, sh.ProviderID)
	if !got.FromContact || got.State != store.StatePending {
		t.Fatalf("a contact's share: %+v", got)
	}
}
