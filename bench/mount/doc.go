// Command mount measures the ocm-agent mount against the alternatives on
// loopback: a WebDAV server that is not ours (nginx with the DAV modules,
// behind a bearer-token check) serves a generated tree, and the same
// workloads run through raw curl (the ceiling), the ocm-agent mount (package
// fuse, with a static Authorizer), rclone mount (--vfs-cache-mode off and
// full) and davfs2 where it mounts. It prints a table of figures and ratios.
//
//	go run ./bench/mount              # full size (1 GiB files, 10,000 entries, ...)
//	go run ./bench/mount -scale 0.1   # a quick run
//
// It needs nginx (nginx-light, libnginx-mod-http-dav-ext), curl, fusermount3,
// and optionally rclone and davfs2 (skipped when missing). It is not a test.
package main
