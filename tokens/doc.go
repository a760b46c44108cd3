// Package tokens owns the agent's secrets and the credentials it presents
// to other OCM servers.
//
// The secret store keeps shared secrets, share codes, refresh tokens and the
// agent's private keys in the OS keyring (Secret Service over D-Bus, through
// go-keyring), or, where no keyring is reachable, in an encrypted file in the
// state directory whose key lives elsewhere. Open picks the backend and moves
// secrets from the file into the keyring once one is available.
//
// The code flow turns a share's access description into an Authorization
// header for WebDAV: it follows the decision table of the OCM specification
// (must-exchange-token, optional exchange with fallback, legacy top-level
// code, legacy Basic access), exchanges codes for bearer tokens at the
// sender's token endpoint, caches them and renews them before they expire or
// after the server rejected them.
package tokens
