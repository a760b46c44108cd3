#!/usr/bin/env bash
# Builds the Linux packages into dist/: ocm-agent (daemon and CLI, pure Go)
# and ocm-agent-tray (the tray, cgo + fyne), each as .deb and .rpm, with
# nfpm (run at a pinned version through the Go module proxy, not go.mod).
#
#   scripts/packages.sh                  # both packages, deb and rpm
#   scripts/packages.sh ocm-agent        # only the daemon (no cgo needed)
#   FORMATS=deb scripts/packages.sh      # only .deb
#
# Environment: VERSION (default: git describe), MAINTAINER, GO, DIST (output directory, default dist), SOURCE_DATE_EPOCH
# (default: time of the last commit, so rebuilds are identical).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

GO=${GO:-go}
NFPM_PKG=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.0
DIST=${DIST:-dist}
case "$DIST" in /*) ;; *) DIST="$root/$DIST" ;; esac
FORMATS=${FORMATS:-deb rpm}
PACKAGES=("$@")
[ ${#PACKAGES[@]} -gt 0 ] || PACKAGES=(ocm-agent ocm-agent-tray)

die() { echo "packages.sh: $*" >&2; exit 1; }

for p in "${PACKAGES[@]}"; do
	case "$p" in ocm-agent | ocm-agent-tray) ;; *) die "unknown package '$p' (ocm-agent or ocm-agent-tray)" ;; esac
done

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

# Package version: a release tag v1.2.3[-4-gabcdef] becomes 1.2.3[+4.gabcdef];
# anything else (no tag yet, a bare commit) becomes 0.0.0~git<date>.<commit>,
# which sorts before the first release in both dpkg and rpm.
pkg_version() {
	local v=${1#v} date
	if [[ "$v" =~ ^[0-9]+(\.[0-9]+)*$ ]]; then
		echo "$v"
	elif [[ "$v" =~ ^([0-9]+(\.[0-9]+)*)-([0-9]+)-g([0-9a-f]+)(-dirty)?$ ]]; then
		echo "${BASH_REMATCH[1]}+${BASH_REMATCH[3]}.g${BASH_REMATCH[4]}${BASH_REMATCH[5]:+.dirty}"
	else
		date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d)
		v=$(echo "$v" | tr -c 'A-Za-z0-9.\n' '.' | tr -s '.')
		echo "0.0.0~git${date}.${v#.}"
	fi
}
PKG_VERSION=$(pkg_version "$VERSION")
ARCH=$($GO env GOARCH)
MAINTAINER=${MAINTAINER:-ocm-agent maintainers <ocm-agent@users.noreply.github.com>}
# The SPDX id of the project's licence, as the nfpm configuration names it.
LICENSE=$(sed -n 's/^license: *//p' packaging/nfpm/ocm-agent.yaml)
[ -n "$LICENSE" ] || die "packaging/nfpm/ocm-agent.yaml names no license"
STAGE="$DIST/stage"
export PKG_VERSION ARCH MAINTAINER LICENSE STAGE

rm -rf "$STAGE"
mkdir -p "$STAGE/bin" "$STAGE/man/man1" "$STAGE/man/man5" "$STAGE/completions"
umask 022

echo "==> nfpm (${NFPM_PKG#*@})"
GOBIN="$STAGE/bin" GOFLAGS= $GO install "$NFPM_PKG"
NFPM="$STAGE/bin/nfpm"

LDFLAGS="-s -w -X github.com/ocm-agent/ocm-agent/agent.Version=$VERSION"

echo "==> ocm-agent $VERSION (package $PKG_VERSION, $ARCH)"
CGO_ENABLED=0 $GO build -trimpath -ldflags "$LDFLAGS" -o "$STAGE/ocm-agent" ./cmd/ocm-agent

# Man pages, completions and the example config come from the program
# itself, so they describe exactly the commands and keys it has.
"$STAGE/ocm-agent" gendocs --man "$STAGE/man/gen" --completions "$STAGE/completions" \
	--config-example "$STAGE/config.toml.example"
