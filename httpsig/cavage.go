package httpsig

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The draft-cavage-http-signatures-12 profile as Nextcloud speaks it.

// cavageHeaders is what we sign, in Nextcloud's order.
var cavageHeaders = []string{"(request-target)", "content-length", "date", "digest", "host"}

const (
	maxCavageLen     = 8 << 10
	maxCavageHeaders = 32
)

// SignCavage signs req with an RSA key following the draft-cavage profile
// Nextcloud verifies: it sets the body of req to body, the Date, Digest
// (SHA-256) and Content-Length fields, and
//
//	Signature: keyId="<keyID>",algorithm="rsa-sha256",headers="(request-target) content-length date digest host",signature="..."
//
// (without content-length for a bodiless GET, HEAD or DELETE). req.URL must
// be absolute. A request that already carries an RFC 9421 signature is
// refused, since both profiles use the Signature field.
func SignCavage(req *http.Request, body []byte, keyID string, priv *rsa.PrivateKey, now time.Time) error {
	if priv == nil {
		return errors.New("httpsig: no RSA private key")
	}
	if err := checkPublicKey(&priv.PublicKey); err != nil {
		return err
	}
	if keyID == "" || len(keyID) > maxKeyIDLen || !validSFString(keyID) || strings.ContainsAny(keyID, `"\`) {
		return errors.New("httpsig: key id must be 1 to 1024 printable ASCII characters without quotes")
	}
	if req == nil || req.URL == nil || !req.URL.IsAbs() || req.URL.Host == "" {
		return errors.New("httpsig: request URL must be absolute")
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	if len(req.Header.Values("Signature-Input")) > 0 {
		return errors.New("httpsig: request already carries an RFC 9421 signature")
	}
	method := requestMethod(req)
	setBody(req, body)
	req.Header.Set("Date", now.UTC().Format(http.TimeFormat))
	req.Header.Set("Digest", legacyDigest(body))
	headers := cavageHeaders
	if len(body) > 0 || methodHasBody(method) {
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	} else {
		headers = []string{"(request-target)", "date", "digest", "host"}
	}
	cs := &cavageSig{headers: headers}
	target, err := url.Parse(absoluteURI(req.URL.Scheme, hostOf(req), req.URL))
	if err != nil {
		return fmt.Errorf("httpsig: request URL: %w", err)
	}
	signing, err := cavageSigningString(method, target, req.Header, cs)
	if err != nil {
		return err
	}
	sig, err := signMessage(AlgRSAV15SHA256, priv, []byte(signing))
	if err != nil {
		return fmt.Errorf("httpsig: sign: %w", err)
	}
	req.Header.Set("Signature", fmt.Sprintf(`keyId="%s",algorithm="rsa-sha256",headers="%s",signature="%s"`,
		keyID, strings.Join(headers, " "), base64.StdEncoding.EncodeToString(sig)))
	return nil
}

// cavageSig is a parsed draft-cavage Signature field.
type cavageSig struct {
	keyID      string
	algorithm  string // lower case; "" when absent
	headers    []string
	signature  []byte
	created    int64
	hasCreated bool
	expires    int64
	hasExpires bool
}

func (cs *cavageSig) covers(name string) bool {
	for _, h := range cs.headers {
		if h == name {
			return true
		}
	}
	return false
}

// looksCavage reports whether a Signature field value is in the
// draft-cavage form (which RFC 9421 dictionaries, with lower-case keys,
// never are).
func looksCavage(v string) bool {
	return strings.Contains(v, "keyId=") || strings.Contains(strings.ToLower(v), "keyid=\"")
}

func cavageErr(format string, args ...any) error {
	return fmt.Errorf("%w: draft-cavage Signature: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// parseCavage parses a draft-cavage Signature field value: comma separated
// name=value pairs, values quoted or (for created, expires) bare integers.
func parseCavage(v string) (*cavageSig, error) {
	if len(v) > maxCavageLen {
		return nil, cavageErr("%d bytes is too long", len(v))
	}
	pairs := map[string]string{}
	i := 0
	skip := func() {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
	}
	for {
		skip()
		if i >= len(v) {
			break
		}
		start := i
		for i < len(v) && (isAlpha(v[i]) || isDigit(v[i]) || v[i] == '-' || v[i] == '_') {
			i++
		}
		name := strings.ToLower(v[start:i])
		if name == "" || i >= len(v) || v[i] != '=' {
			return nil, cavageErr("expected name= at offset %d", start)
		}
		i++
		var val strings.Builder
		if i < len(v) && v[i] == '"' {
			i++
			closed := false
			for i < len(v) {
				c := v[i]
				i++
				if c == '\\' && i < len(v) {
					c = v[i]
					i++
				} else if c == '"' {
					closed = true
					break
				}
				if c < 0x20 || c == 0x7f {
					return nil, cavageErr("control character in value")
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, cavageErr("unterminated quoted value")
			}
		} else {
			start := i
			for i < len(v) && isDigit(v[i]) {
				i++
			}
			if i == start {
				return nil, cavageErr("value of %s is neither quoted nor a number", name)
			}
			val.WriteString(v[start:i])
		}
		if _, dup := pairs[name]; dup {
			return nil, cavageErr("%s given twice", name)
		}
		pairs[name] = val.String()
		skip()
		if i >= len(v) {
			break
		}
		if v[i] != ',' {
			return nil, cavageErr("expected ',' at offset %d", i)
		}
		i++
	}

	cs := &cavageSig{keyID: pairs["keyid"], algorithm: strings.ToLower(pairs["algorithm"])}
	if cs.keyID == "" || len(cs.keyID) > maxKeyIDLen {
		return nil, cavageErr("keyId must have 1 to %d characters", maxKeyIDLen)
	}
	sig, ok := pairs["signature"]
	if !ok {
		return nil, cavageErr("no signature")
	}
	b, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(b) == 0 {
		return nil, cavageErr("signature is not base64")
	}
	cs.signature = b
	if h, ok := pairs["headers"]; ok {
		cs.headers = strings.Fields(strings.ToLower(h))
	} else {
		cs.headers = []string{"(created)"} // the draft's default
	}
	if len(cs.headers) == 0 || len(cs.headers) > maxCavageHeaders {
		return nil, cavageErr("headers must list 1 to %d names", maxCavageHeaders)
	}
	for _, p := range []struct {
		name string
		n    *int64
		has  *bool
	}{{"created", &cs.created, &cs.hasCreated}, {"expires", &cs.expires, &cs.hasExpires}} {
		s, ok := pairs[p.name]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, cavageErr("%s is not an integer", p.name)
		}
		*p.n, *p.has = n, true
	}
	return cs, nil
}

// cavageSigningString builds the string a draft-cavage signature covers.
func cavageSigningString(method string, target *url.URL, h http.Header, cs *cavageSig) (string, error) {
	var b strings.Builder
	for i, name := range cs.headers {
		var v string
		switch name {
		case "(request-target)":
			v = strings.ToLower(method) + " " + target.RequestURI()
		case "(created)":
			if !cs.hasCreated {
				return "", missing("(created) without a created parameter")
			}
			v = strconv.FormatInt(cs.created, 10)
		case "(expires)":
			if !cs.hasExpires {
				return "", missing("(expires) without an expires parameter")
			}
			v = strconv.FormatInt(cs.expires, 10)
		case "host":
			v = target.Host
		default:
			lines := h.Values(name)
			if len(lines) == 0 {
				return "", missing("header field %s", name)
			}
			vals := make([]string, len(lines))
			for j, l := range lines {
				vals[j] = strings.Trim(l, " \t")
			}
			v = strings.Join(vals, ", ")
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(v)
	}
	return b.String(), nil
}

func verifyCavage(ctx context.Context, req *http.Request, body []byte, r KeyResolver, o VerifyOptions) (*Verified, error) {
	fields := req.Header.Values("Signature")
	if len(fields) != 1 {
		return nil, cavageErr("%d Signature fields", len(fields))
	}
	cs, err := parseCavage(fields[0])
	if err != nil {
		return nil, err
	}
	required := []string{"(request-target)", "host", "date"}
	if len(body) > 0 {
		required = append(required, "digest")
	}
	for _, name := range required {
		if !cs.covers(name) {
			return nil, fmt.Errorf("%w: signature does not cover %q", ErrMissingComponent, name)
		}
	}

	now := o.Now()
	dateField := req.Header.Get("Date")
	if dateField == "" {
		return nil, fmt.Errorf("%w: no Date field", ErrMissingComponent)
	}
	date, err := http.ParseTime(dateField)
	if err != nil {
		return nil, fmt.Errorf("%w: Date %q", ErrMalformed, dateField)
	}
	if err := checkFreshness("Date", date, now, o.MaxSkew); err != nil {
		return nil, err
	}
	if cs.hasCreated {
		if err := checkFreshness("created", time.Unix(cs.created, 0), now, o.MaxSkew); err != nil {
			return nil, err
		}
	}
	if cs.hasExpires && !now.Before(time.Unix(cs.expires, 0)) {
		return nil, fmt.Errorf("%w: signature expired at %d", ErrExpired, cs.expires)
	}

	if cs.covers("digest") || len(body) > 0 {
		field := joinedField(req.Header, "Digest")
		if field == "" {
			return nil, fmt.Errorf("%w: no Digest field", ErrMissingComponent)
		}
		if err := checkLegacyDigest(field, body); err != nil {
			return nil, err
		}
	}
	if cs.covers("content-length") {
		if cl := joinedField(req.Header, "Content-Length"); cl != strconv.Itoa(len(body)) {
			return nil, fmt.Errorf("%w: Content-Length %q for a body of %d bytes", ErrDigestMismatch, cl, len(body))
		}
	}

	var algs []Algorithm
	switch cs.algorithm {
	case "rsa-sha256":
		algs = []Algorithm{AlgRSAV15SHA256}
	case "rsa-sha512":
		// Nextcloud 31 and later sign with this by default.
		algs = []Algorithm{AlgCavageRSASHA512}
	case "hs2019", "":
		// hs2019 leaves the algorithm to the key; Nextcloud-style RSA
		// keys sign rsa-sha256 or rsa-sha512, some others RSASSA-PSS with
		// SHA-512.
		algs = []Algorithm{AlgRSAV15SHA256, AlgCavageRSASHA512, AlgRSAPSSSHA512, AlgEd25519}
	case "ed25519":
		algs = []Algorithm{AlgEd25519}
	default:
		return nil, fmt.Errorf("%w: unsupported algorithm %q", ErrInvalidSignature, cs.algorithm)
	}
	pub, _, err := resolve(ctx, r, cs.keyID, false)
	if err != nil {
		return nil, err
	}
	var fit []Algorithm
	for _, a := range algs {
		if keyFits(a, pub) {
			fit = append(fit, a)
		}
	}
	if len(fit) == 0 {
		return nil, fmt.Errorf("%w: algorithm %q does not fit a %T key", ErrInvalidSignature, cs.algorithm, pub)
	}
	if _, isEd := pub.(ed25519.PublicKey); !isEd && cs.algorithm == "" {
		fit = fit[:1] // an unnamed algorithm with an RSA key is rsa-sha256
	}

	target, err := url.Parse(targetURI(req, o.TargetURI))
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("%w: target URI", ErrMalformed)
	}
	signing, err := cavageSigningString(requestMethod(req), target, req.Header, cs)
	if err != nil {
		return nil, err
	}
	alg, err := verifyAny(fit, pub, []byte(signing), cs.signature)
	if err != nil {
		return nil, err
	}
	if o.Replay != nil && o.Replay.seen(replayID(ProfileCavage, cs.keyID, signing), now, date.Add(o.MaxSkew)) {
		return nil, fmt.Errorf("%w: draft-cavage signature by %q", ErrReplay, cs.keyID)
	}
	return &Verified{KeyID: cs.keyID, Profile: ProfileCavage, Alg: alg, Created: date}, nil
}
