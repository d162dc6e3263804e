//! diffusers `UNet2DConditionModel` in the unCLIP decoder configuration (`decoder/`):
//! `class_embed_type` identity (the CLIP time embedding is added), scale-shift resnets,
//! SimpleCrossAttn blocks attending to the 4 CLIP tokens + text tokens, 6 output channels
//! (ε and the learned variance interpolation).

use burn::prelude::*;

use super::attention::Context;
use super::blocks::{AttnSpec, DownBlock, MidBlock, UpBlock};
use super::{UNet, body_config};
use crate::model::config::DecoderConfig;
use crate::model::nn::tensor_from;
use crate::model::ModelError;

pub type UNet2DConditionModel = UNet;

fn unsupported(what: impl Into<String>) -> ModelError {
    ModelError::unsupported("decoder", what)
}

/// Builds the decoder UNet from its config (random weights until loaded).
pub fn init(c: &DecoderConfig, device: &Device) -> Result<UNet, ModelError> {
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
    let body =
        body_config!(c, "decoder", skip_time_act: c.resnet_skip_time_act, output_scale_factor: c.resnet_out_scale_factor)
            .check()?;
    let (ch, s, n) = (&body.channels, body.resnet, body.channels.len());
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
        let layers = per(&c.layers_per_block, i, "layers_per_block")?;
        down_blocks.push(DownBlock::init(body.down_in(i), ch[i], layers, attn, i + 1 < n, s, device));
    }
    let mid_block = match c.mid_block_type.as_deref() {
        Some("UNetMidBlock2DSimpleCrossAttn") => Some(MidBlock::init(ch[n - 1], Some(attn_spec(n - 1)?), s, device)),
        None => None,
        Some(other) => return Err(unsupported(format!("mid block {other}"))),
    };
    let mut up_blocks = Vec::with_capacity(n);
    let mut prev = ch[n - 1];
    for (i, kind) in c.up_block_types.iter().enumerate() {
        let (rev, io) = body.up_channels(i, prev);
        let attn = match kind.as_str() {
            "ResnetUpsampleBlock2D" => None,
            "SimpleCrossAttnUpBlock2D" => Some(attn_spec(rev)?),
            other => return Err(unsupported(format!("up block {other}"))),
        };
        let layers = per(&c.layers_per_block, rev, "layers_per_block")? + 1;
        prev = io.cout;
        up_blocks.push(UpBlock::init(io, layers, attn, i + 1 < n, s, device));
    }
    Ok(body.assemble(down_blocks, mid_block, up_blocks, device))
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
