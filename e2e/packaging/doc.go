// Package packaging holds the end-to-end tests of the Linux packaging:
// the systemd user unit, the desktop entries and AppStream metadata
// (checked with desktop-file-validate, appstreamcli and systemd-analyze),
// and the .deb and .rpm packages built by scripts/packages.sh, linted with
// lintian and installed into a scratch dpkg root.
//
// It has no code of its own; see packaging_test.go.
package packaging
