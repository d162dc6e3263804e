//! The bottom layer: tensor helpers every other layer uses and none of them owns —
//! activations as the reference defines them, the composed-ops attention the kernels are
//! checked against, head reshapes, host ↔ device conversion, and RGB pictures on the host.
//! It imports nothing from this crate.

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

/// Reads a tensor back as f32, whatever its float dtype on the device.
///
/// Every float dtype converts, so the failure branch is a backend fault; it yields NaN of
/// the right length rather than a short vector, so the stage's finiteness check reports it
/// as an error instead of a slice going out of bounds later.
pub fn to_vec<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    let n = x.shape().num_elements();
    let data = x.into_data();
    match data.try_to_vec::<f32>() {
        Ok(v) => v,
        // f16/bf16 tensors convert through the data's own dtype conversion.
        Err(_) => data.convert::<f32>().try_to_vec::<f32>().unwrap_or_else(|_| vec![f32::NAN; n]),
    }
}

/// An RGB picture on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// [-1, 1] → 0..=255 as diffusers does: ×0.5+0.5, clamp, ×255, numpy's round (half to even).
fn to_u8(v: f32) -> u8 {
    ((v * 0.5 + 0.5).clamp(0.0, 1.0) * 255.0).round_ties_even() as u8
}

/// One picture per batch item.
pub fn to_pictures(x: Tensor<4>) -> Vec<Picture> {
    let [b, c, h, w] = x.dims();
    let v = to_vec(x);
    (0..b)
        .map(|i| {
            let img = &v[i * c * h * w..(i + 1) * c * h * w];
            let mut rgb = Vec::with_capacity(h * w * 3);
            for p in 0..h * w {
                for ch in 0..3 {
                    // Grey for single-channel models, the first three channels otherwise.
                    rgb.push(to_u8(img[ch.min(c - 1) * h * w + p]));
                }
            }
            Picture { width: w, height: h, rgb }
        })
        .collect()
}

/// The whole batch side by side (the live preview).
pub fn to_preview(x: Tensor<4>) -> Picture {
    let pics = to_pictures(x);
    strip(&pics)
}

/// Pictures of equal height placed left to right.
pub fn strip(pics: &[Picture]) -> Picture {
    let h = pics.iter().map(|p| p.height).max().unwrap_or(0);
    let w: usize = pics.iter().map(|p| p.width).sum();
    let mut rgb = vec![0u8; w * h * 3];
    let mut x0 = 0;
    for p in pics {
        for y in 0..p.height {
            let src = &p.rgb[y * p.width * 3..(y + 1) * p.width * 3];
            rgb[(y * w + x0) * 3..(y * w + x0 + p.width) * 3].copy_from_slice(src);
        }
        x0 += p.width;
    }
    Picture { width: w, height: h, rgb }
}
