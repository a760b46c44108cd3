package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Size is a number of bytes written as "4GiB", "500MiB", "1.5G" or a bare
// number in the file (and on the command line).
type Size struct{ Bytes int64 }

// sizeUnits are the suffixes Size accepts: binary (KiB; K and KB too, as
// most tools mean them) and the byte itself.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
	{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10},
	{"B", 1},
}

// ParseSize reads a size such as "4GiB", "500MiB", "1.5G", "0" or "1048576".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	bad := fmt.Errorf("%q is not a size (examples: 4GiB, 500MiB, 0)", s)
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 || n > (1<<62)/mult {
			return Size{}, bad
		}
		return Size{n * mult}, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || !(f >= 0) || f*float64(mult) > 1<<62 {
		return Size{}, bad
	}
	return Size{int64(f * float64(mult))}, nil
}

// UnmarshalText parses a size string.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalTOML takes a string, or a bare integer (bytes).
func (s *Size) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		return s.UnmarshalText([]byte(x))
	case int64:
		if x < 0 {
			return fmt.Errorf("%d is not a size: negative", x)
		}
		s.Bytes = x
		return nil
	}
	return fmt.Errorf("%v is not a size (examples: \"4GiB\", \"500MiB\", 0)", v)
}

// String writes the size in the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range sizeUnits[:4] {
		if s.Bytes >= u.mult && s.Bytes%u.mult == 0 {
			return strconv.FormatInt(s.Bytes/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(s.Bytes, 10)
}

// MarshalText writes the size as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// sizeValue adapts *Size to pflag.
type sizeValue struct{ s *Size }

func (v sizeValue) String() string {
	if v.s == nil {
		return ""
	}
	return v.s.String()
}
func (v sizeValue) Set(s string) error { return v.s.UnmarshalText([]byte(s)) }
func (v sizeValue) Type() string       { return "size" }
