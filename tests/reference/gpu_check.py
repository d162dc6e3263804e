"""The GPU check, prepared for a borrowed GPU machine and sized to fit about 15 minutes:

1. the card, and every WGSL kernel against the burn ops it replaces, the attention kernel
   included (`unclip --device gpu bench kernels` with UNCLIP_KERNELS=all);
2. a cold start on a small model (the mid fixture): empty caches, warm caches, and CubeCL's
   autotuning at its lowest level, each with its stage lines, to say where a first run's time goes;
3. a full-size Karlo-shaped model with random weights (`make_karlo_shaped.build`, 13.7 GB),
   unless --model names one already there;
4. text→image on it: diffusers 0.33.1 on CUDA (fp32 and fp16) against the project on wgpu
   (Vulkan) in f32 and f16 — wall time after a warm-up call at diffusers' default steps
   (25/25/7), and, at 2/2/2 steps, how many 8-bit values of each project picture differ from
   diffusers' fp32 picture by more than 1/255.

    python3 tests/reference/gpu_check.py --unclip target/release/unclip \\
        --wheel target/wheels/open_clip_torch-*.whl --out gpu-results

It needs: an x86-64 Linux machine with an NVIDIA card and its Vulkan driver, python3 with torch
(CUDA), diffusers==0.33.1, transformers==4.51.3, numpy and pillow (tests/reference/
requirements.txt), the open_clip_torch wheel for the CLIP vocabulary, 15 GB of disk and a
release build of `unclip`. Each section is appended to OUT/results.md as soon as it ends, so a
run cut short keeps what it measured; a section that cannot run says why and the next one
starts. The kernel defaults (the attention kernel is off) are decided from section 1.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

PROMPT = "a red circle"


def log(out, text):
    print(text, flush=True)
    with open(out / "results.md", "a") as f:
        f.write(text + "\n")


def run(cmd, env=None, timeout=600, cwd=None):
    """(seconds, stdout + stderr tail, return code) of one command."""
    t = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                           env={**os.environ, **(env or {})})
        return time.time() - t, (p.stdout + p.stderr)[-4000:], p.returncode
    except subprocess.TimeoutExpired as e:
        # What it printed before it was stopped says which stage the time went to.
        said = "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (e.stdout, e.stderr))
        return time.time() - t, f"timed out after {timeout} s; it had printed: {said.strip()[-1500:]}", 124


def stage_lines(text):
    """The project's plain per-stage progress lines (and a timeout notice) in a command's output."""
    return [l.strip() for l in text.splitlines() if "done after" in l or "timed out" in l]


def card(out, unclip, device):
    import torch

    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    log(out, f"## Card\n\n- CUDA: {name}; torch {torch.__version__}")
    _, text, _ = run([unclip, "--device", device, "-v", "bench", "kernels"], env={"UNCLIP_KERNELS": "all"}, timeout=150)
    log(out, "\n## WGSL kernels against burn ops (UNCLIP_KERNELS=all)\n\n```\n" + text.strip() + "\n```")


def cold_start(out, unclip, device, model):
    """Where a first run's time goes on a small model: a cold start (empty kernel and
    autotune caches), the same again warm, and a cold start with CubeCL's autotuning at its
    lowest level. Each run is a 2/2/2 `generate` from a scratch folder outside any Cargo
    project, with its own cache folder, and its stage lines are recorded."""
    import shutil
    import tempfile

    log(out, f"\n## Cold start on {model.name} (2/2/2 steps)\n")
    model = model.resolve()
    unclip = str(Path(unclip).resolve())
    fresh, made = None, []
    for label, env, new_cache in [("cold", {}, True), ("warm", {}, False), ("cold, CUBECL_AUTOTUNE_LEVEL=minimal", {"CUBECL_AUTOTUNE_LEVEL": "minimal"}, True)]:
        if new_cache:
            fresh = tempfile.mkdtemp(prefix="unclip-cache-")
            made.append(fresh)
        cmd = [unclip, "--device", device, "--model", str(model), "generate", PROMPT, "--prior-steps", "2",
               "--decoder-steps", "2", "--sr-steps", "2", "-o", os.path.join(fresh, "out.png")]
        secs, text, rc = run(cmd, env={"XDG_CACHE_HOME": fresh, **env}, timeout=120, cwd=fresh)
        log(out, f"- {label}: {secs:.1f} s (rc {rc})" + "".join(f"\n  - {l[:400]}" for l in stage_lines(text)))
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def diffusers_side(out, model, steps, reference, device, rows):
    """diffusers' fp32 picture at `steps` (the parity reference), then its warm wall time at
    25/25/7 in fp32 and fp16. Noise is drawn on the CPU generator, as the project draws it."""
    import torch
    from diffusers import UnCLIPPipeline

    pipe = UnCLIPPipeline.from_pretrained(model).to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    pipe.set_progress_bar_config(disable=True)
    # PyTorch lets cuDNN convolutions use TF32 by default, which is not fp32: the parity
    # picture is drawn with it off; the timings below use PyTorch's defaults, as users run it.
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False

    def call(p, s):
        sync()
        t = time.time()
        image = p(PROMPT, prior_num_inference_steps=s[0], decoder_num_inference_steps=s[1],
                  super_res_num_inference_steps=s[2], generator=torch.Generator().manual_seed(0)).images[0]
        sync()
        return time.time() - t, image

    _, image = call(pipe, steps)
    image.save(reference)
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    for dtype in ("fp32", "fp16"):
        if dtype == "fp16":
            pipe = pipe.to(torch.float16)
        call(pipe, (25, 25, 7))
        rows[dtype] = call(pipe, (25, 25, 7))[0]
        log(out, f"- diffusers {device} {dtype}, 25/25/7, warm: {rows[dtype]:.2f} s")
    del pipe
    if device == "cuda":
        torch.cuda.empty_cache()


def unclip_side(out, unclip, device, model, steps, reference, diffusers_rows):
    import numpy as np
    from PIL import Image

    want = np.asarray(Image.open(reference).convert("RGB"), dtype=np.int16) if reference.exists() else None
    for dtype in ("f32", "f16"):
        base = [unclip, "--device", device, "--model", str(model), "--dtype", dtype]
        # First a short run from a cold start: its plain stage lines say how long loading and
        # the first steps (kernel compilation and tuning) take, and its picture is the parity check.
        png = out / f"unclip-{dtype}.png"
        secs, text, rc = run([*base, "generate", PROMPT, "--prior-steps", str(steps[0]), "--decoder-steps",
                              str(steps[1]), "--sr-steps", str(steps[2]), "-o", str(png)], timeout=200)
        line = f"- unclip {device} {dtype}: cold start at {steps[0]}/{steps[1]}/{steps[2]} steps {secs:.1f} s"
        if png.exists() and want is not None:
            diff = np.abs(np.asarray(Image.open(png).convert("RGB"), dtype=np.int16) - want)
            line += f", {int((diff > 1).sum())} of {diff.size} values off diffusers fp32 by more than 1/255, max {int(diff.max())}"
        elif rc != 0:
            line += f", failed (rc {rc})"
        log(out, line + "".join(f"\n  - {l[:400]}" for l in stage_lines(text)))
        secs, text, rc = run([*base, "bench", "pipeline", "--prompt", PROMPT, "--warmup", "1", "--repeat", "1"], timeout=240)
        line = f"- unclip {device} {dtype}, 25/25/7, warm: "
        try:
            t = json.loads(text.strip().splitlines()[-1])["seconds"][0]
            ref = diffusers_rows.get("fp32" if dtype == "f32" else "fp16")
            line += f"{t:.2f} s" + (f" ({t / ref:.2f}× diffusers {dtype})" if ref else "")
        except (ValueError, KeyError, IndexError):
            line += f"failed after {secs:.0f} s (rc {rc}): {text.strip()[-300:]}"
        log(out, line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unclip", default="target/release/unclip")
    ap.add_argument("--wheel", help="the open_clip_torch wheel (the CLIP vocabulary), to build the model")
    ap.add_argument("--model", type=Path, default=Path("target/karlo/model"),
                    help="a Karlo-shaped model folder; built here when it is missing")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-results")))
    ap.add_argument("--cold-model", type=Path, default=Path("tests/fixtures/mid_unclip"),
                    help="a small model for the cold-start section (skipped when missing)")
    ap.add_argument("--steps", default="2,2,2", help="prior,decoder,super-res steps of the parity pictures")
    ap.add_argument("--skip-model", action="store_true", help="only the card and the kernels (about a minute)")
    # A rehearsal of the script's plumbing on a machine without a GPU (small model, CPU both sides).
    ap.add_argument("--torch-device", default="cuda")
    ap.add_argument("--unclip-device", default="gpu")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    steps = tuple(int(s) for s in args.steps.split(","))
    started = time.time()
    card(args.out, args.unclip, args.unclip_device)
    if args.cold_model.exists():
        cold_start(args.out, args.unclip, args.unclip_device, args.cold_model)
    if args.skip_model:
        return
    if not (args.model / "model_index.json").exists():
        if not args.wheel:
            log(args.out, "\nNo model: --wheel (open_clip_torch) is needed to build one.")
            return
        sys.path.insert(0, str(Path(__file__).parent))
        from make_karlo_shaped import build

        t = time.time()
        build(args.model, args.wheel, 0)
        log(args.out, f"\nBuilt the Karlo-shaped model in {time.time() - t:.0f} s.")
    log(args.out, "\n## Full-size text→image (Karlo-shaped, random weights)\n")
    reference = args.out / "diffusers-fp32.png"
    rows = {}
    try:
        diffusers_side(args.out, str(args.model), steps, reference, args.torch_device, rows)
    except Exception as e:  # the project's rows still run
        log(args.out, f"- diffusers failed: {type(e).__name__}: {str(e)[:300]}")
    unclip_side(args.out, args.unclip, args.unclip_device, args.model, steps, reference, rows)
    log(args.out, f"\nTotal {time.time() - started:.0f} s.")


if __name__ == "__main__":
    main()
