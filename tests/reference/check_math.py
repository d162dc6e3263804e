#!/usr/bin/env python3
"""Reference values for src/diffusion/{rng,schedule}.rs and src/imaging/resample.rs.

Prints one line per case: `<name> <value> <value> ...`, float32 values as 8-digit hex bit
patterns, integers in decimal. With `--compare DUMP` it instead reads the same format,
as printed by tests/reference/dump_math.rs, and prints per-case max abs error, max ulp
distance and the number of differing values.

Usage:
    python tests/reference/check_math.py [rng|schedule|resample|all]

    rustc --edition 2024 -O tests/reference/dump_math.rs -o target/dump_math
    target/dump_math > target/rust_dump.txt
    python tests/reference/check_math.py all --compare target/rust_dump.txt

    # torch's DEFAULT (no AVX2) kernels: scalar Box-Muller, unfused resampling
    target/dump_math default > target/rust_dump_default.txt
    ATEN_CPU_CAPABILITY=default python tests/reference/check_math.py all \
        --compare target/rust_dump_default.txt

Needs torch (CPU), numpy, pillow, diffusers 0.33.1, transformers 4.51.3. Values quoted in
the Rust unit tests were produced with torch 2.15.0, Pillow 13.0.0 on x86-64 (AVX-512).
"""
import math
import sys

import numpy as np
import torch

torch.set_num_threads(1)


def hexf32(t):
    a = np.ascontiguousarray(np.asarray(t, dtype=np.float32)).reshape(-1)
    return " ".join(f"{int(u):08x}" for u in a.view(np.uint32))


def emit(out, name, values, kind="f32"):
    if kind == "f32":
        out.append(f"{name} {hexf32(values)}")
    else:
        out.append(f"{name} " + " ".join(str(int(v)) for v in values))


# ---------------------------------------------------------------- rng
def cases_rng(out):
    seeds = [0, 42, 2**32 + 5]
    shapes = [(1,), (7,), (15,), (16,), (17,), (2, 32), (1, 3, 8, 8), (3, 100), (1, 3, 64, 64)]
    for s in seeds:
        for sh in shapes:
            g = torch.Generator().manual_seed(s)
            emit(out, f"randn_seed{s}_{'x'.join(map(str, sh))}", torch.randn(sh, generator=g))
        g = torch.Generator().manual_seed(s)
        for i, sh in enumerate([(2, 32), (5,), (1, 3, 8, 8), (3,), (1,), (20,)]):
            emit(out, f"seq_seed{s}_{i}", torch.randn(sh, generator=g))


# ---------------------------------------------------------------- schedule
def cases_schedule(out):
    from diffusers import UnCLIPScheduler

    for T in (1000, 64, 1):
        sch = UnCLIPScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2")
        emit(out, f"betas_T{T}", sch.betas)
        emit(out, f"alphas_cumprod_T{T}", sch.alphas_cumprod)
    sch = UnCLIPScheduler(num_train_timesteps=1000)
    for n in (2, 7, 25, 50, 1000):
        sch.set_timesteps(n)
        emit(out, f"timesteps_T1000_n{n}", sch.timesteps.tolist(), kind="int")
    sch = UnCLIPScheduler(num_train_timesteps=10)
    sch.set_timesteps(4)
    emit(out, "timesteps_T10_n4", sch.timesteps.tolist(), kind="int")


# ---------------------------------------------------------------- resample
def test_image_f32(c, h, w, seed):
    # Deterministic input without torch's RNG: a smooth pattern plus hashed noise, so
    # the Rust side can rebuild it exactly (see resample.rs tests / dump harness).
    idx = np.arange(c * h * w, dtype=np.int64)
    noise = ((idx * 2654435761 + seed * 97) % 2**32).astype(np.float64) / 2**32
    ch, y, x = np.unravel_index(idx, (c, h, w))
    smooth = np.sin(0.3 * x + 0.2 * y + ch) * 0.5
    return (smooth + noise - 0.5).astype(np.float32).reshape(c, h, w)


def test_image_u8(h, w, seed):
    idx = np.arange(h * w * 3, dtype=np.int64)
    return (((idx * 2654435761 + seed * 97) % 2**32) >> 24).astype(np.uint8).reshape(h, w, 3)


