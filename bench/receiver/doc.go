// Command receiver measures the agent's public endpoint, its memory and its
// start-up on loopback, against the real ocm-agent binary.
//
// Signed shares: a Go load generator sends RFC 9421 (Ed25519) signed POST
// /ocm/shares from a reference sending server (internal/ocmtest) whose keys
// the agent caches after the first request. It reports requests per
// second, p50/p99 latency and whether every 201 survived a SIGKILL, once
// with the state on disk and once on tmpfs (where fsync is free, leaving
// the CPU cost). On disk the share load runs again once 10,000 shares are
// stored (-stored): a share must cost the same however many are there. GET
// /.well-known/ocm is measured the same way.
//
// Storage: the durable writes behind each share (the SQLite commit, the
// encrypted secrets file) on their own, with the fsync floor of the disk.
//
// Memory and start-up (needs FUSE): resident memory idle, with 100 accepted
// shares, and after a find over all of them; the time from exec to the
// endpoint answering and to the mount listing the 100 shares.
//
//	go run ./bench/receiver                       # everything (about a minute)
//	go run ./bench/receiver -duration 3s -workers 8
//	go run ./bench/receiver -stored 0               # no second load with 10,000 shares stored
//	go run ./bench/receiver -profile /tmp/prof    # agent in-process, -stored shares first; CPU and heap profiles
//
// It prints a table of figures against their targets and does not fail on
// a missed target. It is not a test.
package main
