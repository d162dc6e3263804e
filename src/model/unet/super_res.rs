//! diffusers `UNet2DModel` as unCLIP's super-resolution stages use it (`super_res_first/`,
//! `super_res_last/`): input = noisy high-res image ‖ upsampled low-res image, additive time
//! conditioning, resnet-only blocks, and a mid block with or without self-attention.

use burn::prelude::*;

use super::blocks::{AttnSpec, DownBlock, MidBlock, UpBlock};
use super::{UNet, body_config};
use crate::model::config::SuperResConfig;
use crate::model::ModelError;

pub type UNet2DModel = UNet;

fn unsupported(what: impl Into<String>) -> ModelError {
    ModelError::unsupported("super_res", what)
}

pub fn init(c: &SuperResConfig, device: &Device) -> Result<UNet, ModelError> {
    if c.time_embedding_type != "positional" || c.class_embed_type.is_some() || c.center_input_sample {
        return Err(unsupported("time_embedding_type other than positional / class embeddings / center_input_sample"));
    }
    let body = body_config!(c, "super_res", skip_time_act: false, output_scale_factor: 1.0).check()?;
    let (ch, s, n) = (&body.channels, body.resnet, body.channels.len());
    let mut down_blocks = Vec::with_capacity(n);
    for (i, kind) in c.down_block_types.iter().enumerate() {
        if kind != "ResnetDownsampleBlock2D" {
            return Err(unsupported(format!("down block {kind}")));
        }
        down_blocks.push(DownBlock::init(body.down_in(i), ch[i], c.layers_per_block, None, i + 1 < n, s, device));
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
            if c.add_attention && s.scale_shift && c.attn_norm_num_groups.is_none() {
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
        let (_, io) = body.up_channels(i, prev);
        prev = io.cout;
        up_blocks.push(UpBlock::init(io, c.layers_per_block + 1, None, i + 1 < n, s, device));
    }
    Ok(body.assemble(down_blocks, mid_block, up_blocks, device))
}
