// Command mount measures the ocm-agent mount against the alternatives on
// loopback: a WebDAV server that is not ours (nginx with the DAV modules,
// behind a bearer-token check) serves a generated tree, and the same
// workloads run through raw curl (the ceiling), the ocm-agent mount (package
// fuse, with a static Authorizer), rclone mount (--vfs-cache-mode off) and
// rclone mount2 (go-fuse, full cache), and on request rclone mount in full
// cache mode and davfs2. Warm listings are held against ls -l of the local
// disk, the walk over the tree against a curl crawl (PROPFIND of every
// folder, 8 at once). Cold listings of 1,000, 10,000 and 100,000 entries
// show how listing grows, with the mount's resident memory per cached
// entry. It prints a markdown table (each workload, each system, the
// target as a ratio to the reference) and a last line of ratios.
//
// Every system meets the same machine: before each workload, what earlier
// ones wrote is synced and the files it reads (the folders it lists) are
// read (stat'ed) once on the server's side, so that none is timed against
// a disk another was spared (the cached re-read empties the page cache).
//
//	go run ./bench/mount              # full size (1 GiB files, 10,000 entries, ...)
//	go run ./bench/mount -scale 0.1   # a quick run
//	make bench                        # with bench/receiver
//
// BENCH_CPUPROFILE=file profiles each ocm-agent mount process until it is
// unmounted, into file.PID; BENCH_MEMPROFILE=file writes its heap profile each time it gets
// SIGUSR1, which the scale workload sends once the largest folder is listed.
//
// It needs nginx (nginx-light, libnginx-mod-http-dav-ext), curl, fusermount3,
// and optionally rclone and davfs2 (skipped when missing). It is not a test.
package main
