//! diffusers `ResnetBlock2D`, including the resampling variants (`up=True` / `down=True`)
//! that unCLIP's UNets use instead of convolutional up/down samplers.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::kernels::group_norm::{TimeCond, group_norm_act};
use crate::model::nn::{Act, Kernels, conv};

/// How a resnet resamples (inside the block, after norm1 + activation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    None,
    /// Nearest-neighbour ×2 (`Upsample2D(use_conv=False)`).
    Up,
    /// 2×2 average pooling (`Downsample2D(use_conv=False)`).
    Down,
}

/// Shared settings of every resnet in a UNet.
#[derive(Debug, Clone, Copy)]
pub struct ResnetSettings {
    pub temb_channels: usize,
    pub groups: usize,
    pub eps: f64,
    pub act: Act,
    /// `resnet_time_scale_shift == "scale_shift"`: the time vector gives (scale, shift)
    /// applied after norm2, instead of being added before it.
    pub scale_shift: bool,
    pub skip_time_act: bool,
    pub output_scale_factor: f64,
}

#[derive(Module, Debug)]
pub struct ResnetBlock2D {
    pub norm1: GroupNorm,
    pub conv1: Conv2d,
    pub time_emb_proj: Linear,
    pub norm2: GroupNorm,
    pub conv2: Conv2d,
    pub conv_shortcut: Option<Conv2d>,
    #[module(skip)]
    pub resample: Resample,
    #[module(skip)]
    pub settings: ResnetSettings,
    #[module(skip)]
    pub kernels: Kernels,
}

pub fn conv3x3(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device)
}

impl ResnetBlock2D {
    pub fn init(cin: usize, cout: usize, resample: Resample, s: ResnetSettings, device: &Device) -> Self {
        let temb_out = if s.scale_shift { 2 * cout } else { cout };
        Self {
            norm1: GroupNormConfig::new(s.groups, cin).with_epsilon(s.eps).init(device),
            conv1: conv3x3(cin, cout, device),
            time_emb_proj: LinearConfig::new(s.temb_channels, temb_out).init(device),
            norm2: GroupNormConfig::new(s.groups, cout).with_epsilon(s.eps).init(device),
            conv2: conv3x3(cout, cout, device),
            conv_shortcut: (cin != cout).then(|| Conv2dConfig::new([cin, cout], [1, 1]).init(device)),
            resample,
            settings: s,
            kernels: Kernels::for_device(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>, temb: Tensor<2>) -> Tensor<4> {
        let s = &self.settings;
        let mut skip = x.clone();
        // act(norm(·)) and its time-conditioned forms: one WGSL kernel on wgpu when the
        // activation is SiLU, the same burn ops as always elsewhere (kernels::group_norm).
        let mut h = group_norm_act(self.kernels, &self.norm1, x, TimeCond::None, s.act);
        match self.resample {
            Resample::None => {}
            Resample::Up => {
                skip = upsample_nearest2x(self.kernels, skip);
                h = upsample_nearest2x(self.kernels, h);
            }
            Resample::Down => {
                skip = avg_pool2x(self.kernels, skip);
                h = avg_pool2x(self.kernels, h);
            }
        }
        let h = conv(self.kernels, &self.conv1, h);
        let temb = if s.skip_time_act { temb } else { s.act.forward(temb) };
        let t = self.time_emb_proj.forward(temb);
        let [b, tc] = t.dims();
        let t = t.reshape([b, tc, 1, 1]);
        // scale_shift: act(norm2(h)·(1 + scale) + shift) with t = [scale; shift];
        // default: act(norm2(h + t)).
        let cond = if s.scale_shift { TimeCond::ScaleShift(t) } else { TimeCond::Add(t) };
        let h = conv(self.kernels, &self.conv2, group_norm_act(self.kernels, &self.norm2, h, cond, s.act));
        if let Some(sc) = &self.conv_shortcut {
            skip = sc.forward(skip);
        }
        let out = skip + h;
        if s.output_scale_factor == 1.0 { out } else { out.div_scalar(s.output_scale_factor) }
    }
}

/// Nearest-neighbour ×2, as `F.interpolate(scale_factor=2, mode="nearest")`: the host loop
/// where `kernels` says so, burn's ops elsewhere.
pub fn upsample_nearest2x(kernels: Kernels, x: Tensor<4>) -> Tensor<4> {
    if kernels == Kernels::Host
        && let Some(y) = crate::kernels::host::upsample_nearest2x(&x)
    {
        return y;
    }
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1]).expand([b, c, h, 2, w, 2]).reshape([b, c, 2 * h, 2 * w])
}

/// 2×2 average pooling with stride 2 (odd trailing rows/columns dropped, as PyTorch floors):
/// the host loop where `kernels` says so, burn's ops elsewhere.
pub fn avg_pool2x(kernels: Kernels, x: Tensor<4>) -> Tensor<4> {
    if kernels == Kernels::Host
        && let Some(y) = crate::kernels::host::avg_pool2x(&x)
    {
        return y;
    }
    let [b, c, h, w] = x.dims();
    let (h2, w2) = (h / 2, w / 2);
    let x = if h % 2 == 1 || w % 2 == 1 { x.narrow(2, 0, 2 * h2).narrow(3, 0, 2 * w2) } else { x };
    x.reshape([b, c, h2, 2, w2, 2]).sum_dim(5).sum_dim(3).mul_scalar(0.25).reshape([b, c, h2, w2])
}
