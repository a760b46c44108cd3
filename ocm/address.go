package ocm

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
)

// Address is an OCM address: a user identifier at a provider host.
// Host is lower-case and may carry a port ("cloud.example.org:8443").
type Address struct {
	User string
	Host string
}

// ErrBadAddress is returned (wrapped) for every malformed OCM address.
var ErrBadAddress = errors.New("malformed OCM address")

// ParseAddress splits s at its last "@" into user and provider host, the
// only split that cannot be fooled by an "@" inside the user part.
// It tolerates what real peers send: a scheme in the host part
// ("bob@https://cloud.example.org", sent by oCIS), a trailing slash, and
// upper-case hosts. It refuses anything that would make the trusted host
// ambiguous: a path after the host, user-info, whitespace, an empty part.
func ParseAddress(s string) (Address, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 {
		return Address{}, fmt.Errorf("%w: %q is not of the form user@provider", ErrBadAddress, s)
	}
	user, host := s[:i], s[i+1:]
	if strings.IndexFunc(user, func(r rune) bool { return unicode.IsControl(r) }) >= 0 {
		return Address{}, fmt.Errorf("%w: user part has control characters", ErrBadAddress)
	}
	h, err := NormalizeHost(host)
	if err != nil {
		return Address{}, fmt.Errorf("%w: %v", ErrBadAddress, err)
	}
	return Address{User: user, Host: h}, nil
}

// NormalizeHost turns what peers write for a provider ("https://Cloud.Example.org/",
// "cloud.example.org:8443") into "host[:port]", lower-case. It rejects paths,
// queries, user-info and anything that is not a plausible DNS name or IP literal.
func NormalizeHost(s string) (string, error) {
	h := strings.TrimSpace(s)
	if h != s {
		return "", fmt.Errorf("host %q has surrounding white space", s)
	}
	for _, scheme := range []string{"https://", "http://"} {
		if len(h) >= len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
			h = h[len(scheme):]
			break
		}
	}
	h = strings.TrimSuffix(h, "/")
	if h == "" {
		return "", errors.New("empty host")
	}
	if strings.ContainsAny(h, "/?#@\\ \t") {
		return "", fmt.Errorf("host %q must be a bare host name with an optional port", s)
	}
	name, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", fmt.Errorf("host %q has an unclosed IPv6 literal", s)
		}
		name, port = h[1:end], strings.TrimPrefix(h[end+1:], ":")
		if h[end+1:] != "" && !strings.HasPrefix(h[end+1:], ":") {
			return "", fmt.Errorf("host %q has junk after the IPv6 literal", s)
		}
		if net.ParseIP(name) == nil {
			return "", fmt.Errorf("host %q is not a valid IPv6 literal", s)
		}
	} else if c := strings.Count(h, ":"); c == 1 {
		name, port = h[:strings.IndexByte(h, ':')], h[strings.IndexByte(h, ':')+1:]
	} else if c > 1 {
		return "", fmt.Errorf("host %q: IPv6 literals must be in brackets", s)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", fmt.Errorf("host %q has an invalid port", s)
		}
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if net.ParseIP(name) == nil && !validDNSName(name) {
		return "", fmt.Errorf("host %q is not a valid DNS name", s)
	}
	if strings.Contains(name, ":") {
		name = "[" + name + "]"
	}
	if port != "" {
		return name + ":" + port, nil
	}
	return name, nil
}

func validDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// String gives the canonical "user@host" form.
func (a Address) String() string {
	if a.User == "" && a.Host == "" {
		return ""
	}
	return a.User + "@" + a.Host
}

// Hostname is Host without its port.
func (a Address) Hostname() string { return HostOnly(a.Host) }

// HostOnly strips a port (and IPv6 brackets) from "host[:port]".
func HostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// SameProvider reports whether two "host[:port]" strings name the same
// provider. Comparison is exact on the normalised form: a port is part of
// the identity, because two servers on one host are two servers.
func SameProvider(a, b string) bool {
	na, err1 := NormalizeHost(a)
	nb, err2 := NormalizeHost(b)
	return err1 == nil && err2 == nil && na == nb
}
