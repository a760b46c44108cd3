package ocm

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Documents shaped like those real servers publish.
const (
	docSpec14 = `{"enabled":true,"apiVersion":"1.4.0","endPoint":"https://cloud.example.org/ocm",
		"provider":"Example","resourceTypes":[{"name":"file","shareTypes":["user"],
		"protocols":{"webdav":"/webdav/ocm/","webdav-receive":{"uri":"relative"}}}],
		"capabilities":["http-sig","exchange-token","invites","notifications"],
		"criteria":["must-use-http-sig"],"jwksUri":"https://cloud.example.org/ocm/jwks",
		"tokenEndPoint":"https://cloud.example.org/ocm/token",
		"inviteAcceptDialog":"https://cloud.example.org/ui/accept-invite"}`
	docNextcloud = `{"enabled":true,"apiVersion":"1.0-proposal1","version":"1.1.0",
		"endPoint":"https:\/\/nc.example.org\/index.php\/ocm",
		"publicKey":{"keyId":"https:\/\/nc.example.org\/ocm#signature","publicKeyPem":"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"},
		"resourceTypes":[{"name":"file","shareTypes":["user","group"],"protocols":{"webdav":"\/public.php\/webdav\/"}}],
		"capabilities":["\/invite-accepted","\/notifications","\/shares"]}`
	docNextcloudNoKey = `{"enabled":true,"apiVersion":"1.0-proposal1","version":"1.1.0",
		"endPoint":"https://nc.example.org/ocm","publicKey":null,
		"resourceTypes":[{"name":"file","shareTypes":["user","group"],"protocols":{"webdav":"/public.php/webdav/"}}]}`
	docOwnCloud10 = `{"enabled":true,"apiVersion":"1.0-proposal1","endPoint":"https://oc.example.org/index.php/apps/federatedfilesharing",
		"shareTypes":[{"name":"file","protocols":{"webdav":"/public.php/webdav/"}}]}`
	docOwnCloudOldest = `{"enabled":true,"apiVersion":"1.0-proposal1","endPoint":"https://oc.example.org/ocm",
		"shareTypes":{"name":"file","protocols":{"webdav":"/public.php/webdav/"}}}`
	docLowerEndpoint = `{"enabled":true,"apiVersion":"1.0","endpoint":"https://old.example.org/ocm","resourceTypes":null}`
	docCapObject     = `{"enabled":true,"apiVersion":"1.1.0","endPoint":"https://x.example.org/ocm",
		"capabilities":{"/notifications":"/ocm/notifications","/invite-accepted":"/ocm/invite-accepted"}}`
	docReva13 = `{
   "enabled": true,
   "apiVersion": "1.3.0",
   "endPoint": "https://cernbox.example.org/ocm",
   "provider": "reva",
   "resourceTypes": [
      {"name": "file", "shareTypes": ["user"], "protocols": {"webdav": "/remote.php/dav/ocm", "webdav-receive": {"uri": "absolute"}}},
      {"name": "folder", "shareTypes": ["user"], "protocols": {"webdav": "/remote.php/dav/ocm", "webdav-receive": {"uri": "absolute"}}}
   ],
   "capabilities": ["invites", "protocol-object", "invite-wayf", "exchange-token"],
   "criteria": ["must-invite"],
   "inviteAcceptDialog": "https://cernbox.example.org/open-cloud-mesh/accept-invite",
   "tokenEndPoint": "https://cernbox.example.org/ocm/token"
}`
)

