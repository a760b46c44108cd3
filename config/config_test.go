package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestFileThenFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	os.WriteFile(path, []byte(`
listen = "127.0.0.1:9300"
user = "alice"
public-url = "https://ocm.example.org/"
mount = ""
mount-timeout = "9s"
allow-servers = ["cloud.example.org"]
`), 0o600)
	base := Default()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	BindFlags(fs, &base)
	if err := fs.Parse([]string{"--user", "bob", "--listen", "127.0.0.1:9400"}); err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { keep[f.Name] = true })
	c, err := Load(path, base, keep, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	if c.User != "bob" || c.Listen != "127.0.0.1:9400" {
		t.Errorf("flags did not win over the file: user %q listen %q", c.User, c.Listen)
	}
	if c.PublicURL != "https://ocm.example.org" || c.Mount != "" || c.MountTimeout.Duration != 9*time.Second {
		t.Errorf("file values not applied: %+v", c)
	}
	if len(c.AllowServers) != 1 || c.AllowServers[0] != "cloud.example.org" {
		t.Errorf("allow-servers = %v", c.AllowServers)
	}
	if c.Address() != "bob@ocm.example.org" {
		t.Errorf("address = %s", c.Address())
	}
	if c.DisplayName != "bob" {
		t.Errorf("display name default = %q", c.DisplayName)
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte("listen = \"127.0.0.1:1\"\nlisten-port = 3\n"), 0o600)
	_, err := Load(path, Default(), nil, false)
	if err == nil || !strings.Contains(err.Error(), "listen-port") {
		t.Fatalf("got %v, want an error naming listen-port", err)
	}
}

func TestBadTOMLKeepsDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte("listen = \n"), 0o600)
	c, err := Load(path, Default(), nil, false)
	if err == nil {
		t.Fatal("a broken file was accepted")
	}
	if c.Listen != Default().Listen {
		t.Fatal("a broken file changed the configuration")
	}
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.toml")
	if _, err := Load(path, Default(), nil, true); err != nil {
		t.Fatalf("optional missing file: %v", err)
	}
	if _, err := Load(path, Default(), nil, false); err == nil {
		t.Fatal("a missing --config file was not reported")
	}
}

func TestFinishReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Listen = "nope"
	c.PublicURL = "ftp://x/y"
	c.User = "a@b"
	c.Secrets = "vault"
	c.AcceptFrom = "friends"
	c.TLSCert = "cert.pem"
	c.TrustedProxies = []string{"not-an-ip"}
	err := c.Finish()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"listen", "public-url", "user", "secrets", "accept-from", "tls-cert and tls-key", "trusted-proxies"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestPlainHTTPPublicURLNeedsLab(t *testing.T) {
	c := Default()
	c.PublicURL = "http://ocm.example.org"
	if err := c.Finish(); err == nil {
		t.Fatal("http public URL on a public host accepted without allow-insecure-peers")
	}
	c = Default()
	c.PublicURL = "http://ocm.example.org"
	c.AllowInsecurePeers = true
	if err := c.Finish(); err != nil {
		t.Fatalf("lab setting refused: %v", err)
	}
}

func TestKeysDocumentEveryField(t *testing.T) {
	for _, k := range Keys() {
		if k.Name == "" || k.Help == "" || k.Type == "" {
			t.Errorf("key %+v lacks a name, help or type", k)
		}
	}
}
