"""Weight files as they are published: the tiny fixture model written again by diffusers'
and transformers' own writers as PyTorch `.bin` files (the decoder sharded, with its
`.bin.index.json`), and as an `fp16` variant (super-resolution sharded, with its index),
plus diffusers' pictures for the fp16 variant loaded into float32.

Run from the repository root with the reference venv (tests/reference/README.md), after
make_fixtures.py:

    python tests/reference/make_format_fixtures.py

Writes tests/fixtures/tiny_unclip_bin/, tests/fixtures/tiny_unclip_fp16/ and
tests/fixtures/formats.{json,safetensors}. The `.bin` folder holds the same weights as
tiny_unclip/, so its pictures are the ones in pipelines.*.
"""

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers import UnCLIPImageVariationPipeline, UnCLIPPipeline  # noqa: E402
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
SRC = FIX / "tiny_unclip"
WEIGHTED = ["prior", "decoder", "super_res_first", "super_res_last", "text_proj", "text_encoder", "image_encoder"]
# Small enough to split the tiny networks in two or more shards.
SHARD = "150KB"


def load():
    pipe = UnCLIPPipeline.from_pretrained(str(SRC))
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(str(SRC / "image_encoder"))
    return pipe, image_encoder


def copy_plain_parts(dst):
    """Configs, tokenizer, schedulers and the feature extractor: everything but weights."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns("*.safetensors"))


def write(pipe, image_encoder, dst, sharded, **kw):
    parts = {name: getattr(pipe, name) for name in WEIGHTED if name != "image_encoder"}
    parts["image_encoder"] = image_encoder
    for name, model in parts.items():
        out = dst / name
        for f in out.glob("*"):
            if f.name not in ("config.json",):
                f.unlink()
        size = SHARD if name == sharded else "10GB"
        model.save_pretrained(str(out), max_shard_size=size, **kw)


def pictures(folder, variant):
    pipe = UnCLIPPipeline.from_pretrained(str(folder), variant=variant, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    ie = CLIPVisionModelWithProjection.from_pretrained(str(folder / "image_encoder"), variant=variant,
                                                       torch_dtype=torch.float32)
    vpipe = UnCLIPImageVariationPipeline(
        decoder=pipe.decoder, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer, text_proj=pipe.text_proj,
        feature_extractor=CLIPImageProcessor.from_pretrained(str(folder / "feature_extractor")), image_encoder=ie,
        super_res_first=pipe.super_res_first, super_res_last=pipe.super_res_last,
        decoder_scheduler=pipe.decoder_scheduler, super_res_scheduler=pipe.super_res_scheduler)
    vpipe.set_progress_bar_config(disable=True)
    meta = json.loads((FIX / "pipelines.json").read_text())
    prompt = meta["text2img"]["prompt"]
    steps = dict(decoder_num_inference_steps=5, super_res_num_inference_steps=3)
    with torch.no_grad():
        t2i = pipe(prompt=prompt, generator=torch.Generator().manual_seed(0), output_type="np",
                   prior_num_inference_steps=5, **steps).images
        var = vpipe(image=Image.open(FIX / "test_image.png").convert("RGB"), generator=torch.Generator().manual_seed(0),
                    output_type="np", **steps).images
    return {"fp16.text2img.image": torch.from_numpy(np.ascontiguousarray(t2i)),
            "fp16.variation_image.image": torch.from_numpy(np.ascontiguousarray(var))}, prompt


def main():
    if diffusers.__version__ != "0.33.1" or transformers.__version__ != "4.51.3":
        sys.exit("expected diffusers 0.33.1 and transformers 4.51.3 (see tests/reference/requirements.txt)")
    pipe, image_encoder = load()

    # PyTorch .bin (zip pickles, as torch.save writes them); the decoder in shards.
    dst = FIX / "tiny_unclip_bin"
    copy_plain_parts(dst)
    write(pipe, image_encoder, dst, "decoder", safe_serialization=False)

    # The fp16 variant only (as a repo that ships fp16 files beside nothing else would be
    # read with --variant fp16); super_res_first in shards.
    dst16 = FIX / "tiny_unclip_fp16"
    copy_plain_parts(dst16)
    half = {name: getattr(pipe, name).to(torch.float16) for name in WEIGHTED if name != "image_encoder"}
    for name, model in half.items():
        setattr(pipe, name, model)
    write(pipe, image_encoder.to(torch.float16), dst16, "super_res_first", safe_serialization=True, variant="fp16")

    tensors, prompt = pictures(dst16, "fp16")
    save_file(tensors, str(FIX / "formats.safetensors"))
    (FIX / "formats.json").write_text(json.dumps({
        "note": "diffusers' pictures for tiny_unclip_fp16 loaded with variant='fp16', torch_dtype=float32; "
                "same calls as pipelines.json text2img (seed 0, 5/5/3 steps) and variation_image",
        "prompt": prompt,
    }, indent=1, sort_keys=True) + "\n")
    for d in (dst, dst16):
        files = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
        print(d.name, len(files), "files:", ", ".join(f for f in files if "json" not in f or "index" in f))


if __name__ == "__main__":
    main()
