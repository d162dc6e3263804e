#!/usr/bin/env python3
"""Second half of the fixture generator: everything added after the tiny-model fixtures.

Same reference stack and conventions as make_fixtures.py (float32 / int64 tensors, sorted
JSON keys, deterministic output). make_fixtures.py calls main() of this script at its end, so

    tests/reference/.venv/bin/python tests/reference/make_fixtures.py

regenerates everything. This script can also be run on its own; it then only rewrites the files
listed below and needs tests/fixtures/tiny_unclip/, test_image.png and components.safetensors
(written by make_fixtures.py):

    tests/reference/.venv/bin/python tests/reference/make_more_fixtures.py

Outputs (all under tests/fixtures/):
  mid_unclip/                        mid-size diffusers-layout unCLIP folder (closer to Karlo)
  components_mid.{safetensors,json}  as components.*, for mid_unclip (no bicubic cases)
  pipelines_mid.{safetensors,json}   as pipelines.*, for mid_unclip
  blocks.{safetensors,json}          sub-module inputs / outputs of the tiny model (forward hooks)
  blocks_mid.{safetensors,json}      the same for mid_unclip: text encoder, prior, decoder attentions
  tokenizer_cases.json               tokenizer edge cases for the tiny and the mid tokenizer
  scheduler_anchors.{safetensors,json}  the values diffusers' own scheduler unit tests check
"""

import hashlib
import inspect
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (sets threads / deterministic algorithms / offline env)

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import diffusers  # noqa: E402
import transformers  # noqa: E402
from diffusers import (  # noqa: E402
    DDIMInverseScheduler,
    DDIMScheduler,
    PriorTransformer,
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
    CLIPTokenizerFast,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

import diffusers.schedulers.scheduling_unclip as scheduling_unclip_mod  # noqa: E402

OUT = mf.OUT
TensorStore = mf.TensorStore
write_json = mf.write_json

# ---------------------------------------------------------------------------------------
# Mid-size model dimensions
# ---------------------------------------------------------------------------------------
# One CLIP embedding dim E for text hidden size, text / image projection, prior embedding_dim and
# text_proj clip_embeddings_dim. diffusers forces these to be equal: PriorTransformer feeds the text
# encoder's last_hidden_state through Linear(embedding_dim, inner) and the image embedding through
# proj_in = Linear(embedding_dim, inner); UnCLIPTextProjModel feeds both the pooled text embedding and
# the text hidden states through Linear(clip_embeddings_dim, ...). (Karlo: 768 everywhere.)
MID_E = 48
MID_LEN = 32  # text positions = tokenizer model_max_length = prior num_embeddings
# Decoder channels: 4 levels / 3 cross-attention levels / layers_per_block 2 as asked, but narrower
# than the (32, 64, 96, 128) x head dim 16 first planned (26 MB of f32 weights; (16, 32, 48, 64) still
# 6.8 MB): 3.3 MB. Karlo: (320, 640, 960, 1280), head dim 64 -> 10 / 15 / 20 heads.
MID_BLOCK_OUT = (16, 24, 32, 40)
MID_HEAD_DIM = 8  # decoder attention_head_dim -> 3, 4, 5 heads at 24, 32, 40 channels (mid block: 5)
MID_SR_BLOCK_OUT = (16, 24, 32)  # 3 or 4 channels per group with 8 groups
MID_NORM_GROUPS = 8
MID_TIME_EMBED_DIM = 4 * MID_BLOCK_OUT[0]  # 64
MID_CROSS_DIM = 64
MID_DECODER_SIZE = 64  # Karlo's decoder resolution
MID_SUPER_RES_SIZE = 128
MID_IMAGE_SIZE = 64

# Extra BPE words for the mid tokenizer. Their merges (and the merged tokens) are appended *after*
# <|startoftext|> / <|endoftext|>, so they get ids above the EOS id: argmax(input_ids) then no longer
# finds the EOS position, which tells the two text-encoder pooling rules apart.
MID_EXTRA_WORDS = ["photo", "of", "cat", "dog"]

MID_PROMPTS = [
    "a photo of a red cat",  # ids above EOS: argmax pooling would pick "cat", not EOS
    "",
    "A small BLUE star on a white background",
    # > 32 tokens, gets truncated
    " ".join(["a photo of a cat on the white background"] * 4),
    "a café ☕ test",
    "wow! a red circle!!",  # "!" is a plain byte-level token here (pad is <|endoftext|>)
]

MID_DIMS = SimpleNamespace(
    clip_dim=MID_E,
    max_len=MID_LEN,
    cross_dim=MID_CROSS_DIM,
    time_embed_dim=MID_TIME_EMBED_DIM,
    decoder_size=MID_DECODER_SIZE,
    super_res_size=MID_SUPER_RES_SIZE,
    image_size=MID_IMAGE_SIZE,
    prompts=MID_PROMPTS,
    pipeline_prompt="a photo of a red cat",
    pooling="first position of eos_token_id (== <|endoftext|> id): (input_ids == eos_token_id).int().argmax(-1); "
    "pad is also <|endoftext|>, and some ids are above the EOS id, so argmax(input_ids) would differ",
    bicubic=False,
)


# ---------------------------------------------------------------------------------------
# Mid tokenizer
# ---------------------------------------------------------------------------------------
def build_mid_tokenizer(tmp):
    """The tiny vocab / merges (ids 0..549 identical) plus MID_EXTRA_WORDS appended after the two
    special tokens; pad token <|endoftext|> (the openai/clip-vit-* default), model_max_length 32."""
    tiny_vocab_path, tiny_merges_path, n_tiny = mf.build_tokenizer_files(tmp)
    ids = json.load(open(tiny_vocab_path, encoding="utf-8"))
    vocab = sorted(ids, key=ids.get)
    assert [ids[v] for v in vocab] == list(range(len(vocab)))
    assert vocab[-2:] == ["<|startoftext|>", "<|endoftext|>"] and len(vocab) == n_tiny
    merges = [tuple(line.rstrip("\n").split(" ")) for line in open(tiny_merges_path, encoding="utf-8").readlines()[1:]]
    mf.add_word_merges(vocab, merges, MID_EXTRA_WORDS)
    d = Path(tmp) / "mid_tok"
    d.mkdir()
    write_json(d / "vocab.json", {tok: i for i, tok in enumerate(vocab)})
    with open(d / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    tok = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"), pad_token="<|endoftext|>",
                        model_max_length=MID_LEN)
    assert len(tok) == len(vocab) and tok.pad_token_id == tok.eos_token_id == n_tiny - 1
    assert tok.bos_token_id == n_tiny - 2
    return tok


# ---------------------------------------------------------------------------------------
# Mid components
# ---------------------------------------------------------------------------------------
def build_mid_components(tokenizer):
    randomize_ = mf.randomize_

    torch.manual_seed(20)
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,  # real EOS id -> pooling at the first EOS
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=MID_E,
            projection_dim=MID_E,
            intermediate_size=4 * MID_E,
            layer_norm_eps=1e-5,
            num_attention_heads=4,
            num_hidden_layers=3,
            vocab_size=len(tokenizer),
            max_position_embeddings=MID_LEN,
            hidden_act="quick_gelu",
        )
    )
    randomize_(text_encoder, 120)

    torch.manual_seed(21)
    prior = PriorTransformer(
        num_attention_heads=4,
        attention_head_dim=16,
        embedding_dim=MID_E,
        num_layers=3,
        num_embeddings=MID_LEN,
        additional_embeddings=4,
    )
    randomize_(prior, 121)

    torch.manual_seed(22)
    text_proj = UnCLIPTextProjModel(
        clip_embeddings_dim=MID_E,
        time_embed_dim=MID_TIME_EMBED_DIM,
        cross_attention_dim=MID_CROSS_DIM,
    )
    randomize_(text_proj, 122)

    torch.manual_seed(23)
    decoder = UNet2DConditionModel(
        sample_size=MID_DECODER_SIZE,
        layers_per_block=2,
        down_block_types=("ResnetDownsampleBlock2D",) + ("SimpleCrossAttnDownBlock2D",) * 3,
        up_block_types=("SimpleCrossAttnUpBlock2D",) * 3 + ("ResnetUpsampleBlock2D",),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=MID_BLOCK_OUT,
        in_channels=3,
        out_channels=6,
        cross_attention_dim=MID_CROSS_DIM,
        attention_head_dim=MID_HEAD_DIM,
        norm_num_groups=MID_NORM_GROUPS,
        resnet_time_scale_shift="scale_shift",
        class_embed_type="identity",
    )
    randomize_(decoder, 123)

    def super_res(seed, sample_size):
        torch.manual_seed(seed)
        m = UNet2DModel(
            sample_size=sample_size,
            layers_per_block=2,
            down_block_types=("ResnetDownsampleBlock2D",) * 3,
            up_block_types=("ResnetUpsampleBlock2D",) * 3,
            block_out_channels=MID_SR_BLOCK_OUT,
            in_channels=6,
            out_channels=3,
            norm_num_groups=MID_NORM_GROUPS,
            add_attention=False,  # as in Karlo (both super-res UNets)
            resnet_time_scale_shift="default",
        )
        return randomize_(m, seed + 100)

    super_res_first = super_res(24, MID_SUPER_RES_SIZE)
    super_res_last = super_res(25, None)


    torch.manual_seed(26)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=48,
            projection_dim=MID_E,
            num_hidden_layers=3,
            num_attention_heads=4,
            image_size=MID_IMAGE_SIZE,
            intermediate_size=4 * 48,
            patch_size=8,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        )
    )
    randomize_(image_encoder, 126)

    feature_extractor = mf.clip_image_processor(MID_IMAGE_SIZE)

    pipe = mf.unclip_pipeline(prior, decoder, text_encoder, tokenizer, text_proj, super_res_first, super_res_last)
    return pipe, image_encoder, feature_extractor


