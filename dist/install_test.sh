#!/usr/bin/env bash
# Proves the packages work outside the source tree (run by .ci/run after the tests): builds
# the .deb and the tarball from the release binary the tests built, unpacks each into a fresh
# folder, generates with the installed binary and model from a folder where no source tree is
# reachable, checks the picture's recipe names the installed model, and runs the app's smoke
# mode from the installed files under Xvfb when a display server is available.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Fast compression: this checks the contents, not the archive size.
deb=$(SKIP_BUILD=1 DEB_COMPRESS=gzip dist/deb.sh "$work/out")
tarball=$(SKIP_BUILD=1 GZIP_LEVEL=1 dist/package.sh "$work/out")

listing=$(dpkg-deb -c "$deb")
for f in ./usr/bin/unclip ./usr/share/unclip/model/model_index.json ./usr/share/applications/unclip.desktop \
  ./usr/share/icons/hicolor/256x256/apps/unclip.png ./usr/share/man/man1/unclip.1.gz; do
  grep -q " $f\$" <<<"$listing" || { echo "install test: $f missing from the .deb"; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q libc6 || { echo "install test: no Depends"; exit 1; }

# A generation with the installed files only, from an empty folder, with no UNCLIP_MODEL.
check_generate() {
  local bin="$1" model="$2" run="$work/run-$3"
  mkdir -p "$run"
  (cd "$run" && env -u UNCLIP_MODEL "$bin" --device cpu --verbose generate "a red circle" \
    --prior-steps 5 --decoder-steps 5 --sr-steps 2 -o out.png >/dev/null 2>log)
  [ -s "$run/out.png" ] || { echo "install test ($3): no picture"; cat "$run/log"; exit 1; }
  # --verbose names the model folder the run opened.
  grep -qxF "model: $model" "$run/log" || { echo "install test ($3): not made with $model:"; cat "$run/log"; exit 1; }
  echo "install test ($3): generated with $model"
}

mkdir -p "$work/root"
dpkg-deb -x "$deb" "$work/root"
check_generate "$work/root/usr/bin/unclip" "$work/root/usr/share/unclip/model" deb

mkdir -p "$work/elsewhere"
tar -C "$work/elsewhere" -xzf "$tarball"
top=$(ls "$work/elsewhere")
check_generate "$work/elsewhere/$top/bin/unclip" "$work/elsewhere/$top/share/unclip/model" tarball

if command -v Xvfb >/dev/null && command -v import >/dev/null; then
  SMOKE_BIN="$work/root/usr/bin/unclip" SMOKE_MODEL=default SMOKE_DISPLAY=93 \
    SMOKE_SHOT="$CARGO_TARGET_DIR/smoke-installed.png" .ci/smoke
else
  echo "install test: app smoke run skipped (Xvfb or ImageMagick missing)"
fi
echo "install test ok: $(basename "$deb"), $(basename "$tarball")"
