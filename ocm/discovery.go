package ocm

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// APIVersion is the version of the OCM API we implement and advertise.
const APIVersion = "1.4.0"

// LegacyAPIVersion is what we advertise to peers that only accept 1.x
// documents: Nextcloud matches the string exactly against
// "1.0-proposal1", "1.0" and "1.1".
const LegacyAPIVersion = "1.1"

// Discovery is the OCM discovery document (/.well-known/ocm).
type Discovery struct {
	Enabled    bool   `json:"enabled"`
	APIVersion string `json:"apiVersion"`
	// Version is Nextcloud's "real" version: it keeps apiVersion at
	// "1.0-proposal1" for old crawlers and puts the true one here.
	Version            string            `json:"version,omitempty"`
	EndPoint           string            `json:"endPoint"`
	Provider           string            `json:"provider,omitempty"`
	ResourceTypes      []ResourceType    `json:"resourceTypes"`
	Capabilities       []string          `json:"capabilities,omitempty"`
	Criteria           []string          `json:"criteria,omitempty"`
	PublicKey          *LegacyPublicKey  `json:"publicKey,omitempty"`
	JWKSURI            string            `json:"jwksUri,omitempty"`
	TokenEndPoint      string            `json:"tokenEndPoint,omitempty"`
	InviteAcceptDialog string            `json:"inviteAcceptDialog,omitempty"`
	Extra              map[string]string `json:"-"`
}

// ResourceType is one entry of resourceTypes.
type ResourceType struct {
	Name       string         `json:"name"`
	ShareTypes []string       `json:"shareTypes"`
	Protocols  map[string]any `json:"protocols"`
}

// LegacyPublicKey is the draft-cavage era key of a discovery document.
type LegacyPublicKey struct {
	KeyID        string `json:"keyId"`
	PublicKeyPem string `json:"publicKeyPem"`
}

// ParseDiscovery decodes a discovery document of any dialect seen in the
// wild: "endpoint" for "endPoint", capabilities written as paths
// ("/invite-accepted") or with Nextcloud's names, 1.0 fields (ownCloud's
// "shareTypes" list in place of resourceTypes), Nextcloud's
// "publicKey": null and its "version" next to a frozen apiVersion.
func ParseDiscovery(body []byte) (*Discovery, error) {
	if err := CheckJSON(body); err != nil {
		return nil, err
	}
	var raw struct {
		Discovery
		Endpoint      string          `json:"endpoint"`
		RawResources  json.RawMessage `json:"resourceTypes"`
		RawCapability json.RawMessage `json:"capabilities"`
		RawEnabled    json.RawMessage `json:"enabled"`
		RawShareTypes json.RawMessage `json:"shareTypes"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: discovery document: %v", ErrBadJSON, err)
	}
	d := raw.Discovery
	if d.PublicKey != nil && d.PublicKey.KeyID == "" && d.PublicKey.PublicKeyPem == "" {
		d.PublicKey = nil
	}
	if d.EndPoint == "" {
		d.EndPoint = raw.Endpoint
	}
	if d.EndPoint == "" {
		return nil, fmt.Errorf("%w: discovery document has no endPoint", ErrBadJSON)
	}
	if u, err := url.Parse(d.EndPoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: discovery endPoint %q is not an absolute http(s) URL", ErrBadJSON, d.EndPoint)
	}
	if len(raw.RawEnabled) > 0 {
		var b bool
		if json.Unmarshal(raw.RawEnabled, &b) != nil {
			return nil, fmt.Errorf("%w: discovery enabled must be a boolean", ErrBadJSON)
		}
		d.Enabled = b
	}
	if len(raw.RawResources) > 0 && string(raw.RawResources) != "null" {
		if err := json.Unmarshal(raw.RawResources, &d.ResourceTypes); err != nil {
			return nil, fmt.Errorf("%w: discovery resourceTypes: %v", ErrBadJSON, err)
		}
	} else if len(raw.RawShareTypes) > 0 && string(raw.RawShareTypes) != "null" {
		rts, err := legacyShareTypes(raw.RawShareTypes)
		if err != nil {
			return nil, err
		}
		d.ResourceTypes = rts
	}
	d.Capabilities = nil
	if len(raw.RawCapability) > 0 && string(raw.RawCapability) != "null" {
		var caps []string
		if err := json.Unmarshal(raw.RawCapability, &caps); err != nil {
			// Some 1.1 servers sent an object of capability -> path.
			var obj map[string]any
			if json.Unmarshal(raw.RawCapability, &obj) != nil {
				return nil, fmt.Errorf("%w: discovery capabilities must be a list of strings", ErrBadJSON)
			}
			for k := range obj {
				caps = append(caps, k)
			}
			sort.Strings(caps)
		}
		for _, c := range caps {
			d.Capabilities = append(d.Capabilities, NormalizeCapability(c))
		}
	}
	return &d, nil
}

// legacyShareTypes reads the 1.0-proposal1 "shareTypes" of ownCloud 10,
// a list of {name, protocols} (or, in its oldest form, one such object),
// into resource types. Which recipient types were meant is unknown.
func legacyShareTypes(data json.RawMessage) ([]ResourceType, error) {
	type legacy struct {
		Name      string         `json:"name"`
		Protocols map[string]any `json:"protocols"`
	}
	var list []legacy
	if err := json.Unmarshal(data, &list); err != nil {
		var one legacy
		if json.Unmarshal(data, &one) != nil {
			return nil, fmt.Errorf("%w: discovery shareTypes: %v", ErrBadJSON, err)
		}
		list = []legacy{one}
	}
	var out []ResourceType
	for _, l := range list {
		if l.Name == "" {
			continue
		}
		out = append(out, ResourceType{Name: l.Name, Protocols: l.Protocols})
	}
	return out, nil
}

// NormalizeCapability maps the spellings seen in the wild onto the spec's
// capability names: leading slashes and Nextcloud's endpoint-style names.
// Nextcloud's "/shares" only says that it takes shares, which every OCM
// server does; it is not the spec's "protocol-object" and stays "shares".
func NormalizeCapability(c string) string {
	c = strings.ToLower(strings.TrimRight(strings.TrimLeft(c, "/ \t\r\n"), " \t\r\n"))
	if c == "invite-accepted" {
		return "invites"
	}
	return c
}

// HasCapability reports whether the document advertises capability c.
func (d *Discovery) HasCapability(c string) bool {
	c = NormalizeCapability(c)
	for _, x := range d.Capabilities {
		if NormalizeCapability(x) == c {
			return true
		}
	}
	return false
}

// HasCriterion reports whether the document lists criterion c.
func (d *Discovery) HasCriterion(c string) bool {
	for _, x := range d.Criteria {
		if strings.EqualFold(x, c) {
			return true
		}
	}
	return false
}

// WebDAVRoot is the webdav path or URL advertised for file resources, ""
// when none is. Relative paths are resolved against the endPoint's origin.
func (d *Discovery) WebDAVRoot() string {
	for _, rt := range d.ResourceTypes {
		if rt.Name != "file" && rt.Name != "folder" {
			continue
		}
		if s, ok := rt.Protocols["webdav"].(string); ok && s != "" {
			return d.resolve(s)
		}
	}
	return ""
}

func (d *Discovery) resolve(ref string) string {
	base, err := url.Parse(d.EndPoint)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return base.ResolveReference(r).String()
}
