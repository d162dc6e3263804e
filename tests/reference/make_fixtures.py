#!/usr/bin/env python3
"""Generate the parity fixtures that the Rust tests compare against.

Reference stack (pinned in requirements.txt): diffusers 0.33.1, transformers 4.51.3,
PyTorch (CPU, float32). The Hugging Face hub is never contacted: every model and the
tokenizer are built locally from tiny configs with random weights.

Outputs (all under tests/fixtures/):
  tiny_unclip/            diffusers-layout unCLIP folder (UnCLIPPipeline.save_pretrained)
                          + image_encoder/ and feature_extractor/ for the image-variation pipeline
  text_proj_fp16/         the same text_proj weights stored as float16
  test_image.png          48x40 RGB test image (structured, not noise)
  components.{safetensors,json}   per-network inputs and reference outputs
  schedulers.{safetensors,json}   UnCLIPScheduler / DDIMScheduler / DDIMInverseScheduler cases
  randn.{safetensors,json}        torch CPU generator normal draws
  pipelines.{safetensors,json}    end-to-end pipeline runs with captured intermediates
  + everything make_more_fixtures.py writes (called at the end of main(); see its docstring)

Conventions:
  * every float tensor is stored as float32, ids / timesteps / masks as int64;
  * each .json holds "tensors": {name: {"shape": [...], "dtype": "..."}} plus the
    scalar parameters of each case; JSON is written with sorted keys;
  * the script is deterministic: running it twice gives byte-identical files.

Usage:  tests/reference/.venv/bin/python tests/reference/make_fixtures.py
"""

import functools
import inspect
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers import (  # noqa: E402
    DDIMInverseScheduler,
    DDIMScheduler,
    PriorTransformer,
    UnCLIPImageVariationPipeline,
    UnCLIPPipeline,
    UnCLIPScheduler,
    UNet2DConditionModel,
    UNet2DModel,
)
from diffusers.pipelines.unclip.text_proj import UnCLIPTextProjModel  # noqa: E402
from transformers import (  # noqa: E402
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)
from transformers.models.clip.tokenization_clip import bytes_to_unicode  # noqa: E402

import diffusers.pipelines.unclip.pipeline_unclip as pipeline_unclip_mod  # noqa: E402
import diffusers.pipelines.unclip.pipeline_unclip_image_variation as pipeline_var_mod  # noqa: E402
import diffusers.schedulers.scheduling_unclip as scheduling_unclip_mod  # noqa: E402

# Single-threaded, deterministic kernels: makes regeneration reproducible bit for bit.
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures"

# ---------------------------------------------------------------------------------------
# Tiny dimensions (kept small so the whole fixture folder stays a few MB)
# ---------------------------------------------------------------------------------------
CLIP_DIM = 32  # CLIP embedding dim E (text hidden, projection, prior embedding_dim)
BLOCK_OUT = (16, 32)  # UNet channels; with 8 groups GroupNorm really groups (2 or 4 ch/group)
NORM_GROUPS = 8
TIME_EMBED_DIM = 4 * BLOCK_OUT[0]  # 64, = text_proj.time_embed_dim
CROSS_DIM = 40  # decoder cross_attention_dim = text_proj.cross_attention_dim
DECODER_SIZE = 32
SUPER_RES_SIZE = 64
MAX_LEN = 77

PROMPTS = [
    "a red circle",
    "",
    "A small BLUE star on a white background",
    # > 77 tokens, gets truncated
    " ".join(["a red circle on the white background and a blue star"] * 8),
    "a café ☕ test",
    # "!" is the pad token, registered as a special token: inside text it becomes id 0 and splits
    # words, instead of the byte-level "!</w>" (id 256)
    "wow! a red circle!!",
]

