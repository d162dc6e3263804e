//! diffusers' UNet blocks in the forms unCLIP uses: `ResnetDownsampleBlock2D`,
//! `SimpleCrossAttnDownBlock2D`, `UNetMidBlock2DSimpleCrossAttn`, `UNetMidBlock2D`,
//! `SimpleCrossAttnUpBlock2D` and `ResnetUpsampleBlock2D`. A block with no attentions is
//! the resnet-only variant; resampling is done by an extra resnet.

use burn::prelude::*;

use super::attention::{Context, SpatialAttention};
use super::resnet::{ResnetBlock2D, ResnetSettings, Resample};

/// Attention layout inside a block.
#[derive(Debug, Clone, Copy)]
pub struct AttnSpec {
    /// Channels per head.
    pub head_dim: usize,
    pub groups: usize,
    pub eps: f64,
    /// Context width for added K/V (`None`: self-attention only).
    pub added_kv_dim: Option<usize>,
}

#[derive(Module, Debug)]
pub struct DownBlock {
    pub resnets: Vec<ResnetBlock2D>,
    pub attentions: Vec<SpatialAttention>,
    pub downsamplers: Vec<ResnetBlock2D>,
}

impl DownBlock {
    pub fn init(
        cin: usize,
        cout: usize,
        layers: usize,
        attn: Option<AttnSpec>,
        downsample: bool,
        s: ResnetSettings,
        device: &Device,
    ) -> Self {
        let resnets = (0..layers)
            .map(|i| ResnetBlock2D::init(if i == 0 { cin } else { cout }, cout, Resample::None, s, device))
            .collect();
        let attentions = match attn {
            Some(a) => (0..layers).map(|_| attention(cout, a, device)).collect(),
            None => Vec::new(),
        };
        let downsamplers = if downsample {
            vec![ResnetBlock2D::init(cout, cout, Resample::Down, s, device)]
        } else {
            Vec::new()
        };
        Self { resnets, attentions, downsamplers }
    }

    /// Returns the output and the skip connections it pushes.
    pub fn forward(&self, mut x: Tensor<4>, temb: &Tensor<2>, ctx: Option<&Context>) -> (Tensor<4>, Vec<Tensor<4>>) {
        let mut skips = Vec::with_capacity(self.resnets.len() + 1);
        for (i, resnet) in self.resnets.iter().enumerate() {
            x = resnet.forward(x, temb.clone());
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(x, ctx);
            }
            skips.push(x.clone());
        }
        for down in &self.downsamplers {
            x = down.forward(x, temb.clone());
            skips.push(x.clone());
        }
        (x, skips)
    }
}

#[derive(Module, Debug)]
pub struct MidBlock {
    pub resnets: Vec<ResnetBlock2D>,
    pub attentions: Vec<SpatialAttention>,
}

impl MidBlock {
    pub fn init(channels: usize, attn: Option<AttnSpec>, s: ResnetSettings, device: &Device) -> Self {
        Self {
            resnets: (0..2).map(|_| ResnetBlock2D::init(channels, channels, Resample::None, s, device)).collect(),
            attentions: attn.map(|a| vec![attention(channels, a, device)]).unwrap_or_default(),
        }
    }

    pub fn forward(&self, x: Tensor<4>, temb: &Tensor<2>, ctx: Option<&Context>) -> Tensor<4> {
        let mut x = self.resnets[0].forward(x, temb.clone());
        for (i, resnet) in self.resnets.iter().enumerate().skip(1) {
            if let Some(attn) = self.attentions.get(i - 1) {
                x = attn.forward(x, ctx);
            }
            x = resnet.forward(x, temb.clone());
        }
        x
    }
}

#[derive(Module, Debug)]
pub struct UpBlock {
    pub resnets: Vec<ResnetBlock2D>,
    pub attentions: Vec<SpatialAttention>,
    pub upsamplers: Vec<ResnetBlock2D>,
}

/// Channel bookkeeping of an up block.
#[derive(Debug, Clone, Copy)]
pub struct UpChannels {
    /// Channels of the matching down block's input (the last skip's width).
    pub cin: usize,
    pub cout: usize,
    /// Channels arriving from the previous up block.
    pub prev: usize,
}

impl UpBlock {
    pub fn init(
        ch: UpChannels,
        layers: usize,
        attn: Option<AttnSpec>,
        upsample: bool,
        s: ResnetSettings,
        device: &Device,
    ) -> Self {
        let resnets = (0..layers)
            .map(|i| {
                let skip = if i == layers - 1 { ch.cin } else { ch.cout };
                let input = if i == 0 { ch.prev } else { ch.cout };
                ResnetBlock2D::init(input + skip, ch.cout, Resample::None, s, device)
            })
            .collect();
        let attentions = match attn {
            Some(a) => (0..layers).map(|_| attention(ch.cout, a, device)).collect(),
            None => Vec::new(),
        };
        let upsamplers = if upsample {
            vec![ResnetBlock2D::init(ch.cout, ch.cout, Resample::Up, s, device)]
        } else {
            Vec::new()
        };
        Self { resnets, attentions, upsamplers }
    }

    /// Consumes one skip per resnet, last pushed first.
    pub fn forward(
        &self,
        mut x: Tensor<4>,
        skips: &mut Vec<Tensor<4>>,
        temb: &Tensor<2>,
        ctx: Option<&Context>,
    ) -> Tensor<4> {
        for (i, resnet) in self.resnets.iter().enumerate() {
            if let Some(skip) = skips.pop() {
                x = Tensor::cat(vec![x, skip], 1);
            }
            x = resnet.forward(x, temb.clone());
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(x, ctx);
            }
        }
        for up in &self.upsamplers {
            x = up.forward(x, temb.clone());
        }
        x
    }
}

fn attention(channels: usize, a: AttnSpec, device: &Device) -> SpatialAttention {
    let heads = (channels / a.head_dim.max(1)).max(1);
    SpatialAttention::init(channels, heads, a.groups, a.eps, a.added_kv_dim, device)
}
