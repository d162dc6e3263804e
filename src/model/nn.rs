//! Small tensor helpers shared by the networks: activations as the reference defines them,
//! attention with an additive bias, and host ↔ device conversion.

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation;

/// Activation named by a config string (`silu`/`swish`, `gelu`, `quick_gelu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Silu,
    Gelu,
    QuickGelu,
}

impl Act {
    pub fn parse(name: &str) -> Option<Act> {
        match name {
            "silu" | "swish" => Some(Act::Silu),
            "gelu" => Some(Act::Gelu),
            "quick_gelu" => Some(Act::QuickGelu),
            _ => None,
        }
    }

    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Act::Silu => activation::silu(x),
            Act::Gelu => gelu_erf(x),
            // CLIP's approximation: x·σ(1.702x).
            Act::QuickGelu => x.clone() * activation::sigmoid(x.mul_scalar(1.702)),
        }
    }
}

/// Exact (erf) GELU, written out so the formula does not depend on a backend's choice.
pub fn gelu_erf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let cdf = x.clone().div_scalar(std::f64::consts::SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5);
    x * cdf
}

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

/// The composed burn ops (what every backend but plain flex runs).
pub fn attention_reference(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: Option<Tensor<4>>) -> Tensor<4> {
    let head_dim = q.dims()[3];
    let q_dtype = q.dtype();
    let scale = (head_dim as f64).powf(-0.5);
    let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
    if let Some(bias) = bias {
        scores = scores + bias.cast(q_dtype);
    }
    activation::softmax(scores, 3).matmul(v)
}

/// A 2-D convolution: the fused host loop for 3×3 convs on flex, burn's op elsewhere.
pub fn conv(layer: &burn::nn::conv::Conv2d, x: Tensor<4>) -> Tensor<4> {
    crate::kernels::host::conv3x3(layer, &x).unwrap_or_else(|| layer.forward(x))
}

/// `[b, s, heads·d]` → `[b, heads, s, d]`.
pub fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, s, c] = x.dims();
    x.reshape([b, s, heads, c / heads]).swap_dims(1, 2)
}

/// `[b, heads, s, d]` → `[b, s, heads·d]`.
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, s, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, s, h * d])
}

/// Uploads host floats as a tensor of the given shape.
pub fn tensor_from<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Reads a tensor back as f32, whatever its dtype on the device.
pub fn to_vec<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    let data = x.into_data();
    match data.try_to_vec::<f32>() {
        Ok(v) => v,
        // f16/bf16 tensors convert through the data's own dtype conversion.
        Err(_) => data.convert::<f32>().try_to_vec::<f32>().unwrap_or_default(),
    }
}
