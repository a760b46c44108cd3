package ocmfs

import (
	"testing"
	"unsafe"
)

// TestNodeSize pins the memory of a file node, of which the mount keeps
// one for every entry the kernel looked up (ls -l looks up all of a
// folder's): 208 bytes, of which go-fuse's Inode takes 128, where it was
// 344 with the open state and the whole Info in every node.
func TestNodeSize(t *testing.T) {
	if s := unsafe.Sizeof(fileNode{}); s > 208 {
		t.Errorf("fileNode is %d bytes, want <= 208", s)
	}
}
