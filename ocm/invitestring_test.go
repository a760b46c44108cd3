package ocm

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const (
	specToken    = "a55a966e-15c1-4cb9-a39d-4e4c54399baf"
	specProvider = "cloud.example.org"
)

// The example of the spec's "Invite format" section, verbatim.
const specInviteString = "YTU1YTk2NmUtMTVjMS00Y2I5LWEzOWQtNGU0YzU0Mzk5YmFmQGNsb3VkLmV4YW1wbGUub3Jn"

func TestFormatInviteMatchesSpecExample(t *testing.T) {
	if got := FormatInvite(specToken, specProvider); got != specInviteString {
		t.Fatalf("FormatInvite = %s, want the spec's %s", got, specInviteString)
	}
}

func TestParseInviteEveryForm(t *testing.T) {
	padded := base64.URLEncoding.EncodeToString([]byte(specToken + "@" + specProvider))
	atToken := "to@ken@with@signs"
	cases := []struct {
		name, in, token, provider string
	}{
		{"spec invite string", specInviteString, specToken, specProvider},
		{"invite string with padding", padded, specToken, specProvider},
		{"invite string in the standard alphabet", base64.StdEncoding.EncodeToString([]byte("ab?>~@host.example.org")), "ab?>~", "host.example.org"},
		{"surrounding white space", "\n  " + specInviteString + " \t\n", specToken, specProvider},
		{"token with @ signs", FormatInvite(atToken, "Cloud.Example.org:8443"), atToken, "cloud.example.org:8443"},
		{"token@provider", specToken + "@" + specProvider, specToken, specProvider},
		{"token@provider with a scheme", specToken + "@https://cloud.example.org/", specToken, specProvider},
		{"token@provider with a port", specToken + "@127.0.0.1:9200", specToken, "127.0.0.1:9200"},
		{"accept dialog link", "https://me.example.net/ocm/accept-invite?token=" + specToken + "&providerDomain=" + specProvider, specToken, specProvider},
		{"dialog link, parameters reversed", "http://127.0.0.1:9200/accept?providerDomain=cloud.example.org:444&token=" + specToken, specToken, "cloud.example.org:444"},
		{"WAYF link without providerDomain", "https://cloud.example.org/wayf?token=" + specToken, specToken, specProvider},
		{"link with an escaped token", "https://x.example.org/a?token=a%2Bb%40c&providerDomain=cloud.example.org", "a+b@c", specProvider},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv, err := ParseInvite(c.in)
			if err != nil {
				t.Fatalf("ParseInvite: %v", err)
			}
			if inv.Token != c.token || inv.Provider != c.provider {
				t.Fatalf("got token %q provider %q, want %q %q", inv.Token, inv.Provider, c.token, c.provider)
			}
		})
	}
}

func TestParseInviteParts(t *testing.T) {
	inv, err := ParseInviteParts(" "+specToken+" ", "HTTPS://Cloud.Example.org")
	if err != nil || inv.Token != specToken || inv.Provider != specProvider {
		t.Fatalf("got %+v, %v", inv, err)
	}
	for _, c := range [][2]string{{"", specProvider}, {specToken, ""}, {"a b", specProvider}, {specToken, "cloud.example.org/path"}} {
		if _, err := ParseInviteParts(c[0], c[1]); !errors.Is(err, ErrBadInvite) {
			t.Errorf("ParseInviteParts(%q, %q) = %v, want ErrBadInvite", c[0], c[1], err)
		}
	}
}

func TestParseInviteRefusesMalformed(t *testing.T) {
	secret := "s3cr3t-T0ken-value"
	cases := []struct {
		name, in, want string
	}{
		{"empty", "   ", "empty"},
		{"not base64", "this is not an invite", "base64url"},
		{"base64 without @", base64.RawURLEncoding.EncodeToString([]byte(secret + "-no-provider")), "token@provider"},
		{"cut short", specInviteString[:len(specInviteString)-1], "cut short"},
		{"mixed alphabets", "ab-c+def", "alphabets"},
		{"too much padding", specInviteString + "===", "padding"},
		{"empty token", "@cloud.example.org", "token is empty"},
		{"empty provider", secret + "@", "provider"},
		{"provider with a path", secret + "@cloud.example.org/index.php", "provider"},
		{"token with a space", "s3cr3t T0ken@cloud.example.org", "white space"},
		{"token with a control character", FormatInvite(secret+"\x01", specProvider), "control"},
		{"link without token", "https://cloud.example.org/wayf?providerDomain=cloud.example.org", "no token"},
		{"link with two tokens", "https://cloud.example.org/wayf?token=" + secret + "&token=b", "more than one token"},
		{"link with a bad provider", "https://x.example.org/a?token=" + secret + "&providerDomain=a/b", "providerDomain"},
		{"link with user info", "https://" + secret + "@x.example.org/a?token=t", "not a valid URL"},
		{"other scheme", "ftp://cloud.example.org/?token=" + secret, "https://"},
		{"huge", strings.Repeat("A", 5000), "longer"},
		{"decodes to invalid UTF-8", base64.RawURLEncoding.EncodeToString([]byte("\xff\xfe@" + specProvider)), "token@provider"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseInvite(c.in)
			if !errors.Is(err, ErrBadInvite) {
				t.Fatalf("err = %v, want ErrBadInvite", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q repeats the token", err)
			}
		})
	}
}

func TestInviteRedactsToken(t *testing.T) {
	inv := Invite{Token: "very-secret-token", Provider: specProvider}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "invite", inv)
	for _, s := range []string{inv.String(), fmt.Sprint(inv), fmt.Sprintf("%+v", inv), b.String()} {
		if strings.Contains(s, inv.Token) {
			t.Fatalf("%q shows the token", s)
		}
	}
}

func FuzzParseInvite(f *testing.F) {
	for _, s := range []string{specInviteString, specToken + "@" + specProvider, "https://cloud.example.org/wayf?token=x",
		"http://127.0.0.1:1/?token=a&providerDomain=b:2", "@", "a@b@c", "YQ", "====", "https://[::1]:80/?token=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseInvite(s)
		if err != nil {
			if !errors.Is(err, ErrBadInvite) {
				t.Fatalf("error %v is not ErrBadInvite", err)
			}
			return
		}
		if inv.Token == "" || inv.Provider == "" {
			t.Fatalf("accepted %q with an empty part: %+v", s, inv)
		}
		if h, err := NormalizeHost(inv.Provider); err != nil || h != inv.Provider {
			t.Fatalf("provider %q is not normalised (%q, %v)", inv.Provider, h, err)
		}
		if strings.ContainsAny(inv.Token, " \t\r\n\x00") {
			t.Fatalf("token %q has white space", inv.Token)
		}
		// The canonical form reads back to the same invite, and so does the
		// text form unless the token itself looks like a link.
		forms := []string{FormatInvite(inv.Token, inv.Provider)}
		if !strings.Contains(inv.Token, "://") {
			forms = append(forms, inv.Token+"@"+inv.Provider)
		}
		for _, form := range forms {
			back, err := ParseInvite(form)
			if err != nil || back != inv {
				t.Fatalf("%q -> %+v, but its form %q reads back as %+v, %v", s, inv, form, back, err)
			}
		}
	})
}
