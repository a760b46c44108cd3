package ocm

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func loadShare(t *testing.T, name string) *NewShare {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "shares", name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseNewShare(body)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func TestParseNewShareDialects(t *testing.T) {
	cases := []struct {
		file                     string
		dialect                  Dialect
		sender, resourceType     string
		uri, secret, legacyPerms string
		perms, reqs              []string
		code                     string
	}{
		{"nextcloud-legacy.json", DialectLegacyOptions, "alice@nc.example.org", "file", "", "Nc-Secret-1", "{http://open-cloud-mesh.org/ns}share-permissions", nil, nil, ""},
		{"nextcloud-sender.json", DialectLegacyOptions, "alice@nc.example.org", "file", "", "Nc-Secret-2", "{http://open-cloud-mesh.org/ns}share-permissions", nil, nil, ""},
		{"reva-multi.json", DialectMulti, "marie@cernbox.example.org", "folder", "https://cernbox.example.org/remote.php/dav/ocm/9f3c1a-77", "Reva-Secret", "", []string{"read", "write"}, nil, ""},
		{"reva-legacy.json", DialectWebDAV, "marie@cernbox.example.org", "file", "https://cernbox.example.org/remote.php/dav/ocm/r-1", "Reva-Legacy", "", []string{"read"}, nil, ""},
		{"ocis.json", DialectMulti, "einstein@ocis.example.org", "folder", "https://ocis.example.org/dav/ocm/c3BhY2UtaWQhb3BhcXVl", "Ocis-Secret", "", []string{"read"}, nil, ""},
		{"ocmgo.json", DialectMulti, "YWxpY2U@ocm.example.org:9443", "file", "8b1e2f9c-4d6a-4c3e-9f1a-2b7c8d9e0f11", "Go-Secret", "", []string{"read"}, []string{RequireExchangeToken}, ""},
		{"protocol-object.json", DialectProtocolObject, "carol@peer.example.org", "file", "https://peer.example.org/webdav/po-1", "Po-Secret", "", []string{"read", "share"}, nil, ""},
		{"legacy-code.json", DialectWebDAV, "dave@old.example.org", "file", "lc-1", "", "", []string{"read"}, []string{RequireCode}, "Legacy-Code"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			s := loadShare(t, c.file)
			if s.Dialect != c.dialect {
				t.Errorf("dialect = %s, want %s", s.Dialect, c.dialect)
			}
			if s.Sender.String() != c.sender {
				t.Errorf("sender = %s, want %s", s.Sender, c.sender)
			}
			if s.ShareWith.String() != "bob@agent.example.org" {
				t.Errorf("shareWith = %s", s.ShareWith)
			}
			if s.ResourceType != c.resourceType {
				t.Errorf("resourceType = %s", s.ResourceType)
			}
			if s.WebDAV == nil {
				t.Fatal("no webdav access")
			}
			if s.WebDAV.URI != c.uri || s.WebDAV.SharedSecret != c.secret || s.WebDAV.LegacyPermissions != c.legacyPerms {
				t.Errorf("webdav = %+v", *s.WebDAV)
			}
			if !reflect.DeepEqual(s.WebDAV.Permissions, c.perms) && !(len(c.perms) == 0 && len(s.WebDAV.Permissions) == 0) {
				t.Errorf("permissions = %v, want %v", s.WebDAV.Permissions, c.perms)
			}
			if !reflect.DeepEqual(s.Requirements, c.reqs) {
				t.Errorf("requirements = %v, want %v", s.Requirements, c.reqs)
			}
			if s.Code != c.code {
				t.Errorf("code = %q", s.Code)
			}
			if want := c.secret; want == "" && s.Secret() != c.code || want != "" && s.Secret() != want {
				t.Errorf("Secret() = %q", s.Secret())
			}
		})
	}
}

func TestNewShareNeverPrintsSecrets(t *testing.T) {
	s := loadShare(t, "reva-multi.json")
	for _, out := range []string{s.String(), s.LogValue().String()} {
		if strings.Contains(out, "Reva-Secret") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
}

func TestReceiverExpiration(t *testing.T) {
	s := loadShare(t, "reva-multi.json")
	if s.Expiration.Unix() != 4102444800 {
		t.Fatalf("expiration = %v", s.Expiration)
	}
}

func validationNames(t *testing.T, err error) []string {
	t.Helper()
	var ve ValidationErrors
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not ValidationErrors", err, err)
	}
	var names []string
	for _, e := range ve {
		names = append(names, e.Name)
	}
	return names
}

