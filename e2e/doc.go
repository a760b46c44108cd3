// Package e2e holds end-to-end tests: they build the real ocm-agent binary
// once, start it with its state in temp dirs, and drive it only as a user
// or a peer would: its CLI, its control socket, and its public endpoint.
package e2e
