package ocm

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on share fields, generous for every real peer and small enough
// that a hostile one cannot make us store megabytes per share.
const (
	maxNameLen   = 1024
	maxTextLen   = 8192
	maxIDLen     = 1024
	maxSecretLen = 8192
	maxListLen   = 32
)

// Dialect says which protocol form a sender used, kept for diagnostics.
type Dialect string

// The protocol forms seen in the wild.
const (
	DialectLegacyOptions  Dialect = "legacy-options"  // {name: webdav, options: {sharedSecret, permissions}}
	DialectWebDAV         Dialect = "webdav"          // {name: webdav, webdav: {...}}
	DialectMulti          Dialect = "multi"           // {name: multi, webdav: {...}, webapp: {...}}
	DialectProtocolObject Dialect = "protocol-object" // {webdav: {...}} with no name
)

// Requirement values; "mfa-enforced" is the legacy spelling of must-use-mfa.
const (
	RequireExchangeToken = "must-exchange-token"
	RequireMFA           = "must-use-mfa"
	RequireCode          = "use-code"
)

// WebDAVAccess is the webdav protocol of a share, whatever form it came in.
type WebDAVAccess struct {
	// URI is the resource as sent: absolute, relative to the sender's
	// WebDAV root, or empty (legacy Nextcloud: the root of /public.php/webdav).
	URI          string
	SharedSecret string
	Permissions  []string // read, write, share (normalised); nil when unknown
	// LegacyPermissions keeps a legacy options.permissions value that is
	// not a list (Nextcloud sends a property name there).
	LegacyPermissions string
	Requirements      []string
	AccessTypes       []string
	Size              int64
}

// LogValue keeps the secret out of logs.
func (w WebDAVAccess) LogValue() slog.Value {
	return slog.GroupValue(slog.String("uri", w.URI), slog.Any("permissions", w.Permissions),
		slog.Any("requirements", w.Requirements), slog.String("sharedSecret", redacted(w.SharedSecret)))
}

// NewShare is a Share Creation Notification, normalised from any dialect.
type NewShare struct {
	ShareWith         Address
	Name              string
	Description       string
	ProviderID        string
	Owner             Address
	Sender            Address
	OwnerDisplayName  string
	SenderDisplayName string
	ShareType         string
	ResourceType      string
	Expiration        time.Time // zero: does not expire
	// Code is the legacy top-level code of older drafts (exchange at <endPoint>/token).
	Code      string
	Dialect   Dialect
	Protocols []string // protocol names offered (webdav, webapp, datatx, ssh, ...)
	WebDAV    *WebDAVAccess
	// Requirements is the union of the requirements of all protocols and
	// the top level, normalised.
	Requirements []string
}

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// String describes the share without its secrets.
func (s *NewShare) String() string {
	return fmt.Sprintf("share %q (%s %s) from %s, providerId %q", s.Name, s.ShareType, s.ResourceType, s.Sender, s.ProviderID)
}

// LogValue keeps secrets out of logs.
func (s *NewShare) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("name", s.Name), slog.String("providerId", s.ProviderID),
		slog.String("sender", s.Sender.String()), slog.String("dialect", string(s.Dialect)),
		slog.String("code", redacted(s.Code))}
	if s.WebDAV != nil {
		attrs = append(attrs, slog.Attr{Key: "webdav", Value: s.WebDAV.LogValue()})
	}
	return slog.GroupValue(attrs...)
}

// HasRequirement reports whether any protocol or the top level requires r.
func (s *NewShare) HasRequirement(r string) bool {
	for _, x := range s.Requirements {
		if x == r {
			return true
		}
	}
	return false
}

// Secret is the value to present or exchange: the webdav shared secret,
// or the legacy top-level code when that is all there is.
func (s *NewShare) Secret() string {
	if s.WebDAV != nil && s.WebDAV.SharedSecret != "" {
		return s.WebDAV.SharedSecret
	}
	return s.Code
}

// UnsupportedError marks a well-formed request asking for something this
// receiver does not do (answered with 501 per the spec).
type UnsupportedError struct{ What string }

func (e *UnsupportedError) Error() string { return "not supported: " + e.What }

// fields is a JSON object whose members are decoded one by one, so that
// each type error names its field.
type fields struct {
	m    map[string]json.RawMessage
	errs *ValidationErrors
	path string
}

func (f fields) has(k string) bool {
	v, ok := f.m[k]
	return ok && string(v) != "null"
}

