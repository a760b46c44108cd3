// Package receiver is the public OCM HTTP API of the agent, the server
// side: the discovery document (/.well-known/ocm and the legacy
// /ocm-provider), POST /ocm/shares, /ocm/notifications and
// /ocm/invite-accepted, and the JWKS. It limits and decodes bodies,
// validates them (400 with validationErrors), authenticates the sending
// server, and hands what it accepted to its Handler. It keeps no state of
// its own beyond the limits in front of it (per-client rates, a cap on
// concurrent requests, a failure limit for invite guesses).
package receiver
