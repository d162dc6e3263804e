#!/usr/bin/env bash
# Builds a release tarball: the binary next to assets/model, which is where the app looks
# for the shipped model when it is not run from the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
target="${CARGO_TARGET_DIR:-target}"
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
stage=$(mktemp -d)/unclip-$version
mkdir -p "$stage/assets"
cp "$target/release/unclip" "$stage/"
cp -r assets/model "$stage/assets/"
cp README.md dist/unclip.desktop "$stage/"
tar -C "$(dirname "$stage")" -czf "unclip-$version-$(uname -m)-$(uname -s | tr A-Z a-z).tar.gz" "unclip-$version"
echo "unclip-$version-$(uname -m)-$(uname -s | tr A-Z a-z).tar.gz"