def structured_u8(h, w):
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1))
    g = (y * 255 // max(h - 1, 1))
    b = np.where(((x // 4) + (y // 4)) % 2 == 0, 255, 0)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def cases_resample(out):
    import torch.nn.functional as F
    from PIL import Image

    for (c, h, w, oh, ow, seed) in [
        (3, 32, 32, 64, 64, 1),
        (3, 32, 32, 48, 48, 2),
        (3, 64, 64, 24, 24, 3),
        (3, 64, 64, 256, 256, 4),
        (2, 40, 30, 17, 50, 5),
        (1, 9, 13, 9, 5, 6),
    ]:
        x = torch.from_numpy(test_image_f32(c, h, w, seed))[None]
        y = F.interpolate(x, size=(oh, ow), mode="bicubic", align_corners=False, antialias=True)
        emit(out, f"aa_{c}x{h}x{w}_to_{oh}x{ow}", y)

    for (h, w, oh, ow, seed) in [(37, 53, 224, 160, 1), (300, 400, 224, 298, 2), (64, 64, 64, 32, 3), (50, 20, 13, 77, 4)]:
        im = Image.fromarray(test_image_u8(h, w, seed), "RGB")
        r = np.asarray(im.resize((ow, oh), Image.BICUBIC))
        out.append(f"pil_rand_{h}x{w}_to_{oh}x{ow} " + " ".join(map(str, r.reshape(-1))))
    for (h, w, oh, ow) in [(100, 150, 224, 336), (480, 640, 224, 298), (33, 33, 20, 20)]:
        im = Image.fromarray(structured_u8(h, w), "RGB")
        r = np.asarray(im.resize((ow, oh), Image.BICUBIC))
        out.append(f"pil_struct_{h}x{w}_to_{oh}x{ow} " + " ".join(map(str, r.reshape(-1))))

    from transformers.image_transforms import center_crop, get_resize_output_image_size
    from transformers.image_utils import ChannelDimension

    for (h, w, ch, cw) in [(10, 12, 4, 5), (7, 9, 4, 4), (5, 8, 8, 6), (3, 3, 6, 6), (224, 298, 224, 224)]:
        img = test_image_u8(h, w, 9)
        r = center_crop(img, (ch, cw), data_format=ChannelDimension.LAST, input_data_format=ChannelDimension.LAST)
        out.append(f"crop_{h}x{w}_to_{ch}x{cw} " + " ".join(map(str, np.asarray(r).reshape(-1))))
    for (h, w, s) in [(480, 640, 224), (640, 480, 224), (333, 500, 224), (500, 333, 224), (224, 224, 224), (1, 1000, 224), (999, 1001, 7), (300, 1000, 224)]:
        img = np.zeros((h, w, 3), dtype=np.uint8)
        oh, ow = get_resize_output_image_size(img, size=s, default_to_square=False, input_data_format=ChannelDimension.LAST)
        out.append(f"short_{w}x{h}_s{s} {ow} {oh}")


def compare(ref_lines, dump_path):
    dump = {}
    with open(dump_path) as f:
        for line in f:
            name, _, rest = line.strip().partition(" ")
            dump[name] = rest.split()
    worst = 0
    for line in ref_lines:
        name, _, rest = line.partition(" ")
        ref = rest.split()
        if name not in dump:
            print(f"{name}: MISSING in dump")
            continue
        got = dump[name]
        if len(got) != len(ref):
            print(f"{name}: LENGTH {len(got)} vs {len(ref)}")
            worst = max(worst, 1 << 30)
            continue
        if name.startswith(("randn", "seq", "betas", "alphas", "aa_")):
            r = np.array([int(v, 16) for v in ref], dtype=np.uint32).view(np.float32)
            g = np.array([int(v, 16) for v in got], dtype=np.uint32).view(np.float32)
            err = float(np.max(np.abs(r.astype(np.float64) - g.astype(np.float64)))) if r.size else 0.0
            ri = r.view(np.int32).astype(np.int64)
            gi = g.view(np.int32).astype(np.int64)
            ri = np.where(ri < 0, -(ri & 0x7FFFFFFF), ri)
            gi = np.where(gi < 0, -(gi & 0x7FFFFFFF), gi)
            ulp = int(np.max(np.abs(ri - gi))) if r.size else 0
            nbad = int(np.sum(r.view(np.uint32) != g.view(np.uint32)))
            print(f"{name}: n={r.size} max_abs_err={err:.3g} max_ulp={ulp} mismatched={nbad}")
            worst = max(worst, ulp)
        else:
            r = np.array([int(v) for v in ref])
            g = np.array([int(v) for v in got])
            d = int(np.max(np.abs(r - g))) if r.size else 0
            print(f"{name}: n={r.size} max_abs_diff={d} mismatched={int(np.sum(r != g))}")
            worst = max(worst, d)
    print(f"WORST {worst}")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    which = args[0] if args else "all"
    out = []
    if which in ("rng", "all"):
        cases_rng(out)
    if which in ("schedule", "all"):
        cases_schedule(out)
    if which in ("resample", "all"):
        cases_resample(out)
    if "--compare" in sys.argv:
        compare(out, sys.argv[sys.argv.index("--compare") + 1])
    else:
        print("\n".join(out))


if __name__ == "__main__":
    main()