# The dimensions that make_components / make_pipelines depend on. make_more_fixtures.py passes
# its own set for the mid-size model (components_mid.*, pipelines_mid.*).
TINY_DIMS = SimpleNamespace(
    clip_dim=CLIP_DIM,  # E
    max_len=MAX_LEN,  # tokenizer model_max_length = text positions = prior num_embeddings
    cross_dim=CROSS_DIM,
    time_embed_dim=TIME_EMBED_DIM,
    decoder_size=DECODER_SIZE,
    super_res_size=SUPER_RES_SIZE,
    image_size=32,  # image encoder / feature extractor crop
    prompts=PROMPTS,  # tokenizer cases; the first two also feed the text encoder
    pipeline_prompt="a red circle",
    pooling="argmax(input_ids) (eos_token_id == 2)",
    bicubic=True,  # components.* also holds the model-independent bicubic cases
)


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------
class TensorStore:
    """Collects named tensors (float32 / int64 only) plus a JSON-able description."""

    def __init__(self):
        self.tensors = {}
        self.meta = {}

    def add(self, name, t):
        t = torch.as_tensor(t).detach().cpu()
        if t.dtype == torch.bool:
            t = t.to(torch.int64)
        elif t.is_floating_point():
            t = t.to(torch.float32)
        elif t.dtype != torch.int64:
            t = t.to(torch.int64)
        assert name not in self.tensors, name
        self.tensors[name] = t.contiguous().clone()
        return t

    def write(self, stem):
        save_file(self.tensors, str(OUT / f"{stem}.safetensors"))
        meta = dict(self.meta)
        meta["tensors"] = {
            k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
            for k, v in sorted(self.tensors.items())
        }
        write_json(OUT / f"{stem}.json", meta)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def randomize_(model, seed):
    """Overwrite parameters that diffusers / transformers initialise to constants.

    All-zero tensors (biases, norm biases, clip_mean, positional / prd embeddings, the
    learned CFG embedding, ...) get small random values; all-one tensors (norm weights)
    get 1 + small noise. That way a parity test cannot pass by accident because e.g. a
    missing LayerNorm bias happens to be zero.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if torch.all(p == 0):
                std = 0.1
                if name in ("clip_mean", "learned_classifier_free_guidance_embeddings"):
                    std = 0.5
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif torch.all(p == 1):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
        if isinstance(model, PriorTransformer):
            # clip_std must be positive: 0.5 .. 1.5
            model.clip_std.copy_(0.5 + torch.rand(model.clip_std.shape, generator=g))
    return model


def clean_config(cfg):
    """Scheduler config as a plain dict; drops "_use_default_values" (a set-derived list whose order
    varies between runs)."""
    return {k: v for k, v in dict(cfg).items() if k != "_use_default_values"}


def stats(t):
    t = t.float()
    return f"shape={tuple(t.shape)} mean={t.mean():+.4f} std={t.std():.4f} absmax={t.abs().max():.4f}"


# ---------------------------------------------------------------------------------------
# Tokenizer: tiny byte-level CLIP BPE vocab built from scratch
# ---------------------------------------------------------------------------------------
MERGE_WORDS = ["a", "red", "circle", "blue", "star", "on", "the", "white", "background", "small", "test"]


def add_word_merges(vocab, merges, words):
    """Appends to `merges` and `vocab` what it takes to encode each word as one token:
    left-to-right merges ((w0,w1) -> w0w1), (w0w1, w2), ..., the last symbol carrying </w>."""
    for word in words:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        cur = symbols[0]
        for s in symbols[1:]:
            merge = (cur, s)
            cur = cur + s
            if merge not in merges:
                merges.append(merge)
            if cur not in vocab:
                vocab.append(cur)


def tokenizer_meta(tok, max_length):
    """What the fixtures record about a tokenizer, and the call they encode prompts with."""
    return {
        "vocab_size": len(tok),
        "pad_token": tok.pad_token,
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "model_max_length": tok.model_max_length,
        "call": f'tokenizer(prompt, padding="max_length", max_length={max_length}, truncation=True)',
    }


def build_tokenizer_files(tmp):
    """vocab.json + merges.txt in the same layout as OpenAI CLIP's BPE vocab:
    ids 0..255 byte-level chars, 256..511 the same chars + "</w>", then one id per merge
    result, then <|startoftext|>, <|endoftext|> as the last two ids."""
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    merges = []
    add_word_merges(vocab, merges, MERGE_WORDS)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(vocab)) == len(vocab)
    vocab_path = Path(tmp) / "vocab.json"
    merges_path = Path(tmp) / "merges.txt"
    write_json(vocab_path, {tok: i for i, tok in enumerate(vocab)})
    with open(merges_path, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")  # CLIPTokenizer skips the first line
        for a, b in merges:
            f.write(f"{a} {b}\n")
    return vocab_path, merges_path, len(vocab)


def build_tokenizer(tmp):
    vocab_path, merges_path, n = build_tokenizer_files(tmp)
    tok = CLIPTokenizer(
        str(vocab_path),
        str(merges_path),
        pad_token="!",  # as in Karlo (id 0)
        model_max_length=MAX_LEN,
    )
    assert len(tok) == n and tok.pad_token_id == 0
    return tok


# ---------------------------------------------------------------------------------------
# Tiny components
# ---------------------------------------------------------------------------------------
def build_components(tokenizer):
    vocab_size = len(tokenizer)

    torch.manual_seed(0)
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,  # legacy value as in Karlo -> pooling at argmax(input_ids)
            pad_token_id=1,
            hidden_size=CLIP_DIM,
            projection_dim=CLIP_DIM,
            intermediate_size=37,
            layer_norm_eps=1e-5,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=vocab_size,
            max_position_embeddings=MAX_LEN,
            hidden_act="quick_gelu",
        )
    )
    randomize_(text_encoder, 100)

    torch.manual_seed(1)
    prior = PriorTransformer(
        num_attention_heads=2,
        attention_head_dim=12,
        embedding_dim=CLIP_DIM,
        num_layers=2,
    )
    randomize_(prior, 101)

    torch.manual_seed(2)
    text_proj = UnCLIPTextProjModel(
        clip_embeddings_dim=CLIP_DIM,
        time_embed_dim=TIME_EMBED_DIM,
        cross_attention_dim=CROSS_DIM,
    )
    randomize_(text_proj, 102)

    torch.manual_seed(3)
    decoder = UNet2DConditionModel(
        sample_size=DECODER_SIZE,
        layers_per_block=1,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=BLOCK_OUT,
        in_channels=3,
        out_channels=6,
        cross_attention_dim=CROSS_DIM,
        attention_head_dim=4,  # channels per head -> 8 heads at 32 channels
        norm_num_groups=NORM_GROUPS,
        resnet_time_scale_shift="scale_shift",
        class_embed_type="identity",
    )
    randomize_(decoder, 103)

    def super_res(seed, sample_size, add_attention):
        torch.manual_seed(seed)
        m = UNet2DModel(
            sample_size=sample_size,
            layers_per_block=1,
            down_block_types=("ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D"),
            up_block_types=("ResnetUpsampleBlock2D", "ResnetUpsampleBlock2D"),
            block_out_channels=BLOCK_OUT,
            in_channels=6,
            out_channels=3,
            norm_num_groups=NORM_GROUPS,
            attention_head_dim=8,  # only used by the mid attention of super_res_last: 4 heads
            add_attention=add_attention,
            resnet_time_scale_shift="default",
        )
        return randomize_(m, seed + 100)

    # Karlo: super_res_first.sample_size 256, super_res_last.sample_size null; no mid attention.
    # Here super_res_last keeps a mid attention so that both mid-block variants are covered.
    super_res_first = super_res(4, SUPER_RES_SIZE, add_attention=False)
    super_res_last = super_res(5, None, add_attention=True)


    torch.manual_seed(6)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=CLIP_DIM,
            projection_dim=CLIP_DIM,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            intermediate_size=37,
            patch_size=4,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        )
    )
    randomize_(image_encoder, 106)

    feature_extractor = clip_image_processor(32)

    pipe = unclip_pipeline(prior, decoder, text_encoder, tokenizer, text_proj, super_res_first, super_res_last)
    return pipe, image_encoder, feature_extractor


def unclip_pipeline(prior, decoder, text_encoder, tokenizer, text_proj, super_res_first, super_res_last):
    """The text-to-image pipeline around these parts, with Karlo's three schedulers."""
    return UnCLIPPipeline(
        prior=prior,
        decoder=decoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_proj=text_proj,
        super_res_first=super_res_first,
        super_res_last=super_res_last,
        prior_scheduler=UnCLIPScheduler(
            variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000, clip_sample_range=5.0
        ),
        decoder_scheduler=UnCLIPScheduler(
            variance_type="learned_range", prediction_type="epsilon", num_train_timesteps=1000
        ),
        super_res_scheduler=UnCLIPScheduler(
            variance_type="fixed_small_log", prediction_type="epsilon", num_train_timesteps=1000
        ),
    )


