//! GroupNorm fused with the resnet's time conditioning and SiLU
//! (`shaders/group_norm_silu.wgsl`), one workgroup per (batch, group).
//!
//! Reference: burn's `GroupNorm::forward` composed with the conditioning and the activation
//! exactly as `ResnetBlock2D::forward` wrote them:
//! - [`TimeCond::None`]: `act(norm(x))` (norm1);
//! - [`TimeCond::Add`]: `act(norm(x + t))` (norm2 of "default" resnets);
//! - [`TimeCond::ScaleShift`]: `act(norm(x)·(1 + scale) + shift)` (norm2 of "scale_shift"
//!   resnets, with `t = [scale; shift]` along channels).

use burn::backend::Dispatch;
use burn::nn::GroupNorm;
use burn::prelude::*;
use burn_cubecl::tensor::CubeTensor;

use super::{Kernels, WgslKernels, Wgsl, contiguous, cube_count, empty_like, f32_bits, kernel_dtype, launch_wgsl};
use crate::tensor::Act;

const SOURCE: &str = include_str!("../../shaders/group_norm_silu.wgsl");

/// The time conditioning applied around the norm.
#[derive(Clone)]
pub enum TimeCond {
    None,
    /// `[b, C, 1, 1]`, added before the norm.
    Add(Tensor<4>),
    /// `[b, 2C, 1, 1]` = [scale; shift], applied after the norm.
    ScaleShift(Tensor<4>),
}

/// Shapes, mode and ε for the shader: `[batch, channels, groups, hw, mode, eps bits]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupNormParams {
    pub words: [u32; 6],
}

/// `act(GN(x) ⊙ cond)`: with SiLU, the WGSL kernel or the fused host loop as `kernels` says
/// (where it applies to these shapes); the reference otherwise.
pub fn group_norm_act(kernels: Kernels, norm: &GroupNorm, x: Tensor<4>, cond: TimeCond, act: Act) -> Tensor<4> {
    if act == Act::Silu
        && kernels.is_wgsl()
        && let Some(params) = plan(norm, &x, &cond)
    {
        return run(norm, x, cond, params);
    }
    if act == Act::Silu
        && kernels == Kernels::Host
        && let Some(y) = super::host::group_norm_silu(norm, &x, &cond)
    {
        return y;
    }
    reference(norm, x, cond, act)
}

/// The burn-ops reference (what `ResnetBlock2D::forward` computed before the kernel).
pub fn reference(norm: &GroupNorm, x: Tensor<4>, cond: TimeCond, act: Act) -> Tensor<4> {
    match cond {
        TimeCond::None => act.forward(norm.forward(x)),
        TimeCond::Add(t) => act.forward(norm.forward(x + t)),
        TimeCond::ScaleShift(t) => {
            let c = t.dims()[1] / 2;
            let scale = t.clone().narrow(1, 0, c);
            let shift = t.narrow(1, c, c);
            act.forward(norm.forward(x) * (scale.add_scalar(1.0)) + shift)
        }
    }
}

/// The kernel (SiLU) on a wgpu device; `None` where it cannot run.
pub fn kernel(norm: &GroupNorm, x: Tensor<4>, cond: TimeCond) -> Option<Tensor<4>> {
    if !super::is_wgpu(&x.device()) {
        return None;
    }
    let params = plan(norm, &x, &cond)?;
    Some(run(norm, x, cond, params))
}

fn plan(norm: &GroupNorm, x: &Tensor<4>, cond: &TimeCond) -> Option<GroupNormParams> {
    let [b, c, h, w] = x.dims();
    let dtype = x.dtype();
    let (gamma, beta) = (norm.gamma.as_ref()?, norm.beta.as_ref()?);
    let groups = norm.num_groups;
    let (mode, cond_ok) = match cond {
        TimeCond::None => (0u32, true),
        TimeCond::Add(t) => (1, t.dims() == [b, c, 1, 1] && t.dtype() == dtype),
        TimeCond::ScaleShift(t) => (2, t.dims() == [b, 2 * c, 1, 1] && t.dtype() == dtype),
    };
    let n = b * c * h * w;
    let ok = norm.affine
        && cond_ok
        && kernel_dtype(dtype)
        && gamma.val().dtype() == dtype
        && beta.val().dtype() == dtype
        && c == norm.num_channels
        && groups > 0
        && c % groups == 0
        && n > 0
        && n < u32::MAX as usize / 2;
    ok.then(|| GroupNormParams {
        words: [b as u32, c as u32, groups as u32, (h * w) as u32, mode, f32_bits(norm.epsilon as f32)],
    })
}

fn run(norm: &GroupNorm, x: Tensor<4>, cond: TimeCond, params: GroupNormParams) -> Tensor<4> {
    let gamma = norm.gamma.as_ref().map(|p| p.val()).expect("affine GroupNorm");
    let beta = norm.beta.as_ref().map(|p| p.val()).expect("affine GroupNorm");
    // The shader binds a conditioning buffer in every mode; mode 0 never reads it.
    let cond = match cond {
        TimeCond::None => gamma.clone().reshape([1, params.words[1] as usize, 1, 1]),
        TimeCond::Add(t) | TimeCond::ScaleShift(t) => t,
    };
    Tensor::from_dispatch(<Dispatch as WgslKernels>::group_norm_silu(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        cond.into_dispatch(),
        params,
    ))
}

/// The `CubeBackend` side: one workgroup of 256 per (batch, group).
pub(crate) fn launch(x: CubeTensor, gamma: CubeTensor, beta: CubeTensor, cond: CubeTensor, params: GroupNormParams) -> CubeTensor {
    let (x, gamma, beta, cond) = (contiguous(x), contiguous(gamma), contiguous(beta), contiguous(cond));
    let y = empty_like(&x, x.meta.shape().clone(), x.dtype);
    let workgroups = (params.words[0] * params.words[2]) as usize;
    let kernel = Wgsl { name: "group_norm_silu", source: SOURCE, dtype: x.dtype, spec: params.words[4] };
    launch_wgsl(kernel, cube_count(workgroups), &[&x, &gamma, &beta, &cond, &y], &params.words);
    y
}
