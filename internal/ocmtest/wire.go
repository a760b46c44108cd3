package ocmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
)

// The OCM wire types the peer needs, written here rather than taken from
// the product's ocm package: a reference peer that shares the code it
// checks cannot catch that code's bugs.

// APIVersion is the OCM version the peer advertises by default.
const APIVersion = "1.4.0"

// Notification types and the requirement the peer uses.
const (
	ShareAccepted        = "SHARE_ACCEPTED"
	ShareDeclined        = "SHARE_DECLINED"
	ShareUnshared        = "SHARE_UNSHARED"
	requireExchangeToken = "must-exchange-token"
)

// knownNotifications are the notification types the peer takes.
var knownNotifications = []string{ShareAccepted, ShareDeclined, ShareUnshared,
	"REQUEST_RESHARE", "RESHARE_UNDO", "RESHARE_CHANGE_PERMISSION", "SHARE_CHANGE_PERMISSION", "USER_REMOVED"}

// Address is an OCM address, user@host[:port].
type Address struct {
	User string
	Host string // normalised host[:port], no scheme
}

func (a Address) String() string { return a.User + "@" + a.Host }

// parseAddress splits "user@provider" at the last '@'; the provider may
// carry a scheme, as Nextcloud and oCIS write it.
func parseAddress(s string) (Address, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 {
		return Address{}, fmt.Errorf("%q is not of the form user@provider", s)
	}
	h, err := normalizeHost(s[i+1:])
	if err != nil {
		return Address{}, err
	}
	return Address{User: s[:i], Host: h}, nil
}

// normalizeHost turns "https://Host:8443/" into "host:8443".
func normalizeHost(s string) (string, error) {
	h := s
	for _, scheme := range []string{"https://", "http://"} {
		if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) {
			h = h[len(scheme):]
			break
		}
	}
	h = strings.ToLower(strings.TrimSuffix(h, "/"))
	if h == "" || strings.ContainsAny(h, "/?#@\\ \t\r\n") {
		return "", fmt.Errorf("%q is not a host[:port]", s)
	}
	if host, port, err := net.SplitHostPort(h); err == nil && (host == "" || port == "") {
		return "", fmt.Errorf("%q is not a host[:port]", s)
	}
	return h, nil
}

// hostOnly drops the port of host[:port].
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// sameProvider compares two providers, :443 being the default.
func sameProvider(a, b string) bool {
	na, err1 := normalizeHost(a)
	nb, err2 := normalizeHost(b)
	return err1 == nil && err2 == nil && strings.TrimSuffix(na, ":443") == strings.TrimSuffix(nb, ":443")
}

// discoveryDoc is the part of a discovery document the peer reads.
type discoveryDoc struct {
	Enabled       bool     `json:"enabled"`
	APIVersion    string   `json:"apiVersion"`
	EndPoint      string   `json:"endPoint"`
	JWKSURI       string   `json:"jwksUri"`
	TokenEndPoint string   `json:"tokenEndPoint"`
	Capabilities  []string `json:"capabilities"`
	Criteria      []string `json:"criteria"`
	PublicKey     *struct {
		KeyID        string `json:"keyId"`
		PublicKeyPem string `json:"publicKeyPem"`
	} `json:"publicKey"`
}

func parseDiscovery(b []byte) (*discoveryDoc, error) {
	var d discoveryDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	if d.EndPoint == "" {
		return nil, errors.New("discovery document has no endPoint")
	}
	return &d, nil
}

func (d *discoveryDoc) hasCapability(c string) bool { return slices.Contains(d.Capabilities, c) }
func (d *discoveryDoc) hasCriterion(c string) bool  { return slices.Contains(d.Criteria, c) }

// errorBody is the OCM error answer.
type errorBody struct {
	Message          string            `json:"message"`
	ValidationErrors []validationError `json:"validationErrors,omitempty"`
}

type validationError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// notificationBody is a received notification.
type notificationBody struct {
	NotificationType string          `json:"notificationType"`
	ResourceType     string          `json:"resourceType"`
	ProviderID       string          `json:"providerId"`
	Notification     json.RawMessage `json:"notification"`
}

// parseNotification decodes a notification and lists what is missing.
func parseNotification(b []byte) (*notificationBody, []validationError, error) {
	if err := checkJSON(b); err != nil {
		return nil, nil, err
	}
	var n notificationBody
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, nil, fmt.Errorf("invalid JSON: %w", err)
	}
	var ve []validationError
	if n.NotificationType == "" {
		ve = append(ve, validationError{"notificationType", "is required"})
	}
	if n.ProviderID == "" {
		ve = append(ve, validationError{"providerId", "is required"})
	}
	return &n, ve, nil
}

// inviteAccepted is the body of /invite-accepted and its answer.
type inviteAccepted struct {
	RecipientProvider string `json:"recipientProvider"`
	Token             string `json:"token"`
	UserID            string `json:"userID"`
	Email             string `json:"email"`
	Name              string `json:"name"`
}

type inviteAcceptedAnswer struct {
	UserID string `json:"userID"`
	Email  string `json:"email"`
	Name   string `json:"name"`
}

// tokenAnswer and tokenErrorBody are the token endpoint's answers.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

type tokenErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// checkJSON accepts one JSON object, without duplicate keys at any depth
// and nothing after it.
func checkJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return errors.New("invalid JSON: not an object")
	}
	if err := checkObject(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: data after the object")
	}
	return nil
}

// checkObject reads the rest of an object whose '{' was read.
func checkObject(dec *json.Decoder, depth int) error {
	if depth > 64 {
		return errors.New("invalid JSON: nested too deep")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("invalid JSON: duplicate key %q", key)
		}
		seen[key] = true
		if err := checkValue(dec, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return nil
}

func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, depth+1)
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
	}
	return nil
}
