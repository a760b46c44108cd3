// Package discovery finds OCM peers and the keys they sign with.
//
// It owns everything the agent fetches from other servers before it trusts
// them: the discovery document (/.well-known/ocm, then the legacy
// /ocm-provider paths, then a DNS SRV record _ocm._tcp.<domain>), the JWKS
// or legacy public key a peer signs with (KeyResolver, bound to the peer's
// domain), and Directory Service lists (spec appendix C) for the invite UI.
//
// Every request goes through one hardened HTTP client (NewHTTPClient):
// https only, TLS 1.2 or newer, at most three redirects, each checked
// again, bodies read with a size limit, and no connection to loopback,
// private, link-local or otherwise special addresses, checked at dial time
// on the resolved address so DNS rebinding cannot get round it. Options.
// AllowInsecure (--allow-insecure-peers) lifts the address and scheme rules
// for tests and closed networks.
//
// Lookups are cached (Cache-Control max-age, clamped), failures are cached
// briefly, concurrent lookups of one peer share one fetch, and the number
// of peers never seen before that may be looked up per minute is capped, so
// a flood of shares from random senders cannot make the agent flood the
// internet.
package discovery
