//! diffusers `Attention` over a feature map: group norm on the query side, self keys, and
//! (for the decoder's SimpleCrossAttn blocks) added K/V projections of the context tokens,
//! which come first in the key sequence (`AttnAddedKVProcessor2_0`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::model::nn::{Kernels, attention, merge_heads, split_heads};

/// Context tokens for cross-attention and their additive mask `[b, tokens]`.
#[derive(Clone, Debug)]
pub struct Context {
    pub states: Tensor<3>,
    pub mask_bias: Option<Tensor<2>>,
    /// Per attention layer, its added K/V projections of `states` (heads split) and the full
    /// key bias, filled on first use. The context is the same at every timestep of a
    /// generation, so a sampling loop computes them once instead of once per step.
    kv_cache: Option<KvCache>,
}

/// Keyed by the attention module's address: the cache lives in one generation's `Context`,
/// during which the networks are borrowed and cannot move.
type KvCache = Rc<RefCell<HashMap<usize, (Tensor<4>, Tensor<4>, Option<Tensor<4>>)>>>;

impl Context {
    pub fn new(states: Tensor<3>, mask_bias: Option<Tensor<2>>) -> Self {
        Self { states, mask_bias, kv_cache: None }
    }

    /// The same context, remembering each layer's projections across calls.
    pub fn with_kv_cache(mut self) -> Self {
        self.kv_cache = Some(Rc::default());
        self
    }

    /// How many layers have cached projections (for tests).
    pub fn cached_layers(&self) -> usize {
        self.kv_cache.as_ref().map_or(0, |c| c.borrow().len())
    }
}

#[derive(Module, Debug)]
pub struct SpatialAttention {
    pub group_norm: GroupNorm,
    pub to_q: Linear,
    pub to_k: Linear,
    pub to_v: Linear,
    /// Checkpoint key `to_out.0`.
    pub to_out: Linear,
    pub add_k_proj: Option<Linear>,
    pub add_v_proj: Option<Linear>,
    pub heads: usize,
    pub rescale_output_factor: f64,
    #[module(skip)]
    pub kernels: Kernels,
}

impl SpatialAttention {
    /// `added_kv_dim`: the context width for added-K/V attention, `None` for plain self-attention.
    pub fn init(
        channels: usize,
        heads: usize,
        groups: usize,
        eps: f64,
        added_kv_dim: Option<usize>,
        device: &Device,
    ) -> Self {
        let lin = |i: usize, o: usize| LinearConfig::new(i, o).init(device);
        Self {
            group_norm: GroupNormConfig::new(groups, channels).with_epsilon(eps).init(device),
            to_q: lin(channels, channels),
            to_k: lin(channels, channels),
            to_v: lin(channels, channels),
            to_out: lin(channels, channels),
            add_k_proj: added_kv_dim.map(|d| lin(d, channels)),
            add_v_proj: added_kv_dim.map(|d| lin(d, channels)),
            heads,
            rescale_output_factor: 1.0,
            kernels: Kernels::for_device(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>, context: Option<&Context>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let tokens = self.group_norm.forward(x.clone().reshape([b, c, h * w])).swap_dims(1, 2);
        let q = split_heads(self.to_q.forward(tokens.clone()), self.heads);
        let mut k = split_heads(self.to_k.forward(tokens.clone()), self.heads);
        let mut v = split_heads(self.to_v.forward(tokens), self.heads);
        let mut bias = None;
        if let (Some(ak), Some(av), Some(ctx)) = (&self.add_k_proj, &self.add_v_proj, context) {
            let project = || {
                let states = ctx.states.clone().cast(x.dtype());
                let ek = split_heads(ak.forward(states.clone()), self.heads);
                let ev = split_heads(av.forward(states), self.heads);
                // Context keys come first, so the spatial keys get zero bias after them.
                let bias = ctx.mask_bias.as_ref().map(|m| {
                    let zeros = Tensor::zeros([b, h * w], &m.device());
                    let full = Tensor::cat(vec![m.clone(), zeros], 1);
                    let n = full.dims()[1];
                    full.reshape([b, 1, 1, n]).cast(x.dtype())
                });
                (ek, ev, bias)
            };
            let (ek, ev, full_bias) = match &ctx.kv_cache {
                Some(cache) => {
                    let key = self as *const Self as usize;
                    let hit = cache.borrow().get(&key).cloned();
                    hit.unwrap_or_else(|| {
                        let fresh = project();
                        cache.borrow_mut().insert(key, fresh.clone());
                        fresh
                    })
                }
                None => project(),
            };
            k = Tensor::cat(vec![ek, k], 2);
            v = Tensor::cat(vec![ev, v], 2);
            bias = full_bias;
        }
        let out = self.to_out.forward(merge_heads(attention(self.kernels, q, k, v, bias)));
        let out = out.swap_dims(1, 2).reshape([b, c, h, w]) + x;
        if self.rescale_output_factor == 1.0 { out } else { out.div_scalar(self.rescale_output_factor) }
    }
}