func TestParseNewShareValidation(t *testing.T) {
	base := `"shareWith":"bob@a.example","name":"n","providerId":"1","owner":"o@b.example","sender":"s@b.example","shareType":"user","resourceType":"file"`
	proto := `"protocol":{"name":"webdav","webdav":{"uri":"x","sharedSecret":"s","permissions":["read"]}}`
	cases := []struct {
		name, body string
		want       []string
	}{
		{"missing everything", `{}`, []string{"shareWith", "name", "providerId", "owner", "shareType", "resourceType", "protocol"}},
		{"name not a string", `{` + strings.Replace(base, `"name":"n"`, `"name":7`, 1) + `,` + proto + `}`, []string{"name"}},
		{"bad shareWith", `{` + strings.Replace(base, `bob@a.example`, `bob`, 1) + `,` + proto + `}`, []string{"shareWith"}},
		{"bad sender", `{` + strings.Replace(base, `s@b.example`, `s@b.example/x`, 1) + `,` + proto + `}`, []string{"sender"}},
		{"unknown share type", `{` + strings.Replace(base, `"user"`, `"robot"`, 1) + `,` + proto + `}`, []string{"shareType"}},
		{"unknown resource type", `{` + strings.Replace(base, `"file"`, `"potato"`, 1) + `,` + proto + `}`, []string{"resourceType"}},
		{"no secret", `{` + base + `,"protocol":{"name":"webdav","webdav":{"uri":"x","permissions":["read"]}}}`, []string{"protocol.webdav.sharedSecret"}},
		{"bad permission", `{` + base + `,"protocol":{"name":"multi","webdav":{"uri":"x","sharedSecret":"s","permissions":["fly"]}}}`, []string{"protocol.webdav.permissions"}},
		{"permissions not a list", `{` + base + `,"protocol":{"name":"multi","webdav":{"uri":"x","sharedSecret":"s","permissions":{"a":1}}}}`, []string{"protocol.webdav.permissions"}},
		{"protocol not an object", `{` + base + `,"protocol":"webdav"}`, []string{"protocol"}},
		{"empty protocol", `{` + base + `,"protocol":{}}`, []string{"protocol"}},
		{"expiration a string", `{` + base + `,"expiration":"soon",` + proto + `}`, []string{"expiration"}},
		{"blank name", `{` + strings.Replace(base, `"name":"n"`, `"name":"   "`, 1) + `,` + proto + `}`, []string{"name"}},
		{"bad access type", `{` + base + `,"protocol":{"name":"multi","webdav":{"uri":"x","sharedSecret":"s","permissions":["read"],"accessTypes":["teleport"]}}}`, []string{"protocol.webdav.accessTypes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseNewShare([]byte(c.body))
			got := validationNames(t, err)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("validation errors for %v, want %v (%v)", got, c.want, err)
			}
		})
	}
}

