//! What the networks call for attention and convolution: the implementation their
//! [`Kernels`] name (WGSL, the fused host loop, or the composed ops), plus the tensor helpers
//! of `crate::tensor` under their old paths.

use burn::prelude::*;

pub use crate::kernels::Kernels;

pub use crate::tensor::{Act, attention_reference, gelu_erf, merge_heads, split_heads, tensor_from, to_vec};

/// softmax(q·kᵀ/√d + bias)·v over `[batch, heads, seq, head_dim]`; `bias` broadcasts to
/// `[batch, heads, q_len, k_len]`.
/// A kernel falls back to the reference where it does not handle the shapes or dtype.
pub fn attention(kernels: Kernels, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: Option<Tensor<4>>) -> Tensor<4> {
    let fused = match kernels {
        Kernels::Wgsl { attention: true } => crate::kernels::attention::kernel(&q, &k, &v, bias.as_ref()),
        Kernels::Host => crate::kernels::host::attention(&q, &k, &v, bias.as_ref()),
        Kernels::Wgsl { attention: false } | Kernels::Reference => None,
    };
    fused.unwrap_or_else(|| attention_reference(q, k, v, bias))
}

/// Exact (erf) GELU: the one-pass host loop where `kernels` says so, burn's ops elsewhere.
pub fn gelu<const D: usize>(kernels: Kernels, x: Tensor<D>) -> Tensor<D> {
    let fused = if kernels == Kernels::Host { crate::kernels::host::gelu_erf(&x) } else { None };
    fused.unwrap_or_else(|| gelu_erf(x))
}

/// A 2-D convolution: the fused host loop for 3×3 convs where `kernels` says so, burn's op
/// elsewhere.
pub fn conv(kernels: Kernels, layer: &burn::nn::conv::Conv2d, x: Tensor<4>) -> Tensor<4> {
    let fused = if kernels == Kernels::Host { crate::kernels::host::conv3x3(layer, &x) } else { None };
    fused.unwrap_or_else(|| layer.forward(x))
}

