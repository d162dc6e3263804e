"""How far the reference moves from itself: diffusers' end-to-end pictures on the fixture
models under other thread counts and other instruction sets, against the recorded fixtures.

The parity tests' loose bounds for the chaotic random-weight super-resolution are justified by
these numbers (see `tests/pipelines.rs`). Run from the repository root with the reference venv
(tests/reference/README.md):

    python tests/reference/measure_spread.py

Each configuration runs in a fresh interpreter, because PyTorch reads ATEN_CPU_CAPABILITY and
MKL/oneDNN read their ISA caps once, at import.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"

# (label, threads, environment): the recorded fixtures were made single-threaded at the
# machine's best ISA; AVX2 caps ATen's own kernels and MKL's and oneDNN's.
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
CONFIGS = [
    ("1 thread, native ISA", 1, {}),
    ("2 threads, native ISA", 2, {}),
    ("1 thread, AVX2", 1, AVX2),
    ("2 threads, AVX2", 2, AVX2),
]
RUNS = [("tiny_unclip", "pipelines"), ("mid_unclip", "pipelines_mid")]


def child(threads):
    """Runs the three recorded end-to-end calls and prints their u8 pictures as JSON."""
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import numpy as np
    import torch
    from PIL import Image
    from diffusers import UnCLIPImageVariationPipeline, UnCLIPPipeline
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    torch.set_num_threads(threads)
    out = {"isa": torch.backends.cpu.get_cpu_capability()}
    steps = dict(decoder_num_inference_steps=5, super_res_num_inference_steps=3)
    for folder, stem in RUNS:
        d = FIX / folder
        meta = json.loads((FIX / f"{stem}.json").read_text())
        pipe = UnCLIPPipeline.from_pretrained(str(d))
        pipe.set_progress_bar_config(disable=True)
        vpipe = UnCLIPImageVariationPipeline(
            decoder=pipe.decoder, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
            text_proj=pipe.text_proj,
            feature_extractor=CLIPImageProcessor.from_pretrained(str(d / "feature_extractor")),
            image_encoder=CLIPVisionModelWithProjection.from_pretrained(str(d / "image_encoder")),
            super_res_first=pipe.super_res_first, super_res_last=pipe.super_res_last,
            decoder_scheduler=pipe.decoder_scheduler, super_res_scheduler=pipe.super_res_scheduler,
        )
        vpipe.set_progress_bar_config(disable=True)
        gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
        from safetensors.torch import load_file
        emb = load_file(str(FIX / f"{stem}.safetensors"))["variation_embeds.input_image_embeddings"]
        with torch.no_grad():
            pics = {
                "text2img.image": pipe(prompt=meta["text2img"]["prompt"], generator=gen(), output_type="np",
                                       prior_num_inference_steps=5, **steps).images,
                "variation_embeds.image": vpipe(image_embeddings=emb, generator=gen(), output_type="np", **steps).images,
                "variation_image.image": vpipe(image=Image.open(FIX / "test_image.png").convert("RGB"),
                                               generator=gen(), output_type="np", **steps).images,
            }
        out[folder] = {k: np.round(v * 255).astype(int).ravel().tolist() for k, v in pics.items()}
    print(json.dumps(out))


def recorded(stem, key):
    """The fixture's picture as u8, read from its safetensors store."""
    from safetensors.numpy import load_file
    import numpy as np
    v = load_file(str(FIX / f"{stem}.safetensors"))[key]
    return np.round(v * 255).astype(int).ravel()


def main():
    import numpy as np
    print(f"{'configuration':24} {'model':12} {'run':24} {'max /255':>8} {'> 1/255':>8} {'of':>7}")
    for label, threads, env in CONFIGS:
        res = subprocess.run([sys.executable, __file__, "--child", str(threads)], env={**os.environ, **env},
                             capture_output=True, text=True, check=True)
        got = json.loads(res.stdout.strip().splitlines()[-1])
        for folder, stem in RUNS:
            for key, pic in got[folder].items():
                d = np.abs(np.array(pic) - recorded(stem, key))
                print(f"{label + ' (' + got['isa'] + ')':24} {folder:12} {key:24} {d.max():8d} {(d > 1).sum():8d} {d.size:7d}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
    else:
        main()
