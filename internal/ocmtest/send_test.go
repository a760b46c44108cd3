package ocmtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocm-agent/ocm-agent/httpsig"
	"github.com/ocm-agent/ocm-agent/ocm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// normalise replaces what changes from run to run (secrets, ids, ports)
// with placeholders so bodies can be compared with golden files byte for
// byte (key order and escaping included).
func normalise(t *testing.T, body []byte, s *Server, r *testReceiver, sh *Share) []byte {
	t.Helper()
	pairs := []string{}
	add := func(from, to string) {
		if from != "" {
			pairs = append(pairs, from, to)
		}
	}
	add(sh.Secret, "{{SECRET}}")
	add(sh.Code, "{{CODE}}")
	add(sh.ID, "{{SHARE_ID}}")
	add(sh.ProviderID, "{{PROVIDER_ID}}")
	add(base64.RawURLEncoding.EncodeToString([]byte(s.User()+"@"+s.Host())), "{{USER_B64}}")
	if sh.Dialect == DialectOCIS {
		add(s.userUUID(), "{{USER_UUID}}")
	}
	// Longer host first, so one cannot clip the other.
	if len(s.Host()) >= len(r.host) {
		add(s.Host(), "{{PEER}}")
		add(r.host, "{{RECEIVER}}")
	} else {
		add(r.host, "{{RECEIVER}}")
		add(s.Host(), "{{PEER}}")
	}
	return []byte(strings.NewReplacer(pairs...).Replace(string(body)))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("body differs from %s:\n got: %s\nwant: %s", path, got, want)
	}
}

func TestCreateShareDialectBodies(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		golden string
		req    ShareRequest
		// what ocm.ParseNewShare must make of the body
		dialect  ocm.Dialect
		uri      string // "", "relative", "absolute"
		exchange bool
	}{
		{"legacy-options", ShareRequest{Path: "folder", Dialect: DialectLegacyOptions}, ocm.DialectLegacyOptions, "", false},
		{"webdav", ShareRequest{Path: "folder", Dialect: DialectWebDAV}, ocm.DialectWebDAV, "relative", false},
		{"multi", ShareRequest{Path: "folder", Dialect: DialectMulti, Permissions: []string{"read", "write"}}, ocm.DialectMulti, "relative", false},
		{"multi-absolute-exchange", ShareRequest{Path: "file.txt", Dialect: DialectMulti, AbsoluteURI: true, MustExchangeToken: true, Expiration: exp, Description: "a file"}, ocm.DialectMulti, "absolute", true},
		{"multi-legacy-code", ShareRequest{Path: "folder", Dialect: DialectMulti, LegacyCode: true}, ocm.DialectMulti, "relative", false},
		{"protocol-object", ShareRequest{Path: "folder", Dialect: DialectProtocolObject}, ocm.DialectProtocolObject, "relative", false},
		{"nextcloud", ShareRequest{Path: "folder", Dialect: DialectNextcloud, Name: "Büro / 2024"}, ocm.DialectLegacyOptions, "", false},
		{"nextcloud-sender", ShareRequest{Path: "file.txt", Dialect: DialectNextcloudSender}, ocm.DialectLegacyOptions, "", false},
		{"ocis", ShareRequest{Path: "folder", Dialect: DialectOCIS}, ocm.DialectMulti, "absolute", false},
		{"reva", ShareRequest{Path: "folder", Dialect: DialectReva, Permissions: []string{"read", "write"}}, ocm.DialectMulti, "absolute", false},
		{"ocmgo", ShareRequest{Path: "file.txt", Dialect: DialectOCMGo}, ocm.DialectMulti, "relative", true},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			c.req.To = recv.address("bob")
			sh, err := s.CreateShare(testContext(t), c.req)
			if err != nil {
				t.Fatalf("CreateShare: %v", err)
			}
			got := recv.last(t, "/ocm/shares")
			if !bytes.Equal(got.Body, sh.Body) {
				t.Fatalf("Share.Body is not what was sent")
			}
			golden(t, c.golden, normalise(t, got.Body, s, recv, sh))

			ns, err := ocm.ParseNewShare(got.Body)
			if err != nil {
				t.Fatalf("ocm.ParseNewShare: %v", err)
			}
			if ns.Dialect != c.dialect {
				t.Errorf("parsed dialect %q, want %q", ns.Dialect, c.dialect)
			}
			if ns.Secret() == "" || (ns.Secret() != sh.Secret && ns.Secret() != sh.Code) {
				t.Errorf("parsed secret is not the share's")
			}
			if ns.HasRequirement(ocm.RequireExchangeToken) != c.exchange {
				t.Errorf("must-exchange-token parsed %v, want %v", ns.HasRequirement(ocm.RequireExchangeToken), c.exchange)
			}
			switch c.uri {
			case "":
				if ns.WebDAV.URI != "" {
					t.Errorf("uri %q, want none", ns.WebDAV.URI)
				}
			case "relative":
				if ns.WebDAV.URI != sh.ID {
					t.Errorf("uri %q, want the share id", ns.WebDAV.URI)
				}
			case "absolute":
				if ns.WebDAV.URI != s.URL()+sh.WebDAVPath() {
					t.Errorf("uri %q, want %s", ns.WebDAV.URI, s.URL()+sh.WebDAVPath())
				}
			}
			if !ocm.SameProvider(ns.ShareWith.Host, recv.host) || ns.ShareWith.User != "bob" {
				t.Errorf("shareWith parsed as %v", ns.ShareWith)
			}
		})
	}
}

