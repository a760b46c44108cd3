package ocmtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/webdav"
)

// Dialects: the Share Creation Notification bodies of real senders.
const (
	// DialectLegacyOptions is the OCM 1.0 form with spec field names:
	// {"name":"webdav","options":{"sharedSecret","permissions"}}, no uri
	// (the share is read at the WebDAV root with Basic "<secret>:").
	DialectLegacyOptions = "legacy-options"
	// DialectWebDAV is {"name":"webdav","webdav":{uri,sharedSecret,...}}.
	DialectWebDAV = "webdav"
	// DialectMulti is the OCM 1.4 form {"name":"multi","webdav":{...}}.
	DialectMulti = "multi"
	// DialectProtocolObject is {"webdav":{...}} without a name.
	DialectProtocolObject = "protocol-object"
	// DialectNextcloud is Nextcloud's exact body (CloudFederationShare):
	// sharedBy/sharedByDisplayName, no sender, resourceType "file" even
	// for folders, shareWith with the receiver's scheme, a permissions
	// property name as a string, no uri, PHP JSON escaping.
	DialectNextcloud = "nextcloud"
	// DialectNextcloudSender is Nextcloud 31 and later: as
	// DialectNextcloud plus sender/senderDisplayName copies.
	DialectNextcloudSender = "nextcloud-sender"
	// DialectOCIS is oCIS/OpenCloud (owncloud/opencloud reva): multi with
	// an empty options object, "url" instead of "uri", the receiver's
	// scheme inside shareWith, UUID user ids, a trailing newline.
	DialectOCIS = "ocis"
	// DialectReva is CERNBox (cs3org/reva): multi with an empty options
	// object, absolute uri, empty code/description/ownerDisplayName and
	// expiration 0 always present.
	DialectReva = "reva"
	// DialectOCMGo is opencloudmesh-go: multi, uri relative to the WebDAV
	// root, must-exchange-token, base64url user ids, files only.
	DialectOCMGo = "ocmgo"
)

// Dialects lists every dialect CreateShare speaks.
var Dialects = []string{DialectLegacyOptions, DialectWebDAV, DialectMulti, DialectProtocolObject,
	DialectNextcloud, DialectNextcloudSender, DialectOCIS, DialectReva, DialectOCMGo}

// nextcloudPermissions is what Nextcloud puts in options.permissions.
const nextcloudPermissions = "{http://open-cloud-mesh.org/ns}share-permissions"

// ErrCapabilityMismatch: the receiver does not advertise what the share
// needs (opencloudmesh-go's peer_capability_mismatch).
var ErrCapabilityMismatch = errors.New("ocmtest: peer_capability_mismatch")

// ShareRequest describes a share to create.
type ShareRequest struct {
	// To is the receiver's OCM address, "bob@127.0.0.1:9200".
	To string
	// ReceiverBase overrides where the receiver is found
	// ("http://127.0.0.1:9200"); by default https://<host> is tried, then
	// http://<host> for loopback hosts.
	ReceiverBase string
	// Path is the file or folder to share, relative to the root directory.
	Path string
	// Name defaults to the base name of Path.
	Name        string
	Description string
	// Dialect is one of Dialects, default DialectMulti.
	Dialect string
	// AbsoluteURI sends an absolute webdav uri (spec dialects).
	AbsoluteURI bool
	// MustExchangeToken adds the must-exchange-token requirement; the
	// share then opens only with access tokens. It is added anyway when
	// the receiver lists the must-exchange-token criterion (spec dialects,
	// reva, ocmgo) and always for DialectOCMGo.
	MustExchangeToken bool
	// LegacyCode sends a top-level code (older drafts) and no sharedSecret.
	LegacyCode bool
	// Permissions default to ["read"]; without "write" the share refuses writes.
	Permissions []string
	Expiration  time.Time
	// Signing is SignRFC9421, SignCavage, SignNone or
	// SignRFC9421Unpublished; "" takes the dialect's habit (cavage for
	// Nextcloud, none for oCIS and reva, RFC 9421 otherwise).
	Signing string
	// ProviderID overrides the generated providerId (to test duplicates).
	ProviderID string
	// BasicAuth also accepts Basic "<secret>:" (always on for the legacy
	// dialects, which offer nothing else).
	BasicAuth bool
}