for f in "$STAGE"/man/gen/*.1; do
	case "$(basename "$f")" in
	ocm-agent-tray.1) gzip -9n <"$f" >"$STAGE/man/ocm-agent-tray.1.gz" ;;
	*) gzip -9n <"$f" >"$STAGE/man/man1/$(basename "$f").gz" ;;
	esac
done
for f in "$STAGE"/man/gen/*.5; do gzip -9n <"$f" >"$STAGE/man/man5/$(basename "$f").gz"; done
rm -rf "$STAGE/man/gen"

# copyright (machine-readable format) and a Debian changelog per package.
{
	echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
	echo "Upstream-Name: ocm-agent"
	echo "Source: https://github.com/ocm-agent/ocm-agent"
	echo
	echo "Files: *"
	echo "Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) The ocm-agent authors"
	echo "License: $LICENSE"
	if [ -f LICENSE ]; then
		sed -e 's/^[[:space:]]*$/./' -e 's/^/ /' LICENSE
	elif [ -f "/usr/share/common-licenses/$LICENSE" ]; then
		echo " On Debian systems the full text of the license is in"
		echo " /usr/share/common-licenses/$LICENSE."
	else
		echo " See https://spdx.org/licenses/$LICENSE.html"
	fi
} >"$STAGE/copyright"
changelog_date=$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")
for p in ocm-agent ocm-agent-tray; do
	mkdir -p "$STAGE/doc/$p"
	{
		echo "$p ($PKG_VERSION-1) unstable; urgency=medium"
		echo
		echo "  * Build of ocm-agent $VERSION."
		echo
		echo " -- $MAINTAINER  $changelog_date"
	} | gzip -9n >"$STAGE/doc/$p/changelog.Debian.gz"
done

want() { local p; for p in "${PACKAGES[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

if want ocm-agent-tray; then
	echo "==> ocm-agent-tray"
	[ -d cmd/ocm-agent-tray ] || die "cmd/ocm-agent-tray does not exist yet; build only the daemon with: scripts/packages.sh ocm-agent"
	# A position-independent executable with the usual C hardening for
	# the cgo parts (what Debian's build flags give a C program).
	if ! CGO_ENABLED=1 CGO_CPPFLAGS="-D_FORTIFY_SOURCE=2" CGO_CFLAGS="-O2 -fstack-protector-strong" \
		CGO_LDFLAGS="-Wl,-z,relro,-z,now" \
		$GO build -buildmode=pie -trimpath -ldflags "$LDFLAGS" -o "$STAGE/ocm-agent-tray" ./cmd/ocm-agent-tray; then
		die "the tray does not build (it needs cgo and the GL/X development packages: libgl1-mesa-dev xorg-dev libwayland-dev libxkbcommon-dev); build only the daemon with: scripts/packages.sh ocm-agent"
	fi

	# Icons: the hicolor theme tree from packaging/icons/.
	[ -f packaging/icons/hicolor/scalable/apps/ocm-agent.svg ] ||
		die "packaging/icons/hicolor/scalable/apps/ocm-agent.svg is missing (the tray's icon set)"
	mkdir -p "$STAGE/icons"
	cp -R packaging/icons/hicolor "$STAGE/icons/"
	find "$STAGE/icons" -type d -exec chmod 755 {} + -o -type f -exec chmod 644 {} +

	# Dependencies: one per shared library the tray links against, and
	# the ones GLFW opens at run time (dlopen) for X11 and Wayland, named
	# with dpkg (for .deb) and as sonames (for .rpm).
	needed=$(readelf -d "$STAGE/ocm-agent-tray" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)
	[ -n "$needed" ] || die "the tray binary links against no shared library; expected a cgo build"
	dlopened="libX11.so.6 libX11-xcb.so.1 libXcursor.so.1 libXext.so.6 libXi.so.6 libXinerama.so.1
		libXrandr.so.2 libXrender.so.1 libXxf86vm.so.1 libxkbcommon.so.0 libwayland-cursor.so.0 libwayland-egl.so.1"
	case "$ARCH" in amd64 | arm64 | ppc64le | s390x | riscv64 | loong64) bits="()(64bit)" ;; *) bits="" ;; esac
	deb_deps=() rpm_reqs=()
	for so in $needed $dlopened; do
		[[ " ${rpm_reqs[*]} " == *" $so$bits "* ]] || rpm_reqs+=("$so$bits")
		if [[ " $FORMATS " == *" deb "* ]]; then
			path=$(ldconfig -p | awk -v so="$so" '!found && $1 == so { print $NF; found = 1 }')
			[ -n "$path" ] || die "$so is not installed here, so the Debian package that provides it cannot be named (install the tray's build dependencies)"
			owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true)
			[ -n "$owner" ] || die "no installed Debian package provides $so ($path)"
			pkg=${owner%%:*}
			[[ " ${deb_deps[*]} " == *" $pkg "* ]] || deb_deps+=("$pkg")
		fi
	done
	TRAY_DEB_DEPENDS=$(IFS=,; echo "${deb_deps[*]}" | sed 's/,/, /g')
	TRAY_RPM_REQUIRES="($(printf '%s and ' "${rpm_reqs[@]}" | sed 's/ and $//'))"
	export TRAY_DEB_DEPENDS TRAY_RPM_REQUIRES
	echo "    depends (deb): $TRAY_DEB_DEPENDS"
fi

mkdir -p "$DIST"
for p in "${PACKAGES[@]}"; do rm -f "$DIST/${p}"_*.deb "$DIST/${p}"-[0-9]*.rpm; done
for p in "${PACKAGES[@]}"; do
	for f in $FORMATS; do
		echo "==> $p ($f)"
		"$NFPM" package --config "packaging/nfpm/$p.yaml" --packager "$f" --target "$DIST/"
	done
done
ls -l "$DIST"/*.deb "$DIST"/*.rpm 2>/dev/null || true
