package ocmfs

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeName(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	cases := []struct{ in, want string }{
		{"Report", "Report"},
		{"../x", "..\u2215x"},
		{"a/b", "a\u2215b"},
		{".", fallbackName},
		{"..", fallbackName},
		{"", fallbackName},
		{"   ", fallbackName},
		{"bad\x00name", "badname"},
		{"ctl\x01\x1f\x7f\u0085x", "ctlx"},
		{"line\u2028sep", "linesep"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{" padded ", "padded"},
	}
	for _, c := range cases {
		if got := safeName(c.in, true); got != c.want {
			t.Errorf("safeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := safeName(long, true)
	if len(got) > maxNameBytes || !utf8.ValidString(got) || len(got) < maxNameBytes-1 {
		t.Errorf("safeName(long) = %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
}

func TestUniqueName(t *testing.T) {
	taken := map[string]bool{}
	add := func(name, origin string, dir bool) string {
		n := uniqueName(name, origin, dir, func(s string) bool { return taken[s] })
		if taken[n] {
			t.Fatalf("uniqueName returned a taken name %q", n)
		}
		if !validRemoteName(n) {
			t.Fatalf("uniqueName returned an invalid name %q", n)
		}
		taken[n] = true
		return n
	}
	if got := add("Report", "alice@cloud.example", true); got != "Report" {
		t.Errorf("first = %q", got)
	}
	if got := add("Report", "bob@other.example", true); got != "Report (bob@other.example)" {
		t.Errorf("second = %q", got)
	}
	if got := add("Report", "bob@other.example", true); got != "Report (bob@other.example) 2" {
		t.Errorf("third = %q", got)
	}
	if got := add("notes.pdf", "alice@cloud.example", false); got != "notes.pdf" {
		t.Errorf("file = %q", got)
	}
	if got := add("notes.pdf", "bob@other.example", false); got != "notes (bob@other.example).pdf" {
		t.Errorf("file collision = %q", got)
	}
	// A long name with a collision still fits.
	long := strings.Repeat("ü", 127) + ".txt"
	add(long, "carol@x.example", false)
	got := add(long, "carol@x.example", false)
	if len(got) > maxNameBytes || !strings.Contains(got, "(carol@x.example)") || !strings.HasSuffix(got, ".txt") {
		t.Errorf("long collision = %q (%d bytes)", got, len(got))
	}
	// An origin with a slash cannot smuggle a separator in.
	if got := add("Report", "evil/../x", true); strings.Contains(got, "/") {
		t.Errorf("origin slash kept: %q", got)
	}
}