def check_mid_model(pipe, image_encoder):
    """The properties the mid model is meant to have."""
    models = {n: getattr(pipe, n) for n in ("prior", "decoder", "text_encoder", "text_proj", "super_res_first",
                                            "super_res_last")}
    models["image_encoder"] = image_encoder
    for name, model in models.items():
        for pname, p in model.named_parameters():
            assert not torch.all(p == 0) and not torch.all(p == 1), (name, pname)
    assert not torch.all(pipe.prior.clip_mean == 0) and not torch.all(pipe.prior.clip_std == 1)
    assert pipe.text_encoder.config.eos_token_id == pipe.tokenizer.eos_token_id != 2
    assert pipe.tokenizer.pad_token == "<|endoftext|>" and pipe.tokenizer.model_max_length == MID_LEN
    assert pipe.prior.config.num_embeddings == MID_LEN
    heads = [m.heads for m in pipe.decoder.modules() if type(m).__name__ == "Attention"]
    assert heads and min(heads) > 1, heads
    assert pipe.text_encoder.config.num_attention_heads > 1 and image_encoder.config.num_attention_heads > 1


# ---------------------------------------------------------------------------------------
# Sub-module capture (forward hooks)
# ---------------------------------------------------------------------------------------
class DedupStore(TensorStore):
    """TensorStore that stores each distinct tensor once (same dtype, shape and bytes): a later name
    with identical contents becomes an alias, listed in the JSON under "aliases" {name: stored name}.
    (A module's input is mostly the previous module's output; residuals are block outputs again.)"""

    def __init__(self):
        super().__init__()
        self.by_content = {}
        self.aliases = {}

    def add(self, name, t):
        t = torch.as_tensor(t).detach().cpu()
        t = t.to(torch.int64) if not t.is_floating_point() else t.to(torch.float32)
        t = t.contiguous()
        h = (str(t.dtype), tuple(t.shape), hashlib.sha256(t.numpy().tobytes()).hexdigest())
        assert name not in self.tensors and name not in self.aliases, name
        if h in self.by_content:
            self.aliases[name] = self.by_content[h]
            return t
        self.by_content[h] = name
        return super().add(name, t)

    def write(self, stem):
        self.meta["aliases"] = dict(sorted(self.aliases.items()))
        super().write(stem)


