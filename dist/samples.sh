#!/usr/bin/env bash
# Regenerates the README's sample grids with the shipped model (assets/model).
#   dist/samples.sh [path/to/unclip]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/unclip}"
out=assets/samples
mkdir -p "$out"
run() { "$bin" --device cpu "$@" >/dev/null; }

# Text → image: four samples per caption; what the caption leaves open varies.
run generate "a small red star on a blue background" -n 4 --seed 1 --grid -o "$out/t2i-red-star.png"
run generate "a yellow circle in the top left corner" -n 4 --seed 2 --grid -o "$out/t2i-yellow-circle.png"
run generate "a green triangle" -n 4 --seed 3 --grid -o "$out/t2i-green-triangle.png"
run generate "a large purple cross on a white background" -n 4 --seed 4 --grid -o "$out/t2i-purple-cross.png"

# The same captions and seeds through the autoregressive prior.
run generate "a small red star on a blue background" -n 4 --seed 1 --prior ar --grid -o "$out/t2i-red-star-ar.png"
run generate "a green triangle" -n 4 --seed 3 --prior ar --grid -o "$out/t2i-green-triangle-ar.png"

# Sources for the image operations.
run generate "a large red star on a white background" --seed 5 -o "$out/src-red-star.png"
run generate "a small blue circle on a yellow background in the bottom right corner" --seed 6 -o "$out/src-blue-circle.png"

# Variations at the defaults (the model's own sampler; DDIM at guidance 8 washes its colours out).
run vary "$out/src-red-star.png" -n 4 --seed 7 --grid -o "$out/variations-red-star.png"
# Interpolation between the two sources, from one fixed x_T, and from their inverted latents
# (the ends reconstruct the sources).
run interpolate "$out/src-red-star.png" "$out/src-blue-circle.png" --frames 6 --seed 8 --grid -o "$out/interpolation.png"
run interpolate "$out/src-red-star.png" "$out/src-blue-circle.png" --frames 6 --sampler ddim --start inverted \
  --decoder-guidance 2 --grid -o "$out/interpolation-inverted.png"
# Text diff: push the red star toward "a blue star".
run textdiff "$out/src-red-star.png" --from "a red star" --to "a blue star" --theta 0,0.1,0.2,0.3,0.4,0.5 \
  --sampler ddim --decoder-guidance 1 --grid -o "$out/textdiff-red-to-blue.png"
ls -la "$out"
