"""A full-size Karlo-shaped unCLIP with random weights, for checking the project at the scale
users run (3.4 B parameters, 13.7 GB in fp32): Karlo v1 alpha's component configs as diffusers'
`scripts/convert_kakao_brain_unclip_to_diffusers.py` builds them, and the real CLIP BPE
vocabulary (OpenAI's `bpe_simple_vocab_16e6.txt.gz`, which the open_clip_torch wheel ships),
padded with "!" to 77 tokens. Then, optionally, runs diffusers and the project (default settings,
`--release-stages`, and with `--dtype f16`) on it and prints pixel agreement with diffusers, wall
time and peak memory of each.

    pip download --no-deps -d target/wheels open_clip_torch   # the vocabulary's source
    tests/reference/.venv/bin/python tests/reference/make_karlo_shaped.py OUT \\
        --wheel target/wheels/open_clip_torch-*.whl [--compare target/release/unclip]

Not part of CI: it needs ~14 GB of disk and, to compare, ~16 GB of memory.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from diffusers import PriorTransformer, UnCLIPPipeline, UnCLIPScheduler, UNet2DConditionModel, UNet2DModel  # noqa: E402
from diffusers.pipelines.unclip.text_proj import UnCLIPTextProjModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer  # noqa: E402
from transformers.models.clip.tokenization_clip import bytes_to_unicode  # noqa: E402


def write_vocabulary(wheel, out):
    """vocab.json + merges.txt as transformers' CLIPTokenizer reads OpenAI's BPE file."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith("bpe_simple_vocab_16e6.txt.gz"))
        lines = gzip.decompress(z.read(name)).decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
    base = list(bytes_to_unicode().values())
    vocab = base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
    tok = CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"), pad_token="!", model_max_length=77)
    tok.save_pretrained(str(out))
    return tok


def build(out, wheel, seed):
    torch.manual_seed(seed)
    import tempfile
    tok = write_vocabulary(wheel, Path(tempfile.mkdtemp(prefix="clip-vocab-")))
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu", eos_token_id=2))
    prior = PriorTransformer(num_attention_heads=32, attention_head_dim=64, num_layers=20, embedding_dim=768,
                             num_embeddings=77, additional_embeddings=4)
    # clip_mean / clip_std are buffers of zeros and ones at init: give them Karlo-like values.
    with torch.no_grad():
        prior.clip_mean.normal_(0.0, 0.02)
        prior.clip_std.uniform_(0.5, 1.5)
    text_proj = UnCLIPTextProjModel(clip_extra_context_tokens=4, clip_embeddings_dim=768, time_embed_dim=1280,
                                    cross_attention_dim=1536)
    decoder = UNet2DConditionModel(
        sample_size=64, layers_per_block=3,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D",
                          "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                        "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=(320, 640, 960, 1280), in_channels=3,
        out_channels=6, cross_attention_dim=1536, attention_head_dim=64, time_embedding_type="positional",
        class_embed_type="identity", resnet_time_scale_shift="scale_shift")

    def super_res(sample_size):
        return UNet2DModel(
            sample_size=sample_size, layers_per_block=3, down_block_types=("ResnetDownsampleBlock2D",) * 4,
            up_block_types=("ResnetUpsampleBlock2D",) * 4, block_out_channels=(320, 640, 960, 1280),
            in_channels=6, out_channels=3, add_attention=False)

    def sched(variance, prediction, clip_range):
        return UnCLIPScheduler(variance_type=variance, prediction_type=prediction, clip_sample=True,
                               clip_sample_range=clip_range, num_train_timesteps=1000,
                               beta_schedule="squaredcos_cap_v2")

    pipe = UnCLIPPipeline(
        prior=prior, decoder=decoder, text_encoder=text_encoder, tokenizer=tok, text_proj=text_proj,
        super_res_first=super_res(256), super_res_last=super_res(None),
        prior_scheduler=sched("fixed_small_log", "sample", 5.0),
        decoder_scheduler=sched("learned_range", "epsilon", 1.0),
        super_res_scheduler=sched("fixed_small_log", "epsilon", 1.0))
    pipe.save_pretrained(str(out), safe_serialization=True)
    n = sum(p.numel() for m in (prior, decoder, text_encoder, text_proj, pipe.super_res_first, pipe.super_res_last)
            for p in m.parameters())
    print(f"wrote {out}: {n / 1e9:.2f} B parameters")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--wheel", required=True, help="the open_clip_torch wheel (its BPE vocabulary)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare", help="the unclip binary: run it on the model with --release-stages")
    args = ap.parse_args()
    if not (args.out / "model_index.json").exists():
        build(args.out, args.wheel, args.seed)
    if args.compare:
        compare(args.out, args.compare)


# Each run in its own python child, so ru_maxrss is that run's own peak.
TIMED = ("import resource,subprocess,sys,time;t=time.time();"
         "subprocess.run(sys.argv[1:],check=True);"
         "print(f'{time.time()-t:.1f} s, peak {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1048576:.2f} GB')")

# diffusers at the same seed, prompt and steps as the CLI call below (its defaults: guidance 4 / 8).
DIFFUSERS = ("import sys,torch;from diffusers import UnCLIPPipeline;"
             "p=UnCLIPPipeline.from_pretrained(sys.argv[1]);p.set_progress_bar_config(disable=True);"
             "p('a red circle',prior_num_inference_steps=2,decoder_num_inference_steps=2,"
             "super_res_num_inference_steps=2,generator=torch.Generator().manual_seed(0)).images[0].save(sys.argv[2])")


def timed(cmd):
    out = subprocess.run([sys.executable, "-c", TIMED, *cmd], capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip()[-300:]


def compare(model, unclip):
    """The project (default, --release-stages, and f16) and diffusers on the same call: wall time,
    peak memory, and how many 8-bit values differ from diffusers' picture."""
    import numpy as np
    from PIL import Image

    reference = model.parent / "karlo-shaped-diffusers.png"
    print("diffusers ->", timed([sys.executable, "-c", DIFFUSERS, str(model), str(reference)]))
    want = np.asarray(Image.open(reference).convert("RGB"), dtype=np.int16)
    for flags in ([], ["--release-stages"], ["--release-stages", "--dtype", "f16"]):
        png = model.parent / f"karlo-shaped{''.join(flags)}.png"
        cmd = [unclip, "--device", "cpu", "--model", str(model), *flags, "generate", "a red circle",
               "--prior-steps", "2", "--decoder-steps", "2", "--sr-steps", "2", "-o", str(png)]
        line = timed(cmd)
        if png.exists():
            got = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
            diff = np.abs(got - want)
            line += f"; {int((diff > 1).sum())} of {diff.size} values off by more than 1/255, max {int(diff.max())}"
        print(" ".join(flags) or "default", "->", line)

if __name__ == "__main__":
    main()