// StatusError is returned when a receiver answers with an unexpected status.
type StatusError struct {
	Op     string
	URL    string
	Status int
	Body   []byte
}

func (e *StatusError) Error() string {
	b := string(e.Body)
	if len(b) > 300 {
		b = b[:300] + "..."
	}
	return fmt.Sprintf("ocmtest: %s: %s answered %d: %s", e.Op, e.URL, e.Status, strings.TrimSpace(b))
}

// Share returns a copy of the share with the given id.
func (s *Server) Share(id string) (Share, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.shares[id]
	if !ok {
		return Share{}, false
	}
	return copyShare(rec.Share), true
}

// Shares returns copies of every share made, in no particular order.
func (s *Server) Shares() []Share {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Share, 0, len(s.shares))
	for _, rec := range s.shares {
		out = append(out, copyShare(rec.Share))
	}
	return out
}

func copyShare(sh Share) Share {
	sh.Permissions = slices.Clone(sh.Permissions)
	sh.Requirements = slices.Clone(sh.Requirements)
	sh.Body = slices.Clone(sh.Body)
	return sh
}

// CreateShare shares a file or folder with an OCM address: it discovers
// the receiver, POSTs the dialect's body to <endPoint>/shares, signed as
// asked, and returns the share when the receiver answers 201. Any other
// answer is a *StatusError carrying the status and body; the share is then
// forgotten.
func (s *Server) CreateShare(ctx context.Context, req ShareRequest) (*Share, error) {
	rec, err := s.prepareShare(req)
	if err != nil {
		return nil, err
	}
	base, disc, err := s.discoverReceiver(ctx, rec.To.Host, req.ReceiverBase)
	if err != nil {
		return nil, err
	}
	rec.ReceiverBase = base
	rec.ReceiverEndPoint = strings.TrimSuffix(disc.EndPoint, "/")
	switch rec.Dialect {
	case DialectMulti, DialectWebDAV, DialectProtocolObject, DialectReva, DialectOCMGo:
		if disc.hasCriterion(requireExchangeToken) {
			rec.MustExchangeToken = true
		}
	}
	if rec.Dialect == DialectOCMGo && rec.MustExchangeToken &&
		(!disc.hasCapability("exchange-token") || disc.TokenEndPoint == "") {
		return nil, fmt.Errorf("%w: receiver does not advertise exchange-token with a tokenEndPoint", ErrCapabilityMismatch)
	}
	if err := s.finishShare(rec); err != nil {
		return nil, err
	}
	s.insertShare(rec)
	url := rec.ReceiverEndPoint + "/shares"
	resp, body, err := s.post(ctx, url, rec.Body, rec.Signing)
	if err != nil {
		s.forgetShare(rec.ID)
		return nil, fmt.Errorf("ocmtest: create share: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		s.forgetShare(rec.ID)
		return nil, &StatusError{Op: "create share", URL: url, Status: resp.StatusCode, Body: body}
	}
	s.log.Info("ocmtest: share created", "share", rec.Share)
	sh, _ := s.Share(rec.ID)
	return &sh, nil
}

// RegisterShare makes a share without sending it anywhere: its WebDAV tree
// and token endpoint work, and Body holds what CreateShare would send
// (towards ReceiverBase, or https://<host> of To). Tests use it to check
// access rules or to send hand-edited bodies with SendRaw.
func (s *Server) RegisterShare(req ShareRequest) (*Share, error) {
	rec, err := s.prepareShare(req)
	if err != nil {
		return nil, err
	}
	rec.ReceiverBase = strings.TrimSuffix(req.ReceiverBase, "/")
	if rec.ReceiverBase == "" {
		rec.ReceiverBase = "https://" + rec.To.Host
	}
	rec.ReceiverEndPoint = rec.ReceiverBase + "/ocm"
	if err := s.finishShare(rec); err != nil {
		return nil, err
	}
	s.insertShare(rec)
	sh, _ := s.Share(rec.ID)
	return &sh, nil
}

// prepareShare checks the request and fills what does not depend on the
// receiver.
func (s *Server) prepareShare(req ShareRequest) (*shareRec, error) {
	to, err := parseAddress(req.To)
	if err != nil {
		return nil, fmt.Errorf("ocmtest: share to: %w", err)
	}
	dialect := req.Dialect
	if dialect == "" {
		dialect = DialectMulti
	}
	if !slices.Contains(Dialects, dialect) {
		return nil, fmt.Errorf("ocmtest: unknown dialect %q", dialect)
	}
	p := filepath.Clean(filepath.FromSlash(req.Path))
	if req.Path == "" || !filepath.IsLocal(p) {
		return nil, fmt.Errorf("ocmtest: share path %q must be relative to the root directory", req.Path)
	}
	local := filepath.Join(s.dir, p)
	fi, err := os.Stat(local)
	if err != nil {
		return nil, fmt.Errorf("ocmtest: share path: %w", err)
	}
	legacy := dialect == DialectNextcloud || dialect == DialectNextcloudSender || dialect == DialectLegacyOptions
	if legacy && req.MustExchangeToken {
		return nil, fmt.Errorf("ocmtest: dialect %s cannot express must-exchange-token", dialect)
	}
	if req.LegacyCode && !slices.Contains([]string{DialectMulti, DialectWebDAV, DialectProtocolObject, DialectReva}, dialect) {
		return nil, fmt.Errorf("ocmtest: dialect %s sends no top-level code", dialect)
	}
	if dialect == DialectOCMGo && fi.IsDir() {
		return nil, errors.New("ocmtest: opencloudmesh-go shares single files only")
	}
	perms := slices.Clone(req.Permissions)
	if len(perms) == 0 {
		perms = []string{"read"}
	}
	signing := req.Signing
	if signing == "" {
		switch dialect {
		case DialectNextcloud, DialectNextcloudSender:
			signing = SignCavage
		case DialectOCIS, DialectReva, DialectLegacyOptions:
			signing = SignNone
		default:
			signing = SignRFC9421
		}
	}
	name := req.Name
	if name == "" {
		name = filepath.Base(local)
	}
	rec := &shareRec{ls: webdav.NewMemLS()}
	rec.Share = Share{
		ID:                newUUID(),
		ProviderID:        req.ProviderID,
		Name:              name,
		Path:              filepath.ToSlash(p),
		LocalPath:         local,
		IsDir:             fi.IsDir(),
		Dialect:           dialect,
		Signing:           signing,
		To:                to,
		Permissions:       perms,
		AllowBearerSecret: dialect != DialectNextcloud && dialect != DialectNextcloudSender,
		AllowBasic:        legacy || req.BasicAuth,
		RootAddressed:     legacy,
		MustExchangeToken: req.MustExchangeToken || dialect == DialectOCMGo,
		Expiration:        req.Expiration,
		State:             ShareStatePending,
	}
	rec.ResourceType = "file"
	if rec.IsDir && dialect != DialectNextcloud && dialect != DialectNextcloudSender {
		rec.ResourceType = "folder"
	}
	if rec.ProviderID == "" {
		switch dialect {
		case DialectNextcloud, DialectNextcloudSender:
			rec.ProviderID = strconv.FormatInt(100+s.nextSeq(), 10)
		default:
			rec.ProviderID = newUUID()
		}
	}
	if dialect == DialectOCMGo {
		// base64url of 32 random bytes, padded, as opencloudmesh-go makes them
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		rec.Secret = base64.URLEncoding.EncodeToString(b)
	} else {
		rec.Secret = randomToken()
	}
	if req.LegacyCode {
		rec.Code, rec.Secret = randomToken(), ""
	}
	rec.Description = req.Description
	s.setURI(rec, req.AbsoluteURI)
	return rec, nil
}

func (s *Server) setURI(rec *shareRec, absolute bool) {
	switch rec.Dialect {
	case DialectNextcloud, DialectNextcloudSender, DialectLegacyOptions:
		rec.URI = ""
	case DialectOCIS, DialectReva:
		rec.URI = s.base + WebDAVRoot + rec.ID
	default:
		rec.URI = rec.ID
		if absolute {
			rec.URI = s.base + WebDAVRoot + rec.ID
		}
	}
}

// finishShare settles the requirements and builds the body.
func (s *Server) finishShare(rec *shareRec) error {
	if rec.MustExchangeToken {
		rec.Requirements = []string{requireExchangeToken}
		rec.AllowBasic, rec.AllowBearerSecret = false, false
	}
	body, err := s.shareBody(&rec.Share)
	if err != nil {
		return fmt.Errorf("ocmtest: share body: %w", err)
	}
	rec.Body = body
	return nil
}

func (s *Server) insertShare(rec *shareRec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shares[rec.ID] = rec
	if rec.Secret != "" {
		s.bySecret[rec.Secret] = rec
	}
	if rec.Code != "" {
		s.byCode[rec.Code] = rec
	}
	s.broadcast()
}

func (s *Server) forgetShare(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.shares[id]
	if !ok {
		return
	}
	delete(s.shares, id)
	delete(s.bySecret, rec.Secret)
	delete(s.byCode, rec.Code)
	s.dropTokensLocked(id)
}

func (s *Server) nextSeq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ShareBody returns the JSON body a share is (or would be) sent with.
func (s *Server) shareBody(sh *Share) ([]byte, error) {
	me := s.opts.User + "@" + s.host
	receiverScheme := "https"
	if strings.HasPrefix(sh.ReceiverBase, "http://") {
		receiverScheme = "http"
	}
	var exp any
	if !sh.Expiration.IsZero() {
		exp = sh.Expiration.Unix()
	}
	switch sh.Dialect {
	case DialectNextcloud, DialectNextcloudSender:
		if strings.HasPrefix(s.base, "http://") {
			me = s.opts.User + "@" + s.base // Nextcloud keeps an http scheme in its cloud ids
		}
		body := object{
			{"shareWith", sh.To.User + "@" + receiverScheme + "://" + sh.To.Host},
			{"shareType", "user"},
			{"name", sh.Name},
			{"resourceType", sh.ResourceType},
			{"description", ""},
			{"providerId", sh.ProviderID},
			{"owner", me},
			{"ownerDisplayName", s.opts.User},
			{"sharedBy", me},
			{"sharedByDisplayName", s.opts.User},
		}
		if sh.Dialect == DialectNextcloudSender {
			body = append(body, kv{"sender", me}, kv{"senderDisplayName", s.opts.User})
		}
		body = append(body, kv{"protocol", object{
			{"name", "webdav"},
			{"options", object{{"sharedSecret", sh.Secret}, {"permissions", nextcloudPermissions}}},
		}})
		return phpJSON(body)

	case DialectOCIS:
		uid := s.userUUID()
		var expiration uint64
		if !sh.Expiration.IsZero() {
			expiration = uint64(sh.Expiration.Unix())
		}
		body := object{
			{"shareWith", sh.To.User + "@" + receiverScheme + "://" + sh.To.Host},
			{"name", sh.Name},
			{"description", sh.Description},
			{"providerId", sh.ProviderID},
			{"owner", uid + "@" + s.host},
			{"sender", uid + "@" + s.host},
			{"ownerDisplayName", ""},
			{"senderDisplayName", s.opts.DisplayName},
			{"shareType", "user"},
			{"expiration", expiration},
			{"resourceType", sh.ResourceType},
			{"protocol", object{
				{"name", "multi"},
				{"options", object{}},
				{"webdav", object{{"sharedSecret", sh.Secret}, {"permissions", sh.Permissions}, {"url", sh.URI}}},
			}},
		}
		b, err := goJSON(body)
		return append(b, '\n'), err

	case DialectReva:
		var expiration uint64
		if !sh.Expiration.IsZero() {
			expiration = uint64(sh.Expiration.Unix())
		}
		webdavObj := object{{"sharedSecret", sh.Secret}, {"permissions", sh.Permissions}}
		if len(sh.Requirements) > 0 {
			webdavObj = append(webdavObj, kv{"requirements", sh.Requirements})
		}
		webdavObj = append(webdavObj, kv{"uri", sh.URI})
		return goJSON(object{
			{"shareWith", sh.To.String()},
			{"name", sh.Name},
			{"description", sh.Description},
			{"providerId", sh.ProviderID},
			{"owner", me},
			{"sender", me},
			{"ownerDisplayName", ""},
			{"senderDisplayName", s.opts.DisplayName},
			{"code", sh.Code},
			{"shareType", "user"},
			{"resourceType", sh.ResourceType},
			{"expiration", expiration},
			{"protocol", object{{"name", "multi"}, {"options", object{}}, {"webdav", webdavObj}}},
		})

	case DialectOCMGo:
		id := base64.RawURLEncoding.EncodeToString([]byte(s.opts.User+"@"+s.host)) + "@" + s.host
		body := object{
			{"shareWith", sh.To.String()},
			{"name", sh.Name},
		}
		if d := sh.Description; d != "" {
			body = append(body, kv{"description", d})
		}
		body = append(body,
			kv{"providerId", sh.ProviderID},
			kv{"owner", id},
			kv{"sender", id},
			kv{"shareType", "user"},
			kv{"resourceType", sh.ResourceType})
		if exp != nil {
			body = append(body, kv{"expiration", exp})
		}
		webdavObj := object{{"uri", sh.URI}, {"sharedSecret", sh.Secret}, {"permissions", sh.Permissions}}
		if len(sh.Requirements) > 0 {
			webdavObj = append(webdavObj, kv{"requirements", sh.Requirements})
		}
		body = append(body, kv{"protocol", object{{"name", "multi"}, {"webdav", webdavObj}}})
		return goJSON(body)
	}

	// The spec dialects share everything but the protocol object.
	body := object{{"shareWith", sh.To.String()}, {"name", sh.Name}}
	if d := sh.Description; d != "" {
		body = append(body, kv{"description", d})
	}
	body = append(body,
		kv{"providerId", sh.ProviderID},
		kv{"owner", me},
		kv{"sender", me},
		kv{"ownerDisplayName", s.opts.DisplayName},
		kv{"senderDisplayName", s.opts.DisplayName},
		kv{"shareType", "user"},
		kv{"resourceType", sh.ResourceType})
	if exp != nil {
		body = append(body, kv{"expiration", exp})
	}
	if sh.Code != "" {
		body = append(body, kv{"code", sh.Code})
	}
	webdavObj := object{{"uri", sh.URI}}
	if sh.Secret != "" {
		webdavObj = append(webdavObj, kv{"sharedSecret", sh.Secret})
	}
	webdavObj = append(webdavObj, kv{"permissions", sh.Permissions})
	if len(sh.Requirements) > 0 {
		webdavObj = append(webdavObj, kv{"requirements", sh.Requirements})
	}
	var protocol object
	switch sh.Dialect {
	case DialectLegacyOptions:
		protocol = object{{"name", "webdav"}, {"options", object{{"sharedSecret", sh.Secret}, {"permissions", sh.Permissions}}}}
	case DialectWebDAV:
		protocol = object{{"name", "webdav"}, {"webdav", webdavObj}}
	case DialectProtocolObject:
		protocol = object{{"webdav", webdavObj}}
	default:
		protocol = object{{"name", "multi"}, {"webdav", webdavObj}}
	}
	body = append(body, kv{"protocol", protocol})
	return goJSON(body)
}

// userUUID is the stable UUID oCIS would give the local user.
func (s *Server) userUUID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ocisUser == "" {
		s.ocisUser = newUUID()
	}
	return s.ocisUser
}

