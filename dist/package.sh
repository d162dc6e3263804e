#!/usr/bin/env bash
# Builds the relocatable tarball (usage: dist/package.sh [OUT_DIR]); prints its path. It
# unpacks to unclip-<version>/{bin,share}, the same layout as the Debian package under /usr:
# the binary finds ../share/unclip/model wherever the folder is unpacked. SKIP_BUILD=1
# packages the binary already built.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release >&2
out="${1:-$target/dist}"
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
name="unclip-$version"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dist/stage.sh "$target/release/unclip" "$work/$name"
mkdir -p "$out"
tarball="$out/$name-$(uname -m)-$(uname -s | tr '[:upper:]' '[:lower:]').tar.gz"
tar -C "$work" -c "$name" | gzip -"${GZIP_LEVEL:-9}" >"$tarball"
echo "$tarball"
