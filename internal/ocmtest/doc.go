// Package ocmtest is a reference Open Cloud Mesh *sending* server for tests
// and demos. It runs on loopback (plain HTTP or HTTPS with a test CA it
// makes itself) and plays the part of Nextcloud, oCIS, CERNBox or
// opencloudmesh-go towards an OCM receiver:
//
//   - it publishes a discovery document (/.well-known/ocm and the legacy
//     /ocm-provider), a JWK Set with its Ed25519 signing key and the legacy
//     RSA publicKey that draft-cavage verifiers read;
//   - it serves shared files and folders over WebDAV (golang.org/x/net/webdav)
//     under /webdav/ocm/<shareId>/, enforcing per-share credentials: the
//     shared secret as a bearer token, the legacy Basic "<secret>:" form,
//     access tokens from its token endpoint, read-only shares;
//   - its token endpoint speaks both the OCM 1.4 form-encoded
//     authorization_code contract (optionally requiring RFC 9421 signed
//     requests) and the older JSON ocm_authorization_code one with refresh
//     tokens;
//   - it sends Share Creation Notifications in the body shapes real senders
//     use (Dialect*), signed with RFC 9421, draft-cavage or not at all, and
//     SHARE_UNSHARED notifications;
//   - it issues invite tokens and records invite acceptances and the
//     notifications it receives, with how they were signed;
//   - fault switches (latency, 503s, connections reset mid-body, hangs,
//     token expiry) make failure paths testable;
//   - options emulate what real servers do (see the recorded traffic they
//     come from): Nextcloud's permissions property name, http-scheme cloud
//     ids, rsa-sha512 signatures and 400 "Invalid signature" for anything
//     but draft-cavage (ReadSignaturesAsCavage); reva's 416 to every Range
//     (RefuseRanges) and silent revocation (RevokeShare); opencloudmesh-go's
//     405 to PROPFIND (NoPropfindOnFiles) and 200/409 notification answers
//     (OCMGoNotifications).
//
// It shares no code with the product it checks: its signatures (sigs.go)
// and wire types (wire.go) are its own, so a bug in the product's httpsig
// or ocm packages cannot hide behind the same bug here.
//
// The command ocm-peer (cmd/ocm-peer) runs one standalone for demos.
package ocmtest
