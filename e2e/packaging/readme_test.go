package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestReadmeNamesTheGoOfGoMod: the Go version the README asks for is the
// one go.mod requires.
func TestReadmeNamesTheGoOfGoMod(t *testing.T) {
	root := repoRoot(t)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	said := regexp.MustCompile(`Go (\d+\.\d+(?:\.\d+)?) or newer`).FindAllSubmatch(readme, -1)
	if len(said) == 0 {
		t.Fatal("the README does not say which Go builds the project")
	}
	for _, s := range said {
		if string(s[1]) != string(m[1]) {
			t.Errorf("the README asks for Go %s; go.mod says %s", s[1], m[1])
		}
	}
}
