//! diffusers `UNet2DConditionModel` in the unCLIP decoder configuration (`decoder/`):
//! `class_embed_type` identity (the CLIP time embedding is added), scale-shift resnets,
//! SimpleCrossAttn blocks attending to the 4 CLIP tokens + text tokens, 6 output channels
//! (ε and the learned variance interpolation).

use burn::nn::conv::Conv2dConfig;
use burn::nn::{GroupNormConfig, PaddingConfig2d};
use burn::prelude::*;

use super::attention::Context;
use super::blocks::{AttnSpec, DownBlock, MidBlock, UpBlock, UpChannels};
use super::resnet::ResnetSettings;
use super::{TimeFeatures, UNet};
use crate::model::config::DecoderConfig;
use crate::model::embeddings::TimestepEmbedding;
use crate::model::nn::{Act, tensor_from};
use crate::model::ModelError;

pub type UNet2DConditionModel = UNet;

fn unsupported(what: impl Into<String>) -> ModelError {
    ModelError::unsupported("decoder", what)
}

/// Builds the decoder UNet from its config (random weights until loaded).
pub fn init(c: &DecoderConfig, device: &Device) -> Result<UNet, ModelError> {
    let n = c.block_out_channels.len();
    if n == 0 || c.down_block_types.len() != n || c.up_block_types.len() != n {
        return Err(unsupported("block lists of different lengths"));
    }
    if c.class_embed_type.as_deref() != Some("identity") {
        return Err(unsupported(format!("class_embed_type {:?} (unCLIP uses \"identity\")", c.class_embed_type)));
    }
    if c.encoder_hid_dim_type.is_some() || c.addition_embed_type.is_some() || c.class_embeddings_concat {
        return Err(unsupported("encoder_hid_dim_type / addition_embed_type / class_embeddings_concat"));
    }
    if c.time_embedding_act_fn.is_some() || c.cross_attention_norm.is_some() || c.only_cross_attention.any() {
        return Err(unsupported("time_embedding_act_fn / cross_attention_norm / only_cross_attention"));
    }
    if c.conv_in_kernel != 3 || c.conv_out_kernel != 3 {
        return Err(unsupported("conv kernels other than 3"));
    }
    let act = Act::parse(&c.act_fn).ok_or_else(|| unsupported(format!("act_fn {}", c.act_fn)))?;
    let scale_shift = match c.resnet_time_scale_shift.as_str() {
        "scale_shift" => true,
        "default" => false,
        other => return Err(unsupported(format!("resnet_time_scale_shift {other}"))),
    };
    let ch = &c.block_out_channels;
    let temb = c.time_embedding_dim.unwrap_or(ch[0] * 4);
    let s = ResnetSettings {
        temb_channels: temb,
        groups: c.norm_num_groups,
        eps: c.norm_eps,
        act,
        scale_shift,
        skip_time_act: c.resnet_skip_time_act,
        output_scale_factor: c.resnet_out_scale_factor,
    };
    if ch.iter().any(|&x| x % c.norm_num_groups != 0) {
        return Err(unsupported("block_out_channels not divisible by norm_num_groups"));
    }
    let per = |v: &crate::model::config::PerBlock<usize>, i: usize, key: &str| {
        v.get(i, n).ok_or_else(|| unsupported(format!("{key} list length")))
    };
    let attn_spec = |i: usize| -> Result<AttnSpec, ModelError> {
        Ok(AttnSpec {
            head_dim: per(&c.attention_head_dim, i, "attention_head_dim")?,
            groups: c.norm_num_groups,
            eps: 1e-5,
            added_kv_dim: Some(per(&c.cross_attention_dim, i, "cross_attention_dim")?),
        })
    };

    let mut down_blocks = Vec::with_capacity(n);
    for (i, kind) in c.down_block_types.iter().enumerate() {
        let attn = match kind.as_str() {
            "ResnetDownsampleBlock2D" => None,
            "SimpleCrossAttnDownBlock2D" => Some(attn_spec(i)?),
            other => return Err(unsupported(format!("down block {other}"))),
        };
        let cin = if i == 0 { ch[0] } else { ch[i - 1] };
        let layers = per(&c.layers_per_block, i, "layers_per_block")?;
        down_blocks.push(DownBlock::init(cin, ch[i], layers, attn, i + 1 < n, s, device));
    }
    let mid_block = match c.mid_block_type.as_deref() {
        Some("UNetMidBlock2DSimpleCrossAttn") => Some(MidBlock::init(ch[n - 1], Some(attn_spec(n - 1)?), s, device)),
        None => None,
        Some(other) => return Err(unsupported(format!("mid block {other}"))),
    };
    let mut up_blocks = Vec::with_capacity(n);
    let mut prev = ch[n - 1];
    for (i, kind) in c.up_block_types.iter().enumerate() {
        let rev = n - 1 - i;
        let attn = match kind.as_str() {
            "ResnetUpsampleBlock2D" => None,
            "SimpleCrossAttnUpBlock2D" => Some(attn_spec(rev)?),
            other => return Err(unsupported(format!("up block {other}"))),
        };
        let cout = ch[rev];
        let cin = ch[rev.saturating_sub(1)];
        let layers = per(&c.layers_per_block, rev, "layers_per_block")? + 1;
        up_blocks.push(UpBlock::init(UpChannels { cin, cout, prev }, layers, attn, i + 1 < n, s, device));
        prev = cout;
    }
    Ok(UNet {
        conv_in: Conv2dConfig::new([c.in_channels, ch[0]], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device),
        time_embedding: TimestepEmbedding::init(ch[0], temb, act, device),
        down_blocks,
        mid_block,
        up_blocks,
        conv_norm_out: GroupNormConfig::new(c.norm_num_groups, ch[0]).with_epsilon(c.norm_eps).init(device),
        conv_out: Conv2dConfig::new([ch[0], c.out_channels], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device),
        time: TimeFeatures { dim: ch[0], flip_sin_to_cos: c.flip_sin_to_cos, freq_shift: c.freq_shift as f32 },
        act,
    })
}

/// The decoder mask as the reference builds it: (1 − m)·(−10000) per context token.
pub fn mask_bias(mask: &[Vec<bool>], device: &Device) -> Tensor<2> {
    let b = mask.len();
    let n = mask.first().map(|r| r.len()).unwrap_or(0);
    let v: Vec<f32> = mask.iter().flat_map(|r| r.iter().map(|&m| if m { 0.0 } else { -10000.0 })).collect();
    tensor_from(v, [b, n], device)
}

impl UNet {
    /// One decoder call: `sample` `[b, 3, s, s]` → `[b, 6, s, s]`.
    pub fn forward_decoder(
        &self,
        sample: Tensor<4>,
        timestep: f32,
        encoder_hidden_states: Tensor<3>,
        class_labels: Tensor<2>,
        mask: &[Vec<bool>],
    ) -> Tensor<4> {
        let device = sample.device();
        let ctx = Context::new(encoder_hidden_states, Some(mask_bias(mask, &device)));
        self.forward(sample, timestep, Some(class_labels), Some(&ctx))
    }
}
