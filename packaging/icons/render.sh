#!/usr/bin/env bash
# Renders the icon set from its SVG sources (tray/icons, which the tray
# also embeds) into a hicolor icon theme tree: scalable SVGs plus PNGs of
# every usual size. The app icon goes to apps/, the tray state icons
# (idle, pending, error; -light for light panels, -dark for dark ones) to
# status/. Needs rsvg-convert (librsvg2-bin). Run it after editing an SVG
# and commit the result; `go test ./tray` checks the tree is up to date.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/../../tray/icons"
out="$here/hicolor"
sizes=(16 22 24 32 48 64 128 256 512)
rm -rf "$out"
for svg in "$src"/*.svg; do
  name="$(basename "$svg" .svg)"
  ctx=status
  [ "$name" = ocm-agent ] && ctx=apps
  mkdir -p "$out/scalable/$ctx"
  cp "$svg" "$out/scalable/$ctx/$name.svg"
  for s in "${sizes[@]}"; do
    mkdir -p "$out/${s}x${s}/$ctx"
    rsvg-convert -w "$s" -h "$s" -f png "$svg" -o "$out/${s}x${s}/$ctx/$name.png"
  done
done
