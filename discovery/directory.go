package discovery

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/ocm-agent/ocm-agent/ocm"
)

// Limits on Directory Service documents.
const (
	maxDirectoryServers = 10000
	maxDisplayName      = 256
	maxFederationName   = 256
)

// DirectoryServer is one OCM server listed by a Directory Service.
type DirectoryServer struct {
	URL         string // https://host[:port], as listed
	DisplayName string
	Host        string // normalised host[:port], the identity to discover
}

// Directory is a Directory Service document (spec appendix C).
type Directory struct {
	Federation string
	Servers    []DirectoryServer
	// Signed: the document came as a JWS. Verified: its signature checked
	// out under one of the configured keys.
	Signed   bool
	Verified bool
	// Problems lists what was dropped or could not be checked, for logs.
	Problems []string
}

// FetchDirectory fetches a Directory Service document and returns its
// servers (see FetchDirectoryListing).
func (c *Client) FetchDirectory(ctx context.Context, rawURL string) ([]DirectoryServer, error) {
	d, err := c.FetchDirectoryListing(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	return d.Servers, nil
}

// FetchDirectoryListing fetches and parses a Directory Service document
// through the hardened client (MaxDirectoryBytes, Timeout). With
// Options.DirectoryKeys set, only a document signed by one of them is
// accepted.
func (c *Client) FetchDirectoryListing(ctx context.Context, rawURL string) (*Directory, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.PathTimeout)
	defer cancel()
	body, _, err := c.get(ctx, rawURL, c.opts.MaxDirectoryBytes)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", rawURL, err)
	}
	d, err := ParseDirectory(body, c.opts.DirectoryKeys)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", rawURL, err)
	}
	for _, p := range d.Problems {
		c.opts.Logger.Warn("directory service", "url", rawURL, "problem", p)
	}
	return d, nil
}

// ParseDirectory reads a Directory Service document in any of the forms
// in use:
//
//   - a JWS in compact serialisation (header.payload.signature);
//   - a JWS in flattened JSON serialisation ({"payload": "<base64url>",
//     "protected": "<base64url>", "signature": "..."}), or the general one
//     with "signatures";
//   - the form of the spec's example, {"payload": {...}, "protected":
//     {...}, "signature": "..."}, whose payload is not serialised, so its
//     signature cannot be checked: it is read, and reported unverified;
//   - a plain {"federation": ..., "servers": [...]} (what Nextcloud's
//     Contacts app and ScienceMesh serve), or a bare list of servers.
//
// Signatures (ES256, ES384, EdDSA, RS256, PS256) are checked against keys.
// When keys is not empty, a document without a valid signature is refused
// (ErrDirectoryUnverified). Servers whose url is not an absolute
// http(s) origin (no path, user-info, query or fragment), or has no
// display name, are dropped and reported in Problems; duplicates too.
func ParseDirectory(body []byte, keys []crypto.PublicKey) (*Directory, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrBadDirectory)
	}
	var (
		payload  []byte
		d        = &Directory{}
		verified bool
	)
	switch body[0] {
	case '[':
		payload = append(append([]byte(`{"servers":`), body...), '}')
	case '{':
		var env struct {
			Payload    json.RawMessage `json:"payload"`
			Protected  json.RawMessage `json:"protected"`
			Header     json.RawMessage `json:"header"`
			Signature  json.RawMessage `json:"signature"`
			Signatures []struct {
				Protected json.RawMessage `json:"protected"`
				Signature json.RawMessage `json:"signature"`
			} `json:"signatures"`
		}
		if err := ocm.CheckJSON(body); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadDirectory, err)
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadDirectory, err)
		}
		if len(env.Payload) == 0 {
			payload = body
			break
		}
		d.Signed = true
		var b64 string
		if json.Unmarshal(env.Payload, &b64) != nil {
			// The spec example's form: payload as an object.
			payload = env.Payload
			d.Problems = append(d.Problems, "signature over an unserialised payload cannot be checked")
			break
		}
		raw, err := base64.RawURLEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("%w: JWS payload is not base64url", ErrBadDirectory)
		}
		payload = raw
		sigs := env.Signatures
		if len(env.Signature) > 0 {
			sigs = append(sigs, struct {
				Protected json.RawMessage `json:"protected"`
				Signature json.RawMessage `json:"signature"`
			}{env.Protected, env.Signature})
		}
		for _, s := range sigs {
			var prot, sig string
			if json.Unmarshal(s.Protected, &prot) != nil || json.Unmarshal(s.Signature, &sig) != nil {
				continue
			}
			if verifyJWS(prot, b64, sig, keys) == nil {
				verified = true
				break
			}
		}
	default:
		parts := strings.Split(string(body), ".")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%w: neither JSON nor a compact JWS", ErrBadDirectory)
		}
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return nil, fmt.Errorf("%w: JWS payload is not base64url", ErrBadDirectory)
		}
		d.Signed = true
		payload = raw
		verified = verifyJWS(parts[0], parts[1], parts[2], keys) == nil
	}
	d.Verified = verified
	if len(keys) > 0 && !verified {
		return nil, ErrDirectoryUnverified
	}
	if d.Signed && len(keys) == 0 {
		d.Problems = append(d.Problems, "signed, but no directory key is configured to check it")
	}
	if err := parseListing(payload, d); err != nil {
		return nil, err
	}
	return d, nil
}

