package ocmtest

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/webdav"
)

// Share is a share this server made: what it sent and how it may be read.
// It holds the shared secret; String and LogValue redact it.
type Share struct {
	ID           string // path segment under WebDAVRoot
	ProviderID   string
	Name         string
	Description  string
	Path         string // relative to the root directory
	LocalPath    string
	IsDir        bool
	ResourceType string // as sent ("file" for Nextcloud folders)
	Dialect      string
	Signing      string
	To           Address
	// ReceiverBase is the receiver's origin ("http://127.0.0.1:9200");
	// ReceiverEndPoint its OCM end point from discovery.
	ReceiverBase     string
	ReceiverEndPoint string
	Permissions      []string
	Requirements     []string
	// Access rules: the raw secret as a bearer token, as Basic
	// "<secret>:", and whether the share is reachable at the WebDAV root
	// itself (legacy shares sent without a uri).
	AllowBearerSecret bool
	AllowBasic        bool
	RootAddressed     bool
	MustExchangeToken bool
	Secret            string // the shared secret ("" when only a code was sent)
	Code              string // the legacy top-level code, when sent
	URI               string // protocol webdav uri as sent ("" when none)
	Expiration        time.Time
	Body              []byte // the JSON body sent
	State             string // ShareState*
}

// Share states as the sending side sees them.
const (
	ShareStatePending  = "pending"
	ShareStateAccepted = "accepted"
	ShareStateDeclined = "declined"
	ShareStateUnshared = "unshared"
	ShareStateRevoked  = "revoked"
)

// ReadOnly reports whether writes are refused.
func (s Share) ReadOnly() bool { return !slices.Contains(s.Permissions, "write") }

// WebDAVPath is the path of the share's root on the server.
func (s Share) WebDAVPath() string { return WebDAVRoot + s.ID }

// String describes the share without its secrets.
func (s Share) String() string {
	return "share " + s.ID + " (" + s.ResourceType + " " + s.Path + ") to " + s.To.String() + " [" + s.Dialect + "]"
}

// LogValue keeps the secrets out of logs.
func (s Share) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", s.ID), slog.String("providerId", s.ProviderID),
		slog.String("to", s.To.String()), slog.String("dialect", s.Dialect), slog.String("path", s.Path),
		slog.String("secret", redact(s.Secret)), slog.String("code", redact(s.Code)))
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

type shareRec struct {
	Share
	ls webdav.LockSystem
}

func (r *shareRec) live(now time.Time) bool {
	if r.State == ShareStateUnshared || r.State == ShareStateRevoked || r.State == ShareStateDeclined {
		return false
	}
	return r.Expiration.IsZero() || now.Before(r.Expiration)
}

// MethodStats counts WebDAV requests of one method.
type MethodStats struct {
	Requests int64
	BytesOut int64 // response body bytes served
	BytesIn  int64 // request body bytes read
}

// WebDAVStats returns the WebDAV request counts per method.
func (s *Server) WebDAVStats() map[string]MethodStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]MethodStats, len(s.davStats))
	for k, v := range s.davStats {
		out[k] = v
	}
	return out
}

// ResetStats clears the WebDAV statistics and the hit counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.davStats = map[string]MethodStats{}
	s.hits = map[string]int64{}
	s.mu.Unlock()
}

// maxUpload bounds a WebDAV request body.
const maxUpload = 1 << 30

var writeMethods = map[string]bool{
	http.MethodPut: true, "MKCOL": true, "MOVE": true, http.MethodDelete: true,
	"PROPPATCH": true, "COPY": true, "LOCK": true,
}

