package ocmtest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The peer's own HTTP signatures, both profiles, written from the texts
// (RFC 9421 with the OCM profile, draft-cavage-http-signatures-12 as
// Nextcloud speaks it) and checked against captured real traffic in the
// tests. It deliberately shares no code with the product's httpsig.

var (
	errNoSignature  = errors.New("no signature")
	errBadSignature = errors.New("invalid signature")
)

// maxSkew is how far a signature's time may be from the peer's clock.
const maxSkew = 5 * time.Minute

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func sum256(b []byte) []byte { h := sha256.Sum256(b); return h[:] }
func sum512(b []byte) []byte { h := sha512.Sum512(b); return h[:] }

// signRFC9421 signs req as opencloudmesh-go and ocm-agent do: label
// "sig1", components @method @target-uri content-digest content-length,
// created, keyid, alg ed25519, tag ocm.
func signRFC9421(req *http.Request, body []byte, keyID string, priv ed25519.PrivateKey, now time.Time) error {
	req.Header.Set("Content-Digest", "sha-256=:"+b64(sum256(body))+":")
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.ContentLength = int64(len(body))
	params := fmt.Sprintf(`("@method" "@target-uri" "content-digest" "content-length");created=%d;keyid=%q;alg="ed25519";tag="ocm"`,
		now.Unix(), keyID)
	base := "\"@method\": " + req.Method + "\n" +
		"\"@target-uri\": " + req.URL.String() + "\n" +
		"\"content-digest\": " + req.Header.Get("Content-Digest") + "\n" +
		"\"content-length\": " + strconv.Itoa(len(body)) + "\n" +
		"\"@signature-params\": " + params
	req.Header.Set("Signature-Input", "sig1="+params)
	req.Header.Set("Signature", "sig1=:"+b64(ed25519.Sign(priv, []byte(base)))+":")
	return nil
}

// signCavage signs req the way Nextcloud does: Date, Digest and
// "(request-target) content-length date digest host", with rsa-sha512 and
// a SHA-512 Digest (Nextcloud 31 and later) or rsa-sha256 and SHA-256.
func signCavage(req *http.Request, body []byte, keyID string, priv *rsa.PrivateKey, sha512 bool, now time.Time) error {
	algorithm, digest, hash, sum := "rsa-sha256", "SHA-256="+b64(sum256(body)), crypto.SHA256, sum256
	if sha512 {
		algorithm, digest, hash, sum = "rsa-sha512", "SHA-512="+b64(sum512(body)), crypto.SHA512, sum512
	}
	date := now.UTC().Format(http.TimeFormat)
	req.Header.Set("Date", date)
	req.Header.Set("Digest", digest)
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.ContentLength = int64(len(body))
	signing := "(request-target): " + strings.ToLower(req.Method) + " " + req.URL.RequestURI() + "\n" +
		"content-length: " + strconv.Itoa(len(body)) + "\n" +
		"date: " + date + "\n" +
		"digest: " + digest + "\n" +
		"host: " + req.URL.Host
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, hash, sum([]byte(signing)))
	if err != nil {
		return err
	}
	req.Header.Set("Signature", fmt.Sprintf(`keyId="%s",algorithm="%s",headers="(request-target) content-length date digest host",signature="%s"`,
		keyID, algorithm, b64(sig)))
	return nil
}

// keyLookup finds the public key a keyid names.
type keyLookup func(keyID string) (crypto.PublicKey, error)

// verified is a signature that verified.
type verified struct {
	KeyID   string
	Profile string
}

// verifyOptions tune verifyRequest.
type verifyOptions struct {
	targetURI  string // the absolute URL the request was sent to
	now        time.Time
	cavageOnly bool // read every Signature field as draft-cavage, as Nextcloud does
	replay     *replayCache
}