# blocks_mid: decoder modules recorded for the mid model (all of them would add several MB): the time
# embedding, one 4-head attention at 16x16, and every 5-head attention at 8x8 (down 3, mid, up 0)
MID_BLOCKS_DECODER = (lambda path: path == "time_embedding" or path == "down_blocks.2.attentions.0"
                      or re.match(r"^(down_blocks\.3|mid_block|up_blocks\.0)\.attentions\.\d+$", path) is not None)

# argument name -> key suffix for the tensors that are stored
ARG_SUFFIX = {
    "hidden_states": "in",
    "input_tensor": "in",
    "sample": "in",
    "temb": "temb",
    "encoder_hidden_states": "encoder_hidden_states",
    "attention_mask": "attention_mask",
    "causal_attention_mask": "causal_attention_mask",
    "res_hidden_states_tuple": "res_in",
}


class BlockRecorder:
    """Records, for chosen sub-modules, the arguments exactly as the module receives them (a
    forward pre-hook with kwargs, bound to the signature of module.forward) and what it returns."""

    def __init__(self, st):
        self.st = st
        self.modules = {}
        self.handles = []
        self.calls = 0

    def watch(self, key, module, module_path, store_args, output="tensor"):
        """store_args: argument names whose tensors are stored (others are only described).
        output: "tensor" -> key.out; "down" -> (hidden, residuals) -> key.out + key.res.{k};
        "first" -> output[0] -> key.out (transformers layers return a tuple)."""
        sig = inspect.signature(module.forward)
        rec = {"class": type(module).__name__, "module_path": module_path, "calls": 0}
        self.modules[key] = rec

        def pre(mod, args, kwargs):
            bound = sig.bind(*args, **kwargs)
            rec["calls"] += 1
            assert rec["calls"] == 1, f"{key} called twice"
            rec["call_index"] = self.calls
            self.calls += 1
            rec["positional_args"] = len(args)
            rec["keyword_args"] = sorted(kwargs)
            described = []
            for name, value in bound.arguments.items():
                kind = sig.parameters[name].kind
                if kind == inspect.Parameter.VAR_KEYWORD:
                    items = list(value.items())
                else:
                    items = [(name, value)]
                for n, v in items:
                    described.append(self._describe(key, n, v, n in store_args))
            rec["args"] = described

        def post(mod, args, kwargs, out):
            if output == "down":
                hidden, res = out
                self.st.add(f"{key}.out", hidden)
                keys = []
                for k, r in enumerate(res):
                    self.st.add(f"{key}.res.{k}", r)
                    keys.append(f"{key}.res.{k}")
                rec["output"] = {"type": "tuple (hidden_states, residuals)", "stored_as": [f"{key}.out", keys],
                                 "shapes": [list(hidden.shape), [list(r.shape) for r in res]]}
            elif output == "first":
                self.st.add(f"{key}.out", out[0])
                rec["output"] = {"type": f"tuple of {len(out)}, [0] stored", "stored_as": f"{key}.out",
                                 "shape": list(out[0].shape)}
            else:
                self.st.add(f"{key}.out", out)
                rec["output"] = {"type": "tensor", "stored_as": f"{key}.out", "shape": list(out.shape)}

        self.handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        self.handles.append(module.register_forward_hook(post, with_kwargs=True))

    def _describe(self, key, name, value, store):
        d = {"name": name}
        if isinstance(value, torch.Tensor):
            d.update(type="tensor", shape=list(value.shape), dtype=str(value.dtype).replace("torch.", ""))
            if store:
                k = f"{key}.{ARG_SUFFIX[name]}"
                self.st.add(k, value)
                d["stored_as"] = k
            else:
                d["stored_as"] = None
        elif isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
            d.update(type="tuple of tensors", shapes=[list(v.shape) for v in value])
            if store:
                keys = []
                for i, v in enumerate(value):
                    k = f"{key}.{ARG_SUFFIX[name]}.{i}"
                    self.st.add(k, v)
                    keys.append(k)
                d["stored_as"] = keys
            else:
                d["stored_as"] = None
        elif value is None or isinstance(value, (bool, int, float, str)):
            d.update(type="value", value=value)
        elif isinstance(value, dict):
            d.update(type="dict", value={k: (v if v is None or isinstance(v, (bool, int, float, str)) else repr(v))
                                         for k, v in value.items()})
        else:
            d.update(type=type(value).__name__, value=repr(value))
        return d

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []
        for key, rec in self.modules.items():
            assert rec["calls"] == 1, f"{key} was not called exactly once"
            del rec["calls"]


UNET_PATTERN = re.compile(
    r"^(time_embedding|conv_in|mid_block|(down_blocks|up_blocks)\.\d+"
    r"|((down_blocks|up_blocks)\.\d+|mid_block)\.(resnets|attentions|downsamplers|upsamplers)\.\d+)$"
)