func TestCreateShareSigning(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	for _, c := range []struct {
		signing, dialect string
		profile          string
		wantErr          error
	}{
		{SignRFC9421, DialectMulti, httpsig.ProfileRFC9421, nil},
		{SignCavage, DialectMulti, httpsig.ProfileCavage, nil},
		{"", DialectNextcloud, httpsig.ProfileCavage, nil},
		{"", DialectOCIS, "", httpsig.ErrNoSignature},
		{SignNone, DialectMulti, "", httpsig.ErrNoSignature},
		{SignRFC9421Unpublished, DialectMulti, "", httpsig.ErrInvalidSignature},
	} {
		name := c.signing + "/" + c.dialect
		sh, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("bob"), Path: "folder", Dialect: c.dialect, Signing: c.signing})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := recv.last(t, "/ocm/shares")
		if c.wantErr != nil {
			if got.SigErr == nil {
				t.Errorf("%s: signature verified, want %v", name, c.wantErr)
			} else if !errors.Is(got.SigErr, c.wantErr) && !(c.wantErr == httpsig.ErrInvalidSignature && errors.Is(got.SigErr, httpsig.ErrUnknownKey)) {
				t.Errorf("%s: %v, want %v", name, got.SigErr, c.wantErr)
			}
			continue
		}
		if got.SigErr != nil {
			t.Errorf("%s: signature does not verify: %v", name, got.SigErr)
			continue
		}
		if got.Verified.Profile != c.profile {
			t.Errorf("%s: profile %q, want %q", name, got.Verified.Profile, c.profile)
		}
		wantKey := s.KeyID()
		if c.profile == httpsig.ProfileCavage {
			wantKey = s.CavageKeyID()
		}
		if got.Verified.KeyID != wantKey {
			t.Errorf("%s: keyid %q, want %q", name, got.Verified.KeyID, wantKey)
		}
		if sh.Signing != c.signing && c.signing != "" {
			t.Errorf("%s: share records signing %q", name, sh.Signing)
		}
	}
}

func TestCreateShareReceiverRefusal(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	recv.mu.Lock()
	recv.shareStatus, recv.shareAnswer = http.StatusBadRequest, `{"message":"invalid","validationErrors":[{"name":"shareWith","message":"unknown user"}]}`
	recv.mu.Unlock()
	_, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("nobody"), Path: "folder"})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || !strings.Contains(string(se.Body), "unknown user") {
		t.Fatalf("error %v, want a StatusError 400 with the receiver's body", err)
	}
	if len(s.Shares()) != 0 {
		t.Fatalf("a refused share is kept: %v", s.Shares())
	}
}

