package agent

import (
	"github.com/ocm-agent/ocm-agent/ocm"
)

// Capabilities lists what this agent implements as a receiver; later
// parts (signing keys, invites, the token endpoint) add theirs through
// AddCapability before the document is published.
func (a *Agent) discoveryDoc(apiVersion string) *ocm.Discovery {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := &ocm.Discovery{
		Enabled:    true,
		APIVersion: apiVersion,
		EndPoint:   a.cfg.PublicURL + "/ocm",
		Provider:   "ocm-agent",
		ResourceTypes: []ocm.ResourceType{
			{Name: "file", ShareTypes: []string{"user"}, Protocols: map[string]any{}},
			{Name: "folder", ShareTypes: []string{"user"}, Protocols: map[string]any{}},
		},
		Capabilities:       append([]string{"notifications", "protocol-object"}, a.capabilities...),
		JWKSURI:            a.jwksURI,
		PublicKey:          a.legacyKey,
		TokenEndPoint:      a.tokenEndPoint,
		InviteAcceptDialog: a.inviteDialog,
	}
	if apiVersion != ocm.LegacyAPIVersion {
		// Receiving webdav shares with a relative uri (resolved against the
		// sender's WebDAV root). "absolute" is not advertised: a real sender
		// then builds the share URI from the receiver's host.
		for i := range d.ResourceTypes {
			d.ResourceTypes[i].Protocols["webdav-receive"] = map[string]string{"uri": "relative"}
		}
	}
	if a.cfg.RequireSignatures {
		d.Criteria = append(d.Criteria, "must-use-http-sig")
	}
	if a.cfg.AcceptFrom == "contacts" {
		d.Criteria = append(d.Criteria, "must-invite")
	}
	if len(a.cfg.AllowServers) > 0 {
		d.Criteria = append(d.Criteria, "allowlist")
	}
	if len(a.cfg.DenyServers) > 0 {
		d.Criteria = append(d.Criteria, "denylist")
	}
	return d
}

// DiscoveryDocs returns the current and the 1.x-compatible documents.
func (a *Agent) DiscoveryDocs() (current, legacy *ocm.Discovery) {
	return a.discoveryDoc(ocm.APIVersion), a.discoveryDoc(ocm.LegacyAPIVersion)
}