func TestParseNewShareUnsupported(t *testing.T) {
	base := `"shareWith":"bob@a.example","name":"n","providerId":"1","owner":"o@b.example","sender":"s@b.example"`
	proto := `"protocol":{"name":"webdav","webdav":{"uri":"x","sharedSecret":"s","permissions":["read"]}}`
	for name, body := range map[string]string{
		"group share": `{` + base + `,"shareType":"group","resourceType":"file",` + proto + `}`,
		"calendar":    `{` + base + `,"shareType":"user","resourceType":"calendar",` + proto + `}`,
		"webapp only": `{` + base + `,"shareType":"user","resourceType":"file","protocol":{"name":"multi","webapp":{"uri":"https://x","sharedSecret":"s","targets":["blank"],"permissions":["view"],"requirements":["must-exchange-token"]}}}`,
		"ssh named":   `{` + base + `,"shareType":"user","resourceType":"file","protocol":{"name":"ssh","ssh":{"uri":"u@h:/p"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseNewShare([]byte(body))
			var ue *UnsupportedError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want UnsupportedError", err)
			}
		})
	}
}

func TestParseNewShareStrictJSON(t *testing.T) {
	for name, body := range map[string]string{
		"duplicate key": `{"name":"a","name":"b"}`,
		"nested dup":    `{"protocol":{"webdav":{"sharedSecret":"a","sharedSecret":"b"}}}`,
		"deep":          `{"a":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`,
		"trailing":      `{"a":1} {"b":2}`,
		"array":         `[1,2]`,
		"empty":         ``,
		"truncated":     `{"a":`,
		"not json":      `shareWith=bob`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseNewShare([]byte(body))
			if !errors.Is(err, ErrBadJSON) {
				t.Fatalf("got %v, want ErrBadJSON", err)
			}
		})
	}
}

func TestLegacyNumericPermissions(t *testing.T) {
	body := `{"shareWith":"bob@a.example","name":"n","providerId":1,"owner":"o@b.example","shareType":"user","resourceType":"file","protocol":{"name":"webdav","options":{"sharedSecret":"s","permissions":19}}}`
	s, err := ParseNewShare([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.WebDAV.Permissions, []string{"read", "write", "share"}) {
		t.Fatalf("permissions = %v", s.WebDAV.Permissions)
	}
	if s.ProviderID != "1" || s.Sender.String() != "o@b.example" {
		t.Fatalf("providerId %q sender %s: numeric id or owner fallback not applied", s.ProviderID, s.Sender)
	}
}

func TestParseAddress(t *testing.T) {
	good := map[string]string{
		"bob@cloud.example.org":            "bob@cloud.example.org",
		"bob@Cloud.Example.ORG":            "bob@cloud.example.org",
		"bob@https://cloud.example.org":    "bob@cloud.example.org",
		"bob@https://cloud.example.org/":   "bob@cloud.example.org",
		"bob@cloud.example.org:8443":       "bob@cloud.example.org:8443",
		"first.last@example.org@cloud.org": "first.last@example.org@cloud.org",
		"YWxpY2U@ocm.example.org:9443":     "YWxpY2U@ocm.example.org:9443",
		"bob@127.0.0.1:9200":               "bob@127.0.0.1:9200",
		"bob@[::1]:9200":                   "bob@[::1]:9200",
	}
	for in, want := range good {
		a, err := ParseAddress(in)
		if err != nil || a.String() != want {
			t.Errorf("ParseAddress(%q) = %v, %v; want %s", in, a, err, want)
		}
	}
	for _, in := range []string{"bob", "@cloud.org", "bob@", "bob@cloud.org/evil", "bob@user:pw@cloud.org/x",
		"bob@cloud.org?x=1", "bob@cloud.org:99999", "bob@cloud.org:8443:1", "bob@ cloud.org", "bob@cloud..org", "bob@-x.org", "bob\x00@x.org"} {
		if a, err := ParseAddress(in); err == nil {
			t.Errorf("ParseAddress(%q) = %v, want an error", in, a)
		}
	}
}

func TestParseNotification(t *testing.T) {
	n, err := ParseNotification([]byte(`{"notificationType":"SHARE_UNSHARED","resourceType":"file","providerId":"42","notification":{"sharedSecret":"x","message":"bye"}}`))
	if err != nil || n.NotificationType != ShareUnshared || n.ProviderID != "42" {
		t.Fatalf("got %+v, %v", n, err)
	}
	_, err = ParseNotification([]byte(`{"notificationType":"SHARE_UNSHARED","resourceType":"file"}`))
	if got := validationNames(t, err); !reflect.DeepEqual(got, []string{"providerId"}) {
		t.Fatalf("got %v", got)
	}
	_, err = ParseNotification([]byte(`{"notificationType":"SHARE_UNSHARED","resourceType":"file","providerId":"1","notification":"x"}`))
	if got := validationNames(t, err); !reflect.DeepEqual(got, []string{"notification"}) {
		t.Fatalf("got %v", got)
	}
}

func FuzzParseNewShare(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "shares", "*.json"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"protocol":{"name":"webdav","options":{"permissions":19}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseNewShare(body)
		if err == nil && (s.ShareWith.Host == "" || s.Secret() == "" || s.WebDAV == nil) {
			t.Fatalf("accepted an incomplete share: %+v", s)
		}
	})
}

func FuzzParseNotification(f *testing.F) {
	f.Add([]byte(`{"notificationType":"SHARE_UNSHARED","resourceType":"file","providerId":"42"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := ParseNotification(body)
		if err == nil && (n.NotificationType == "" || n.ProviderID == "") {
			t.Fatalf("accepted an incomplete notification: %+v", n)
		}
	})
}

func FuzzParseInviteAccepted(f *testing.F) {
	f.Add([]byte(`{"recipientProvider":"a.example","token":"t","userID":"u","email":"e@x","name":"n"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		inv, err := ParseInviteAccepted(body)
		if err == nil && (inv.Token == "" || inv.RecipientProvider == "") {
			t.Fatalf("accepted an incomplete invite acceptance: %+v", inv)
		}
	})
}
