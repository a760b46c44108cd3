#!/usr/bin/env bash
# Checks the packages 'make packages' built (default: dist/): lintian on
# every .deb (errors fail; overrides and warnings are shown), the desktop
# entries and AppStream metadata, then both .debs installed into a scratch
# dpkg root by the end-to-end test (e2e/packaging, TestTrayPackage).
#
#   scripts/check-packages.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-dist}
case "$DIR" in /*) ;; *) DIR="$(pwd)/$DIR" ;; esac
GO=${GO:-go}

die() { echo "check-packages.sh: $*" >&2; exit 1; }
for t in lintian dpkg-deb desktop-file-validate appstreamcli; do
	command -v "$t" >/dev/null || die "$t is not installed (apt-get install lintian dpkg desktop-file-utils appstream)"
done
shopt -s nullglob
debs=("$DIR"/*.deb)
rpms=("$DIR"/*.rpm)
[ ${#debs[@]} -ge 2 ] || die "expected the ocm-agent and ocm-agent-tray .deb in $DIR; run 'make packages' first"
[ ${#rpms[@]} -ge 2 ] || die "expected the ocm-agent and ocm-agent-tray .rpm in $DIR; run 'make packages' first"

status=0
for deb in "${debs[@]}"; do
	echo "==> lintian $(basename "$deb")"
	out=$(lintian --show-overrides "$deb" 2>&1 || true)
	printf '%s\n' "$out" | grep -v '^running with root privileges' || true
	if printf '%s\n' "$out" | grep -q '^E: '; then
		echo "lintian reports errors for $(basename "$deb")" >&2
		status=1
	fi
done

echo "==> desktop-file-validate, appstreamcli validate"
desktop-file-validate packaging/desktop/*.desktop || status=1
appstreamcli validate --no-net packaging/desktop/*.metainfo.xml || status=1

echo "==> install into a scratch dpkg root (e2e/packaging)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! OCM_AGENT_PACKAGES_DIR="$DIR" CI=true $GO test -count=1 -v -run '^TestTrayPackage$' ./e2e/packaging/ >"$log" 2>&1; then
	cat "$log"
	status=1
elif grep -q -- '--- SKIP' "$log"; then
	cat "$log"
	echo "the package test was skipped" >&2
	status=1
else
	grep -E '^(--- |ok )' "$log"
fi
exit $status