// verifyRequest checks the signature of a received request.
func verifyRequest(r *http.Request, body []byte, keys keyLookup, o verifyOptions) (*verified, error) {
	if r.Header.Get("Signature-Input") != "" && !o.cavageOnly {
		return verifyRFC9421(r, body, keys, o)
	}
	if r.Header.Get("Signature") != "" {
		return verifyCavage(r, body, keys, o)
	}
	return nil, errNoSignature
}

// splitTop splits s at sep outside quotes and parentheses.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`), `\\`, `\`)
	}
	return s
}

func verifyRFC9421(r *http.Request, body []byte, keys keyLookup, o verifyOptions) (*verified, error) {
	type entry struct {
		label, inner string
		components   []string
		params       map[string]string
	}
	var chosen *entry
	for _, member := range splitTop(strings.Join(r.Header.Values("Signature-Input"), ","), ',') {
		label, inner, ok := strings.Cut(strings.TrimSpace(member), "=")
		if !ok || !strings.HasPrefix(inner, "(") {
			return nil, fmt.Errorf("%w: Signature-Input member %q", errBadSignature, member)
		}
		end := strings.IndexByte(inner, ')')
		if end < 0 {
			return nil, fmt.Errorf("%w: unclosed component list", errBadSignature)
		}
		e := &entry{label: label, inner: inner, params: map[string]string{}}
		for _, c := range strings.Fields(inner[1:end]) {
			e.components = append(e.components, unquote(c))
		}
		for _, p := range splitTop(inner[end+1:], ';') {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok {
				e.params[k] = unquote(v)
			}
		}
		if chosen == nil || (e.params["tag"] == "ocm" && chosen.params["tag"] != "ocm") {
			chosen = e
		}
	}
	if chosen == nil {
		return nil, errNoSignature
	}
	var sigB64 string
	for _, member := range splitTop(strings.Join(r.Header.Values("Signature"), ","), ',') {
		if label, v, ok := strings.Cut(strings.TrimSpace(member), "="); ok && label == chosen.label {
			sigB64 = strings.Trim(v, ":")
		}
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%w: no signature for label %s", errBadSignature, chosen.label)
	}
	created, err := strconv.ParseInt(chosen.params["created"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: no created", errBadSignature)
	}
	if d := o.now.Sub(time.Unix(created, 0)); d > maxSkew || d < -maxSkew {
		return nil, fmt.Errorf("%w: created is %s away", errBadSignature, d)
	}
	covered := map[string]bool{}
	var base strings.Builder
	for _, c := range chosen.components {
		covered[c] = true
		var v string
		switch c {
		case "@method":
			v = r.Method
		case "@target-uri":
			v = o.targetURI
		case "@authority":
			v = strings.ToLower(r.Host)
		case "@path":
			v = r.URL.EscapedPath()
		case "@query":
			v = "?" + r.URL.RawQuery
		default:
			if strings.HasPrefix(c, "@") {
				return nil, fmt.Errorf("%w: component %s is not supported here", errBadSignature, c)
			}
			vals := r.Header.Values(c)
			if len(vals) == 0 {
				return nil, fmt.Errorf("%w: no %s field", errBadSignature, c)
			}
			for i := range vals {
				vals[i] = strings.TrimSpace(vals[i])
			}
			v = strings.Join(vals, ", ")
		}
		fmt.Fprintf(&base, "%q: %s\n", c, v)
	}
	base.WriteString(`"@signature-params": ` + chosen.inner)
	for _, need := range []string{"@method", "@target-uri"} {
		if !covered[need] {
			return nil, fmt.Errorf("%w: %s is not covered", errBadSignature, need)
		}
	}
	if len(body) > 0 {
		if !covered["content-digest"] {
			return nil, fmt.Errorf("%w: the body is not covered", errBadSignature)
		}
		if err := checkContentDigest(r.Header.Get("Content-Digest"), body); err != nil {
			return nil, err
		}
	}
	keyID := chosen.params["keyid"]
	pub, err := keys(keyID)
	if err != nil {
		return nil, err
	}
	ok := false
	switch k := pub.(type) {
	case ed25519.PublicKey:
		ok = (chosen.params["alg"] == "" || chosen.params["alg"] == "ed25519") && ed25519.Verify(k, []byte(base.String()), sig)
	case *rsa.PublicKey:
		switch chosen.params["alg"] {
		case "rsa-v1_5-sha256":
			ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, sum256([]byte(base.String())), sig) == nil
		case "rsa-pss-sha512", "":
			ok = rsa.VerifyPSS(k, crypto.SHA512, sum512([]byte(base.String())), sig, nil) == nil
		}
	}
	if !ok {
		return nil, fmt.Errorf("%w: RFC 9421 signature by %q does not verify", errBadSignature, keyID)
	}
	if o.replay != nil && !o.replay.first(sigB64, o.now) {
		return nil, fmt.Errorf("%w: replayed", errBadSignature)
	}
	return &verified{KeyID: keyID, Profile: SignRFC9421}, nil
}