func TestCreateShareErrors(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	to := recv.address("bob")
	for name, req := range map[string]ShareRequest{
		"bad address":           {To: "no-at-sign", Path: "folder"},
		"escaping path":         {To: to, Path: "../etc"},
		"absolute path":         {To: to, Path: "/etc"},
		"missing path":          {To: to, Path: "nope"},
		"unknown dialect":       {To: to, Path: "folder", Dialect: "klingon"},
		"nextcloud exchange":    {To: to, Path: "folder", Dialect: DialectNextcloud, MustExchangeToken: true},
		"ocis legacy code":      {To: to, Path: "folder", Dialect: DialectOCIS, LegacyCode: true},
		"ocmgo folder":          {To: to, Path: "folder", Dialect: DialectOCMGo},
		"unreachable receiver":  {To: "bob@127.0.0.1:1", Path: "folder"},
		"unknown signing style": {To: to, Path: "folder", Signing: "pgp"},
	} {
		if _, err := s.CreateShare(testContext(t), req); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if len(recv.captured("/ocm/shares")) != 0 {
		t.Fatal("a bad request reached the receiver")
	}
}

func TestCreateShareFollowsReceiverCriteria(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	recv.mu.Lock()
	recv.criteria = []string{"must-exchange-token"}
	recv.mu.Unlock()
	sh, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("bob"), Path: "folder"})
	if err != nil {
		t.Fatal(err)
	}
	if !sh.MustExchangeToken || !strings.Contains(string(sh.Body), `"requirements":["must-exchange-token"]`) {
		t.Fatalf("a receiver with the must-exchange-token criterion got %s", sh.Body)
	}
}

func TestCreateShareOCMGoNeedsExchangeCapability(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	recv.mu.Lock()
	recv.capabilities, recv.noTokenEP = []string{"notifications"}, true
	recv.mu.Unlock()
	_, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("bob"), Path: "file.txt", Dialect: DialectOCMGo})
	if !errors.Is(err, ErrCapabilityMismatch) {
		t.Fatalf("error %v, want ErrCapabilityMismatch", err)
	}
	if len(recv.captured("/ocm/shares")) != 0 {
		t.Fatal("the share was sent anyway")
	}
}

func TestCreateShareDuplicateProviderID(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	a, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("bob"), Path: "folder", ProviderID: "dup-1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("bob"), Path: "file.txt", ProviderID: "dup-1"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ProviderID != "dup-1" || b.ProviderID != "dup-1" || a.ID == b.ID {
		t.Fatalf("providerIds %q %q, share ids %q %q", a.ProviderID, b.ProviderID, a.ID, b.ID)
	}
}

func TestUnshareSendsSignedNotification(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	for _, c := range []struct {
		dialect, wantKey string
	}{{DialectMulti, `"message"`}, {DialectNextcloud, `"messgage"`}} {
		sh, err := s.CreateShare(testContext(t), ShareRequest{To: recv.address("bob"), Path: "folder", Dialect: c.dialect})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Unshare(testContext(t), sh.ID); err != nil {
			t.Fatalf("%s: Unshare: %v", c.dialect, err)
		}
		got := recv.last(t, "/ocm/notifications")
		if got.SigErr != nil {
			t.Errorf("%s: notification signature: %v", c.dialect, got.SigErr)
		}
		n, err := ocm.ParseNotification(got.Body)
		if err != nil {
			t.Fatalf("%s: %v", c.dialect, err)
		}
		if n.NotificationType != ocm.ShareUnshared || n.ProviderID != sh.ProviderID || !strings.Contains(string(n.Notification), c.wantKey) {
			t.Errorf("%s: notification %s", c.dialect, got.Body)
		}
		auth := bearer(sh.Secret)
		if c.dialect == DialectNextcloud {
			auth = basic(sh.Secret)
		}
		if st, _, _ := do(t, s, http.MethodGet, s.WebDAVURL()+sh.ID+"/hello.txt", auth, nil, nil); st != http.StatusUnauthorized {
			t.Errorf("%s: an unshared share still opens: %d", c.dialect, st)
		}
		if got, _ := s.Share(sh.ID); got.State != ShareStateUnshared {
			t.Errorf("%s: state %q", c.dialect, got.State)
		}
	}
}

func TestSendRaw(t *testing.T) {
	s := newPeer(t, Options{})
	recv := newReceiver(t, s)
	body := []byte(`{"hand":"made"}`)
	resp, answer, err := s.SendRaw(testContext(t), recv.srv.URL, "/ocm/shares", body, SignRFC9421)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(answer), "recipientDisplayName") {
		t.Fatalf("answer %d %s", resp.StatusCode, answer)
	}
	got := recv.last(t, "/ocm/shares")
	if !bytes.Equal(got.Body, body) || got.SigErr != nil {
		t.Fatalf("receiver got %s (signature: %v)", got.Body, got.SigErr)
	}
	var m map[string]any
	if err := json.Unmarshal(answer, &m); err != nil {
		t.Fatal(err)
	}
}
