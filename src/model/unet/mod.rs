//! The two UNets of unCLIP. Both share one body (conv_in → time embedding → down blocks →
//! mid block → up blocks → norm/act/conv_out) whose field names are the checkpoint keys;
//! `decoder.rs` and `super_res.rs` build it from their own configs and add their
//! conditioning.

pub mod attention;
pub mod blocks;
pub mod decoder;
pub mod resnet;
pub mod super_res;

use burn::nn::conv::Conv2d;
use burn::nn::GroupNorm;
use burn::prelude::*;

use crate::model::embeddings::{TimestepEmbedding, timestep_tensor};
use crate::model::nn::{Act, conv};
use attention::Context;
use blocks::{DownBlock, MidBlock, UpBlock};

#[derive(Module, Debug)]
pub struct UNet {
    pub conv_in: Conv2d,
    pub time_embedding: TimestepEmbedding,
    pub down_blocks: Vec<DownBlock>,
    pub mid_block: Option<MidBlock>,
    pub up_blocks: Vec<UpBlock>,
    pub conv_norm_out: GroupNorm,
    pub conv_out: Conv2d,
    #[module(skip)]
    pub time: TimeFeatures,
    #[module(skip)]
    pub act: Act,
}

/// The sinusoidal timestep features' settings (`Timesteps`).
#[derive(Debug, Clone, Copy)]
pub struct TimeFeatures {
    pub dim: usize,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f32,
}

impl UNet {
    /// `extra_emb` is added to the timestep embedding (the decoder's CLIP conditioning).
    pub fn forward(
        &self,
        sample: Tensor<4>,
        timestep: f32,
        extra_emb: Option<Tensor<2>>,
        ctx: Option<&Context>,
    ) -> Tensor<4> {
        self.forward_timesteps(sample, &[timestep], extra_emb, ctx)
    }

    /// As `forward`, with one timestep per batch row (training) or one for all.
    pub fn forward_timesteps(
        &self,
        sample: Tensor<4>,
        timesteps: &[f32],
        extra_emb: Option<Tensor<2>>,
        ctx: Option<&Context>,
    ) -> Tensor<4> {
        let b = sample.dims()[0];
        let device = sample.device();
        // Inputs in the weights' dtype (f16 with `--dtype f16`), the output back in f32 for
        // the samplers.
        let dtype = self.conv_in.weight.val().dtype();
        let sample = sample.cast(dtype);
        let tf = self.time;
        let t = timestep_tensor(timesteps, b, tf.dim, tf.flip_sin_to_cos, tf.freq_shift, &device).cast(dtype);
        let mut emb = self.time_embedding.forward(t);
        if let Some(extra) = extra_emb {
            emb = emb + extra.cast(dtype);
        }

        let mut x = conv(&self.conv_in, sample);
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            let (out, pushed) = block.forward(x, &emb, ctx);
            x = out;
            skips.extend(pushed);
        }
        if let Some(mid) = &self.mid_block {
            x = mid.forward(x, &emb, ctx);
        }
        for block in &self.up_blocks {
            x = block.forward(x, &mut skips, &emb, ctx);
        }
        conv(&self.conv_out, self.act.forward(self.conv_norm_out.forward(x))).cast(burn::tensor::DType::F32)
    }

    /// The attention layers with added K/V projections of the context (the decoder's).
    pub fn added_kv_layers(&self) -> usize {
        let down = self.down_blocks.iter().flat_map(|b| &b.attentions);
        let mid = self.mid_block.iter().flat_map(|b| &b.attentions);
        let up = self.up_blocks.iter().flat_map(|b| &b.attentions);
        down.chain(mid).chain(up).filter(|a| a.add_k_proj.is_some()).count()
    }

    /// Total number of down-sampling steps, i.e. the input size must be a multiple of 2^n.
    pub fn downsample_factor(&self) -> usize {
        1 << self.down_blocks.iter().filter(|b| !b.downsamplers.is_empty()).count()
    }
}
