package testenv

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNeedFailsOnCIAndSkipsElsewhere runs this test binary again with
// CI=true and without, on a part that is missing.
func TestNeedFailsOnCIAndSkipsElsewhere(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Need(t, "a unicorn (apt-get install unicorn)", errors.New("not found"))
		t.Log("went on")
		return
	}
	for _, c := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"true", true, "required on CI but missing: a unicorn (apt-get install unicorn): not found"},
		{"", false, "skipping, missing: a unicorn (apt-get install unicorn): not found"},
		{"false", false, "skipping, missing"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNeedFailsOnCIAndSkipsElsewhere$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+c.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != c.wantFail || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "went on") {
			t.Errorf("CI=%q: err %v, output:\n%s\nwant failure %v and %q", c.ci, err, out, c.wantFail, c.want)
		}
		if !c.wantFail && !strings.Contains(string(out), "--- SKIP") {
			t.Errorf("CI=%q: not skipped:\n%s", c.ci, out)
		}
	}
}

func TestNeedWithNoErrorGoesOn(t *testing.T) {
	t.Setenv("CI", "true")
	Need(t, "nothing", nil)
}

func TestProgramFindsAnInstalledOne(t *testing.T) {
	t.Setenv("CI", "true")
	if p := Program(t, "sh", "dash"); !strings.HasSuffix(p, "/sh") {
		t.Errorf("Program(sh) = %q", p)
	}
}
