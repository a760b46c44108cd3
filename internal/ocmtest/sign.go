package ocmtest

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Signing profiles for outbound requests.
const (
	SignRFC9421 = "rfc9421"
	// SignCavage is draft-cavage as Nextcloud 31 and later sign by
	// default: algorithm rsa-sha512, Digest SHA-512, and a keyId that says
	// https even when the server runs on plain http.
	SignCavage = "cavage"
	// SignCavageSHA256 is the older draft-cavage form: rsa-sha256 and a
	// SHA-256 Digest.
	SignCavageSHA256 = "cavage-sha256"
	SignNone         = "none"
	// SignRFC9421Unpublished signs with a fresh Ed25519 key that is not in
	// the JWK Set but claims the server's kid: a forgery a receiver must
	// refuse.
	SignRFC9421Unpublished = "rfc9421-unpublished"
)

// SignRequest signs req (whose body is body) with the given profile. Tests
// use it to build requests by hand and tamper with them after signing.
func (s *Server) SignRequest(req *http.Request, body []byte, signing string) error {
	now := time.Now()
	var err error
	switch signing {
	case SignRFC9421:
		kid, priv := s.signingKey()
		err = signRFC9421(req, body, kid, priv, now)
	case SignRFC9421Unpublished:
		kid, _ := s.signingKey()
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return fmt.Errorf("ocmtest: ed25519 key: %w", gerr)
		}
		err = signRFC9421(req, body, kid, priv, now)
	case SignCavage, SignCavageSHA256:
		err = signCavage(req, body, s.CavageKeyID(), s.rsaKey, signing == SignCavage, now)
	case SignNone, "":
		return nil
	default:
		return fmt.Errorf("ocmtest: unknown signing profile %q", signing)
	}
	if err != nil {
		return fmt.Errorf("ocmtest: signing: %w", err)
	}
	return nil
}

// SignatureInfo says whether and how a received request was signed.
type SignatureInfo struct {
	Present  bool   // a signature was present
	Profile  string // SignRFC9421 | SignCavage
	KeyID    string
	Verified bool   // the signature verified against the key published at its keyid
	Error    string // why it did not verify
}

// verify checks the signature of an incoming request, resolving keys over
// HTTP from the keyid's origin.
func (s *Server) verify(ctx context.Context, r *http.Request, body []byte) (SignatureInfo, *verified) {
	v, err := verifyRequest(r, body, httpKeyResolver{s: s}.lookup(ctx), verifyOptions{
		targetURI:  s.base + r.URL.RequestURI(),
		now:        time.Now(),
		cavageOnly: s.opts.ReadSignaturesAsCavage,
		replay:     s.replay,
	})
	if errors.Is(err, errNoSignature) {
		return SignatureInfo{}, nil
	}
	info := SignatureInfo{Present: true}
	if err != nil {
		info.Error = err.Error()
		info.Profile, info.KeyID = guessProfile(r)
		return info, nil
	}
	info.Verified, info.Profile, info.KeyID = true, v.Profile, v.KeyID
	return info, v
}

// guessProfile names the profile and keyid of a signature that did not
// verify, for the records.
func guessProfile(r *http.Request) (string, string) {
	if in := r.Header.Get("Signature-Input"); in != "" {
		return SignRFC9421, paramValue(in, "keyid")
	}
	if sig := r.Header.Get("Signature"); sig != "" {
		return SignCavage, paramValue(sig, "keyId")
	}
	return "", ""
}

func paramValue(h, name string) string {
	i := strings.Index(h, name+`="`)
	if i < 0 {
		return ""
	}
	rest := h[i+len(name)+2:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

// httpKeyResolver finds a signer's public key the way OCM servers do: from
// the discovery document at the origin of the keyid (its JWK Set, or the
// legacy publicKey for draft-cavage keyIds). A keyid on a loopback host is
// tried over https, then over plain http (Nextcloud's keyId says https on
// an http server; opencloudmesh-go's has no scheme at all).
type httpKeyResolver struct{ s *Server }

func (k httpKeyResolver) lookup(ctx context.Context) keyLookup {
	return func(keyID string) (crypto.PublicKey, error) {
		origins, err := keyOrigins(keyID)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, origin := range origins {
			pub, err := k.fromOrigin(ctx, origin, keyID)
			if err == nil {
				return pub, nil
			}
			errs = append(errs, err)
		}
		return nil, fmt.Errorf("%w: unknown key %q: %w", errBadSignature, keyID, errors.Join(errs...))
	}
}

func (k httpKeyResolver) fromOrigin(ctx context.Context, origin, keyID string) (crypto.PublicKey, error) {
	body, err := k.s.get(ctx, origin+pathWellKnown)
	if err != nil {
		return nil, err
	}
	d, err := parseDiscovery(body)
	if err != nil {
		return nil, fmt.Errorf("discovery at %s: %w", origin, err)
	}
	if d.JWKSURI != "" {
		set, err := k.s.get(ctx, d.JWKSURI)
		if err != nil {
			return nil, err
		}
		if pub, err := lookupJWK(set, keyID); err == nil {
			return pub, nil
		}
	}
	if d.PublicKey != nil && d.PublicKey.KeyID == keyID {
		pub, err := parsePEMKey(d.PublicKey.PublicKeyPem)
		if err != nil {
			return nil, fmt.Errorf("publicKey at %s: %w", origin, err)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("no key %q published at %s", keyID, origin)
}

// keyOrigins gives the origins to look a keyid up at.
func keyOrigins(keyID string) ([]string, error) {
	host, err := keyHost(keyID)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.ToLower(keyID), "http://") {
		return []string{"http://" + host}, nil
	}
	origins := []string{"https://" + host}
	if isLoopback(host) {
		origins = append(origins, "http://"+host)
	}
	return origins, nil
}

// keyHost is the normalised host[:port] a keyid belongs to.
func keyHost(keyID string) (string, error) {
	h := keyID
	if strings.Contains(h, "://") {
		u, err := url.Parse(h)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return "", fmt.Errorf("%w: keyid %q is not an http(s) URL", errBadSignature, keyID)
		}
		h = u.Host
	} else if i := strings.IndexAny(h, "#/"); i >= 0 {
		h = h[:i]
	}
	n, err := normalizeHost(h)
	if err != nil {
		return "", fmt.Errorf("%w: keyid %q: %v", errBadSignature, keyID, err)
	}
	return n, nil
}

func isLoopback(hostport string) bool {
	h := hostOnly(hostport)
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// get fetches a small document.
func (s *Server) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("ocmtest: GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ocmtest: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("ocmtest: GET %s: %w", u, err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("ocmtest: GET %s: body larger than %d bytes", u, maxBody)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ocmtest: GET %s: status %d", u, resp.StatusCode)
	}
	return body, nil
}
