package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/ocm-agent/ocm-agent/control"
)

func TestParseArgs(t *testing.T) {
	t.Setenv(control.SocketEnv, "/run/user/1000/ocm.sock")
	cases := []struct {
		args   []string
		stdin  string
		want   options
		errMsg string
	}{
		{nil, "", options{socket: "/run/user/1000/ocm.sock", logLevel: "info"}, ""},
		{[]string{"--socket", "/tmp/s", "--no-tray"}, "", options{socket: "/tmp/s", logLevel: "info", noTray: true}, ""},
		{[]string{"ocm://accept?token=t&providerDomain=p"}, "", options{socket: "/run/user/1000/ocm.sock", logLevel: "info", invite: "ocm://accept?token=t&providerDomain=p"}, ""},
		{[]string{"--accept-invite", "-"}, "  dG9rZW5AcHJvdmlkZXI \nrest\n", options{socket: "/run/user/1000/ocm.sock", logLevel: "info", invite: "dG9rZW5AcHJvdmlkZXI"}, ""},
		{[]string{"--accept-invite", "-"}, "no newline", options{socket: "/run/user/1000/ocm.sock", logLevel: "info", invite: "no newline"}, ""},
		{[]string{"a", "b"}, "", options{}, "unexpected arguments"},
		{[]string{"--accept-invite", "x", "y"}, "", options{}, "unexpected arguments"},
	}
	for _, c := range cases {
		got, err := parseArgs(c.args, strings.NewReader(c.stdin), io.Discard)
		if c.errMsg != "" {
			if err == nil || !strings.Contains(err.Error(), c.errMsg) {
				t.Errorf("%q: error %v, want %q", c.args, err, c.errMsg)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.args, got, err, c.want)
		}
	}
	if _, err := parseArgs([]string{"--help"}, strings.NewReader(""), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	if code := run([]string{"--bogus"}, strings.NewReader(""), io.Discard); code != 2 {
		t.Errorf("a bad flag exits %d, want 2", code)
	}
}
