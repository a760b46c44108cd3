package httpsig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The OCM profile of RFC 9421.
const (
	ocmTag = "ocm"
	// signLabel is the dictionary label of the signatures we make. The
	// label carries no meaning (verifiers look for tag="ocm"); this is the
	// one the OCM specification's examples use.
	signLabel = "sig1"
)

func component(name string) sfItem { return sfItem{bare: sfStr(name)} }

// SignRFC9421 signs req with k following the OCM profile of RFC 9421. It
// sets the body of req to body (Body, GetBody, ContentLength) and, for a
// request with a body (or a POST, PUT or PATCH), the Content-Digest
// (sha-256) and Content-Length fields; then Signature-Input and Signature
// covering "@method", "@target-uri", "content-digest" and "content-length"
// with created, keyid, alg and tag="ocm". req.URL must be absolute; the
// "@target-uri" is req.URL with req.Host, when set, as its authority. A
// previous RFC 9421 signature is replaced; a request already signed with
// the draft-cavage profile is refused, since both use the Signature field.
func SignRFC9421(req *http.Request, body []byte, k Key, now time.Time) error {
	alg, err := k.check()
	if err != nil {
		return err
	}
	if req == nil || req.URL == nil || !req.URL.IsAbs() || req.URL.Host == "" {
		return errors.New("httpsig: request URL must be absolute")
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	if req.Header.Get("Signature") != "" && len(req.Header.Values("Signature-Input")) == 0 {
		return errors.New("httpsig: request already carries a draft-cavage signature")
	}
	method := requestMethod(req)
	setBody(req, body)
	covered := []sfItem{component("@method"), component("@target-uri")}
	if len(body) > 0 || methodHasBody(method) {
		req.Header.Set("Content-Digest", contentDigest(body))
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
		covered = append(covered, component("content-digest"), component("content-length"))
	}
	params := sfParams{
		{"created", sfInt(now.Unix())},
		{"keyid", sfStr(k.ID)},
		{"alg", sfStr(string(alg))},
		{"tag", sfStr(ocmTag)},
	}
	msg, err := newRequestMessage(method, absoluteURI(req.URL.Scheme, hostOf(req), req.URL), req.Header)
	if err != nil {
		return err
	}
	base, err := signatureBase(msg, covered, params)
	if err != nil {
		return err
	}
	sig, err := signMessage(alg, k.Private, []byte(base))
	if err != nil {
		return fmt.Errorf("httpsig: sign: %w", err)
	}
	input := sfMember{isList: true, list: covered, params: params}
	req.Header.Set("Signature-Input", sfDict{{signLabel, input}}.String())
	req.Header.Set("Signature", sfDict{{signLabel, sfMember{item: sfItem{bare: sfByteSeq(sig)}}}}.String())
	return nil
}

// setBody makes body the body of req, replayable for redirects and retries.
func setBody(req *http.Request, body []byte) {
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		if !methodHasBody(requestMethod(req)) {
			req.Body, req.GetBody = nil, nil
		}
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// rfcSignature is the OCM signature picked out of Signature-Input and
// Signature.
type rfcSignature struct {
	label      string
	covered    []sfItem
	params     sfParams
	created    int64
	expires    int64
	hasExpires bool
	keyID      string
	alg        Algorithm // "" when the alg parameter is absent
	sig        []byte
}

// findOCMSignature returns the one signature tagged "ocm" in the given
// Signature-Input and Signature field values, whatever its label.
func findOCMSignature(inputField, sigField string) (*rfcSignature, error) {
	inputs, err := parseSFDictionary(inputField)
	if err != nil {
		return nil, fmt.Errorf("field Signature-Input: %w", err)
	}
	var found *rfcSignature
	for _, e := range inputs {
		params := e.val.params
		if !e.val.isList {
			params = e.val.item.params
		}
		if tag, ok := params.get("tag"); !ok || tag.kind != sfString || tag.str != ocmTag {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w: more than one signature tagged %q (%q and %q)", ErrInvalidSignature, ocmTag, found.label, e.key)
		}
		if !e.val.isList {
			return nil, fmt.Errorf("%w: Signature-Input %q is not an inner list", ErrMalformed, e.key)
		}
		found = &rfcSignature{label: e.key, covered: e.val.list, params: params}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no signature tagged %q", ErrNoSignature, ocmTag)
	}
	for _, c := range found.covered {
		if c.bare.kind != sfString {
			return nil, fmt.Errorf("%w: covered component is not a string", ErrMalformed)
		}
	}
	if v, ok := found.params.get("created"); !ok {
		return nil, fmt.Errorf("%w: no created parameter", ErrMissingComponent)
	} else if v.kind != sfInteger {
		return nil, fmt.Errorf("%w: created is not an integer", ErrMalformed)
	} else {
		found.created = v.num
	}
	if v, ok := found.params.get("keyid"); !ok {
		return nil, fmt.Errorf("%w: no keyid parameter", ErrMissingComponent)
	} else if v.kind != sfString || v.str == "" || len(v.str) > maxKeyIDLen {
		return nil, fmt.Errorf("%w: keyid must be a string of 1 to %d characters", ErrMalformed, maxKeyIDLen)
	} else {
		found.keyID = v.str
	}
	if v, ok := found.params.get("alg"); ok {
		if v.kind != sfString {
			return nil, fmt.Errorf("%w: alg is not a string", ErrMalformed)
		}
		found.alg = Algorithm(v.str)
	}
	if v, ok := found.params.get("expires"); ok {
		if v.kind != sfInteger {
			return nil, fmt.Errorf("%w: expires is not an integer", ErrMalformed)
		}
		found.expires, found.hasExpires = v.num, true
	}
	sigs, err := parseSFDictionary(sigField)
	if err != nil {
		return nil, fmt.Errorf("field Signature: %w", err)
	}
	m, ok := sigs.get(found.label)
	if !ok {
		return nil, fmt.Errorf("%w: no Signature for label %q", ErrMalformed, found.label)
	}
	if m.isList || m.item.bare.kind != sfBytes || len(m.item.bare.bytes) == 0 {
		return nil, fmt.Errorf("%w: Signature %q is not a byte sequence", ErrMalformed, found.label)
	}
	found.sig = m.item.bare.bytes
	return found, nil
}

// covers reports whether s covers the plain component name.
func (s *rfcSignature) covers(name string) bool {
	for _, c := range s.covered {
		if c.bare.str == name && len(c.params) == 0 {
			return true
		}
	}
	return false
}

func verifyRFC9421(ctx context.Context, req *http.Request, body []byte, r KeyResolver, o VerifyOptions) (*Verified, error) {
	s, err := findOCMSignature(joinedField(req.Header, "Signature-Input"), joinedField(req.Header, "Signature"))
	if err != nil {
		return nil, err
	}
	required := []string{"@method", "@target-uri"}
	if len(body) > 0 {
		required = append(required, "content-digest", "content-length")
	}
	for _, name := range required {
		if !s.covers(name) {
			return nil, fmt.Errorf("%w: signature does not cover %q", ErrMissingComponent, name)
		}
	}

	now := o.Now()
	created := time.Unix(s.created, 0)
	if err := checkFreshness("created", created, now, o.MaxSkew); err != nil {
		return nil, err
	}
	if s.hasExpires && !now.Before(time.Unix(s.expires, 0)) {
		return nil, fmt.Errorf("%w: signature expired at %d", ErrExpired, s.expires)
	}

	if s.covers("content-digest") || len(body) > 0 {
		field := joinedField(req.Header, "Content-Digest")
		if field == "" {
			return nil, fmt.Errorf("%w: no Content-Digest field", ErrMissingComponent)
		}
		if err := checkContentDigest(field, body); err != nil {
			return nil, err
		}
	}
	if s.covers("content-length") {
		if cl := joinedField(req.Header, "Content-Length"); cl != strconv.Itoa(len(body)) {
			return nil, fmt.Errorf("%w: Content-Length %q for a body of %d bytes", ErrDigestMismatch, cl, len(body))
		}
	}

	if s.alg != "" && !s.alg.Supported() {
		return nil, fmt.Errorf("%w: unsupported alg %q", ErrInvalidSignature, s.alg)
	}
	pub, keyAlg, err := resolve(ctx, r, s.keyID, true)
	if err != nil {
		return nil, err
	}
	var algs []Algorithm
	switch {
	case s.alg != "" && keyAlg != "" && s.alg != keyAlg:
		return nil, fmt.Errorf("%w: alg %q but the key is published for %q", ErrInvalidSignature, s.alg, keyAlg)
	case s.alg != "":
		if !keyFits(s.alg, pub) {
			return nil, fmt.Errorf("%w: alg %q does not fit a %T key", ErrInvalidSignature, s.alg, pub)
		}
		algs = []Algorithm{s.alg}
	case keyAlg != "":
		algs = []Algorithm{keyAlg}
	default:
		algs = candidateAlgorithms(pub)
	}

	msg, err := newRequestMessage(requestMethod(req), targetURI(req, o.TargetURI), req.Header)
	if err != nil {
		return nil, err
	}
	base, err := signatureBase(msg, s.covered, s.params)
	if err != nil {
		return nil, err
	}
	alg, err := verifyAny(algs, pub, []byte(base), s.sig)
	if err != nil {
		return nil, err
	}
	if o.Replay != nil && o.Replay.seen(replayID(ProfileRFC9421, s.keyID, base), now, created.Add(o.MaxSkew)) {
		return nil, fmt.Errorf("%w: signature %q by %q", ErrReplay, s.label, s.keyID)
	}
	return &Verified{KeyID: s.keyID, Profile: ProfileRFC9421, Alg: alg, Created: created}, nil
}
