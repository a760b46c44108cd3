package tokens

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseToken: whatever a token endpoint answers, the parser either
// refuses it with ErrBadTokenResponse, without echoing the token, or
// returns a token that is safe to put in an Authorization header.
func FuzzParseToken(f *testing.F) {
	for _, seed := range []string{
		`{"access_token":"abc","token_type":"Bearer","expires_in":3600}`,
		`{"access_token":"abc","token_type":"bearer","expires_in":60,"refresh_token":"r"}`,
		`{"access_token":"abc","expires_in":60}`,
		`{"access_token":"a b","token_type":"Bearer"}`,
		`{"access_token":"abc","token_type":"Bearer","access_token":"x"}`,
		`{"access_token":7}`,
		`[]`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, legacy bool) {
		tok, err := parseToken(raw, legacy)
		if err != nil {
			if !errors.Is(err, ErrBadTokenResponse) {
				t.Fatalf("error %v does not wrap ErrBadTokenResponse", err)
			}
			return
		}
		if !headerSafe(tok.AccessToken) || tok.TokenType != "Bearer" || tok.ExpiresIn < 0 {
			t.Fatalf("accepted an unusable token: type %q, lifetime %v, token safe %v", tok.TokenType, tok.ExpiresIn, headerSafe(tok.AccessToken))
		}
		if tok.RefreshToken != "" && (!legacy || !headerSafe(tok.RefreshToken)) {
			t.Fatal("kept a refresh token that must be dropped")
		}
		// String must not depend on the secret parts at all.
		other := tok
		other.AccessToken, other.RefreshToken = "x", ""
		if tok.RefreshToken != "" {
			other.RefreshToken = "y"
		}
		if tok.String() != other.String() {
			t.Fatal("the token's String depends on the token")
		}
	})
}

// FuzzSecretsLogTail: whatever follows the whole records of a secrets
// file (a torn append, garbage, an attack), opening it either fails with
// an error or keeps every secret of those records; it never panics.
func FuzzSecretsLogTail(f *testing.F) {
	for _, seed := range [][]byte{nil, {0}, {0, 0, 0, 0}, {0, 0, 0, 40, 1, 2, 3}, {0xff, 0xff, 0xff, 0xff}, make([]byte, 64)} {
		f.Add(seed)
	}
	dir := f.TempDir()
	o := FileOptions{StateDir: filepath.Join(dir, "state"), ConfigDir: filepath.Join(dir, "config")}
	s, err := OpenFileStore(context.Background(), o)
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if err := s.Put(context.Background(), k, []byte(k)); err != nil {
			f.Fatal(err)
		}
	}
	whole, err := os.ReadFile(s.Path())
	if err != nil {
		f.Fatal(err)
	}
	// One state directory for every input of this process, rewritten each
	// time: a new temporary directory per input made each run slow enough
	// that one was still running when the fuzzing time ended, which the
	// fuzzer reports as a failure.
	state := filepath.Join(dir, "fuzz")
	if err := os.MkdirAll(state, 0o700); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tail []byte) {
		path := filepath.Join(state, SecretsFileName)
		if err := os.WriteFile(path, append(bytes.Clone(whole), tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		g, err := OpenFileStore(context.Background(), FileOptions{StateDir: state, ConfigDir: o.ConfigDir})
		if err != nil {
			return
		}
		for _, k := range []string{"a", "b"} {
			if v, err := g.Get(context.Background(), k); err != nil || string(v) != k {
				t.Fatalf("%s = %q, %v with a tail of %d bytes", k, v, err, len(tail))
			}
		}
	})
}