func TestParseDiscoveryDialects(t *testing.T) {
	t.Run("spec 1.4", func(t *testing.T) {
		d := mustParse(t, docSpec14)
		if !d.Enabled || d.APIVersion != "1.4.0" || d.EndPoint != "https://cloud.example.org/ocm" {
			t.Fatalf("core fields: %+v", d)
		}
		if d.JWKSURI != "https://cloud.example.org/ocm/jwks" || d.TokenEndPoint != "https://cloud.example.org/ocm/token" {
			t.Fatalf("jwksUri/tokenEndPoint: %q %q", d.JWKSURI, d.TokenEndPoint)
		}
		if !d.HasCapability("http-sig") || !d.HasCapability("exchange-token") || !d.HasCriterion("must-use-http-sig") {
			t.Fatalf("capabilities/criteria: %v %v", d.Capabilities, d.Criteria)
		}
		if got := d.WebDAVRoot(); got != "https://cloud.example.org/webdav/ocm/" {
			t.Fatalf("WebDAVRoot = %q", got)
		}
		if d.PublicKey != nil {
			t.Fatalf("unexpected publicKey %+v", d.PublicKey)
		}
	})
	t.Run("nextcloud", func(t *testing.T) {
		d := mustParse(t, docNextcloud)
		if d.APIVersion != "1.0-proposal1" || d.Version != "1.1.0" {
			t.Fatalf("versions: %q %q", d.APIVersion, d.Version)
		}
		if d.PublicKey == nil || d.PublicKey.KeyID != "https://nc.example.org/ocm#signature" ||
			!strings.HasPrefix(d.PublicKey.PublicKeyPem, "-----BEGIN PUBLIC KEY-----") {
			t.Fatalf("publicKey: %+v", d.PublicKey)
		}
		for _, c := range []string{"invites", "/invite-accepted", "notifications", "shares"} {
			if !d.HasCapability(c) {
				t.Errorf("HasCapability(%q) = false; capabilities %v", c, d.Capabilities)
			}
		}
		if d.HasCapability("protocol-object") {
			t.Errorf("Nextcloud's /shares must not read as protocol-object")
		}
		if got := d.WebDAVRoot(); got != "https://nc.example.org/public.php/webdav/" {
			t.Fatalf("WebDAVRoot = %q", got)
		}
	})
	t.Run("nextcloud null publicKey", func(t *testing.T) {
		if d := mustParse(t, docNextcloudNoKey); d.PublicKey != nil {
			t.Fatalf("publicKey: %+v", d.PublicKey)
		}
	})
	t.Run("empty publicKey", func(t *testing.T) {
		d := mustParse(t, `{"enabled":true,"apiVersion":"1.1","endPoint":"https://a.example/ocm","publicKey":{"keyId":"","publicKeyPem":""}}`)
		if d.PublicKey != nil {
			t.Fatalf("publicKey: %+v", d.PublicKey)
		}
	})
	t.Run("owncloud 10 shareTypes list", func(t *testing.T) {
		d := mustParse(t, docOwnCloud10)
		if len(d.ResourceTypes) != 1 || d.ResourceTypes[0].Name != "file" {
			t.Fatalf("resourceTypes: %+v", d.ResourceTypes)
		}
		if got := d.WebDAVRoot(); got != "https://oc.example.org/public.php/webdav/" {
			t.Fatalf("WebDAVRoot = %q", got)
		}
	})
	t.Run("owncloud oldest shareTypes object", func(t *testing.T) {
		if got := mustParse(t, docOwnCloudOldest).WebDAVRoot(); got != "https://oc.example.org/public.php/webdav/" {
			t.Fatalf("WebDAVRoot = %q", got)
		}
	})
	t.Run("lower-case endpoint", func(t *testing.T) {
		if d := mustParse(t, docLowerEndpoint); d.EndPoint != "https://old.example.org/ocm" {
			t.Fatalf("EndPoint = %q", d.EndPoint)
		}
	})
	t.Run("capabilities as object", func(t *testing.T) {
		d := mustParse(t, docCapObject)
		if strings.Join(d.Capabilities, ",") != "invites,notifications" {
			t.Fatalf("capabilities = %v", d.Capabilities)
		}
	})
	t.Run("reva 1.3", func(t *testing.T) {
		d := mustParse(t, docReva13)
		if d.Provider != "reva" || !d.HasCapability("exchange-token") || !d.HasCriterion("must-invite") {
			t.Fatalf("fields: %+v", d)
		}
		if d.JWKSURI != "" || d.PublicKey != nil {
			t.Fatalf("reva publishes no keys, got %q %+v", d.JWKSURI, d.PublicKey)
		}
		if got := d.WebDAVRoot(); got != "https://cernbox.example.org/remote.php/dav/ocm" {
			t.Fatalf("WebDAVRoot = %q", got)
		}
	})
}

func TestParseDiscoveryRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"no endPoint":        `{"enabled":true,"apiVersion":"1.4.0"}`,
		"relative endPoint":  `{"enabled":true,"endPoint":"/ocm"}`,
		"ftp endPoint":       `{"enabled":true,"endPoint":"ftp://x.example/ocm"}`,
		"enabled string":     `{"enabled":"yes","endPoint":"https://x.example/ocm"}`,
		"duplicate key":      `{"endPoint":"https://x.example/ocm","endPoint":"https://evil.example/ocm"}`,
		"capability numbers": `{"endPoint":"https://x.example/ocm","capabilities":[1,2]}`,
		"resourceTypes junk": `{"endPoint":"https://x.example/ocm","resourceTypes":"file"}`,
		"shareTypes junk":    `{"endPoint":"https://x.example/ocm","shareTypes":7}`,
		"array":              `[{"endPoint":"https://x.example/ocm"}]`,
		"trailing data":      `{"endPoint":"https://x.example/ocm"} {}`,
		"deep":               `{"endPoint":"https://x.example/ocm","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		"empty":              ``,
	} {
		t.Run(name, func(t *testing.T) {
			d, err := ParseDiscovery([]byte(doc))
			if err == nil {
				t.Fatalf("accepted: %+v", d)
			}
			if !errors.Is(err, ErrBadJSON) {
				t.Fatalf("error %v does not wrap ErrBadJSON", err)
			}
		})
	}
}

func TestNormalizeCapability(t *testing.T) {
	for in, want := range map[string]string{
		"/invite-accepted": "invites",
		"invite-accepted":  "invites",
		"//Notifications ": "notifications",
		"/shares":          "shares",
		"http-sig":         "http-sig",
		"  /HTTP-SIG":      "http-sig",
	} {
		got := NormalizeCapability(in)
		if got != want {
			t.Errorf("NormalizeCapability(%q) = %q, want %q", in, got, want)
		}
		if again := NormalizeCapability(got); again != got {
			t.Errorf("not idempotent on %q: %q", got, again)
		}
	}
}

func mustParse(t *testing.T, doc string) *Discovery {
	t.Helper()
	d, err := ParseDiscovery([]byte(doc))
	if err != nil {
		t.Fatalf("ParseDiscovery: %v", err)
	}
	return d
}

func FuzzParseDiscovery(f *testing.F) {
	for _, s := range []string{docSpec14, docNextcloud, docNextcloudNoKey, docOwnCloud10, docOwnCloudOldest,
		docLowerEndpoint, docCapObject, docReva13, `{}`, `{"endPoint":"http://[::1]:8080/ocm"}`,
		`{"endPoint":"https://x/ocm","capabilities":{"a":1}}`, `{"endPoint":"https://x/ocm","shareTypes":[{"name":""}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDiscovery(data)
		if err != nil {
			if !errors.Is(err, ErrBadJSON) {
				t.Fatalf("error %v does not wrap ErrBadJSON", err)
			}
			return
		}
		for _, c := range d.Capabilities {
			if NormalizeCapability(c) != c {
				t.Fatalf("capability %q not normalised", c)
			}
			if !d.HasCapability(c) {
				t.Fatalf("HasCapability(%q) false for a listed capability", c)
			}
		}
		_ = d.WebDAVRoot()
		// What we parsed must survive being published again.
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		d2, err := ParseDiscovery(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if d2.EndPoint != d.EndPoint || d2.APIVersion != d.APIVersion || d2.Enabled != d.Enabled ||
			d2.JWKSURI != d.JWKSURI || strings.Join(d2.Capabilities, "\n") != strings.Join(d.Capabilities, "\n") {
			t.Fatalf("round trip changed the document:\n%+v\n%+v", d, d2)
		}
	})
}
