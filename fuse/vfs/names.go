package vfs

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes is the longest file name Linux accepts (NAME_MAX).
const MaxNameBytes = 255

// fallbackName stands in for a share name that sanitizes to nothing.
const fallbackName = "Shared item"

// cleanName turns an untrusted share name into one path component: no '/', no
// NUL, no control or format characters, valid UTF-8, not "." or "..". Its
// at-signs become "[at]": only the collision suffix the mount adds
// (" (alice@cloud.example)") has one, so no name can pass for another
// sender's share. Length is left to safeName and WithSuffix.
func cleanName(s string) string {
	return cleanText(s, true)
}

// cleanText is cleanName; noAt says whether at-signs are replaced.
func cleanText(s string, noAt bool) string {
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune('\uFFFD')
		case r == '/':
			// U+2215 DIVISION SLASH looks like a slash but is no separator.
			b.WriteRune('\u2215')
		case r == 0, unicode.IsControl(r), r == '\u2028', r == '\u2029', unicode.Is(unicode.Cf, r):
			// dropped: format characters (bidi overrides, zero-width
			// marks) make a name read as another ("Invoice\u202efdp.exe").
		case noAt && isAtSign(r):
			b.WriteString("[at]")
		default:
			b.WriteRune(r)
		}
	}
	out := strings.TrimSpace(b.String())
	if out == "" || strings.Trim(out, ".") == "" {
		// ".", "..", "...": all dots would be confusing at best.
		out = fallbackName
	}
	return out
}

// isAtSign reports '@' and the characters that look like it.
func isAtSign(r rune) bool { return r == '@' || r == '\uFF20' || r == '\uFE6B' }

// cleanTag makes a sender's address fit the collision suffix: its
// parentheses are dropped so that it cannot close the suffix early.
func cleanTag(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune("()[]", r) {
			return -1
		}
		return r
	}, cleanText(s, false))
}

// safeName is cleanName cut to MaxNameBytes, keeping a file's extension.
func safeName(s string, isDir bool) string {
	return WithSuffix(cleanName(s), "", 0, isDir)
}

// truncateName cuts s to at most n bytes without splitting a rune.
func truncateName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimSpace(s[:cut])
}

// splitExt splits "Report.pdf" into "Report" and ".pdf" so that a collision
// suffix can go before the extension of a file share. Directories, leading
// dots and long "extensions" are not split.
func splitExt(name string, isDir bool) (string, string) {
	if isDir {
		return name, ""
	}
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || len(name)-i > 10 || strings.ContainsRune(name[i:], ' ') {
		return name, ""
	}
	return name[:i], name[i:]
}

// WithSuffix returns base + " (" + tag + ")" [+ " n"] + ext, cutting the base so
// that the whole stays within MaxNameBytes.
func WithSuffix(name, tag string, n int, isDir bool) string {
	base, ext := splitExt(name, isDir)
	suffix := ""
	if tag != "" {
		suffix = " (" + cleanTag(tag) + ")"
	}
	if n > 1 {
		suffix += " " + strconv.Itoa(n)
	}
	room := MaxNameBytes - len(suffix) - len(ext)
	if room < MaxNameBytes/4 {
		// An absurd tag or extension: keep a readable base.
		ext = truncateName(ext, MaxNameBytes/4)
		suffix = truncateName(suffix, MaxNameBytes/4)
		room = MaxNameBytes - len(suffix) - len(ext)
	}
	out := truncateName(base, room) + suffix + ext
	if strings.Trim(out, ".") == "" {
		return fallbackName
	}
	return out
}

// UniqueName picks the name of a new root entry: the safe share name if it is
// free, otherwise the name with the sender's address as a suffix
// ("Report (alice@cloud.example)"), otherwise that with a counter.
func UniqueName(name, origin string, isDir bool, taken func(string) bool) string {
	base := cleanName(name)
	if first := WithSuffix(base, "", 0, isDir); !taken(first) {
		return first
	}
	if origin != "" {
		if c := WithSuffix(base, origin, 0, isDir); !taken(c) {
			return c
		}
	}
	for n := 2; ; n++ {
		if c := WithSuffix(base, origin, n, isDir); !taken(c) {
			return c
		}
	}
}

// ValidRemoteName reports whether a name found in a server's listing can be a
// local directory entry unchanged. Entries that cannot are left out of the
// mount rather than renamed, so local and remote names always agree.
func ValidRemoteName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > MaxNameBytes {
		return false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '/' || c == 0:
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	// ASCII holds no format characters; most names are ASCII.
	return ascii || (utf8.ValidString(s) && !hasFormatChar(s))
}

// hasFormatChar reports Unicode format characters, which would make a
// file name read differently from what it is; such entries are left out.
func hasFormatChar(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) >= 0
}
