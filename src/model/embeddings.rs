//! diffusers `embeddings.py`: sinusoidal timestep features and the MLP that embeds them.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::nn::{Act, tensor_from};

/// `get_timestep_embedding` for one timestep per batch row, computed on the host in f32 in
/// the reference's order of operations (these few hundred values are not worth a kernel).
pub fn timestep_features(timesteps: &[f32], dim: usize, flip_sin_to_cos: bool, freq_shift: f32) -> Vec<f32> {
    let half = dim / 2;
    let neg_log_period = -(10000f32).ln();
    let freqs: Vec<f32> = (0..half)
        .map(|k| (neg_log_period * k as f32 / (half as f32 - freq_shift)).exp())
        .collect();
    let mut out = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let args = freqs.iter().map(|f| t * f);
        let (sin, cos): (Vec<f32>, Vec<f32>) = args.map(|a| (a.sin(), a.cos())).unzip();
        let (first, second) = if flip_sin_to_cos { (cos, sin) } else { (sin, cos) };
        out.extend(first);
        out.extend(second);
        if dim % 2 == 1 {
            out.push(0.0);
        }
    }
    out
}

/// diffusers `Timesteps` + upload: `[batch, dim]` features, one timestep per row, or one
/// timestep shared by every row.
pub fn timestep_tensor(ts: &[f32], batch: usize, dim: usize, flip: bool, shift: f32, device: &Device) -> Tensor<2> {
    if ts.len() == batch {
        tensor_from(timestep_features(ts, dim, flip, shift), [batch, dim], device)
    } else {
        let row = timestep_features(&ts[..1.min(ts.len())], dim, flip, shift);
        tensor_from(row, [1, dim], device).repeat_dim(0, batch)
    }
}

/// diffusers `TimestepEmbedding`: linear_1 → act → linear_2.
#[derive(Module, Debug)]
pub struct TimestepEmbedding {
    pub linear_1: Linear,
    pub linear_2: Linear,
    #[module(skip)]
    pub act: Act,
}

impl TimestepEmbedding {
    pub fn init(in_dim: usize, out_dim: usize, act: Act, device: &Device) -> Self {
        Self {
            linear_1: LinearConfig::new(in_dim, out_dim).init(device),
            linear_2: LinearConfig::new(out_dim, out_dim).init(device),
            act,
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.linear_2.forward(self.act.forward(self.linear_1.forward(x)))
    }
}