def watch_unet(rec, prefix, unet, only=None):
    """only: optional predicate on the module path (to keep blocks_mid small)."""
    for path, m in unet.named_modules():
        if not UNET_PATTERN.match(path) or (only is not None and not only(path)):
            continue
        key = f"{prefix}.{path}"
        part = path.split(".")
        if path == "time_embedding":
            rec.watch(key, m, path, {"sample"})
        elif path == "conv_in":
            rec.watch(key, m, path, set())
        elif len(part) == 2 or path == "mid_block":  # a whole block
            kind = "down" if part[0] == "down_blocks" else "tensor"
            rec.watch(key, m, path, {"hidden_states", "res_hidden_states_tuple"}, output=kind)
        elif part[-2] == "attentions":
            rec.watch(key, m, path, {"hidden_states", "encoder_hidden_states", "attention_mask", "temb"})
        else:  # resnets / downsamplers / upsamplers: ResnetBlock2D
            rec.watch(key, m, path, {"input_tensor", "temb"})


def watch_prior(rec, prior):
    for i, blk in enumerate(prior.transformer_blocks):
        rec.watch(f"prior.transformer_blocks.{i}", blk, f"transformer_blocks.{i}", {"hidden_states", "attention_mask"})


def watch_text_encoder(rec, text_encoder):
    for i, layer in enumerate(text_encoder.text_model.encoder.layers):
        rec.watch(f"text_encoder.layers.{i}", layer, f"text_model.encoder.layers.{i}",
                  {"hidden_states", "attention_mask", "causal_attention_mask"}, output="first")


@torch.no_grad()
def make_blocks(pipe, components_file, stem, decoder_only=None, super_res_last_input=None):
    """One forward each of text_encoder, prior, decoder (and super_res_last) with recorded
    sub-module inputs / outputs. text_encoder, prior and decoder get the inputs stored in
    components_file (the outputs are asserted bit-identical to the stored ones).

    decoder_only: optional predicate on the decoder module path (blocks_mid keeps it small).
    super_res_last_input: (seed, shape, timestep) of a separate small randn input, or None to skip.
    """
    comp = load_file(str(OUT / components_file))
    comp_meta = json.load(open(OUT / components_file.replace(".safetensors", ".json"), encoding="utf-8"))
    st = DedupStore()
    forwards = {}

    rec = BlockRecorder(st)
    watch_text_encoder(rec, pipe.text_encoder)
    out = pipe.text_encoder(comp["text_encoder.input_ids"])
    rec.remove()
    assert torch.equal(out.last_hidden_state, comp["text_encoder.last_hidden_state"])
    forwards["text_encoder"] = {
        "call": "text_encoder(input_ids)  (no attention_mask, as in the pipeline)",
        "inputs": "text_encoder.input_ids of " + components_file,
        "check": "last_hidden_state == text_encoder.last_hidden_state of " + components_file + " (bit-identical)",
        "causal_attention_mask_note": "[B, 1, L, L] float32: 0 on and below the diagonal, torch.finfo(float32).min "
                                      "above; attention_mask is None (the pipeline passes no text mask)",
        "modules": rec.modules,
    }

    rec = BlockRecorder(st)
    watch_prior(rec, pipe.prior)
    t = comp_meta["prior"]["timestep"]
    out = pipe.prior(comp["prior.hidden_states"], timestep=t, proj_embedding=comp["prior.proj_embedding"],
                     encoder_hidden_states=comp["prior.encoder_hidden_states"],
                     attention_mask=comp["prior.attention_mask"].bool())
    rec.remove()
    assert torch.equal(out.predicted_image_embedding, comp["prior.predicted_image_embedding"])
    heads = pipe.prior.config.num_attention_heads
    forwards["prior"] = {
        "call": f"prior(hidden_states, timestep={t}, proj_embedding, encoder_hidden_states, attention_mask.bool())",
        "inputs": "prior.* of " + components_file,
        "check": "predicted_image_embedding == prior.predicted_image_embedding of " + components_file,
        "attention_mask_note": (
            f"every block receives the same float mask of shape [B*heads, T, T] = [2*{heads}, T, T], "
            f"T = num_embeddings + additional_embeddings: ((1 - mask) * -10000, padded with 0 for the "
            f"{pipe.prior.additional_embeddings} additional tokens) + causal mask (-10000.0 above the diagonal), "
            "then repeat_interleave(heads, dim=0): row b*heads + h belongs to batch b"),
        "hidden_states_note": "transformer_blocks.0.in = [encoder_hidden_states_proj(text states), "
                              "embedding_proj(proj_embedding), time_embedding, proj_in(hidden_states), prd_embedding] "
                              "+ positional_embedding",
        "modules": rec.modules,
    }

    rec = BlockRecorder(st)
    watch_unet(rec, "decoder", pipe.decoder, decoder_only)
    t = comp_meta["decoder"]["timestep"]
    out = pipe.decoder(sample=comp["decoder.sample"], timestep=t, encoder_hidden_states=comp["decoder.encoder_hidden_states"],
                       class_labels=comp["decoder.class_labels"], attention_mask=comp["decoder.attention_mask"].bool())
    rec.remove()
    assert torch.equal(out.sample, comp["decoder.out"])
    forwards["decoder"] = {
        "call": f"decoder(sample, timestep={t}, encoder_hidden_states, class_labels, attention_mask.bool())",
        "inputs": "decoder.* of " + components_file,
        "check": "output == decoder.out of " + components_file + " (bit-identical)",
        "attention_mask_note": "every attention receives (1 - mask.float()) * -10000.0 unsqueezed to [B, 1, L+4]; "
                               "its processor (AttnAddedKVProcessor2_0) then pads it with H*W zeros (keys are "
                               "[text tokens, pixels]) and repeats it per head",
        "time_embedding_note": "time_embedding.in = time_proj(timesteps) (flip_sin_to_cos=True, freq_shift=0); "
                               "the resnets' temb = time_embedding.out + class_labels (class_embed_type identity)",
        "modules": rec.modules,
    }
    if decoder_only is not None:
        forwards["decoder"]["recorded_modules_note"] = "only the modules listed under modules are recorded"

    if super_res_last_input is not None:
        seed, shape, t = super_res_last_input
        x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        st.add("super_res_last.sample", x)
        rec = BlockRecorder(st)
        watch_unet(rec, "super_res_last", pipe.super_res_last)
        out = pipe.super_res_last(sample=x, timestep=t)
        rec.remove()
        st.add("super_res_last.out", out.sample)
        forwards["super_res_last"] = {
            "call": f"super_res_last(sample, timestep={t})",
            "inputs": f"super_res_last.sample = torch.randn({list(shape)}, generator=torch.Generator()"
                      f".manual_seed({seed})) (smaller than the components input, and not square, to keep the "
                      "file small and catch H/W mix-ups); output super_res_last.out",
            "modules": rec.modules,
        }

    st.meta["forwards"] = forwards
    st.meta["key_scheme"] = {
        "<component>.<module path>.in": "the module's hidden-state argument (hidden_states / input_tensor / sample)",
        "...temb / .encoder_hidden_states / .attention_mask / .causal_attention_mask": "further tensor arguments, "
        "exactly as received",
        "...res_in.{k}": "up blocks: res_hidden_states_tuple[k], in the order received (the block consumes "
        "them from the end: resnets.0 concatenates the last one to its input)",
        "...out": "the returned tensor (down blocks: returned hidden_states; transformers layers: output[0])",
        "...res.{k}": "down blocks: the k-th returned residual",
        "text_encoder.layers.{i}": "module path text_model.encoder.layers.{i}",
        "modules[key].args": "every argument the module received, in signature order: name, type, shape, dtype, "
        "stored_as (key, list of keys, or null when only described)",
        "aliases": "a stored_as key is either in tensors or in aliases (same contents as the aliased key, "
        "stored once)",
    }
    st.write(stem)
    return st


