// Package httpsig signs and verifies HTTP requests between OCM servers.
//
// It speaks two profiles:
//
//   - RFC 9421 HTTP Message Signatures as the OCM specification profiles them:
//     the components "@method", "@target-uri", "content-digest" (RFC 9530)
//     and "content-length", the parameters created, keyid, alg and
//     tag="ocm", with ed25519, ecdsa-p256-sha256, rsa-pss-sha512 and
//     rsa-v1_5-sha256 keys published as a JWK Set.
//   - the older draft-cavage profile that Nextcloud speaks: a Digest header
//     (SHA-256 or SHA-512), "(request-target) content-length date digest
//     host" signed with rsa-sha256 or (Nextcloud 31 and later) rsa-sha512,
//     the key published as PEM in the discovery document.
//
// Verify accepts whichever profile a request carries and checks freshness,
// the body digest and replays. The package also owns key generation, PKCS#8
// storage form, JWK Sets and PEM. It does no I/O: keys are found through a
// KeyResolver supplied by the caller.
package httpsig
