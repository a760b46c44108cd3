package control

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ocm-agent/ocm-agent/internal/testenv"
)

const module = "github.com/ocm-agent/ocm-agent/"

// Packages of the module a client of the API may use: control itself and
// config (for the default socket path).
var clientMayImport = map[string]bool{module + "control": true, module + "config": true}

// TestTrayUsesOnlyControl: the tray, package and binary, depends on no
// package of the module below control (no store, agent, fuse...).
func TestTrayUsesOnlyControl(t *testing.T) {
	goBin := testenv.Program(t, "go", "golang-go")
	cmd := exec.Command(goBin, "list", "-deps", "../tray", "../cmd/ocm-agent-tray")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	own := map[string]bool{module + "tray": true, module + "cmd/ocm-agent-tray": true}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasPrefix(p, module) {
			continue
		}
		n++
		if !own[p] && !clientMayImport[p] {
			t.Errorf("the tray depends on %s", p)
		}
	}
	if n < 3 {
		t.Fatalf("go list found only %d of the module's packages:\n%s", n, out)
	}
}

// TestCLICommandsUseOnlyControl: the files of the CLI's client commands
// import no package of the module but control and config. (The binary
// also holds 'serve', which runs the agent, and 'doctor' and 'init'.)
func TestCLICommandsUseOnlyControl(t *testing.T) {
	files := []string{"main.go", "root.go", "usage.go", "shares.go", "pins.go", "invites.go", "contacts.go"}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "cmd", "ocm-agent", name), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) && !clientMayImport[p] {
				t.Errorf("cmd/ocm-agent/%s imports %s", name, p)
			}
		}
	}
}
