//! What the networks call for attention and convolution: the kernel for the device (WGSL,
//! the fused host loop, or the composed ops), plus the tensor helpers of `crate::tensor`
//! under their old paths.

use burn::prelude::*;

pub use crate::tensor::{Act, attention_reference, gelu_erf, merge_heads, split_heads, tensor_from, to_vec};

/// softmax(q·kᵀ/√d + bias)·v over `[batch, heads, seq, head_dim]`; `bias` broadcasts to
/// `[batch, heads, q_len, k_len]`.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: Option<Tensor<4>>) -> Tensor<4> {
    if let Some(out) = crate::kernels::attention::attention(&q, &k, &v, bias.as_ref()) {
        return out;
    }
    if let Some(out) = crate::kernels::host::attention(&q, &k, &v, bias.as_ref()) {
        return out;
    }
    attention_reference(q, k, v, bias)
}

/// A 2-D convolution: the fused host loop for 3×3 convs on flex, burn's op elsewhere.
pub fn conv(layer: &burn::nn::conv::Conv2d, x: Tensor<4>) -> Tensor<4> {
    crate::kernels::host::conv3x3(layer, &x).unwrap_or_else(|| layer.forward(x))
}

