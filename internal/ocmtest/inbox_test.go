package ocmtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/httpsig"
	"github.com/ocm-agent/ocm-agent/ocm"
)

// postSigned sends a JSON POST to the peer signed with key (unsigned when
// key.Private is nil).
func postSigned(t *testing.T, s *Server, path string, body []byte, key httpsig.Key) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key.Private != nil {
		if err := httpsig.SignRFC9421(req, body, key, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

func TestNotificationsAreRecorded(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	sh, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("bob"), Path: "folder"})
	if err != nil {
		t.Fatal(err)
	}
	accepted, _ := json.Marshal(map[string]any{"notificationType": "SHARE_ACCEPTED", "resourceType": "folder", "providerId": sh.ProviderID})
	if st, b := postSigned(t, s, "/ocm/notifications", accepted, recv.key); st != http.StatusCreated {
		t.Fatalf("signed SHARE_ACCEPTED: %d %s", st, b)
	}
	n, err := s.WaitNotification(testContext(t), func(n Notification) bool { return n.Type == ocm.ShareAccepted })
	if err != nil {
		t.Fatal(err)
	}
	if !n.Signature.Present || !n.Signature.Verified || n.Signature.Profile != httpsig.ProfileRFC9421 || n.Signature.KeyID != recv.key.ID {
		t.Fatalf("signature info %+v", n.Signature)
	}
	if n.ShareID != sh.ID || n.Status != http.StatusCreated {
		t.Fatalf("notification %+v", n)
	}
	if got, _ := s.Share(sh.ID); got.State != ShareStateAccepted {
		t.Fatalf("share state %q after SHARE_ACCEPTED", got.State)
	}

	// Unsigned: recorded as such, accepted unless signatures are required.
	declined, _ := json.Marshal(map[string]any{"notificationType": "SHARE_DECLINED", "resourceType": "folder", "providerId": sh.ProviderID})
	if st, _ := postSigned(t, s, "/ocm/notifications", declined, httpsig.Key{}); st != http.StatusCreated {
		t.Fatalf("unsigned SHARE_DECLINED: %d", st)
	}
	n, _ = s.WaitNotification(testContext(t), func(n Notification) bool { return n.Type == ocm.ShareDeclined })
	if n.Signature.Present {
		t.Fatalf("unsigned notification recorded as signed: %+v", n.Signature)
	}
	if got, _ := s.Share(sh.ID); got.State != ShareStateDeclined {
		t.Fatalf("share state %q after SHARE_DECLINED", got.State)
	}

	// Forged: a key that is not the published one.
	forged, _ := httpsig.GenerateEd25519(recv.key.ID)
	if st, _ := postSigned(t, s, "/ocm/notifications", accepted, forged); st != http.StatusUnauthorized {
		t.Fatalf("forged signature: %d, want 401", st)
	}
	all := s.Notifications()
	if last := all[len(all)-1]; !last.Signature.Present || last.Signature.Verified || last.Signature.Error == "" {
		t.Fatalf("forged notification recorded as %+v", last.Signature)
	}

	// Malformed and unknown types.
	if st, _ := postSigned(t, s, "/ocm/notifications", []byte(`{"notificationType":"SHARE_ACCEPTED"}`), recv.key); st != http.StatusBadRequest {
		t.Fatalf("missing providerId: %d, want 400", st)
	}
	unknown, _ := json.Marshal(map[string]any{"notificationType": "TEA_READY", "resourceType": "file", "providerId": "x"})
	if st, _ := postSigned(t, s, "/ocm/notifications", unknown, recv.key); st != http.StatusNotImplemented {
		t.Fatalf("unknown type: %d, want 501", st)
	}
}

func TestNotificationsRequireSignature(t *testing.T) {
	s := newPeer(t, Options{RequireSignedRequests: true})
	recv := newReceiver(t, s)
	body := []byte(`{"notificationType":"SHARE_ACCEPTED","resourceType":"file","providerId":"p1"}`)
	if st, _ := postSigned(t, s, "/ocm/notifications", body, httpsig.Key{}); st != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d, want 401", st)
	}
	if st, _ := postSigned(t, s, "/ocm/notifications", body, recv.key); st != http.StatusCreated {
		t.Fatalf("signed: %d", st)
	}
}