func (s *Server) serveWebDAV(w http.ResponseWriter, r *http.Request) {
	cw := &countingWriter{ResponseWriter: w}
	cr := &countingReader{r: http.MaxBytesReader(w, r.Body, maxUpload)}
	if r.Body != nil {
		r.Body = struct {
			io.Reader
			io.Closer
		}{cr, r.Body}
	}
	defer func() {
		s.mu.Lock()
		st := s.davStats[r.Method]
		st.Requests++
		st.BytesOut += cw.n
		st.BytesIn += cr.n
		s.davStats[r.Method] = st
		s.mu.Unlock()
	}()
	rec := s.authenticate(r)
	if rec == nil {
		if s.opts.ServerErrorForRevoked {
			if old := s.credentialsOf(r); old != nil && s.stateOf(old) == ShareStateRevoked {
				http.Error(cw, "Internal Server Error", http.StatusInternalServerError) // OpenCloud's answer
				return
			}
		}
		s.unauthorized(cw)
		return
	}
	s.mu.Lock()
	sh := rec.Share // a snapshot: notifications change the record meanwhile
	s.mu.Unlock()
	rest := strings.TrimPrefix(r.URL.Path, WebDAVRoot)
	seg, _, _ := strings.Cut(rest, "/")
	var prefix string
	switch {
	case seg == sh.ID:
		prefix = WebDAVRoot + sh.ID
	case sh.RootAddressed:
		prefix = strings.TrimSuffix(WebDAVRoot, "/")
	case s.isShareID(seg):
		s.unauthorized(cw) // credentials of another share
		return
	default:
		http.Error(cw, "no such share", http.StatusNotFound)
		return
	}
	if writeMethods[r.Method] && sh.ReadOnly() {
		http.Error(cw, "read-only share", http.StatusForbidden)
		return
	}
	if r.Method == "PROPFIND" && !sh.IsDir && s.opts.NoPropfindOnFiles {
		cw.Header().Set("Allow", "OPTIONS, GET, HEAD")
		http.Error(cw, "PROPFIND is not supported on file shares", http.StatusMethodNotAllowed)
		return
	}
	if r.Method == http.MethodGet && r.Header.Get("Range") != "" && s.opts.RefuseRanges {
		cw.WriteHeader(http.StatusRequestedRangeNotSatisfiable) // reva: empty body, no Content-Range
		return
	}
	var fsys webdav.FileSystem = webdav.Dir(sh.LocalPath)
	if sh.Dialect == DialectNextcloud || sh.Dialect == DialectNextcloudSender {
		fsys = ocPermsFS{FileSystem: fsys, perms: sh.ocPermissions()}
	}
	h := &webdav.Handler{Prefix: prefix, FileSystem: fsys, LockSystem: rec.ls}
	h.ServeHTTP(cw, r)
}

func (s *Server) unauthorized(w http.ResponseWriter) {
	w.Header().Add("WWW-Authenticate", `Bearer realm="ocm"`)
	w.Header().Add("WWW-Authenticate", `Basic realm="ocm"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

func (s *Server) isShareID(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.shares[id]
	return ok
}

// authenticate finds the live share the request's credentials open.
func (s *Server) authenticate(r *http.Request) *shareRec {
	sh := s.credentialsOf(r)
	if sh == nil {
		return nil
	}
	s.mu.Lock()
	live := sh.live(time.Now())
	s.mu.Unlock()
	if !live {
		return nil
	}
	return sh
}

func (s *Server) stateOf(rec *shareRec) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rec.State
}

// credentialsOf finds the share the request's credentials belong to,
// live or not.
func (s *Server) credentialsOf(r *http.Request) *shareRec {
	h := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok {
		return nil
	}
	cred = strings.TrimSpace(cred)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var sh *shareRec
	switch strings.ToLower(scheme) {
	case "bearer":
		if t, ok := s.tokens[cred]; ok && now.Before(t.expires) {
			sh = s.shares[t.shareID]
		} else if rec, ok := s.bySecret[cred]; ok && rec.AllowBearerSecret && !rec.MustExchangeToken {
			sh = rec
		}
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil
		}
		user, _, _ := strings.Cut(string(raw), ":")
		if rec, ok := s.bySecret[user]; ok && rec.AllowBasic && !rec.MustExchangeToken {
			sh = rec
		}
	}
	return sh
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ocPermissions is the oc:permissions Nextcloud shows on a share's
// resources: "RGDNVCK" for a folder it may change, "RGNVW" for such a
// file, "RG" when read-only.
func (s Share) ocPermissions() string {
	switch {
	case s.ReadOnly():
		return "RG"
	case s.IsDir:
		return "RGDNVCK"
	}
	return "RGNVW"
}

// ocPermsFS serves oc:permissions as a property of every resource, as
// Nextcloud's WebDAV does (the only place its shares' rights are told).
type ocPermsFS struct {
	webdav.FileSystem
	perms string
}

func (f ocPermsFS) OpenFile(ctx context.Context, name string, flag int, perm os.FileMode) (webdav.File, error) {
	file, err := f.FileSystem.OpenFile(ctx, name, flag, perm)
	if err != nil {
		return nil, err
	}
	return ocPermsFile{File: file, perms: f.perms}, nil
}

type ocPermsFile struct {
	webdav.File
	perms string
}

var ocPermissionsName = xml.Name{Space: "http://owncloud.org/ns", Local: "permissions"}

func (f ocPermsFile) DeadProps() (map[xml.Name]webdav.Property, error) {
	return map[xml.Name]webdav.Property{ocPermissionsName: {XMLName: ocPermissionsName, InnerXML: []byte(f.perms)}}, nil
}

func (f ocPermsFile) Patch(patches []webdav.Proppatch) ([]webdav.Propstat, error) {
	ps := webdav.Propstat{Status: http.StatusForbidden}
	for _, p := range patches {
		for _, prop := range p.Props {
			ps.Props = append(ps.Props, webdav.Property{XMLName: prop.XMLName})
		}
	}
	return []webdav.Propstat{ps}, nil
}