func checkContentDigest(field string, body []byte) error {
	for _, member := range splitTop(field, ',') {
		alg, v, ok := strings.Cut(strings.TrimSpace(member), "=")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(strings.Trim(v, ":"))
		if err != nil {
			return fmt.Errorf("%w: Content-Digest is not base64", errBadSignature)
		}
		var want []byte
		switch strings.ToLower(alg) {
		case "sha-256":
			want = sum256(body)
		case "sha-512":
			want = sum512(body)
		default:
			continue
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return fmt.Errorf("%w: Content-Digest does not match the body", errBadSignature)
		}
		return nil
	}
	return fmt.Errorf("%w: no sha-256 or sha-512 Content-Digest", errBadSignature)
}

func verifyCavage(r *http.Request, body []byte, keys keyLookup, o verifyOptions) (*verified, error) {
	params := map[string]string{}
	for _, p := range splitTop(r.Header.Get("Signature"), ',') {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return nil, fmt.Errorf("%w: not a draft-cavage Signature", errBadSignature)
		}
		params[strings.ToLower(k)] = unquote(v)
	}
	keyID, headers := params["keyid"], strings.Fields(strings.ToLower(params["headers"]))
	sig, err := base64.StdEncoding.DecodeString(params["signature"])
	if keyID == "" || len(headers) == 0 || err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%w: not a draft-cavage Signature", errBadSignature)
	}
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return nil, fmt.Errorf("%w: no Date", errBadSignature)
	}
	if d := o.now.Sub(date); d > maxSkew || d < -maxSkew {
		return nil, fmt.Errorf("%w: Date is %s away", errBadSignature, d)
	}
	target, err := url.Parse(o.targetURI)
	if err != nil {
		return nil, fmt.Errorf("%w: target %q", errBadSignature, o.targetURI)
	}
	lines := make([]string, 0, len(headers))
	covered := map[string]bool{}
	for _, h := range headers {
		covered[h] = true
		var v string
		switch h {
		case "(request-target)":
			v = strings.ToLower(r.Method) + " " + target.RequestURI()
		case "host":
			v = target.Host
		default:
			if len(r.Header.Values(h)) == 0 {
				return nil, fmt.Errorf("%w: no %s field", errBadSignature, h)
			}
			v = strings.Join(r.Header.Values(h), ", ")
		}
		lines = append(lines, h+": "+v)
	}
	for _, need := range []string{"(request-target)", "host", "date"} {
		if !covered[need] {
			return nil, fmt.Errorf("%w: %s is not covered", errBadSignature, need)
		}
	}
	if len(body) > 0 {
		if !covered["digest"] {
			return nil, fmt.Errorf("%w: the body is not covered", errBadSignature)
		}
		alg, v, _ := strings.Cut(r.Header.Get("Digest"), "=")
		var want []byte
		switch strings.ToUpper(alg) {
		case "SHA-256":
			want = sum256(body)
		case "SHA-512":
			want = sum512(body)
		}
		if got, err := base64.StdEncoding.DecodeString(v); err != nil || want == nil || subtle.ConstantTimeCompare(got, want) != 1 {
			return nil, fmt.Errorf("%w: Digest does not match the body", errBadSignature)
		}
	}
	pub, err := keys(keyID)
	if err != nil {
		return nil, err
	}
	k, isRSA := pub.(*rsa.PublicKey)
	signing := []byte(strings.Join(lines, "\n"))
	ok := false
	switch params["algorithm"] {
	case "rsa-sha256", "hs2019", "":
		ok = isRSA && rsa.VerifyPKCS1v15(k, crypto.SHA256, sum256(signing), sig) == nil
	case "rsa-sha512":
		ok = isRSA && rsa.VerifyPKCS1v15(k, crypto.SHA512, sum512(signing), sig) == nil
	}
	if !ok {
		return nil, fmt.Errorf("%w: draft-cavage signature by %q does not verify", errBadSignature, keyID)
	}
	if o.replay != nil && !o.replay.first(params["signature"], o.now) {
		return nil, fmt.Errorf("%w: replayed", errBadSignature)
	}
	return &verified{KeyID: keyID, Profile: SignCavage}, nil
}

