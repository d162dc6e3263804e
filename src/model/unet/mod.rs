//! The two UNets of unCLIP. Both share one body (conv_in → time embedding → down blocks →
//! mid block → up blocks → norm/act/conv_out) whose field names are the checkpoint keys;
//! `decoder.rs` and `super_res.rs` build it from their own configs and add their
//! conditioning.

pub mod attention;
pub mod blocks;
pub mod decoder;
pub mod resnet;
pub mod super_res;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::model::ModelError;
use crate::model::embeddings::{TimestepEmbedding, timestep_tensor};
use crate::model::nn::{Act, Kernels, conv};
use attention::Context;
use blocks::{DownBlock, MidBlock, UpBlock, UpChannels};
use resnet::ResnetSettings;

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
    #[module(skip)]
    pub kernels: Kernels,
}

/// The sinusoidal timestep features' settings (`Timesteps`).
#[derive(Debug, Clone, Copy)]
pub struct TimeFeatures {
    pub dim: usize,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f32,
}

/// The config fields both unCLIP UNets read the same way (each config names them alike).
pub(crate) struct BodyConfig<'a> {
    /// `"decoder"` or `"super_res"`, for errors.
    pub component: &'static str,
    pub block_out_channels: &'a [usize],
    /// Lengths of `down_block_types` and `up_block_types`.
    pub block_counts: [usize; 2],
    pub in_out: [usize; 2],
    pub act_fn: &'a str,
    pub resnet_time_scale_shift: &'a str,
    pub norm_num_groups: usize,
    pub norm_eps: f64,
    pub time_embedding_dim: Option<usize>,
    pub skip_time_act: bool,
    pub output_scale_factor: f64,
    pub flip_sin_to_cos: bool,
    pub freq_shift: usize,
}

/// A [`BodyConfig`] from a decoder or super-res config: both name these fields alike, and
/// differ only in the resnets' time activation and output scale.
macro_rules! body_config {
    ($c:expr, $component:literal, skip_time_act: $skip:expr, output_scale_factor: $scale:expr) => {
        $crate::model::unet::BodyConfig {
            component: $component,
            block_out_channels: &$c.block_out_channels,
            block_counts: [$c.down_block_types.len(), $c.up_block_types.len()],
            in_out: [$c.in_channels, $c.out_channels],
            act_fn: &$c.act_fn,
            resnet_time_scale_shift: &$c.resnet_time_scale_shift,
            norm_num_groups: $c.norm_num_groups,
            norm_eps: $c.norm_eps,
            time_embedding_dim: $c.time_embedding_dim,
            skip_time_act: $skip,
            output_scale_factor: $scale,
            flip_sin_to_cos: $c.flip_sin_to_cos,
            freq_shift: $c.freq_shift,
        }
    };
}
pub(crate) use body_config;

/// The checked shared part of a UNet: its resnets' settings and the stems around the blocks.
pub(crate) struct Body {
    pub channels: Vec<usize>,
    pub resnet: ResnetSettings,
    in_out: [usize; 2],
    time: TimeFeatures,
}

impl BodyConfig<'_> {
    pub fn check(self) -> Result<Body, ModelError> {
        let unsupported = |what: String| ModelError::unsupported(self.component, what);
        let ch = self.block_out_channels;
        let n = ch.len();
        if n == 0 || self.block_counts != [n, n] {
            return Err(unsupported("block lists of different lengths".into()));
        }
        let act = Act::parse(self.act_fn).ok_or_else(|| unsupported(format!("act_fn {}", self.act_fn)))?;
        let scale_shift = match self.resnet_time_scale_shift {
            "scale_shift" => true,
            "default" => false,
            other => return Err(unsupported(format!("resnet_time_scale_shift {other}"))),
        };
        if self.norm_num_groups == 0 || ch.iter().any(|&x| x % self.norm_num_groups != 0) {
            return Err(unsupported("block_out_channels not divisible by norm_num_groups".into()));
        }
        let resnet = ResnetSettings {
            temb_channels: self.time_embedding_dim.unwrap_or(ch[0] * 4),
            groups: self.norm_num_groups,
            eps: self.norm_eps,
            act,
            scale_shift,
            skip_time_act: self.skip_time_act,
            output_scale_factor: self.output_scale_factor,
        };
        Ok(Body {
            channels: ch.to_vec(),
            resnet,
            in_out: self.in_out,
            time: TimeFeatures { dim: ch[0], flip_sin_to_cos: self.flip_sin_to_cos, freq_shift: self.freq_shift as f32 },
        })
    }
}

impl Body {
    /// Input width of down block `i`.
    pub fn down_in(&self, i: usize) -> usize {
        self.channels[i.saturating_sub(1)]
    }

    /// Up block `i`'s level (counted as the down blocks are) and its channels, given the
    /// previous up block's output `prev`.
    pub fn up_channels(&self, i: usize, prev: usize) -> (usize, UpChannels) {
        let rev = self.channels.len() - 1 - i;
        (rev, UpChannels { cin: self.channels[rev.saturating_sub(1)], cout: self.channels[rev], prev })
    }

    /// The UNet: conv_in, time embedding, the given blocks, norm, conv_out.
    pub fn assemble(self, down_blocks: Vec<DownBlock>, mid_block: Option<MidBlock>, up_blocks: Vec<UpBlock>, device: &Device) -> UNet {
        let (ch0, s) = (self.channels[0], self.resnet);
        let conv3 = |cin, cout| Conv2dConfig::new([cin, cout], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
        UNet {
            conv_in: conv3(self.in_out[0], ch0),
            time_embedding: TimestepEmbedding::init(ch0, s.temb_channels, s.act, device),
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: GroupNormConfig::new(s.groups, ch0).with_epsilon(s.eps).init(device),
            conv_out: conv3(ch0, self.in_out[1]),
            time: self.time,
            act: s.act,
            kernels: Kernels::for_device(device),
        }
    }
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

        let mut x = conv(self.kernels, &self.conv_in, sample);
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
        conv(self.kernels, &self.conv_out, self.act.forward(self.conv_norm_out.forward(x))).cast(burn::tensor::DType::F32)
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