# ---------------------------------------------------------------------------------------
# Tokenizer cases
# ---------------------------------------------------------------------------------------
TOKENIZER_STRINGS = [
    # empty / whitespace
    "", " ", "   ", "\t", "\n", " \t\n ", "\u00a0",
    # spaces
    "a red circle", "  a red circle", "a red circle  ", "a   red    circle", "a\tred\ncircle", "a\r\nred circle",
    # case
    "A RED CIRCLE", "A Small Blue STAR", "WhItE BaCkGrOuNd",
    # digits and numbers
    "3 stars", "1234", "v2.0", "12.5%", "2024-01-31", "x1y2z3", "0.5x 10^3",
    # punctuation
    "hello, world!", "what?", "end.", "a;b:c", "\"quoted\" text", "(parens) [brackets] {braces}",
    "dash-separated - words", "...", "?!?!", "a--b", "@user #tag $5 ^_^ ~/path", "back\\slash | pipe",
    # contractions
    "it's", "don't", "they'll", "I'm", "we've", "she'd", "you're", "IT'S", "rock'n'roll", "the cat's toy",
    # words outside the merges: byte-level fallback
    "xyzzy", "zebra quokka", "backgrounds", "circles", "redblue",
    # accents (NFC and decomposed), other scripts
    "café", "über", "niño", "cafe\u0301", "ÀÉÎÕÜ", "straße",
    "猫", "一只猫", "猫が好き", "고양이", "кошка", "γάτα", "مرحبا", "a 猫 cat", "red赤rouge",
    # emoji
    "☕", "🎨", "a café ☕ test", "🎨🖌️ art", "👍🏽", "❤️",
    # HTML-like, special-token text
    "&amp; <b>bold</b> &lt;tag&gt;", "<|endoftext|>", "<|startoftext|>a", "a<|endoftext|>b",
    # "!" (the tiny pad token, a special token there)
    "wow! a red circle!!", "!", "!!!", "a!b", "hi !",
    # invisible / control characters
    "zero\u200bwidth", "control\x00char\x07bell", "soft\u00adhyphen", "tab\x0bvt",
    # lengths: the tiny limit is 77 (75 text tokens), the mid limit 32 (30 text tokens)
    " ".join(["a"] * 30),  # exactly 32 tokens
    " ".join(["a"] * 31),  # 33 -> truncated for mid
    " ".join(["a"] * 75),  # exactly 77 tokens
    " ".join(["a"] * 76),  # 78 -> truncated for tiny
    " ".join(["a red circle on the white background and a blue star"] * 8),
    " ".join(["a photo of a cat on the white background"] * 4),
]


def tokenizer_cases(tok, fast):
    L = tok.model_max_length
    cases = []
    for p in TOKENIZER_STRINGS:
        enc = tok(p, padding="max_length", max_length=L, truncation=True)
        untrunc = tok(p)["input_ids"]
        fenc = fast(p, padding="max_length", max_length=L, truncation=True)
        c = {
            "prompt": p,
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "untruncated_length": len(untrunc),
            "tokens": tok.convert_ids_to_tokens(untrunc),
            "matches_fast": fenc["input_ids"] == enc["input_ids"] and fenc["attention_mask"] == enc["attention_mask"],
        }
        if not c["matches_fast"]:
            c["fast_input_ids"] = fenc["input_ids"]
            c["fast_tokens"] = fast.convert_ids_to_tokens(fast(p)["input_ids"])
        cases.append(c)
    return cases


