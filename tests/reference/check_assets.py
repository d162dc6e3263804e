"""Checks that diffusers loads and runs a model folder written by `unclip train` unchanged,
and that it draws the same picture as the Rust CLI for the same seed.

    tests/reference/.venv/bin/python tests/reference/check_assets.py [MODEL_DIR] [--unclip target/release/unclip]

Exit status 0 when both pipelines load and run and the pictures agree within 1/255 per
value on at least 99.9 % of values.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from diffusers import UnCLIPImageVariationPipeline, UnCLIPPipeline

ap = argparse.ArgumentParser()
ap.add_argument("model", nargs="?", default=str(Path(__file__).resolve().parents[2] / "assets" / "model"))
ap.add_argument("--unclip", default=None, help="path of the unclip binary to compare with")
ap.add_argument("--prompt", default="a small red star on a blue background")
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()

torch.set_num_threads(1)
pipe = UnCLIPPipeline.from_pretrained(args.model)
pipe.set_progress_bar_config(disable=True)
out = pipe(args.prompt, generator=torch.Generator().manual_seed(args.seed), output_type="np").images[0]
print(f"UnCLIPPipeline: {out.shape}, mean {out.mean():.4f}")

vpipe = UnCLIPImageVariationPipeline.from_pretrained(args.model)
vpipe.set_progress_bar_config(disable=True)
img = Image.fromarray((out * 255).round().astype("uint8"))
var = vpipe(image=img, generator=torch.Generator().manual_seed(args.seed), output_type="np").images[0]
print(f"UnCLIPImageVariationPipeline: {var.shape}, mean {var.mean():.4f}")

ok = True
if args.unclip:
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "rust.png"
        subprocess.run([args.unclip, "--device", "cpu", "--model", args.model, "generate", args.prompt,
                        "--seed", str(args.seed), "-o", str(png)], check=True, capture_output=True)
        rust = np.asarray(Image.open(png).convert("RGB")).astype(int)
    ref = (out * 255).round().astype(int)
    diff = np.abs(rust - ref)
    frac = (diff > 1).mean()
    print(f"Rust vs diffusers, same seed: max {diff.max()}/255, {100 * frac:.3f}% of values off by more than 1/255")
    ok = frac <= 0.001
sys.exit(0 if ok else 1)
