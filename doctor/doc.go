// Package doctor checks that an ocm-agent installation works on this
// machine: FUSE, the mount directory, the secret store, the daemon and its
// endpoint, the public URL and its discovery document, the TLS
// certificate, the DNS SRV record, the clock and the systemd user service.
//
// Each check yields a Result (pass, warn, fail or skip) with a line of
// detail and, when something is wrong, the fix. Everything a check touches
// on the machine or the network goes through Options, so tests can point
// it at real servers on loopback and at prepared files.
package doctor