def make_tokenizer_cases(tiny_tok, mid_tok):
    out = {}
    info = {}
    for name, tok in (("tiny", tiny_tok), ("mid", mid_tok)):
        with tempfile.TemporaryDirectory() as tmp:
            tok.save_pretrained(tmp)
            fast = CLIPTokenizerFast.from_pretrained(tmp)  # converted from the slow files (CLIPConverter)
        cases = tokenizer_cases(tok, fast)
        out[name] = cases
        info[name] = {
            "folder": f"{name}_unclip/tokenizer",
            **mf.tokenizer_meta(tok, tok.model_max_length),
            "untruncated_length": "len(tokenizer(prompt).input_ids) (with BOS and EOS)",
            "tokens": "tokens of the untruncated encoding",
            "differs_from_fast": [c["prompt"] for c in cases if not c["matches_fast"]],
        }
    out["info"] = info
    out["note"] = (
        "slow CLIPTokenizer (no ftfy installed): text = ' '.join(BasicTokenizer(strip_accents=False, "
        "do_split_on_punc=False).tokenize(text)).lower(); BasicTokenizer removes NUL / U+FFFD / control "
        "characters (Cc/Cf, except \\t \\n \\r which count as whitespace), so e.g. U+200B / U+00AD vanish, "
        "NFC-normalises, puts spaces around CJK ideographs (U+4E00..U+9FFF etc., not kana / hangul), and "
        "splits on whitespace; then the CLIP regex and byte-level BPE per word. Added special tokens "
        "('<|startoftext|>', '<|endoftext|>', and '!' for tiny) are split out of the raw text first. "
        "'matches_fast' compares with CLIPTokenizerFast converted from the same files (normalizer NFC + "
        "collapse \\s+ + lowercase, no BasicTokenizer); where they differ 'fast_input_ids' is given.")
    write_json(OUT / "tokenizer_cases.json", out)
    for name in ("tiny", "mid"):
        print(f"  tokenizer_cases {name}: {len(out[name])} strings, differ from fast: {info[name]['differs_from_fast']}")


# ---------------------------------------------------------------------------------------
# Scheduler anchors: the values diffusers 0.33.1's own scheduler tests check
# ---------------------------------------------------------------------------------------
def dummy_sample_deter():
    """tests/schedulers/test_schedulers.py SchedulerCommonTest.dummy_sample_deter"""
    num_elems = 4 * 3 * 8 * 8
    sample = torch.arange(num_elems)
    sample = sample.reshape(3, 8, 8, 4)
    sample = sample / num_elems
    return sample.permute(3, 0, 1, 2)


def dummy_noise_deter():
    num_elems = 4 * 3 * 8 * 8
    sample = torch.arange(num_elems).flip(-1)
    sample = sample.reshape(3, 8, 8, 4)
    sample = sample / num_elems
    return sample.permute(3, 0, 1, 2)


def dummy_model(sample, t):
    """SchedulerCommonTest.dummy_model: sample * t / (t + 1), t cast to the sample dtype."""
    if isinstance(t, torch.Tensor):
        t = t.reshape(-1, *(1,) * (sample.ndim - 1)).to(sample.device, dtype=sample.dtype)
    return sample * t / (t + 1)


def _f(x):
    return float(x)


