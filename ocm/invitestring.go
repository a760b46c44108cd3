package ocm

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Invite is what accepting an invite needs: the sender server's token and
// the provider (host[:port]) that issued it. The token is a secret:
// String and LogValue leave it out.
type Invite struct {
	Token    string
	Provider string
}

// String describes the invite without its token.
func (i Invite) String() string { return "invite from " + i.Provider }

// LogValue keeps the token out of structured logs.
func (i Invite) LogValue() slog.Value { return slog.StringValue(i.String()) }

// ErrBadInvite is returned (wrapped) for every invite that cannot be read.
// Its messages never repeat the token.
var ErrBadInvite = errors.New("not a valid invite")

// Limits of what an invite may hold; real tokens are UUIDs or a few dozen
// random characters.
const (
	maxInviteToken = 256
	maxInviteInput = 2048
)

// inviteForms is the hint every parse error ends with.
const inviteForms = "expected an invite code (base64url of token@provider), token@provider, " +
	"or a link with token and providerDomain parameters"

// FormatInvite returns the OCM 1.4 invite string: base64url (RFC 4648 §5,
// no padding) of "<token>@<provider>".
func FormatInvite(token, provider string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(token + "@" + provider))
}

// ParseInvite reads an invite in any form a person may paste:
//
//   - the invite string, base64url("<token>@<provider>"), with or without
//     padding (the standard base64 alphabet is tolerated too);
//   - "<token>@<provider>" as text;
//   - a link carrying "token" and "providerDomain" query parameters (an
//     inviteAcceptDialog or WAYF link); a link with a token but no
//     providerDomain names its own host as the provider, as the spec's
//     WAYF example does.
//
// Surrounding white space is ignored. The provider is normalised as
// NormalizeHost does. Errors say which form was expected and never
// contain the token.
func ParseInvite(s string) (Invite, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Invite{}, fmt.Errorf("%w: it is empty; %s", ErrBadInvite, inviteForms)
	}
	if len(s) > maxInviteInput {
		return Invite{}, fmt.Errorf("%w: it is longer than %d characters; %s", ErrBadInvite, maxInviteInput, inviteForms)
	}
	lower := strings.ToLower(s)
	if strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") {
		return parseInviteLink(s)
	}
	if strings.Contains(s, "@") {
		inv, err := splitInvite(s)
		if err != nil {
			return Invite{}, fmt.Errorf("%w: token@provider form: %v", ErrBadInvite, err)
		}
		return inv, nil
	}
	if strings.Contains(s, "://") {
		return Invite{}, fmt.Errorf("%w: a link must start with https:// or http://; %s", ErrBadInvite, inviteForms)
	}
	raw, err := decodeInviteString(s)
	if err != nil {
		return Invite{}, fmt.Errorf("%w: the invite code is not base64url (%v); %s", ErrBadInvite, err, inviteForms)
	}
	if !utf8.Valid(raw) || !strings.Contains(string(raw), "@") {
		return Invite{}, fmt.Errorf("%w: the invite code does not decode to token@provider; %s", ErrBadInvite, inviteForms)
	}
	inv, err := splitInvite(string(raw))
	if err != nil {
		return Invite{}, fmt.Errorf("%w: the invite code decodes to a bad token@provider: %v", ErrBadInvite, err)
	}
	return inv, nil
}

// ParseInviteParts checks a token and provider given separately (the
// --token/--provider form).
func ParseInviteParts(token, provider string) (Invite, error) {
	t, err := checkInviteToken(strings.TrimSpace(token))
	if err != nil {
		return Invite{}, fmt.Errorf("%w: %v", ErrBadInvite, err)
	}
	p, err := NormalizeHost(strings.TrimSpace(provider))
	if err != nil {
		return Invite{}, fmt.Errorf("%w: provider: %v", ErrBadInvite, err)
	}
	return Invite{Token: t, Provider: p}, nil
}

func decodeInviteString(s string) ([]byte, error) {
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '+' || r == '/' || r == '=') {
			return nil, errors.New("it has characters outside the base64url alphabet")
		}
	}
	t := strings.TrimRight(s, "=")
	if len(s)-len(t) > 2 || strings.Contains(t, "=") {
		return nil, errors.New("misplaced padding")
	}
	if strings.ContainsAny(t, "+/") && strings.ContainsAny(t, "-_") {
		return nil, errors.New("it mixes two base64 alphabets")
	}
	t = strings.NewReplacer("+", "-", "/", "_").Replace(t)
	b, err := base64.RawURLEncoding.Strict().DecodeString(t)
	if err != nil {
		return nil, errors.New("its length or last characters are wrong; was it cut short?")
	}
	return b, nil
}

// splitInvite splits "<token>@<provider>" at the last "@": tokens may hold
// "@", provider names cannot.
func splitInvite(s string) (Invite, error) {
	i := strings.LastIndexByte(s, '@')
	token, provider := s[:i], s[i+1:]
	t, err := checkInviteToken(token)
	if err != nil {
		return Invite{}, err
	}
	if provider == "" {
		return Invite{}, errors.New("the provider after the last @ is empty")
	}
	p, err := NormalizeHost(provider)
	if err != nil {
		return Invite{}, fmt.Errorf("provider: %v", err)
	}
	return Invite{Token: t, Provider: p}, nil
}

func checkInviteToken(t string) (string, error) {
	switch {
	case t == "":
		return "", errors.New("the token is empty")
	case len(t) > maxInviteToken:
		return "", fmt.Errorf("the token is longer than %d characters", maxInviteToken)
	case !utf8.ValidString(t):
		return "", errors.New("the token is not valid text")
	}
	for _, r := range t {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return "", errors.New("the token contains white space or control characters")
		}
	}
	return t, nil
}

func parseInviteLink(s string) (Invite, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return Invite{}, fmt.Errorf("%w: the link is not a valid URL; %s", ErrBadInvite, inviteForms)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Invite{}, fmt.Errorf("%w: the link's query cannot be read; %s", ErrBadInvite, inviteForms)
	}
	tokens, providers := q["token"], q["providerDomain"]
	if len(tokens) != 1 {
		if len(tokens) == 0 {
			return Invite{}, fmt.Errorf("%w: the link has no token parameter; %s", ErrBadInvite, inviteForms)
		}
		return Invite{}, fmt.Errorf("%w: the link has more than one token parameter", ErrBadInvite)
	}
	if len(providers) > 1 {
		return Invite{}, fmt.Errorf("%w: the link has more than one providerDomain parameter", ErrBadInvite)
	}
	t, err := checkInviteToken(tokens[0])
	if err != nil {
		return Invite{}, fmt.Errorf("%w: link: %v", ErrBadInvite, err)
	}
	provider := u.Host
	if len(providers) == 1 {
		provider = providers[0]
	}
	p, err := NormalizeHost(provider)
	if err != nil {
		return Invite{}, fmt.Errorf("%w: link: providerDomain: %v", ErrBadInvite, err)
	}
	return Invite{Token: t, Provider: p}, nil
}