def clip_image_processor(size):
    """OpenAI CLIP's preprocessing at `size` px: shortest edge, PIL bicubic, centre crop."""
    return CLIPImageProcessor(
        crop_size={"height": size, "width": size},
        size={"shortest_edge": size},
        resample=3,  # PIL bicubic
        do_center_crop=True,
        do_resize=True,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        do_convert_rgb=True,
    )


def save_unclip(folder, pipe, image_encoder, feature_extractor):
    """The pipeline in diffusers' layout, with the variation pipeline's two extra parts."""
    d = OUT / folder
    pipe.save_pretrained(str(d), safe_serialization=True)
    image_encoder.save_pretrained(str(d / "image_encoder"), safe_serialization=True)
    feature_extractor.save_pretrained(str(d / "feature_extractor"))


def save_tiny_unclip(pipe, image_encoder, feature_extractor):
    save_unclip("tiny_unclip", pipe, image_encoder, feature_extractor)
    # f16 copy of text_proj (tests f16 -> f32 loading)
    tp16 = UnCLIPTextProjModel.from_config(pipe.text_proj.config)
    tp16.load_state_dict(pipe.text_proj.state_dict())
    tp16.to(torch.float16).save_pretrained(str(OUT / "text_proj_fp16"), safe_serialization=True)


def load_unclip(folder):
    """Reload everything from disk, so the fixtures are computed with exactly the saved weights."""
    d = OUT / folder
    pipe = UnCLIPPipeline.from_pretrained(str(d))
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(str(d / "image_encoder"))
    feature_extractor = CLIPImageProcessor.from_pretrained(str(d / "feature_extractor"))
    pipe.set_progress_bar_config(disable=True)
    for m in (pipe.prior, pipe.decoder, pipe.text_encoder, pipe.text_proj, pipe.super_res_first,
              pipe.super_res_last, image_encoder):
        m.eval()
        assert all(p.dtype == torch.float32 for p in m.parameters())
    return pipe, image_encoder, feature_extractor


