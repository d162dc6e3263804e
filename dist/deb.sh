#!/usr/bin/env bash
# Builds the Debian package from the release build (usage: dist/deb.sh [OUT_DIR]); prints its
# path. SKIP_BUILD=1 packages the binary already built (CI's install test does, after the
# tests built it). Needs dpkg-deb (and dpkg-shlibdeps, from dpkg-dev, for the library list).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release >&2
bin="$target/release/unclip"
out="${1:-$target/dist}"
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/unclip_${version}_${arch}"
dist/stage.sh "$bin" "$root/usr"

# Libraries the binary links: dpkg-shlibdeps reads them from the ELF (it wants a
# debian/control to exist); without dpkg-dev, the two every Rust binary needs.
depends="libc6, libgcc-s1"
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$work/src/debian"
  printf 'Source: unclip\n\nPackage: unclip\nArchitecture: any\n' >"$work/src/debian/control"
  found=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/unclip" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  [ -n "$found" ] && depends="$found"
fi

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: unclip
Version: $version
Architecture: $arch
Maintainer: unclip authors <unclip@users.noreply.github.com>
Installed-Size: $(du -sk "$root/usr" | cut -f1)
Depends: $depends
Recommends: libvulkan1, mesa-vulkan-drivers, libegl1, libxkbcommon0, libxkbcommon-x11-0, libx11-6, libxcursor1, libxrandr2, libxi6, libwayland-client0
Section: graphics
Priority: optional
Homepage: https://github.com/unclip/unclip
Description: unCLIP (DALL-E 2) image generation on the desktop
 Type a prompt and generate; drop an image in for variations; scrub an
 interpolation between two images; push an image toward a caption (text
 diffs). Runs any diffusers-layout unCLIP model, such as Kakao Brain's Karlo,
 from a folder or the Hugging Face cache, and ships a small model of its own
 so it works offline on first launch. Also a command-line tool.
 .
 The window and the GPU path load their libraries at run time (Vulkan,
 EGL, X11 or Wayland, xkbcommon), so they are recommended rather than
 required: the command line runs on a headless machine without them.
CONTROL
mkdir -p "$out"
deb="$out/unclip_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$root" "$deb" >&2
echo "$deb"