// replayCache remembers signatures for the freshness window.
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newReplayCache() *replayCache { return &replayCache{seen: map[string]time.Time{}} }

// first reports whether sig was not seen within the window, and records it.
func (c *replayCache) first(sig string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) > 10000 {
		for k, t := range c.seen {
			if now.After(t) {
				delete(c.seen, k)
			}
		}
	}
	if t, ok := c.seen[sig]; ok && now.Before(t) {
		return false
	}
	c.seen[sig] = now.Add(2 * maxSkew)
	return true
}

// jwk is one public key of a JWK Set (RFC 7517, RFC 8037 for Ed25519).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	X   string `json:"x,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// JWKSet is a JSON Web Key Set.
type JWKSet struct {
	Keys []jwk `json:"keys"`
}

func ed25519JWK(kid string, pub ed25519.PublicKey) jwk {
	return jwk{Kty: "OKP", Crv: "Ed25519", Kid: kid, Alg: "Ed25519", Use: "sig", X: base64.RawURLEncoding.EncodeToString(pub)}
}

// lookupJWK finds kid in a JWK Set document.
func lookupJWK(doc []byte, kid string) (crypto.PublicKey, error) {
	var set JWKSet
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("JWK Set: %w", err)
	}
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		switch {
		case k.Kty == "OKP" && k.Crv == "Ed25519":
			x, err := base64.RawURLEncoding.DecodeString(k.X)
			if err != nil || len(x) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("JWK %q: bad x", kid)
			}
			return ed25519.PublicKey(x), nil
		case k.Kty == "RSA":
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(e) > 4 {
				return nil, fmt.Errorf("JWK %q: bad n or e", kid)
			}
			pub := &rsa.PublicKey{E: 0}
			pub.N = new(big.Int).SetBytes(n)
			for _, b := range e {
				pub.E = pub.E<<8 | int(b)
			}
			return pub, nil
		}
		return nil, fmt.Errorf("JWK %q: key type %s is not supported here", kid, k.Kty)
	}
	return nil, fmt.Errorf("no key %q in the JWK Set", kid)
}

// parsePEMKey reads a PKIX "PUBLIC KEY" (or PKCS #1 "RSA PUBLIC KEY") block.
func parsePEMKey(s string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type == "RSA PUBLIC KEY" {
		return x509.ParsePKCS1PublicKey(block.Bytes)
	}
	return x509.ParsePKIXPublicKey(block.Bytes)
}

// publicKeyPEM renders an RSA public key as a PKIX PEM block.
func publicKeyPEM(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
