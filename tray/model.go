package tray

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
)

// Share states as the control API reports them.
const (
	StatePending  = "pending"
	StateAccepted = "accepted"
	StateDeclined = "declined"
	StateRemoved  = "removed"
	StateError    = "error"
	// StateRevoked: the sender's server stopped serving the share without
	// telling; it left the shares folder, "Try again" asks again.
	StateRevoked = "revoked"
)

// StateOrder is the order in which the window groups shares: what needs
// a decision first, history last.
var StateOrder = []string{StatePending, StateError, StateRevoked, StateAccepted, StateDeclined, StateRemoved}

// Conn is how the tray currently sees the daemon.
type Conn int

// The connection states.
const (
	Connecting   Conn = iota // no answer yet
	Connected                // the control socket answers
	Disconnected             // nothing answers; the watcher keeps retrying
)

func (c Conn) String() string {
	switch c {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	}
	return "connecting"
}

// Contact is one entry of the agent's address book as GET /v1/contacts
// reports it. Unknown fields are ignored, missing ones stay empty.
type Contact struct {
	ID          string `json:"id"`
	Address     string `json:"address"`
	UserID      string `json:"userId"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	Email       string `json:"email"`
	Provider    string `json:"provider"`
	Server      string `json:"server"`
	// Source says how the contact was made: "accepted-their-invite" or
	// "accepted-our-invite".
	Source string `json:"source"`
	// State is "active", or "removed-by-peer" once their server said they
	// no longer trust the user.
	State     string    `json:"state"`
	CreatedAt time.Time `json:"createdAt"`
}

// Active says whether the contact is trusted (not removed by the peer).
func (c Contact) Active() bool { return c.State == "" || c.State == "active" }

// How describes how the contact came to be and where it stands.
func (c Contact) How() string {
	var s string
	switch c.Source {
	case "accepted-their-invite":
		s = "you accepted their invite"
	case "accepted-our-invite":
		s = "they accepted your invite"
	}
	if !c.Active() {
		s = strings.TrimPrefix(s+"; ", "; ") + "they removed you from their contacts"
	}
	return s
}

// Label is the contact's name, or its address when it has none.
func (c Contact) Label() string {
	for _, s := range []string{c.DisplayName, c.Name, c.Address, c.ID} {
		if s != "" {
			return s
		}
	}
	return "(unnamed contact)"
}

// Host is the server the contact lives on.
func (c Contact) Host() string {
	if c.Server != "" {
		return c.Server
	}
	if c.Provider != "" {
		return c.Provider
	}
	if i := strings.LastIndex(c.Address, "@"); i >= 0 {
		return c.Address[i+1:]
	}
	return ""
}

// Snapshot is everything the tray shows, as fetched at one moment.
type Snapshot struct {
	Conn Conn
	// Err says why the daemon is unreachable (Disconnected only).
	Err      string
	Status   control.Status
	Shares   []control.Share
	Contacts []Contact
	// ContactsSupported is false when the daemon has no contacts API.
	ContactsSupported bool
	// Pins are what is kept on this device; PinsSupported is false when
	// the daemon has no pins (an older agent, or no mount).
	Pins          []control.Pin
	PinsSupported bool
	At            time.Time
}

// Pinned reports whether the whole share id is kept on this device.
func (s Snapshot) Pinned(id string) bool {
	for _, p := range s.Pins {
		if p.Share == id && p.Path == "" {
			return true
		}
	}
	return false
}

// IconState is what the tray icon shows.
type IconState int

// The icon states.
const (
	IconIdle IconState = iota
	IconPending
	IconError
)

func (s IconState) String() string {
	switch s {
	case IconPending:
		return "pending"
	case IconError:
		return "error"
	}
	return "idle"
}

// Problem is something wrong the user should know about.
type Problem struct {
	// Key identifies the problem for de-duplicating notifications.
	Key string
	// Title is short (for a notification title or a heading).
	Title string
	// Detail says what it means and what to do.
	Detail string
	// Severe problems turn the tray icon into its error state.
	Severe bool
}

// Pending lists the shares waiting for a decision, oldest first.
func (s Snapshot) Pending() []control.Share { return s.InState(StatePending) }

// InState lists the shares in one state, oldest first.
func (s Snapshot) InState(state string) []control.Share {
	var out []control.Share
	for _, sh := range s.Shares {
		if sh.State == state {
			out = append(out, sh)
		}
	}
	slices.SortStableFunc(out, func(a, b control.Share) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

// Find returns the share with id.
func (s Snapshot) Find(id string) (control.Share, bool) {
	for _, sh := range s.Shares {
		if sh.ID == id {
			return sh, true
		}
	}
	return control.Share{}, false
}

// PendingCount is the number of pending shares and invites.
func (s Snapshot) PendingCount() int {
	if s.Conn != Connected {
		return 0
	}
	return len(s.Pending()) + s.Status.PendingInvites
}

// IsContact says whether addr (an OCM address) is in the address book.
func (s Snapshot) IsContact(addr string) bool {
	if addr == "" {
		return false
	}
	for _, c := range s.Contacts {
		if c.Active() && strings.EqualFold(c.Address, addr) {
			return true
		}
	}
	return false
}

// Problems lists what is wrong, most severe first.
func (s Snapshot) Problems() []Problem {
	if s.Conn == Disconnected {
		return []Problem{{
			Key: "agent-not-running", Title: "The agent is not running",
			Detail: "Shares cannot be received or opened until it runs again. " +
				"The tray reconnects by itself once it is back.",
			Severe: true,
		}}
	}
	if s.Conn != Connected {
		return nil
	}
	var out []Problem
	st := s.Status
	if st.SecretsBackend == "keyring" && !st.KeyringUnlocked {
		out = append(out, Problem{
			Key: "keyring-locked", Title: "The keyring is locked",
			Detail: "Unlock your keyring (log in again or open your password manager) so accepted shares can be opened.",
			Severe: true,
		})
	}
	if m, ok := strings.CutPrefix(st.MountState, "error"); ok {
		m = strings.TrimSpace(strings.TrimPrefix(m, ":"))
		out = append(out, Problem{
			Key: "mount-failed:" + m, Title: "The shares folder could not be mounted",
			Detail: firstNonEmpty(m, "unknown error") + ". Run 'ocm-agent doctor' for help.",
			Severe: true,
		})
	}
	if p, ok := certProblem(st, s.At); ok {
		out = append(out, p)
	}
	for _, e := range st.Errors {
		out = append(out, Problem{Key: "error:" + e, Title: "The agent reported an error", Detail: e})
	}
	for _, u := range st.Unreachable {
		out = append(out, Problem{Key: "unreachable:" + u.ID + "@" + u.Since.String(), Title: "A share's server does not answer",
			Detail: "“" + u.Name + "” cannot be read since " + u.Since.Local().Format(timeLayout) + " (" + firstNonEmpty(u.Error, "no answer") +
				"). It stays in your shares folder and works again once its server answers."})
	}
	for _, u := range st.Offline {
		out = append(out, Problem{Key: "offline:" + u.ID + "@" + u.Since.String(), Title: "A share is offline",
			Detail: "“" + u.Name + "”'s server cannot be reached since " + u.Since.Local().Format(timeLayout) +
				". Files kept on this device and those read before are read from the cache; others fail until it answers."})
	}
	for _, k := range st.KeptWrites {
		out = append(out, Problem{Key: "kept:" + k, Title: "Files you wrote were not uploaded", Detail: k})
	}
	return out
}

// certProblem: the certificate the agent gets itself (acme) cannot be
// renewed; severe from two weeks before it ends, when peers will soon
// refuse it.
func certProblem(st control.Status, now time.Time) (Problem, bool) {
	if st.CertName == "" || st.CertError == "" {
		return Problem{}, false
	}
	if now.IsZero() {
		now = time.Now()
	}
	p := Problem{Key: "cert:" + st.CertError, Title: "The HTTPS certificate cannot be renewed", Severe: true}
	if st.CertNotAfter.IsZero() {
		p.Title = "No HTTPS certificate yet"
		p.Detail = "Other servers cannot reach you until the agent gets one: " + st.CertError + ". Run 'ocm-agent doctor' for help."
		return p, true
	}
	left := st.CertNotAfter.Sub(now)
	p.Severe = left < 14*24*time.Hour
	p.Detail = fmt.Sprintf("It ends on %s (%d days left); the agent keeps trying: %s. Run 'ocm-agent doctor' for help.",
		st.CertNotAfter.Local().Format("2 Jan 2006"), max(0, int(left.Hours()/24)), st.CertError)
	return p, true
}

// Icon is the tray icon's state.
func (s Snapshot) Icon() IconState {
	for _, p := range s.Problems() {
		if p.Severe {
			return IconError
		}
	}
	if s.PendingCount() > 0 {
		return IconPending
	}
	return IconIdle
}

// Summary is one line saying the state at a glance (tooltip, menu header).
func (s Snapshot) Summary() string {
	switch s.Conn {
	case Connecting:
		return "Connecting to the agent…"
	case Disconnected:
		return "Agent not running"
	}
	for _, p := range s.Problems() {
		if p.Severe {
			return p.Title
		}
	}
	// Offline is no error (what is on this device stays readable), but
	// the person should see it at a glance.
	offline := ""
	if n := len(s.Status.Offline); n > 0 {
		offline = plural(n, "share", "shares") + " offline"
	}
	shares, invites := len(s.Pending()), s.Status.PendingInvites
	var waiting string
	switch {
	case shares > 0 && invites > 0:
		waiting = plural(shares, "share", "shares") + " and " + plural(invites, "invite", "invites") + " waiting"
	case shares > 0:
		waiting = plural(shares, "share", "shares") + " waiting"
	case invites > 0:
		waiting = plural(invites, "invite", "invites") + " waiting"
	case offline != "":
		return offline + ": reading what is on this device"
	default:
		return "No shares waiting"
	}
	if offline != "" {
		return waiting + "; " + offline
	}
	return waiting
}

// ShareName is the share's name for display.
func ShareName(sh control.Share) string {
	return firstNonEmpty(strings.TrimSpace(sh.Name), "(unnamed share)")
}

// SenderName is who sent the share: the display name the sender gave,
// else the owner's, else the address; an address whose user part is an
// opaque id (a reva UUID, opencloudmesh-go's long ids) shows as "someone at
// host". Snapshot.SenderName prefers a contact's name to the address.
func SenderName(sh control.Share) string { return Snapshot{}.SenderName(sh) }

// SenderName is who sent the share, as the package's SenderName says, with
// the name of a contact whose address it is before the owner's name.
func (s Snapshot) SenderName(sh control.Share) string {
	if n := strings.TrimSpace(sh.SenderDisplayName); n != "" {
		return n
	}
	if c, ok := s.contact(sh.Sender); ok {
		if n := strings.TrimSpace(firstNonEmpty(c.Name, c.DisplayName)); n != "" {
			return n
		}
	}
	if n := strings.TrimSpace(sh.OwnerDisplayName); n != "" {
		return n
	}
	for _, addr := range []string{sh.Sender, sh.Owner} {
		if addr == "" {
			continue
		}
		if host, ok := opaqueAddress(addr); ok {
			return "someone at " + host
		}
		return addr
	}
	return firstNonEmpty(sh.Peer, "unknown sender")
}

// SenderLine is the sender with their address, e.g. "Bob (bob@cloud.example)",
// or with their server only when the address is an opaque id (shown in the
// details as the sender id).
func SenderLine(sh control.Share) string { return Snapshot{}.SenderLine(sh) }

// SenderLine is SenderLine with contact names.
func (s Snapshot) SenderLine(sh control.Share) string {
	name := s.SenderName(sh)
	if sh.Sender == "" || sh.Sender == name {
		return name
	}
	if host, ok := opaqueAddress(sh.Sender); ok {
		if strings.HasSuffix(name, " at "+host) {
			return name
		}
		return name + " (" + host + ")"
	}
	return name + " (" + sh.Sender + ")"
}

// OpaqueSender reports whether the share's sender address is an opaque id.
func OpaqueSender(sh control.Share) bool {
	_, ok := opaqueAddress(sh.Sender)
	return ok
}

func (s Snapshot) contact(addr string) (Contact, bool) {
	if addr == "" {
		return Contact{}, false
	}
	for _, c := range s.Contacts {
		if c.Active() && strings.EqualFold(c.Address, addr) {
			return c, true
		}
	}
	return Contact{}, false
}

// opaqueAddress returns the host of an OCM address whose user part is
// machine-made: a UUID, or a long run of base64 characters.
func opaqueAddress(addr string) (host string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", false
	}
	u := addr[:i]
	uuid := len(u) == 36 && strings.Count(u, "-") == 4 && strings.Trim(strings.ToLower(u), "0123456789abcdef-") == ""
	long := len(u) >= 32 && strings.Trim(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/") == ""
	return addr[i+1:], uuid || long
}

// KindOf is "folder" or "file": as the share's server showed it once the
// mount asked (Nextcloud calls folders "file"), else as the sender said.
func KindOf(sh control.Share) string {
	return firstNonEmpty(sh.Kind, sh.ResourceType, "file")
}

// Kind is the resource and share type in words, e.g. "file" or "file, shared with a group".
func Kind(sh control.Share) string {
	k := KindOf(sh)
	switch sh.ShareType {
	case "group":
		k += ", shared with a group"
	case "federation":
		k += ", shared with a federation"
	}
	return k
}

// MenuLabel is a pending share as one tray menu line: name, sender, type.
func MenuLabel(sh control.Share) string {
	return fmt.Sprintf("%s — from %s (%s)", ShareName(sh), SenderName(sh), KindOf(sh))
}

// KeptLine says how many files written into the share were not uploaded
// and where they are kept, e.g. "2 files written here were not uploaded;
// they are kept in /path"; the files follow, one a line.
func KeptLine(sh control.Share) string {
	n := len(sh.NotUploaded)
	head := fmt.Sprintf("%d files written here were not uploaded; they are kept in %s", n, sh.KeptIn)
	if n == 1 {
		head = "1 file written here was not uploaded; it is kept in " + sh.KeptIn
	}
	return strings.Join(append([]string{head}, sh.NotUploaded...), "\n")
}

// Permissions says what the recipient may do, in words.
func Permissions(sh control.Share) string {
	if len(sh.Permissions) == 0 {
		if sh.LegacyPermissions != "" {
			return "as granted by the sender (" + sh.LegacyPermissions + ")"
		}
		return "not stated"
	}
	if len(sh.Permissions) == 1 && sh.Permissions[0] == "read" {
		return "read only"
	}
	return strings.Join(sh.Permissions, ", ")
}

// Expiry says when the share expires, relative to now (and in its time zone).
func Expiry(sh control.Share, now time.Time) string {
	if sh.Expiration.IsZero() {
		return "never"
	}
	at := sh.Expiration.In(now.Location()).Format(timeLayout)
	d := sh.Expiration.Sub(now)
	switch {
	case d <= 0:
		return at + " (expired)"
	case d < time.Hour:
		return at + " (in less than an hour)"
	case d < 48*time.Hour:
		return at + " (in " + plural(int(d.Hours()), "hour", "hours") + ")"
	}
	return at + " (in " + plural(int(d.Hours()/24), "day", "days") + ")"
}

// Size is the share's size in words, when the sender told it.
func Size(sh control.Share) string {
	if sh.Size <= 0 {
		return "unknown"
	}
	return HumanBytes(sh.Size)
}

// HumanBytes formats n bytes with a binary unit.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return plural(int(n), "byte", "bytes")
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// StateTitle is a state's heading in the window, e.g. "Pending (2)".
func StateTitle(state string, n int) string {
	names := map[string]string{
		StatePending: "Waiting for you", StateAccepted: "Accepted", StateDeclined: "Declined",
		StateRemoved: "Removed", StateError: "Problems", StateRevoked: "Revoked by the sender",
	}
	name := names[state]
	if name == "" {
		name = state
	}
	return fmt.Sprintf("%s (%d)", name, n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