func parseListing(payload []byte, d *Directory) error {
	if err := ocm.CheckJSON(payload); err != nil {
		return fmt.Errorf("%w: %w", ErrBadDirectory, err)
	}
	var doc struct {
		Federation string `json:"federation"`
		Servers    []struct {
			URL         string `json:"url"`
			DisplayName string `json:"displayName"`
			Name        string `json:"name"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(payload, &doc); err != nil {
		return fmt.Errorf("%w: %v", ErrBadDirectory, err)
	}
	if doc.Servers == nil {
		return fmt.Errorf("%w: no servers list", ErrBadDirectory)
	}
	if len(doc.Servers) > maxDirectoryServers {
		return fmt.Errorf("%w: %d servers (max %d)", ErrBadDirectory, len(doc.Servers), maxDirectoryServers)
	}
	d.Federation = clip(doc.Federation, maxFederationName)
	seen := map[string]bool{}
	for i, s := range doc.Servers {
		name := s.DisplayName
		if name == "" {
			name = s.Name
		}
		name = clip(strings.TrimSpace(name), maxDisplayName)
		host, err := serverHost(s.URL)
		switch {
		case err != nil:
			d.Problems = append(d.Problems, fmt.Sprintf("server %d dropped: %v", i, err))
		case name == "":
			d.Problems = append(d.Problems, fmt.Sprintf("server %d (%s) dropped: no displayName", i, host))
		case seen[host]:
			d.Problems = append(d.Problems, fmt.Sprintf("server %d (%s) dropped: listed twice", i, host))
		default:
			seen[host] = true
			d.Servers = append(d.Servers, DirectoryServer{URL: strings.TrimSuffix(s.URL, "/"), DisplayName: name, Host: host})
		}
	}
	return nil
}

// serverHost checks a directory url (scheme and host, optional port,
// nothing else) and returns its normalised host[:port].
func serverHost(raw string) (string, error) {
	if len(raw) > 2048 {
		return "", fmt.Errorf("url too long")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("url %q does not parse", clip(raw, 80))
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("url %q is not http(s)", clip(raw, 80))
	case u.Host == "" || u.Opaque != "":
		return "", fmt.Errorf("url %q has no host", clip(raw, 80))
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Errorf("url %q has user-info, a query or a fragment", clip(raw, 80))
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("url %q has a path", clip(raw, 80))
	}
	h, err := ocm.NormalizeHost(u.Host)
	if err != nil {
		return "", err
	}
	if u.Scheme == "https" {
		h = trimHTTPSPort(h)
	}
	return h, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// verifyJWS checks one JWS signature (RFC 7515) over prot.payload.
func verifyJWS(protB64, payloadB64, sigB64 string, keys []crypto.PublicKey) error {
	if len(keys) == 0 {
		return ErrDirectoryUnverified
	}
	hdrJSON, err := base64.RawURLEncoding.DecodeString(protB64)
	if err != nil {
		return fmt.Errorf("%w: protected header is not base64url", ErrBadDirectory)
	}
	var hdr struct {
		Alg  string   `json:"alg"`
		Crit []string `json:"crit"`
	}
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		return fmt.Errorf("%w: protected header: %v", ErrBadDirectory, err)
	}
	if len(hdr.Crit) > 0 {
		return fmt.Errorf("%w: unsupported critical header %v", ErrBadDirectory, hdr.Crit)
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigB64)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64url", ErrBadDirectory)
	}
	input := []byte(protB64 + "." + payloadB64)
	for _, k := range keys {
		if jwsVerify(hdr.Alg, k, input, sig) {
			return nil
		}
	}
	return ErrDirectoryUnverified
}

// jwsVerify checks sig with key under the JWS algorithm alg. "none" and
// MAC algorithms never verify.
func jwsVerify(alg string, key crypto.PublicKey, input, sig []byte) bool {
	switch alg {
	case "ES256", "ES384":
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		size := 32
		var digest []byte
		if alg == "ES256" {
			h := sha256.Sum256(input)
			digest = h[:]
		} else {
			size = 48
			h := sha512.Sum384(input)
			digest = h[:]
		}
		if pub.Curve.Params().BitSize != size*8 || len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest, r, s)
	case "EdDSA", "Ed25519":
		pub, ok := key.(ed25519.PublicKey)
		return ok && ed25519.Verify(pub, input, sig)
	case "RS256", "PS256":
		pub, ok := key.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < 2048 {
			return false
		}
		h := sha256.Sum256(input)
		if alg == "RS256" {
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
		}
		return rsa.VerifyPSS(pub, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	}
	return false
}
