// Package acmecert gets and renews the public endpoint's certificate from
// an ACME certificate authority (Let's Encrypt by default), so that the
// agent serves HTTPS without a reverse proxy. It wraps certmagic: the
// TLS-ALPN-01 challenge is answered on the agent's own TLS listener, the
// HTTP-01 challenge on an optional plain HTTP listener; the account and
// certificates live under the state directory.
package acmecert
