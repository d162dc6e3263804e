//! diffusers `UNet2DModel` as unCLIP's super-resolution stages use it (`super_res_first/`,
//! `super_res_last/`): input = noisy high-res image ‖ upsampled low-res image, additive time
//! conditioning, resnet-only blocks, and a mid block with or without self-attention.

use burn::nn::conv::Conv2dConfig;
use burn::nn::{GroupNormConfig, PaddingConfig2d};
use burn::prelude::*;

use super::blocks::{AttnSpec, DownBlock, MidBlock, UpBlock, UpChannels};
use super::resnet::ResnetSettings;
use super::{TimeFeatures, UNet};
use crate::model::config::SuperResConfig;
use crate::model::embeddings::TimestepEmbedding;
use crate::model::nn::Act;
use crate::model::ModelError;

pub type UNet2DModel = UNet;

fn unsupported(what: impl Into<String>) -> ModelError {
    ModelError::unsupported("super_res", what)
}

pub fn init(c: &SuperResConfig, device: &Device) -> Result<UNet, ModelError> {
    let n = c.block_out_channels.len();
    if n == 0 || c.down_block_types.len() != n || c.up_block_types.len() != n {
        return Err(unsupported("block lists of different lengths"));
    }
    if c.time_embedding_type != "positional" || c.class_embed_type.is_some() || c.center_input_sample {
        return Err(unsupported("time_embedding_type other than positional / class embeddings / center_input_sample"));
    }
    let act = Act::parse(&c.act_fn).ok_or_else(|| unsupported(format!("act_fn {}", c.act_fn)))?;
    let scale_shift = match c.resnet_time_scale_shift.as_str() {
        "scale_shift" => true,
        "default" => false,
        other => return Err(unsupported(format!("resnet_time_scale_shift {other}"))),
    };
    let ch = &c.block_out_channels;
    if ch.iter().any(|&x| x % c.norm_num_groups != 0) {
        return Err(unsupported("block_out_channels not divisible by norm_num_groups"));
    }
    let temb = c.time_embedding_dim.unwrap_or(ch[0] * 4);
    let s = ResnetSettings {
        temb_channels: temb,
        groups: c.norm_num_groups,
        eps: c.norm_eps,
        act,
        scale_shift,
        skip_time_act: false,
        output_scale_factor: 1.0,
    };
    let mut down_blocks = Vec::with_capacity(n);
    for (i, kind) in c.down_block_types.iter().enumerate() {
        if kind != "ResnetDownsampleBlock2D" {
            return Err(unsupported(format!("down block {kind}")));
        }
        let cin = if i == 0 { ch[0] } else { ch[i - 1] };
        down_blocks.push(DownBlock::init(cin, ch[i], c.layers_per_block, None, i + 1 < n, s, device));
    }
    let mid_block = match c.mid_block_type.as_deref() {
        Some("UNetMidBlock2D") => {
            let attn = c.add_attention.then(|| AttnSpec {
                head_dim: c.attention_head_dim.unwrap_or(ch[n - 1]),
                // The reference only group-norms this attention with additive time conditioning.
                groups: c.attn_norm_num_groups.unwrap_or(c.norm_num_groups),
                eps: c.norm_eps,
                added_kv_dim: None,
            });
            if c.add_attention && scale_shift && c.attn_norm_num_groups.is_none() {
                return Err(unsupported("mid-block attention without group norm"));
            }
            let mut mid = MidBlock::init(ch[n - 1], attn, s, device);
            for a in &mut mid.attentions {
                a.rescale_output_factor = c.mid_block_scale_factor;
            }
            for r in &mut mid.resnets {
                r.settings.output_scale_factor = c.mid_block_scale_factor;
            }
            Some(mid)
        }
        None => None,
        Some(other) => return Err(unsupported(format!("mid block {other}"))),
    };
    let mut up_blocks = Vec::with_capacity(n);
    let mut prev = ch[n - 1];
    for (i, kind) in c.up_block_types.iter().enumerate() {
        if kind != "ResnetUpsampleBlock2D" {
            return Err(unsupported(format!("up block {kind}")));
        }
        let rev = n - 1 - i;
        let ch_io = UpChannels { cin: ch[rev.saturating_sub(1)], cout: ch[rev], prev };
        up_blocks.push(UpBlock::init(ch_io, c.layers_per_block + 1, None, i + 1 < n, s, device));
        prev = ch[rev];
    }
    let pad = || PaddingConfig2d::Explicit(1, 1, 1, 1);
    Ok(UNet {
        conv_in: Conv2dConfig::new([c.in_channels, ch[0]], [3, 3]).with_padding(pad()).init(device),
        time_embedding: TimestepEmbedding::init(ch[0], temb, act, device),
        down_blocks,
        mid_block,
        up_blocks,
        conv_norm_out: GroupNormConfig::new(c.norm_num_groups, ch[0]).with_epsilon(c.norm_eps).init(device),
        conv_out: Conv2dConfig::new([ch[0], c.out_channels], [3, 3]).with_padding(pad()).init(device),
        time: TimeFeatures { dim: ch[0], flip_sin_to_cos: c.flip_sin_to_cos, freq_shift: c.freq_shift as f32 },
        act,
    })
}