def make_scheduler_anchors():
    st = TensorStore()
    meta = {}
    st.add("dummy_sample_deter", dummy_sample_deter())
    st.add("dummy_noise_deter", dummy_noise_deter())
    meta["helpers"] = {
        "dummy_sample_deter": "torch.arange(768).reshape(3, 8, 8, 4) / 768, then .permute(3, 0, 1, 2) -> (4, 3, 8, 8) "
                              "(float32)",
        "dummy_noise_deter": "torch.arange(768).flip(-1).reshape(3, 8, 8, 4) / 768, then .permute(3, 0, 1, 2)",
        "dummy_model": "model(x, t) = x * t / (t + 1) in float32, evaluated as (x * t) / (t + 1) with t cast to float32",
        "source": "diffusers v0.33.1 tests/schedulers/test_schedulers.py (SchedulerCommonTest), "
                  "test_scheduler_unclip.py, test_scheduler_ddim.py, test_scheduler_ddim_inverse.py",
    }

    # --- UnCLIPScheduler
    base_cfg = {"num_train_timesteps": 1000, "variance_type": "fixed_small_log", "clip_sample": True,
                "clip_sample_range": 1.0, "prediction_type": "epsilon"}
    unclip = {"test_config": base_cfg}
    s = UnCLIPScheduler(**base_cfg)
    unclip["variance_fixed_small_log"] = {
        "config": mf.clean_config(s.config),
        "call": "_get_variance(t)",
        "values": {str(t): _f(s._get_variance(t)) for t in (0, 487, 999)},
        "test_expects": {"0": 1.0e-10, "487": 0.0549625, "999": 0.9994987, "tolerance": "abs < 1e-5"},
    }
    s = UnCLIPScheduler(**{**base_cfg, "variance_type": "learned_range"})
    unclip["variance_learned_range"] = {
        "config": mf.clean_config(s.config),
        "call": "_get_variance(t, predicted_variance=0.5)",
        "values": {str(t): _f(s._get_variance(t, predicted_variance=0.5)) for t in (1, 487, 999)},
        "test_expects": {"1": -10.1712790, "487": -5.7998052, "999": -0.0010011,
                         "tolerance": "the test only checks value - expected < 1e-5 (one-sided)"},
        "note": "a log-variance; at t=0 it is -inf (log of a zero posterior variance), hence the test's t=1",
    }
    def unclip_loop(n_steps):
        s = UnCLIPScheduler(**base_cfg)
        if n_steps is not None:
            s.set_timesteps(n_steps)
        timesteps = s.timesteps
        sample = dummy_sample_deter()
        generator = torch.manual_seed(0)  # the global default generator, as in the test
        noise = []
        samples = [sample.clone()]
        prevs = []
        with mf.capture_randn(scheduling_unclip_mod, noise):
            for i, t in enumerate(timesteps):
                residual = dummy_model(sample, t)
                prev = None
                if n_steps is not None and i + 1 < timesteps.shape[0]:
                    prev = timesteps[i + 1]
                n0 = len(noise)
                sample = s.step(residual, t, sample, prev_timestep=prev, generator=generator).prev_sample
                assert len(noise) == n0 + (1 if int(t) > 0 else 0)
                samples.append(sample.clone())
                prevs.append(None if prev is None else int(prev))
        return s, timesteps, sample, noise, samples, prevs

    # replay check: the drawn noise is the plain torch.randn stream of a CPU generator seeded 0
    def check_stream(noise):
        g = torch.Generator().manual_seed(0)
        for n in noise:
            assert torch.equal(n, torch.randn(n.shape, generator=g))

    s, timesteps, final, noise, samples, _ = unclip_loop(None)
    check_stream(noise)
    checkpoints = [0, 1, 2, 10, 100, 500, 900, 990, 998, 999, 1000]
    st.add("unclip.full_loop.final", final)
    st.add("unclip.full_loop.samples_at", torch.stack([samples[i] for i in checkpoints]))
    first, last = 8, 8
    st.add("unclip.full_loop.noise_first", torch.stack(noise[:first]))
    st.add("unclip.full_loop.noise_last", torch.stack(noise[-last:]))
    unclip["full_loop"] = {
        "config": mf.clean_config(s.config),
        "timesteps": "scheduler.timesteps without set_timesteps: 999, 998, ..., 0 (1000 steps)",
        "loop": "generator = torch.manual_seed(0); for t in timesteps: sample = step(model(sample, t), t, sample, "
                "generator=generator).prev_sample  (prev_timestep None -> t-1)",
        "result_sum": _f(final.abs().sum()),
        "result_mean": _f(final.abs().mean()),
        "test_expects": {"result_sum": 252.2682495, "result_mean": 0.3284743, "tolerance": "sum 1e-2, mean 1e-3"},
        "samples_at": {"key": "unclip.full_loop.samples_at", "after_steps": checkpoints,
                       "note": "samples_at[k] = sample after after_steps[k] steps (0 = dummy_sample_deter)"},
        "noise": {
            "drawn": len(noise), "shape": list(noise[0].shape),
            "rule": "one torch.randn((4, 3, 8, 8)) per step with t > 0 (steps 0..998), consecutive draws of a CPU "
                    "generator seeded 0 (verified against torch.Generator().manual_seed(0)); no draw at t = 0",
            "stored": f"unclip.full_loop.noise_first = draws 0..{first - 1}, unclip.full_loop.noise_last = draws "
                      f"{len(noise) - last}..{len(noise) - 1} (all 999 would be 3 MB; regenerate them with the "
                      "torch-compatible randn)",
        },
    }
    s, timesteps, final, noise, samples, prevs = unclip_loop(25)
    check_stream(noise)
    st.add("unclip.full_loop_skip.final", final)
    st.add("unclip.full_loop_skip.samples", torch.stack(samples))
    st.add("unclip.full_loop_skip.noise", torch.stack(noise))
    unclip["full_loop_skip_timesteps"] = {
        "config": mf.clean_config(s.config),
        "num_inference_steps": 25,
        "timesteps": timesteps.tolist(),
        "prev_timesteps": prevs,
        "loop": "set_timesteps(25); generator = torch.manual_seed(0); prev_timestep = timesteps[i+1] (None for the "
                "last step); sample = step(model(sample, t), t, sample, prev_timestep=prev, generator).prev_sample",
        "result_sum": _f(final.abs().sum()),
        "result_mean": _f(final.abs().mean()),
        "test_expects": {"result_sum": 258.2044983, "result_mean": 0.3362038, "tolerance": "sum 1e-2, mean 1e-3"},
        "samples": "unclip.full_loop_skip.samples[i] = sample after i steps (26 entries)",
        "noise": f"unclip.full_loop_skip.noise[i] = noise drawn at step i ({len(noise)} draws, none at the last step "
                 "t=0); the same consecutive torch.randn stream of a generator seeded 0",
    }
    for k in ("full_loop", "full_loop_skip_timesteps"):
        e = unclip[k]
        assert abs(e["result_sum"] - e["test_expects"]["result_sum"]) < 1e-2, (k, e["result_sum"])
        assert abs(e["result_mean"] - e["test_expects"]["result_mean"]) < 1e-3, (k, e["result_mean"])
    meta["unclip"] = unclip

    # --- DDIM / DDIM inverse (eta 0: no noise)
    ddim_cfg = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
                "clip_sample": True}
    variants = {
        "no_noise": ({}, {"DDIMScheduler": (172.0067, 0.223967), "DDIMInverseScheduler": (671.6816, 0.8746)}),
        "v_prediction": ({"prediction_type": "v_prediction"},
                         {"DDIMScheduler": (52.5302, 0.0684), "DDIMInverseScheduler": (1394.2185, 1.8154)}),
        "set_alpha_to_one": ({"set_alpha_to_one": True, "beta_start": 0.01},
                             {"DDIMScheduler": (149.8295, 0.1951), "DDIMInverseScheduler": (539.9622, 0.7031)}),
        "no_set_alpha_to_one": ({"set_alpha_to_one": False, "beta_start": 0.01},
                                {"DDIMScheduler": (149.0784, 0.1941), "DDIMInverseScheduler": (542.6722, 0.7066)}),
    }
    for cls, key, call in ((DDIMScheduler, "ddim", "step(residual, t, sample, eta=0.0)"),
                           (DDIMInverseScheduler, "ddim_inverse", "step(residual, t, sample)")):
        entry = {"test_config": ddim_cfg, "num_inference_steps": 10, "loop": f"for t in timesteps: sample = {call}"
                 ".prev_sample, residual = model(sample, t)"}
        for vname, (extra, expects) in variants.items():
            s = cls(**{**ddim_cfg, **extra})
            s.set_timesteps(10)
            sample = dummy_sample_deter()
            samples = [sample.clone()]
            for t in s.timesteps:
                residual = dummy_model(sample, t)
                if cls is DDIMScheduler:
                    sample = s.step(residual, t, sample, 0.0).prev_sample
                else:
                    sample = s.step(residual, t, sample).prev_sample
                samples.append(sample.clone())
            st.add(f"{key}.{vname}.final", sample)
            st.add(f"{key}.{vname}.samples", torch.stack(samples))
            exp_sum, exp_mean = expects[cls.__name__]
            e = {"config": mf.clean_config(s.config), "config_overrides": extra, "timesteps": s.timesteps.tolist(),
                 "result_sum": _f(sample.abs().sum()), "result_mean": _f(sample.abs().mean()),
                 "test_expects": {"result_sum": exp_sum, "result_mean": exp_mean, "tolerance": "sum 1e-2, mean 1e-3"},
                 "samples": f"{key}.{vname}.samples[i] = sample after i steps (11 entries)"}
            assert abs(e["result_sum"] - exp_sum) < 1e-2 and abs(e["result_mean"] - exp_mean) < 1e-3, (key, vname, e)
            entry[vname] = e
        meta[key] = entry

    # DDIM test_full_loop_with_noise: add_noise at timesteps[8], then the last 2 steps
    s = DDIMScheduler(**ddim_cfg)
    s.set_timesteps(10)
    t_start = 8
    timesteps = s.timesteps[t_start * s.order:]
    sample = s.add_noise(dummy_sample_deter(), dummy_noise_deter(), timesteps[:1])
    st.add("ddim.with_noise.noised", sample)
    for t in timesteps:
        sample = s.step(dummy_model(sample, t), t, sample, 0.0).prev_sample
    st.add("ddim.with_noise.final", sample)
    e = {"config": mf.clean_config(s.config), "timesteps": timesteps.tolist(),
         "loop": "sample = add_noise(dummy_sample_deter, dummy_noise_deter, timesteps[8:9]); then step over "
                 "timesteps[8:] with eta 0",
         "result_sum": _f(sample.abs().sum()), "result_mean": _f(sample.abs().mean()),
         "test_expects": {"result_sum": 354.5418, "result_mean": 0.4616, "tolerance": "sum 1e-2, mean 1e-3"}}
    assert abs(e["result_sum"] - 354.5418) < 1e-2 and abs(e["result_mean"] - 0.4616) < 1e-3, e
    meta["ddim"]["with_noise"] = e

    st.meta = meta
    st.write("scheduler_anchors")
    print(f"  scheduler_anchors unclip full_loop sum {unclip['full_loop']['result_sum']:.7f} "
          f"skip sum {unclip['full_loop_skip_timesteps']['result_sum']:.7f}")