def check_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), (set(sa) ^ set(sb))
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ---------------------------------------------------------------------------------------
# Test image
# ---------------------------------------------------------------------------------------
def make_test_image():
    """48 (W) x 40 (H) RGB: horizontal red ramp, vertical green ramp, a blue disc and a
    dark checker square, so resize / crop errors are visible."""
    h, w = 40, 48
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 / (w - 1)).round()
    g = (y * 255 / (h - 1)).round()
    b = np.where((x - 30) ** 2 + (y - 18) ** 2 <= 10 ** 2, 230, 40)
    checker = ((x // 3 + y // 3) % 2 == 0) & (x < 14) & (y > 24)
    r = np.where(checker, 10, r)
    g = np.where(checker, 10, g)
    b = np.where(checker, 10, b)
    img = np.stack([r, g, b], axis=-1).astype(np.uint8)
    path = OUT / "test_image.png"
    Image.fromarray(img, mode="RGB").save(path, format="PNG")
    return path


# ---------------------------------------------------------------------------------------
# (b) Components
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def make_components(pipe, image_encoder, feature_extractor, image_path, dims=TINY_DIMS, stem="components"):
    st = TensorStore()
    tok = pipe.tokenizer
    L = dims.max_len
    S = dims.image_size

    # --- tokenizer
    tok_cases = []
    for p in dims.prompts:
        enc = tok(p, padding="max_length", max_length=L, truncation=True)
        untrunc = tok(p)["input_ids"]
        tok_cases.append(
            {
                "prompt": p,
                "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"],
                "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
                "untruncated_length": len(untrunc),
            }
        )
    st.meta["tokenizer"] = {
        "cases": tok_cases,
        **tokenizer_meta(tok, L),
        "note": "slow CLIPTokenizer without ftfy: text = ' '.join(BasicTokenizer(strip_accents=False, "
        "do_split_on_punc=False).tokenize(text)).lower() (NFC normalisation, control chars removed, "
        "whitespace collapsed), then CLIP regex + byte-level BPE",
    }

    # --- text encoder (no attention mask, as in the pipeline)
    ids = torch.tensor([tok_cases[0]["input_ids"], tok_cases[1]["input_ids"]], dtype=torch.int64)
    out = pipe.text_encoder(ids)
    st.add("text_encoder.input_ids", ids)
    st.add("text_encoder.text_embeds", out.text_embeds)
    st.add("text_encoder.last_hidden_state", out.last_hidden_state)
    st.meta["text_encoder"] = {"prompts": dims.prompts[:2], "pooling": dims.pooling}

    # --- image encoder
    g = torch.Generator().manual_seed(10)
    pix = torch.rand((2, 3, S, S), generator=g) * 4 - 2  # roughly CLIP-normalised range
    st.add("image_encoder.pixel_values", pix)
    out = image_encoder(pix)
    st.add("image_encoder.image_embeds", out.image_embeds)
    st.add("image_encoder.last_hidden_state", out.last_hidden_state)

    # --- feature extractor on the committed PNG
    img = Image.open(image_path)
    pv = feature_extractor(images=img, return_tensors="pt").pixel_values
    st.add("feature_extractor.pixel_values", pv)
    st.add("feature_extractor.image_embeds", image_encoder(pv).image_embeds)
    # intermediate: the PIL bicubic resize (uint8) before center crop, HWC
    w, h = img.size
    short = min(w, h)
    new_w, new_h = int(w * S / short), int(h * S / short)
    resized = np.asarray(img.convert("RGB").resize((new_w, new_h), resample=Image.BICUBIC))
    st.add("feature_extractor.resized_hwc_uint8", torch.from_numpy(resized.astype(np.int64)))
    st.meta["feature_extractor"] = {
        "input": "test_image.png",
        "input_size_wh": [w, h],
        "resized_size_wh": [new_w, new_h],
        "crop": f"center crop {S}x{S}: top=(new_h-{S})//2, left=(new_w-{S})//2",
        "note": "resize goes through PIL Image.resize(BICUBIC) on uint8; then /255, then (x-mean)/std",
    }

    # --- prior
    E = dims.clip_dim
    g = torch.Generator().manual_seed(11)
    hs = torch.randn((2, E), generator=g)
    proj = torch.randn((2, E), generator=g)
    ehs = torch.randn((2, L, E), generator=g)
    mask = torch.ones((2, L), dtype=torch.bool)
    mask[1, 5:] = False
    t = 37
    out = pipe.prior(hs, timestep=t, proj_embedding=proj, encoder_hidden_states=ehs, attention_mask=mask)
    for k, v in [("hidden_states", hs), ("proj_embedding", proj), ("encoder_hidden_states", ehs),
                 ("attention_mask", mask), ("predicted_image_embedding", out.predicted_image_embedding)]:
        st.add(f"prior.{k}", v)
    pp_in = torch.randn((3, E), generator=g)
    st.add("prior.post_process_in", pp_in)
    st.add("prior.post_process_out", pipe.prior.post_process_latents(pp_in))
    st.meta["prior"] = {"timestep": t, "attention_mask": "bool stored as int64; row 1 masked from token 5"}

    # --- text_proj
    g = torch.Generator().manual_seed(12)
    img_emb = torch.randn((1, E), generator=g)
    pe = torch.randn((2, E), generator=g)
    tehs = torch.randn((2, L, E), generator=g)
    ehs_out, add = pipe.text_proj(
        image_embeddings=img_emb, prompt_embeds=pe, text_encoder_hidden_states=tehs, do_classifier_free_guidance=True
    )
    st.add("text_proj.image_embeddings", img_emb)
    st.add("text_proj.prompt_embeds", pe)
    st.add("text_proj.text_encoder_hidden_states", tehs)
    st.add("text_proj.encoder_hidden_states", ehs_out)
    st.add("text_proj.additive_clip_time_embeddings", add)
    st.meta["text_proj"] = {"do_classifier_free_guidance": True}

    # --- decoder
    g = torch.Generator().manual_seed(13)
    D = dims.decoder_size
    sample = torch.randn((2, 3, D, D), generator=g)
    ehs = torch.randn((2, L + 4, dims.cross_dim), generator=g)
    cl = torch.randn((2, dims.time_embed_dim), generator=g)
    dmask = torch.ones((2, L + 4), dtype=torch.bool)
    dmask[0, 4 + 10:] = False
    dmask[1, 4 + 3:] = False
    out = pipe.decoder(sample=sample, timestep=500, encoder_hidden_states=ehs, class_labels=cl, attention_mask=dmask)
    st.add("decoder.sample", sample)
    st.add("decoder.encoder_hidden_states", ehs)
    st.add("decoder.class_labels", cl)
    st.add("decoder.attention_mask", dmask)
    st.add("decoder.out", out.sample)
    st.meta["decoder"] = {"timestep": 500, "attention_mask": "bool as int64; row0 True for first 14, row1 first 7"}

    # --- super-res first / last
    for name, seed, t in (("super_res_first", 14, 300), ("super_res_last", 15, 300)):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn((1, 6, dims.super_res_size, dims.super_res_size), generator=g)
        m = getattr(pipe, name)
        st.add(f"{name}.sample", x)
        st.add(f"{name}.out", m(sample=x, timestep=t).sample)
        st.meta[name] = {"timestep": t}

    if dims.bicubic:
        make_bicubic_cases(st)

    for k, v in sorted(st.tensors.items()):
        if v.is_floating_point():
            print(f"  {stem} {k}: {stats(v)}")
    st.write(stem)


def make_bicubic_cases(st):
    """bicubic antialias interpolation (the image_upscaled path); model independent."""
    g = torch.Generator().manual_seed(16)
    bic = {}
    for name, shape, size in (("up64", (1, 3, 32, 32), 64), ("up48", (1, 3, 32, 32), 48), ("down24", (1, 3, 64, 64), 24)):
        x = torch.rand(shape, generator=g) * 2 - 1
        y = F.interpolate(x, size=[size, size], mode="bicubic", align_corners=False, antialias=True)
        st.add(f"bicubic.{name}.in", x)
        st.add(f"bicubic.{name}.out", y)
        bic[name] = {"size": size}
    st.meta["bicubic"] = {"cases": bic, "call": 'F.interpolate(x, size=[s, s], mode="bicubic", align_corners=False, antialias=True)'}


# ---------------------------------------------------------------------------------------
# (c) Schedulers
# ---------------------------------------------------------------------------------------
@contextmanager
def capture_randn(module, sink):
    """Wrap module.randn_tensor so every noise tensor it returns is appended to sink."""
    orig = module.randn_tensor

    def wrapper(*args, **kwargs):
        t = orig(*args, **kwargs)
        sink.append(t.clone())
        return t

    module.randn_tensor = wrapper
    try:
        yield
    finally:
        module.randn_tensor = orig


def make_schedulers():
    st = TensorStore()
    base = UnCLIPScheduler(num_train_timesteps=1000)
    st.add("unclip.betas", base.betas)
    st.add("unclip.alphas_cumprod", base.alphas_cumprod)
    ts = {}
    for n in (2, 7, 25, 50):
        base.set_timesteps(n)
        st.add(f"unclip.timesteps.{n}", base.timesteps)
        ts[str(n)] = base.timesteps.tolist()
    st.meta["unclip_timesteps"] = ts

    configs = {
        "prior": dict(variance_type="fixed_small_log", prediction_type="sample", clip_sample_range=5.0),
        "decoder": dict(variance_type="learned_range", prediction_type="epsilon"),
        "super_res": dict(variance_type="fixed_small_log", prediction_type="epsilon"),
    }
    shapes = {"prior": ((2, 32), (2, 32)), "decoder": ((1, 6, 8, 8), (1, 3, 8, 8)), "super_res": ((1, 3, 8, 8), (1, 3, 8, 8))}
    # (t, prev_timestep); None -> prev = t-1 (uses betas[t]); last one exercises t == 0 (no noise)
    steps = [(999, 957), (500, 458), (500, None), (42, 0), (1, None), (0, None)]
    cases = []
    for cname, cfg in configs.items():
        sched = UnCLIPScheduler(num_train_timesteps=1000, **cfg)
        out_shape, sample_shape = shapes[cname]
        for i, (t, prev) in enumerate(steps):
            seed = 1000 + 10 * list(configs).index(cname) + i
            g = torch.Generator().manual_seed(seed)
            scale = 4.0 if cname == "prior" else 1.5  # big enough to hit the clamp sometimes
            model_output = torch.randn(out_shape, generator=g) * scale
            sample = torch.randn(sample_shape, generator=g)
            noise_seed = seed + 500
            sink = []
            with capture_randn(scheduling_unclip_mod, sink):
                out = sched.step(model_output, t, sample, prev_timestep=prev, generator=torch.Generator().manual_seed(noise_seed))
            key = f"unclip.{cname}.{i}"
            st.add(f"{key}.model_output", model_output)
            st.add(f"{key}.sample", sample)
            st.add(f"{key}.prev_sample", out.prev_sample)
            st.add(f"{key}.pred_original_sample", out.pred_original_sample)
            if t > 0:
                assert len(sink) == 1
                noise = sink[0]
                # the same draw reproduced directly from a fresh generator
                ref = torch.randn(noise.shape, generator=torch.Generator().manual_seed(noise_seed))
                assert torch.equal(ref, noise)
                st.add(f"{key}.noise", noise)
            else:
                assert not sink
            cases.append({"name": key, "config": cname, "t": t, "prev_timestep": prev,
                          "noise_seed": noise_seed if t > 0 else None})
    st.meta["unclip_configs"] = {k: clean_config(UnCLIPScheduler(num_train_timesteps=1000, **v).config)
                                 for k, v in configs.items()}
    st.meta["unclip_step_cases"] = cases

    # --- DDIM
    ddim_cases = []
    for clip in (False, True):
        for pred in ("epsilon", "sample"):
            sched = DDIMScheduler(
                num_train_timesteps=1000,
                beta_schedule="squaredcos_cap_v2",
                clip_sample=clip,
                set_alpha_to_one=True,
                prediction_type=pred,
            )
            assert torch.equal(sched.alphas_cumprod, base.alphas_cumprod)
            sched.set_timesteps(10)
            cfg_name = f"clip{int(clip)}_{pred}"
            st.add(f"ddim.{cfg_name}.timesteps", sched.timesteps)
            for t in (900, 500, 0):
                for eta in (0.0, 0.5, 1.0):
                    idx = len(ddim_cases)
                    g = torch.Generator().manual_seed(2000 + idx)
                    model_output = torch.randn((1, 3, 8, 8), generator=g) * 1.5
                    sample = torch.randn((1, 3, 8, 8), generator=g)
                    noise = torch.randn((1, 3, 8, 8), generator=g)
                    variants = [False, True] if clip else [False]
                    for ucmo in variants:
                        key = f"ddim.{cfg_name}.t{t}.eta{eta}" + (".clipped_eps" if ucmo else "")
                        out = sched.step(model_output, t, sample, eta=eta, use_clipped_model_output=ucmo,
                                         variance_noise=noise)
                        st.add(f"{key}.model_output", model_output)
                        st.add(f"{key}.sample", sample)
                        st.add(f"{key}.variance_noise", noise)
                        st.add(f"{key}.prev_sample", out.prev_sample)
                        st.add(f"{key}.pred_original_sample", out.pred_original_sample)
                        ddim_cases.append({"name": key, "clip_sample": clip, "prediction_type": pred, "t": t,
                                           "prev_t": t - 1000 // 10, "eta": eta, "use_clipped_model_output": ucmo})
    st.meta["ddim_cases"] = ddim_cases
    st.meta["ddim_config_base"] = clean_config(DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", set_alpha_to_one=True).config)
    st.meta["ddim_note"] = ("ddim_config_base is overridden per case by clip_sample / prediction_type; prev_t = t - num_train_timesteps // num_inference_steps; alpha_prev = final_alpha_cumprod "
                            "(1.0, set_alpha_to_one) when prev_t < 0; noise added only when eta > 0")

    # --- DDIM inverse (clip_sample False, as one would use for inversion)
    inv = DDIMInverseScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                               set_alpha_to_one=True)
    inv.set_timesteps(10)
    st.add("ddim_inverse.timesteps", inv.timesteps)
    inv_cases = []
    for t in (0, 400, 900):
        g = torch.Generator().manual_seed(3000 + t)
        model_output = torch.randn((1, 3, 8, 8), generator=g)
        sample = torch.randn((1, 3, 8, 8), generator=g)
        out = inv.step(model_output, t, sample)
        key = f"ddim_inverse.t{t}"
        st.add(f"{key}.model_output", model_output)
        st.add(f"{key}.sample", sample)
        st.add(f"{key}.prev_sample", out.prev_sample)
        st.add(f"{key}.pred_original_sample", out.pred_original_sample)
        inv_cases.append({"name": key, "t": t, "source_t": min(t - 1000 // 10, 999)})
    st.meta["ddim_inverse_cases"] = inv_cases
    st.meta["ddim_inverse_config"] = clean_config(inv.config)
    st.meta["ddim_inverse_note"] = ("step(model_output, t, sample): source = min(t - T//n, T-1), alpha_src = "
                                    "alphas_cumprod[source] or initial_alpha_cumprod (1.0) if source < 0; "
                                    "output 'prev_sample' is x at the *target* t")
    st.write("schedulers")


# ---------------------------------------------------------------------------------------
# (d) randn
# ---------------------------------------------------------------------------------------
def make_randn():
    st = TensorStore()
    shapes = [(1,), (7,), (15,), (16,), (17,), (2, 32), (1, 3, 8, 8), (3, 100)]
    cases = []
    for seed in (0, 42, 2**32 + 5):
        for shape in shapes:
            g = torch.Generator().manual_seed(seed)
            name = f"seed{seed}.shape" + "x".join(map(str, shape))
            st.add(name, torch.randn(shape, generator=g))
            cases.append({"name": name, "seed": seed, "shape": list(shape)})
    g = torch.Generator().manual_seed(0)
    seq = []
    for i, shape in enumerate([(2, 32), (5,), (1, 3, 8, 8)]):
        name = f"sequence.seed0.{i}"
        st.add(name, torch.randn(shape, generator=g))
        seq.append({"name": name, "shape": list(shape)})
    st.meta["cases"] = cases
    st.meta["sequence"] = {"seed": 0, "draws": seq}
    st.meta["call"] = "g = torch.Generator().manual_seed(seed); torch.randn(shape, generator=g)  (float32, CPU)"
    st.write("randn")


# ---------------------------------------------------------------------------------------
# (e) Pipelines
# ---------------------------------------------------------------------------------------
class Tracer:
    """Captures pipeline intermediates without re-implementing the pipeline:
    scheduler.step calls (per scheduler instance), the latents drawn by prepare_latents,
    the step noise drawn inside UnCLIPScheduler.step, and the bicubic upscaling."""

    def __init__(self, pipe, pipe_module):
        self.pipe = pipe
        self.pipe_module = pipe_module
        self.events = []  # (stage, kind, data)

    @contextmanager
    def active(self):
        pipe, mod = self.pipe, self.pipe_module
        saved = []
        noise_sink = []
        latents_sink = []

        def wrap_step(stage, sched):
            orig = sched.step

            def step(model_output, timestep, sample, prev_timestep=None, generator=None, return_dict=True):
                n0 = len(noise_sink)
                out = orig(model_output, timestep, sample, prev_timestep=prev_timestep, generator=generator,
                           return_dict=return_dict)
                noise = noise_sink[n0] if len(noise_sink) > n0 else None
                self.events.append((stage, "step", {
                    "t": int(timestep), "prev_timestep": None if prev_timestep is None else int(prev_timestep),
                    "model_output": model_output.clone(), "sample": sample.clone(), "noise": noise,
                    "prev_sample": (out.prev_sample if return_dict else out[0]).clone()}))
                return out

            sched.step = step
            saved.append((sched, "step"))

        if hasattr(pipe, "prior_scheduler"):
            wrap_step("prior", pipe.prior_scheduler)
        wrap_step("decoder", pipe.decoder_scheduler)
        wrap_step("super_res", pipe.super_res_scheduler)

        orig_prepare = pipe.prepare_latents

        def prepare_latents(shape, dtype, device, generator, latents, scheduler):
            n0 = len(latents_sink)
            out = orig_prepare(shape, dtype, device, generator, latents, scheduler)
            stage = {id(getattr(pipe, "prior_scheduler", None)): "prior", id(pipe.decoder_scheduler): "decoder",
                     id(pipe.super_res_scheduler): "super_res"}[id(scheduler)]
            self.events.append((stage, "latents", {"latents": out.clone(), "drawn": len(latents_sink) > n0}))
            return out

        pipe.prepare_latents = prepare_latents

        orig_text_proj = pipe.text_proj.forward

        def text_proj_forward(**kw):
            out = orig_text_proj(**kw)
            self.events.append(("text_proj", "call", {
                "image_embeddings": kw["image_embeddings"].clone(), "prompt_embeds": kw["prompt_embeds"].clone(),
                "text_encoder_hidden_states": kw["text_encoder_hidden_states"].clone(),
                "encoder_hidden_states": out[0].clone(), "additive_clip_time_embeddings": out[1].clone()}))
            return out

        pipe.text_proj.forward = text_proj_forward

        orig_interp = F.interpolate

        # functools.wraps keeps inspect.signature(F.interpolate) intact: the pipeline checks it
        # for an "antialias" parameter before passing antialias=True.
        @functools.wraps(orig_interp)
        def interpolate(x, *a, **kw):
            y = orig_interp(x, *a, **kw)
            if kw.get("mode") == "bicubic":
                self.events.append(("super_res", "upscale", {"image_small": x.clone(), "image_upscaled": y.clone(),
                                                             "kwargs": {k: v for k, v in kw.items()}}))
            return y

        mod.F.interpolate = interpolate  # mod.F is torch.nn.functional

        orig_mod_randn = mod.randn_tensor
        orig_sched_randn = scheduling_unclip_mod.randn_tensor

        def mod_randn(*a, **kw):
            t = orig_mod_randn(*a, **kw)
            latents_sink.append(t.clone())
            return t

        def sched_randn(*a, **kw):
            t = orig_sched_randn(*a, **kw)
            noise_sink.append(t.clone())
            return t

        mod.randn_tensor = mod_randn
        scheduling_unclip_mod.randn_tensor = sched_randn
        try:
            yield self
        finally:
            for obj, attr in saved:
                delattr(obj, attr)  # drop instance override, class method is back
            del pipe.prepare_latents
            del pipe.text_proj.forward
            mod.F.interpolate = orig_interp
            mod.randn_tensor = orig_mod_randn
            scheduling_unclip_mod.randn_tensor = orig_sched_randn

    def get(self, stage, kind):
        return [d for s, k, d in self.events if s == stage and k == kind]


def record_run(st, prefix, tracer, image, per_step_model_outputs, store_text=True, store_rng=True,
               store_final=True):
    """Store the captured intermediates of one pipeline run under prefix.*

    per_step_model_outputs: also store each step's (post-CFG) model output.
    store_text: store text_proj inputs / outputs (otherwise only image_embeddings + additive embeddings).
    store_rng: store the drawn latents and step noise.
    store_final: store each stage's final latents (super_res final = image before *0.5+0.5 / clamp).
    """
    info = {}
    st.add(f"{prefix}.image", torch.from_numpy(image))
    tp = tracer.get("text_proj", "call")
    assert len(tp) == 1
    keys = ("image_embeddings", "prompt_embeds", "text_encoder_hidden_states", "encoder_hidden_states",
            "additive_clip_time_embeddings") if store_text else ("image_embeddings", "additive_clip_time_embeddings")
    for k in keys:
        st.add(f"{prefix}.text_proj.{k}", tp[0][k])
    up = tracer.get("super_res", "upscale")
    assert len(up) == 1
    st.add(f"{prefix}.image_small", up[0]["image_small"])
    st.add(f"{prefix}.image_upscaled", up[0]["image_upscaled"])
    for stage in ("prior", "decoder", "super_res"):
        lat = tracer.get(stage, "latents")
        steps = tracer.get(stage, "step")
        if not lat:
            continue
        if store_rng:
            st.add(f"{prefix}.{stage}.latents", lat[0]["latents"])
        sinfo = {"latents_drawn_from_generator": lat[0]["drawn"], "timesteps": [], "prev_timesteps": [],
                 "noise_steps": []}
        for i, s in enumerate(steps):
            sinfo["timesteps"].append(s["t"])
            sinfo["prev_timesteps"].append(s["prev_timestep"])
            if s["noise"] is not None:
                if store_rng:
                    st.add(f"{prefix}.{stage}.step{i}.noise", s["noise"])
                sinfo["noise_steps"].append(i)
            if per_step_model_outputs:
                st.add(f"{prefix}.{stage}.step{i}.model_output", s["model_output"])
                if stage == "prior":
                    st.add(f"{prefix}.{stage}.step{i}.prev_sample", s["prev_sample"])
        if store_final or stage == "prior":
            st.add(f"{prefix}.{stage}.final_latents", steps[-1]["prev_sample"])
        info[stage] = sinfo
    return info


@torch.no_grad()
def make_pipelines(pipe, image_encoder, feature_extractor, image_path, dims=TINY_DIMS, stem="pipelines"):
    st = TensorStore()
    prompt, L, E = dims.pipeline_prompt, dims.max_len, dims.clip_dim
    D, S = dims.decoder_size, dims.super_res_size
    meta = {}
    sig = inspect.signature(UnCLIPPipeline.__call__).parameters
    vsig = inspect.signature(UnCLIPImageVariationPipeline.__call__).parameters
    meta["defaults"] = {
        "UnCLIPPipeline": {k: sig[k].default for k in (
            "prior_num_inference_steps", "decoder_num_inference_steps", "super_res_num_inference_steps",
            "prior_guidance_scale", "decoder_guidance_scale")},
        "UnCLIPImageVariationPipeline": {k: vsig[k].default for k in (
            "decoder_num_inference_steps", "super_res_num_inference_steps", "decoder_guidance_scale")},
    }
    steps = dict(prior_num_inference_steps=5, decoder_num_inference_steps=5, super_res_num_inference_steps=3)

    # Run 1: prompt, generator seed 0, everything drawn from the one generator.
    tracer = Tracer(pipe, pipeline_unclip_mod)
    with tracer.active():
        img = pipe(prompt=prompt, generator=torch.Generator().manual_seed(0), output_type="np", **steps).images
    run1 = record_run(st, "text2img", tracer, img, per_step_model_outputs=True)
    # also record the text encoding stage inputs as the pipeline saw them
    tok = pipe.tokenizer
    meta["text2img"] = {"prompt": prompt, "seed": 0, **steps, "output_type": "np",
                        "prior_guidance_scale": 4.0, "decoder_guidance_scale": 8.0,
                        "cfg_batch_order": "[uncond (\"\"), cond]", "stages": run1,
                        "input_ids": tok(prompt, padding="max_length", max_length=L, truncation=True)["input_ids"],
                        "uncond_input_ids": tok("", padding="max_length", max_length=L, truncation=True)["input_ids"]}

    # Run 2: explicit latents from a different generator (seed 1234), step noise from seed 0.
    g = torch.Generator().manual_seed(1234)
    prior_latents = torch.randn((1, E), generator=g)
    decoder_latents = torch.randn((1, 3, D, D), generator=g)
    super_res_latents = torch.randn((1, 3, S, S), generator=g)
    tracer = Tracer(pipe, pipeline_unclip_mod)
    with tracer.active():
        img = pipe(prompt=prompt, generator=torch.Generator().manual_seed(0), output_type="np",
                   prior_latents=prior_latents, decoder_latents=decoder_latents, super_res_latents=super_res_latents,
                   **steps).images
    # same prompt as run 1: the text encoding is identical, so only the text_proj outputs that depend on
    # the (different) image embedding are stored
    run2 = record_run(st, "text2img_latents", tracer, img, per_step_model_outputs=False, store_text=False,
                      store_final=False)
    meta["text2img_latents"] = {"prompt": prompt, "seed": 0, **steps, "output_type": "np",
                                "latents_seed": 1234,
                                "latents_note": f"prior (1,{E}), decoder (1,3,{D},{D}), super_res (1,3,{S},{S}) drawn in "
                                                "that order from torch.Generator().manual_seed(1234); the pipeline "
                                                "generator (seed 0) then only supplies step noise",
                                "stages": run2}

    # Image variation pipeline from the same components.
    vpipe = UnCLIPImageVariationPipeline(
        decoder=pipe.decoder, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer, text_proj=pipe.text_proj,
        feature_extractor=feature_extractor, image_encoder=image_encoder, super_res_first=pipe.super_res_first,
        super_res_last=pipe.super_res_last, decoder_scheduler=pipe.decoder_scheduler,
        super_res_scheduler=pipe.super_res_scheduler,
    )
    vpipe.set_progress_bar_config(disable=True)
    vsteps = dict(decoder_num_inference_steps=5, super_res_num_inference_steps=3)

    emb = torch.randn((1, E), generator=torch.Generator().manual_seed(77))
    st.add("variation_embeds.input_image_embeddings", emb)
    tracer_embeds = tracer = Tracer(vpipe, pipeline_var_mod)
    with tracer.active():
        img = vpipe(image_embeddings=emb, generator=torch.Generator().manual_seed(0), output_type="np", **vsteps).images
    run3 = record_run(st, "variation_embeds", tracer, img, per_step_model_outputs=False, store_final=False)
    meta["variation_embeds"] = {"image_embeddings_seed": 77, "seed": 0, **vsteps, "output_type": "np",
                                "decoder_guidance_scale": 8.0, "stages": run3,
                                "note": "prompt is always [\"\"] so both CFG halves use the \"\" text encoding"}

    # Image variation from the committed PNG (feature_extractor + image_encoder path).
    pil = Image.open(image_path).convert("RGB")
    tracer = Tracer(vpipe, pipeline_var_mod)
    with tracer.active():
        img = vpipe(image=pil, generator=torch.Generator().manual_seed(0), output_type="np", **vsteps).images
    # Same seed and shapes as variation_embeds, so latents and step noise are identical: check, don't store.
    for stage in ("decoder", "super_res"):
        a, b = tracer_embeds.get(stage, "latents"), tracer.get(stage, "latents")
        assert torch.equal(a[0]["latents"], b[0]["latents"])
        for sa, sb in zip(tracer_embeds.get(stage, "step"), tracer.get(stage, "step")):
            assert (sa["noise"] is None and sb["noise"] is None) or torch.equal(sa["noise"], sb["noise"])
    run4 = record_run(st, "variation_image", tracer, img, per_step_model_outputs=False, store_text=False,
                      store_rng=False, store_final=False)
    run4["rng_note"] = "latents and step noise identical to variation_embeds.* (same seed, same shapes)"
    meta["variation_image"] = {"image": "test_image.png", "seed": 0, **vsteps, "output_type": "np",
                               "decoder_guidance_scale": 8.0, "stages": run4}

    for k in ("text2img.image", "text2img_latents.image", "variation_embeds.image", "variation_image.image",
              "text2img.image_small", "text2img.text_proj.image_embeddings"):
        print(f"  {stem} {k}: {stats(st.tensors[k])}")
    st.meta = meta
    st.write(stem)


# ---------------------------------------------------------------------------------------
def main():
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}")
    if diffusers.__version__ != "0.33.1" or transformers.__version__ != "4.51.3":
        sys.exit("expected diffusers 0.33.1 and transformers 4.51.3 (see tests/reference/requirements.txt)")
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(tmp)
        pipe, image_encoder, feature_extractor = build_components(tokenizer)
    save_tiny_unclip(pipe, image_encoder, feature_extractor)

    loaded, l_image_encoder, l_feature_extractor = load_unclip("tiny_unclip")
    for name in ("prior", "decoder", "text_encoder", "text_proj", "super_res_first", "super_res_last"):
        check_same_weights(getattr(pipe, name), getattr(loaded, name))
    check_same_weights(image_encoder, l_image_encoder)
    del pipe, image_encoder, feature_extractor

    image_path = make_test_image()
    print("components ...")
    make_components(loaded, l_image_encoder, l_feature_extractor, image_path)
    print("schedulers ...")
    make_schedulers()
    print("randn ...")
    make_randn()
    print("pipelines ...")
    make_pipelines(loaded, l_image_encoder, l_feature_extractor, image_path)
    print("done:", OUT)

    # mid-size model, sub-block captures, tokenizer cases, scheduler anchors (tests/reference/make_more_fixtures.py)
    import make_more_fixtures

    make_more_fixtures.main()


if __name__ == "__main__":
    main()
