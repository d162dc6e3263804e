"""Text→image speed and peak memory: this project (Rust, burn flex on CPU) against diffusers
0.33.1 on PyTorch CPU, on the same weights, at diffusers' default steps (25/25/7) and scales.

    tests/reference/.venv/bin/python tests/reference/bench_reference.py [--unclip target/release/unclip] [--rounds 3] MODEL_DIR...

Each round runs one diffusers call in this process and then one Rust call in a fresh
`unclip bench pipeline` process, alternately, so machine load affects both alike; both
sides are timed after a warm-up call (weights loaded). Prints the median wall time of each,
their ratio (Rust / diffusers, lower is better) and each process's peak resident memory.
"""
import argparse
import json
import resource
import statistics
import subprocess
import time

import torch
from diffusers import UnCLIPPipeline

ap = argparse.ArgumentParser()
ap.add_argument("models", nargs="+")
ap.add_argument("--unclip", default="target/release/unclip")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--prompt", default="a small red star on a blue background")
args = ap.parse_args()

rows = []
for model in args.models:
    pipe = UnCLIPPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    call = lambda: pipe(args.prompt, generator=torch.Generator().manual_seed(0), output_type="np")
    call()  # warm-up
    py, rs, rs_mem = [], [], 0.0
    for _ in range(args.rounds):
        t = time.perf_counter()
        call()
        py.append(time.perf_counter() - t)
        out = subprocess.run([args.unclip, "--device", "cpu", "--model", model, "bench", "pipeline",
                              "--prompt", args.prompt, "--warmup", "1", "--repeat", "1"],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rs.extend(r["seconds"])
        rs_mem = max(rs_mem, r["peak_rss_mib"])
    py_mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    rows.append((model, statistics.median(rs), statistics.median(py), rs_mem, py_mem))

print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
print("| model | unclip (s) | diffusers (s) | ratio | unclip peak MiB | diffusers peak MiB |")
print("|---|---|---|---|---|---|")
for model, r, p, rm, pm in rows:
    print(f"| {model} | {r:.2f} | {p:.2f} | {r / p:.2f}× | {rm:.0f} | {pm:.0f} |")