// discoverReceiver fetches the receiver's discovery document.
func (s *Server) discoverReceiver(ctx context.Context, host, override string) (string, *discoveryDoc, error) {
	bases := []string{"https://" + host}
	if isLoopback(host) {
		bases = append(bases, "http://"+host)
	}
	if override != "" {
		bases = []string{strings.TrimSuffix(override, "/")}
	}
	var errs []error
	for _, base := range bases {
		body, err := s.get(ctx, base+pathWellKnown)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d, err := parseDiscovery(body)
		if err != nil {
			errs = append(errs, fmt.Errorf("discovery at %s: %w", base, err))
			continue
		}
		return base, d, nil
	}
	return "", nil, fmt.Errorf("ocmtest: discovering %s: %w", host, errors.Join(errs...))
}

// post sends a signed JSON POST and reads the answer.
func (s *Server) post(ctx context.Context, url string, body []byte, signing string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ocmtest")
	if err := s.SignRequest(req, body, signing); err != nil {
		return nil, nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return resp, nil, fmt.Errorf("reading the answer of %s: %w", url, err)
	}
	if len(b) > maxBody {
		return resp, nil, fmt.Errorf("answer of %s larger than %d bytes", url, maxBody)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, b, nil
}

// SendRaw POSTs a hand-made JSON body to receiverBase+path (e.g.
// "/ocm/shares"), signed as asked, and returns the answer with its body
// (also left readable in resp.Body).
func (s *Server) SendRaw(ctx context.Context, receiverBase, path string, body []byte, signing string) (*http.Response, []byte, error) {
	url := strings.TrimSuffix(receiverBase, "/") + path
	resp, b, err := s.post(ctx, url, body, signing)
	if err != nil {
		return nil, nil, fmt.Errorf("ocmtest: send raw: %w", err)
	}
	return resp, b, nil
}

// SendNotification sends a notification about a share to its receiver's
// /notifications, signed as the share was, and expects 201. A nil payload
// sends the dialect's usual one.
func (s *Server) SendNotification(ctx context.Context, shareID, notificationType string, payload map[string]any) error {
	sh, ok := s.Share(shareID)
	if !ok {
		return fmt.Errorf("ocmtest: no share %q", shareID)
	}
	nextcloud := sh.Dialect == DialectNextcloud || sh.Dialect == DialectNextcloudSender
	var inner any = payload
	if payload == nil {
		switch {
		case nextcloud && notificationType == ShareUnshared:
			// Nextcloud's own spelling, typo included.
			inner = object{{"sharedSecret", sh.Secret}, {"messgage", "file is no longer shared with you"}}
		case notificationType == ShareUnshared:
			inner = object{{"message", "the share was removed"}}
		default:
			inner = object{{"message", strings.ToLower(strings.ReplaceAll(notificationType, "_", " "))}}
		}
	}
	body := object{
		{"notificationType", notificationType},
		{"resourceType", sh.ResourceType},
		{"providerId", sh.ProviderID},
		{"notification", inner},
	}
	encode := goJSON
	if nextcloud {
		encode = phpJSON
	}
	b, err := encode(body)
	if err != nil {
		return fmt.Errorf("ocmtest: notification body: %w", err)
	}
	url := sh.ReceiverEndPoint + "/notifications"
	resp, rb, err := s.post(ctx, url, b, sh.Signing)
	if err != nil {
		return fmt.Errorf("ocmtest: notification: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return &StatusError{Op: "notification " + notificationType, URL: url, Status: resp.StatusCode, Body: rb}
	}
	return nil
}

// Unshare ends a share (its secret and tokens stop working at once) and
// sends SHARE_UNSHARED to the receiver.
func (s *Server) Unshare(ctx context.Context, shareID string) error {
	s.mu.Lock()
	rec, ok := s.shares[shareID]
	if ok {
		rec.State = ShareStateUnshared
		s.dropTokensLocked(shareID)
		s.broadcast()
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("ocmtest: no share %q", shareID)
	}
	return s.SendNotification(ctx, shareID, ShareUnshared, nil)
}
