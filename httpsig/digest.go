package httpsig

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
)

// Body digests: the Content-Digest field of RFC 9530 (RFC 9421 profile) and
// the older Digest field of RFC 3230 (draft-cavage profile).

// contentDigest returns the Content-Digest field value for body (sha-256).
func contentDigest(body []byte) string {
	return sfDict{{key: "sha-256", val: sfMember{item: sfItem{bare: sfByteSeq(digestSHA256(body))}}}}.String()
}

// digestFuncs maps the hash algorithms we recognise to their functions. Keys
// are lower case; RFC 9530 names and RFC 3230 names agree once lower-cased.
var digestFuncs = map[string]func([]byte) []byte{
	"sha-256": digestSHA256,
	"sha-512": digestSHA512,
}

// checkContentDigest checks a Content-Digest field value against body:
// every recognised algorithm must match and at least one must be present.
func checkContentDigest(field string, body []byte) error {
	d, err := parseSFDictionary(field)
	if err != nil {
		return fmt.Errorf("field Content-Digest: %w", err)
	}
	matched := 0
	for _, e := range d {
		fn, ok := digestFuncs[e.key]
		if !ok {
			continue
		}
		if e.val.isList || e.val.item.bare.kind != sfBytes {
			return fmt.Errorf("%w: Content-Digest %s is not a byte sequence", ErrMalformed, e.key)
		}
		if subtle.ConstantTimeCompare(fn(body), e.val.item.bare.bytes) != 1 {
			return fmt.Errorf("%w: Content-Digest %s", ErrDigestMismatch, e.key)
		}
		matched++
	}
	if matched == 0 {
		return fmt.Errorf("%w: Content-Digest carries no sha-256 or sha-512 digest", ErrDigestMismatch)
	}
	return nil
}

// legacyDigest returns the Digest field value for body as Nextcloud sends it.
func legacyDigest(body []byte) string {
	return "SHA-256=" + base64.StdEncoding.EncodeToString(digestSHA256(body))
}

// checkLegacyDigest checks a Digest field value (RFC 3230: comma separated
// algorithm=base64 pairs) against body, with the same rules as
// checkContentDigest.
func checkLegacyDigest(field string, body []byte) error {
	if len(field) > maxSFInput {
		return fmt.Errorf("%w: Digest field too long", ErrMalformed)
	}
	matched := 0
	for part := range strings.SplitSeq(field, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: Digest member without '='", ErrMalformed)
		}
		fn, ok := digestFuncs[strings.ToLower(strings.TrimSpace(alg))]
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(val))
		if err != nil {
			return fmt.Errorf("%w: Digest %s is not base64", ErrMalformed, alg)
		}
		if subtle.ConstantTimeCompare(fn(body), got) != 1 {
			return fmt.Errorf("%w: Digest %s", ErrDigestMismatch, alg)
		}
		matched++
	}
	if matched == 0 {
		return fmt.Errorf("%w: Digest carries no SHA-256 or SHA-512 digest", ErrDigestMismatch)
	}
	return nil
}
