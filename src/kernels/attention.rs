//! Fused attention (`shaders/attention.wgsl`): softmax(q·kᵀ/√d + bias)·v with an online
//! softmax, one invocation per query row and key tiles shared by the workgroup — the added-K/V
//! attention of the decoder and every transformer's attention on wgpu.
//!
//! Reference: [`crate::tensor::attention_reference`], burn's composed ops.

use burn::backend::Dispatch;
use burn::prelude::*;
use burn_cubecl::tensor::CubeTensor;

use super::{AttentionLayout, WORKGROUP, WgslKernels, Wgsl, contiguous, cube_count, empty_like, f32_bits, kernel_dtype, launch_wgsl};

const SOURCE: &str = include_str!("../../shaders/attention.wgsl");

/// The shader's head-dimension limit (its per-invocation accumulator).
pub const MAX_HEAD_DIM: usize = 128;

/// `[b·heads, heads, n, m, d, scale bits, has_bias, bias stride b, h, n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionParams {
    pub words: [u32; 10],
}

/// The kernel on a wgpu device; `None` where it cannot run (then the caller runs the reference).
///
/// Off by default (`Kernels::Wgsl { attention: false }`): it loses on both adapters measured —
/// 0.5× burn's matmul + softmax + matmul on lavapipe, and 0.16× on an NVIDIA H200 (Vulkan;
/// 9.1 vs 1.4 ms at [2, 2, 256, 32] × 337 keys, 14.0 vs 2.3 ms at Karlo's [2, 6, 1024, 64] ×
/// 1105): each invocation runs its query row's dot products and output sums as scalar loops,
/// against burn's tiled matmuls. The tests hold it to the reference either way;
/// `UNCLIP_KERNELS=all` turns it on.
pub fn kernel(q: &Tensor<4>, k: &Tensor<4>, v: &Tensor<4>, bias: Option<&Tensor<4>>) -> Option<Tensor<4>> {
    if !super::is_wgpu(&q.device()) {
        return None;
    }
    let params = plan(q, k, v, bias)?;
    Some(run(q, k, v, bias, params))
}

fn plan(q: &Tensor<4>, k: &Tensor<4>, v: &Tensor<4>, bias: Option<&Tensor<4>>) -> Option<AttentionParams> {
    let AttentionLayout { b, heads: h, n, m, d, bias_strides } = AttentionLayout::of(q, k, v, bias)?;
    let dtype = q.dtype();
    let fits = |x: usize| x < u32::MAX as usize / 2;
    let bias_fits = bias.is_none_or(|t| fits(t.shape().num_elements()));
    if k.dtype() != dtype
        || v.dtype() != dtype
        || !kernel_dtype(dtype)
        || d == 0
        || d > MAX_HEAD_DIM
        || !fits(b * h * n * d)
        || !fits(b * h * m * d)
        || !bias_fits
    {
        return None;
    }
    let (has_bias, strides) = match bias_strides {
        Some(s) => (1, s.map(|x| x as u32)),
        None => (0, [0, 0, 0]),
    };
    let scale = (d as f32).powf(-0.5);
    Some(AttentionParams {
        words: [
            (b * h) as u32,
            h as u32,
            n as u32,
            m as u32,
            d as u32,
            f32_bits(scale),
            has_bias,
            strides[0],
            strides[1],
            strides[2],
        ],
    })
}

fn run(q: &Tensor<4>, k: &Tensor<4>, v: &Tensor<4>, bias: Option<&Tensor<4>>, params: AttentionParams) -> Tensor<4> {
    // The shader binds a bias buffer in every case; without one it is never read.
    let bias = bias.map(|t| t.clone().cast(q.dtype())).unwrap_or_else(|| q.clone());
    Tensor::from_dispatch(<Dispatch as WgslKernels>::attention(
        q.clone().into_dispatch(),
        k.clone().into_dispatch(),
        v.clone().into_dispatch(),
        bias.into_dispatch(),
        params,
    ))
}

/// The `CubeBackend` side: one invocation per query row, key tiles shared per workgroup.
pub(crate) fn launch(q: CubeTensor, k: CubeTensor, v: CubeTensor, bias: CubeTensor, params: AttentionParams) -> CubeTensor {
    let (q, k, v, bias) = (contiguous(q), contiguous(k), contiguous(v), contiguous(bias));
    let out = empty_like(&q, q.meta.shape().clone(), q.dtype);
    // One workgroup per (batch·head, block of 256 query rows).
    let (slabs, n) = (params.words[0] as usize, params.words[2] as usize);
    let workgroups = slabs * n.div_ceil(WORKGROUP as usize);
    let kernel = Wgsl { name: "attention", source: SOURCE, dtype: q.dtype, spec: 0 };
    launch_wgsl(kernel, cube_count(workgroups), &[&q, &k, &v, &bias, &out], &params.words);
    out
}