func (f fields) name(k string) string {
	if f.path == "" {
		return k
	}
	return f.path + "." + k
}

// str decodes a string member; absent or null gives "".
func (f fields) str(k string, max int) string {
	raw, ok := f.m[k]
	if !ok || string(raw) == "null" {
		return ""
	}
	s, plain := plainString(raw)
	if !plain && json.Unmarshal(raw, &s) != nil {
		f.errs.Add(f.name(k), "must be a string")
		return ""
	}
	if len(s) > max {
		f.errs.Add(f.name(k), fmt.Sprintf("longer than %d bytes", max))
		return ""
	}
	if strings.ContainsRune(s, 0) {
		f.errs.Add(f.name(k), "contains a NUL character")
		return ""
	}
	return s
}

// id decodes an identifier that some peers send as a number.
func (f fields) id(k string) string {
	raw, ok := f.m[k]
	if !ok || string(raw) == "null" {
		return ""
	}
	// A string is read by str (which reads "123" as json.Number would).
	var n json.Number
	if raw[0] != '"' && json.Unmarshal(raw, &n) == nil {
		if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return string(n)
		}
	}
	return f.str(k, maxIDLen)
}

func (f fields) strList(k string) []string {
	raw, ok := f.m[k]
	if !ok || string(raw) == "null" {
		return nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		f.errs.Add(f.name(k), "must be an array of strings")
		return nil
	}
	if len(l) > maxListLen {
		f.errs.Add(f.name(k), fmt.Sprintf("has more than %d items", maxListLen))
		return nil
	}
	return l
}

func (f fields) object(k string) (fields, bool) {
	raw, ok := f.m[k]
	if !ok || string(raw) == "null" {
		return fields{}, false
	}
	m, ok := members(raw) // raw is part of a body parseObject checked
	if !ok {
		f.errs.Add(f.name(k), "must be an object")
		return fields{}, false
	}
	return fields{m: m, errs: f.errs, path: f.name(k)}, true
}

func (f fields) int64(k string) (int64, bool) {
	raw, ok := f.m[k]
	if !ok || string(raw) == "null" {
		return 0, false
	}
	var x float64
	if err := json.Unmarshal(raw, &x); err != nil || x != math.Trunc(x) || x < 0 || x > 1<<53 {
		f.errs.Add(f.name(k), "must be a non-negative integer")
		return 0, false
	}
	return int64(x), true
}

// ShareTypes and ResourceTypes this receiver knows; anything else known to
// the spec is answered with 501, anything unknown with 400.
var (
	knownShareTypes    = map[string]bool{"user": true, "group": false, "federation": false}
	knownResourceTypes = map[string]bool{"file": true, "folder": true, "calendar": false, "contact": false, "ro-crate": false, "embedded": false}
)

