#!/usr/bin/env bash
# Draws the PNG and .ico icons from the same geometry as unclip.svg with ImageMagick's own
# primitives (no SVG renderer needed). The outputs are committed; run this after editing.
set -euo pipefail
cd "$(dirname "$0")"
dots=""
for d in "40,52,6" "70,34,4" "206,48,7" "222,96,4" "34,196,5" "60,222,7" "214,214,5" "186,226,4" "30,122,4"; do
  IFS=, read -r x y r <<<"$d"
  dots+="circle $x,$y $((x + r)),$y "
done
convert -size 256x256 xc:none \
  -fill '#1f2430' -draw 'roundrectangle 8,8 247,247 44,44' \
  -fill '#4d5a73' -draw "$dots" \
  -fill '#e8a33d' -draw 'circle 104,116 162,116' \
  -fill '#d94a4a' -draw 'polygon 168,86 182,128 226,128 190,154 204,196 168,170 132,196 146,154 110,128 154,128' \
  unclip-256.png
for s in 16 32 48 64 128; do
  convert unclip-256.png -resize "${s}x${s}" "unclip-$s.png"
done
convert unclip-16.png unclip-32.png unclip-48.png unclip-256.png unclip.ico
