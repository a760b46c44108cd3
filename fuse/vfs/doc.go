// Package vfs is the FUSE-free core of the ocm-agent filesystem.
package vfs
