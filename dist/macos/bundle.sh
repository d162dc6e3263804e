#!/usr/bin/env bash
# Builds unclip.app and a .dmg on macOS (usage: dist/macos/bundle.sh [OUT_DIR]). The bundle
# keeps the installed layout: Contents/MacOS/unclip finds ../share/unclip/model, i.e.
# Contents/share/unclip/model. Not run on the project's Linux machines (see the README).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release
out="${1:-$target/dist}"
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
app="$out/unclip.app"
rm -rf "$app"
mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources" "$app/Contents/share/unclip"
cp "$target/release/unclip" "$app/Contents/MacOS/unclip"
cp -r assets/model "$app/Contents/share/unclip/model"
sed "s/@VERSION@/$version/g" dist/macos/Info.plist >"$app/Contents/Info.plist"
# The icon set from the committed PNGs (sips and iconutil ship with macOS).
set_dir=$(mktemp -d)/unclip.iconset
mkdir -p "$set_dir"
for s in 16 32 128 256; do
  cp "dist/icons/unclip-$s.png" "$set_dir/icon_${s}x${s}.png"
done
cp dist/icons/unclip-32.png "$set_dir/icon_16x16@2x.png"
cp dist/icons/unclip-64.png "$set_dir/icon_32x32@2x.png"
cp dist/icons/unclip-256.png "$set_dir/icon_128x128@2x.png"
iconutil -c icns "$set_dir" -o "$app/Contents/Resources/unclip.icns"
hdiutil create -volname unclip -srcfolder "$app" -ov -format UDZO "$out/unclip-$version-macos.dmg"
echo "$out/unclip-$version-macos.dmg"
