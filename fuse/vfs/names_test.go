package vfs

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
	if len(got) > MaxNameBytes || !utf8.ValidString(got) || len(got) < MaxNameBytes-1 {
		t.Errorf("safeName(long) = %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
}

func TestUniqueName(t *testing.T) {
	taken := map[string]bool{}
	add := func(name, origin string, dir bool) string {
		n := UniqueName(name, origin, dir, func(s string) bool { return taken[s] })
		if taken[n] {
			t.Fatalf("UniqueName returned a taken name %q", n)
		}
		if !ValidRemoteName(n) {
			t.Fatalf("UniqueName returned an invalid name %q", n)
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
	if len(got) > MaxNameBytes || !strings.Contains(got, "(carol@x.example)") || !strings.HasSuffix(got, ".txt") {
		t.Errorf("long collision = %q (%d bytes)", got, len(got))
	}
	// An origin with a slash cannot smuggle a separator in.
	if got := add("Report", "evil/../x", true); strings.Contains(got, "/") {
		t.Errorf("origin slash kept: %q", got)
	}
}

// TestNamesCannotSpoof: format characters cannot reorder a name, and an
// untrusted name cannot carry the suffix the mount adds on collisions.
func TestNamesCannotSpoof(t *testing.T) {
	for in, want := range map[string]string{
		"Invoice\u202efdp.exe":              "Invoicefdp.exe",
		"a\u2066b\u2069c\u200ed\u200f":      "abcd",
		"zero\u200bwidth\ufeff":             "zerowidth",
		"Report (alice@cloud.example)":      "Report (alice[at]cloud.example)",
		"Report (alice\uff20cloud.example)": "Report (alice[at]cloud.example)",
	} {
		if got := safeName(in, false); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
	taken := map[string]bool{}
	add := func(name, origin string) string {
		n := UniqueName(name, origin, true, func(s string) bool { return taken[s] })
		taken[n] = true
		return n
	}
	real := add("Report", "alice@cloud.example")
	forged := add("Report (alice@cloud.example)", "mallory@evil.example")
	collided := add("Report", "bob@other.example")
	if real != "Report" || collided != "Report (bob@other.example)" {
		t.Fatalf("real %q, collided %q", real, collided)
	}
	if strings.Contains(forged, "@") {
		t.Fatalf("an untrusted name produced a sender suffix: %q", forged)
	}
	// A sender address cannot close the suffix early.
	if got := add("Report", "x) (alice@cloud.example"); strings.Count(got, "(") != 1 || strings.Count(got, ")") != 1 {
		t.Fatalf("origin with parentheses: %q", got)
	}
	for _, n := range []string{"a\u202eb.txt", "\u200bx", "x\u2066"} {
		if ValidRemoteName(n) {
			t.Errorf("listing name %q with a format character is taken", n)
		}
	}
}

// ValidRemoteName's fast path for ASCII names agrees with the full rules.
func TestValidRemoteNameRules(t *testing.T) {
	cases := map[string]bool{
		"a.txt": true, "Ünïcode.txt": true, "日本.txt": true, "x\u00ady": false, "a\u200bb": false,
		"": false, ".": false, "..": false, "...": true, "a/b": false, "a\x00b": false,
		"bad\xffutf8": false, "tab\tname": true, strings.Repeat("n", MaxNameBytes): true,
		strings.Repeat("n", MaxNameBytes+1): false, "é/x": false,
	}
	for n, want := range cases {
		if got := ValidRemoteName(n); got != want {
			t.Errorf("ValidRemoteName(%q) = %v, want %v", n, got, want)
		}
	}
}
