// Package pinner keeps pinned shares, folders and files on this device:
// it walks them on the share's WebDAV server (PROPFIND Depth 1, folder by
// folder, within the mount's listing caps), marks the pin in the content
// cache and downloads every file the cache does not hold whole yet,
// several at once, reporting progress. Refresh walks the pins again and
// fetches the files whose ETag changed; a new version replaces the kept
// one only once it is complete and its ETag is the one listed. A share
// whose server cannot be reached is skipped quietly (its pins stay as
// they are, readable from the cache).
//
// It is FUSE-free: the mount (package ocmfs) supplies the share's root and
// its listings (Remote), and the WebDAV client for the downloads.
package pinner
