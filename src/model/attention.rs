//! diffusers `Attention` with `AttnProcessor2_0` for token sequences (no group norm, no
//! added K/V): the self-attention inside `BasicTransformerBlock`.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::nn::{Kernels, attention, merge_heads, split_heads};

#[derive(Module, Debug)]
pub struct Attention {
    pub to_q: Linear,
    pub to_k: Linear,
    pub to_v: Linear,
    /// Checkpoint key `to_out.0` (index 1 is a parameterless dropout).
    pub to_out: Linear,
    pub heads: usize,
    #[module(skip)]
    pub kernels: Kernels,
}

impl Attention {
    pub fn init(dim: usize, heads: usize, head_dim: usize, bias: bool, device: &Device) -> Self {
        let inner = heads * head_dim;
        Self {
            to_q: LinearConfig::new(dim, inner).with_bias(bias).init(device),
            to_k: LinearConfig::new(dim, inner).with_bias(bias).init(device),
            to_v: LinearConfig::new(dim, inner).with_bias(bias).init(device),
            to_out: LinearConfig::new(inner, dim).init(device),
            heads,
            kernels: Kernels::for_device(device),
        }
    }

    /// `bias` broadcasts to `[batch, heads, seq, seq]`.
    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let q = split_heads(self.to_q.forward(x.clone()), self.heads);
        let k = split_heads(self.to_k.forward(x.clone()), self.heads);
        let v = split_heads(self.to_v.forward(x), self.heads);
        self.to_out.forward(merge_heads(attention(self.kernels, q, k, v, bias)))
    }
}