// ParseNewShare decodes and validates a Share Creation Notification body.
// It returns ValidationErrors (400), *UnsupportedError (501), or an error
// wrapping ErrBadJSON (400).
func ParseNewShare(body []byte) (*NewShare, error) {
	m, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	var errs ValidationErrors
	f := fields{m: m, errs: &errs}
	s := &NewShare{}

	shareWith := f.str("shareWith", maxIDLen)
	s.Name = f.str("name", maxNameLen)
	s.Description = f.str("description", maxTextLen)
	s.ProviderID = f.id("providerId")
	owner := f.str("owner", maxIDLen)
	sender := f.str("sender", maxIDLen)
	if sender == "" {
		sender = f.str("sharedBy", maxIDLen) // Nextcloud before it sent "sender"
	}
	s.OwnerDisplayName = f.str("ownerDisplayName", maxNameLen)
	s.SenderDisplayName = f.str("senderDisplayName", maxNameLen)
	if s.SenderDisplayName == "" {
		s.SenderDisplayName = f.str("sharedByDisplayName", maxNameLen)
	}
	s.ShareType = f.str("shareType", 64)
	s.ResourceType = f.str("resourceType", 64)
	s.Code = f.str("code", maxSecretLen)
	if exp, ok := f.int64("expiration"); ok && exp > 0 {
		s.Expiration = time.Unix(exp, 0).UTC()
	}
	topRequirements := f.strList("requirements")
	topPermissions := f.strList("permissions")
	topAccessTypes := f.strList("accessTypes")
	topSize, _ := f.int64("size")

	required := map[string]string{"shareWith": shareWith, "name": s.Name, "providerId": s.ProviderID,
		"owner": owner, "shareType": s.ShareType, "resourceType": s.ResourceType}
	for _, k := range []string{"shareWith", "name", "providerId", "owner", "shareType", "resourceType"} {
		if required[k] == "" && !hasErr(errs, k) {
			errs.Add(k, "is required")
		}
	}
	if shareWith != "" {
		if a, err := ParseAddress(shareWith); err != nil {
			errs.Add("shareWith", err.Error())
		} else {
			s.ShareWith = a
		}
	}
	if owner != "" {
		if a, err := ParseAddress(owner); err != nil {
			errs.Add("owner", err.Error())
		} else {
			s.Owner = a
		}
	}
	if sender != "" {
		if a, err := ParseAddress(sender); err != nil {
			errs.Add("sender", err.Error())
		} else {
			s.Sender = a
		}
	} else if !hasErr(errs, "sender") && !hasErr(errs, "sharedBy") {
		// Older peers sent only owner; the owner is then the sender.
		s.Sender = s.Owner
	}
	if s.Name != "" && strings.TrimSpace(s.Name) == "" {
		errs.Add("name", "is blank")
	}

	proto, ok := f.object("protocol")
	if !ok && !hasErr(errs, "protocol") {
		errs.Add("protocol", "is required")
	}
	var unsupported error
	if ok {
		unsupported = parseProtocol(s, proto)
	}
	if s.WebDAV != nil {
		if s.WebDAV.Permissions == nil && topPermissions != nil {
			s.WebDAV.Permissions = normalisePermissions(topPermissions, &errs, "permissions")
		}
		if s.WebDAV.AccessTypes == nil {
			s.WebDAV.AccessTypes = topAccessTypes
		}
		if s.WebDAV.Size == 0 {
			s.WebDAV.Size = topSize
		}
	}
	s.Requirements = mergeRequirements(s.Requirements, normaliseRequirements(topRequirements))

	if len(errs) == 0 {
		if supported, known := knownShareTypes[s.ShareType]; !known {
			errs.Add("shareType", fmt.Sprintf("unknown share type %q (expected user, group or federation)", s.ShareType))
		} else if !supported && unsupported == nil {
			unsupported = &UnsupportedError{What: "share type " + s.ShareType}
		}
		if supported, known := knownResourceTypes[s.ResourceType]; !known {
			errs.Add("resourceType", fmt.Sprintf("unknown resource type %q (expected file or folder)", s.ResourceType))
		} else if !supported && unsupported == nil {
			unsupported = &UnsupportedError{What: "resource type " + s.ResourceType}
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if unsupported != nil {
		return nil, unsupported
	}
	return s, nil
}

func hasErr(errs ValidationErrors, name string) bool {
	for _, e := range errs {
		if e.Name == name {
			return true
		}
	}
	return false
}

// parseProtocol fills the protocol part of s from any of the four forms.
// It returns an *UnsupportedError when no protocol we can use is offered.
func parseProtocol(s *NewShare, p fields) error {
	name := p.str("name", 64)
	switch {
	case !p.has("name"):
		s.Dialect = DialectProtocolObject
	case name == "multi":
		s.Dialect = DialectMulti
	case name == "webdav" && p.has("options") && !p.has("webdav"):
		s.Dialect = DialectLegacyOptions
	case name == "webdav":
		s.Dialect = DialectWebDAV
	case name == "":
		return nil // type error already recorded
	default:
		// A single named protocol other than webdav (webapp, ssh, ...).
		s.Protocols = []string{name}
		s.Dialect = DialectWebDAV
		if !p.has(name) {
			p.errs.Add("protocol."+name, "is required when protocol.name is "+name)
			return nil
		}
		return &UnsupportedError{What: "protocol " + name + " (this receiver mounts webdav shares)"}
	}
	for k := range p.m {
		switch k {
		case "name", "options":
		default:
			s.Protocols = append(s.Protocols, k)
		}
	}
	if w, ok := p.object("webdav"); ok {
		s.WebDAV = parseWebDAV(w)
	}
	// Legacy options; reva sends them beside a webdav object too.
	if o, ok := p.object("options"); ok {
		if s.WebDAV == nil {
			s.WebDAV = &WebDAVAccess{}
			if !slices.Contains(s.Protocols, "webdav") {
				s.Protocols = append(s.Protocols, "webdav")
			}
		}
		if s.WebDAV.SharedSecret == "" {
			s.WebDAV.SharedSecret = o.str("sharedSecret", maxSecretLen)
		}
		if s.WebDAV.URI == "" {
			s.WebDAV.URI = firstNonEmpty(o.str("uri", maxTextLen), o.str("url", maxTextLen))
		}
		if s.WebDAV.Permissions == nil {
			s.WebDAV.Permissions, s.WebDAV.LegacyPermissions = legacyPermissions(o)
		}
	}
	for _, k := range s.Protocols {
		if k == "webdav" {
			continue
		}
		if obj, ok := p.object(k); ok {
			s.Requirements = mergeRequirements(s.Requirements, normaliseRequirements(obj.strList("requirements")))
		}
	}
	if s.WebDAV == nil {
		if len(*p.errs) > 0 {
			return nil
		}
		if len(s.Protocols) == 0 {
			p.errs.Add("protocol", "offers no protocol (expected webdav)")
			return nil
		}
		return &UnsupportedError{What: "protocols " + strings.Join(s.Protocols, ", ") + " (this receiver mounts webdav shares)"}
	}
	if s.WebDAV.SharedSecret == "" && s.Code == "" && !hasErr(*p.errs, "protocol.webdav.sharedSecret") {
		p.errs.Add("protocol.webdav.sharedSecret", "is required")
	}
	s.Requirements = mergeRequirements(s.Requirements, s.WebDAV.Requirements)
	return nil
}

func parseWebDAV(w fields) *WebDAVAccess {
	d := &WebDAVAccess{
		URI:          w.str("uri", maxTextLen),
		SharedSecret: w.str("sharedSecret", maxSecretLen),
		AccessTypes:  w.strList("accessTypes"),
	}
	if d.URI == "" {
		d.URI = w.str("url", maxTextLen) // oCIS
	}
	d.Size, _ = w.int64("size")
	if w.has("permissions") {
		if raw := w.m["permissions"]; len(raw) > 0 && raw[0] == '[' {
			d.Permissions = normalisePermissions(w.strList("permissions"), w.errs, w.name("permissions"))
		} else {
			d.Permissions, d.LegacyPermissions = legacyPermissions(w)
		}
	}
	d.Requirements = normaliseRequirements(w.strList("requirements"))
	for _, t := range d.AccessTypes {
		if t != "remote" && t != "datatx" {
			w.errs.Add(w.name("accessTypes"), fmt.Sprintf("unknown access type %q (expected remote or datatx)", t))
		}
	}
	return d
}

// legacyPermissions reads options.permissions, which real peers send as a
// list, a Nextcloud property name, or a Nextcloud permission bit mask.
func legacyPermissions(o fields) ([]string, string) {
	raw, ok := o.m["permissions"]
	if !ok || string(raw) == "null" {
		return nil, ""
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return normalisePermissions(list, o.errs, o.name("permissions")), ""
	}
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		// Nextcloud bits: 1 read, 2 update, 4 create, 8 delete, 16 share.
		var p []string
		if n&1 != 0 {
			p = append(p, "read")
		}
		if n&(2|4|8) != 0 {
			p = append(p, "write")
		}
		if n&16 != 0 {
			p = append(p, "share")
		}
		return p, strconv.FormatInt(n, 10)
	}
	var str string
	if json.Unmarshal(raw, &str) == nil && len(str) <= maxTextLen {
		return nil, str
	}
	o.errs.Add(o.name("permissions"), "must be a list of strings, a string or a number")
	return nil, ""
}

func normalisePermissions(in []string, errs *ValidationErrors, name string) []string {
	out := []string{}
	for _, p := range in {
		q := strings.ToLower(strings.TrimSpace(p))
		switch q {
		case "read", "write", "share":
		case "r":
			q = "read"
		case "w":
			q = "write"
		default:
			errs.Add(name, fmt.Sprintf("unknown permission %q (expected read, write or share)", p))
			continue
		}
		if !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out
}

func normaliseRequirements(in []string) []string {
	var out []string
	for _, r := range in {
		switch r = strings.ToLower(strings.TrimSpace(r)); r {
		case "mfa-enforced":
			r = RequireMFA
		case "":
			continue
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func mergeRequirements(a, b []string) []string {
	for _, r := range b {
		if !slices.Contains(a, r) {
			a = append(a, r)
		}
	}
	return a
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// Writable reports whether the share grants write access.
func (w *WebDAVAccess) Writable() bool { return w != nil && slices.Contains(w.Permissions, "write") }

// IsAbsolute reports whether URI is an absolute http(s) URL.
func (w *WebDAVAccess) IsAbsolute() bool {
	u := strings.ToLower(w.URI)
	return strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")
}