# ---------------------------------------------------------------------------------------
OUTPUTS = ["mid_unclip", "components_mid", "pipelines_mid", "blocks", "blocks_mid", "tokenizer_cases",
           "scheduler_anchors"]


def clean_outputs():
    for name in OUTPUTS:
        p = OUT / name
        if p.is_dir():
            shutil.rmtree(p)
        for ext in (".safetensors", ".json"):
            f = OUT / (name + ext)
            if f.exists():
                f.unlink()


def main():
    print(f"[more] torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}")
    if diffusers.__version__ != "0.33.1" or transformers.__version__ != "4.51.3":
        sys.exit("expected diffusers 0.33.1 and transformers 4.51.3 (see tests/reference/requirements.txt)")
    for need in ("tiny_unclip", "test_image.png", "components.safetensors"):
        if not (OUT / need).exists():
            sys.exit(f"{OUT / need} missing: run make_fixtures.py first")
    clean_outputs()

    with tempfile.TemporaryDirectory() as tmp:
        mid_tok = build_mid_tokenizer(tmp)
        pipe, image_encoder, feature_extractor = build_mid_components(mid_tok)
    mf.save_unclip("mid_unclip", pipe, image_encoder, feature_extractor)
    mid, mid_image_encoder, mid_feature_extractor = mf.load_unclip("mid_unclip")
    for name in ("prior", "decoder", "text_encoder", "text_proj", "super_res_first", "super_res_last"):
        mf.check_same_weights(getattr(pipe, name), getattr(mid, name))
    mf.check_same_weights(image_encoder, mid_image_encoder)
    del pipe, image_encoder, feature_extractor
    check_mid_model(mid, mid_image_encoder)

    image_path = OUT / "test_image.png"
    print("components_mid ...")
    mf.make_components(mid, mid_image_encoder, mid_feature_extractor, image_path, dims=MID_DIMS, stem="components_mid")
    print("pipelines_mid ...")
    mf.make_pipelines(mid, mid_image_encoder, mid_feature_extractor, image_path, dims=MID_DIMS, stem="pipelines_mid")

    tiny, _, _ = mf.load_unclip("tiny_unclip")
    print("blocks ...")
    make_blocks(tiny, "components.safetensors", "blocks", super_res_last_input=(17, (1, 6, 24, 32), 300))
    print("blocks_mid ...")
    make_blocks(mid, "components_mid.safetensors", "blocks_mid", decoder_only=MID_BLOCKS_DECODER)

    print("tokenizer_cases ...")
    make_tokenizer_cases(tiny.tokenizer, mid.tokenizer)
    print("scheduler_anchors ...")
    make_scheduler_anchors()
    print("[more] done:", OUT)


if __name__ == "__main__":
    main()