func TestWaitNotificationIsBounded(t *testing.T) {
	s := newPeer(t, Options{})
	ctx := testContext(t)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.WaitNotification(short, nil); err == nil {
		t.Fatal("WaitNotification returned without a notification")
	}
}

func TestInvites(t *testing.T) {
	s := newPeer(t, Options{Email: "alice@sender.example"})
	recv := newReceiver(t, s)
	token, invite := s.CreateInvite(InviteOptions{})
	raw, err := base64.RawURLEncoding.DecodeString(invite)
	if err != nil || string(raw) != token+"@"+s.Host() {
		t.Fatalf("invite string %q decodes to %q (%v), want token@%s", invite, raw, err, s.Host())
	}
	if strings.Contains(invite, "=") {
		t.Fatalf("invite string %q is padded", invite)
	}
	accept := func(tok string) (int, []byte) {
		body, _ := json.Marshal(ocm.InviteAccepted{RecipientProvider: recv.host, Token: tok, UserID: "bob", Email: "bob@example.org", Name: "Bob"})
		return postSigned(t, s, "/ocm/invite-accepted", body, recv.key)
	}
	st, b := accept(token)
	if st != http.StatusOK {
		t.Fatalf("accept: %d %s", st, b)
	}
	var who ocm.InviteAcceptedResponse
	if err := json.Unmarshal(b, &who); err != nil || who.UserID != s.User() || who.Email != "alice@sender.example" || who.Name == "" {
		t.Fatalf("answer %s (%v)", b, err)
	}
	if st, _ := accept(token); st != http.StatusConflict {
		t.Fatalf("second acceptance: %d, want 409", st)
	}
	if st, _ := accept("no-such-token"); st != http.StatusBadRequest {
		t.Fatalf("unknown token: %d, want 400", st)
	}
	expired, _ := s.CreateInvite(InviteOptions{TTL: -time.Minute})
	if st, _ := accept(expired); st != http.StatusBadRequest {
		t.Fatalf("expired token: %d, want 400", st)
	}
	if st, _ := postSigned(t, s, "/ocm/invite-accepted", []byte(`{"token":"x"}`), recv.key); st != http.StatusBadRequest {
		t.Fatalf("missing fields: %d, want 400", st)
	}

	a, err := s.WaitInviteAcceptance(testContext(t), func(a InviteAcceptance) bool { return a.Status == http.StatusOK })
	if err != nil {
		t.Fatal(err)
	}
	if a.UserID != "bob" || a.RecipientProvider != recv.host || !a.Signature.Verified || a.Token != token {
		t.Fatalf("recorded acceptance %+v", a)
	}
	if strings.Contains(a.String(), token) {
		t.Fatal("InviteAcceptance.String shows the token")
	}
	var statuses []int
	for _, x := range s.InviteAcceptances() {
		statuses = append(statuses, x.Status)
	}
	if len(statuses) != 5 {
		t.Fatalf("recorded statuses %v, want 5 attempts", statuses)
	}
}

func TestRejectReplays(t *testing.T) {
	for _, reject := range []bool{false, true} {
		s := newPeer(t, Options{RejectReplays: reject})
		recv := newReceiver(t, s)
		body := []byte(`{"notificationType":"SHARE_ACCEPTED","resourceType":"file","providerId":"p1"}`)
		req, err := http.NewRequest(http.MethodPost, s.URL()+"/ocm/notifications", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if err := httpsig.SignRFC9421(req, body, recv.key, time.Now()); err != nil {
			t.Fatal(err)
		}
		var statuses []int
		for i := 0; i < 2; i++ {
			r := req.Clone(context.Background())
			r.Body = nopBody(body)
			resp, err := s.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			statuses = append(statuses, resp.StatusCode)
		}
		want := []int{http.StatusCreated, http.StatusCreated}
		if reject {
			want[1] = http.StatusUnauthorized
		}
		if statuses[0] != want[0] || statuses[1] != want[1] {
			t.Errorf("RejectReplays=%v: statuses %v, want %v", reject, statuses, want)
		}
	}
}
