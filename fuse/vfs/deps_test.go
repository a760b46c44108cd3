package vfs

import (
	"os/exec"
	"strings"
	"testing"
)

// The core must build and test without FUSE: no go-fuse package among its
// dependencies.
func TestNoFUSEDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	for _, d := range deps {
		if strings.Contains(d, "github.com/hanwen/go-fuse") {
			t.Errorf("the core depends on %s", d)
		}
	}
}
