package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4GiB": 4 << 30, "500MiB": 500 << 20, "1.5G": 3 << 29, "64 KiB": 64 << 10,
		"1048576": 1 << 20, "2gb": 2 << 30, "10K": 10 << 10, "7B": 7, "1TiB": 1 << 40,
	} {
		got, err := ParseSize(in)
		if err != nil || got.Bytes != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got.Bytes, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1", "-1MiB", "lots", "NaN", "Inf", "1e30TiB", "4 GiBs"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got.Bytes)
		}
	}
	for in, want := range map[int64]string{0: "0", 4 << 30: "4GiB", 500 << 20: "500MiB", 1536: "1536", 3 << 29: "1536MiB"} {
		if got := (Size{in}).String(); got != want {
			t.Errorf("Size{%d} = %q, want %q", in, got, want)
		}
	}
}

// cache-size is read from the file as a string or a bare number, and a
// bad one is a clear error.
func TestCacheSizeInFile(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (Config, error) {
		p := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p, Default(), nil, false)
	}
	if d := Default(); d.CacheSize.Bytes != 4<<30 {
		t.Errorf("default cache-size %d", d.CacheSize.Bytes)
	}
	for body, want := range map[string]int64{`cache-size = "500MiB"`: 500 << 20, `cache-size = 0`: 0, `cache-size = "0"`: 0, `cache-size = 1048576`: 1 << 20} {
		c, err := load(body)
		if err != nil || c.CacheSize.Bytes != want {
			t.Errorf("%s: %d, %v; want %d", body, c.CacheSize.Bytes, err, want)
		}
	}
	if _, err := load(`cache-size = "a lot"`); err == nil {
		t.Errorf("a bad cache-size was accepted")
	}
}
