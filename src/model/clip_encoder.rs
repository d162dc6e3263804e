//! transformers `CLIPEncoder`: the pre-LayerNorm transformer shared by the CLIP text and
//! vision towers.

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::ModelError;
use super::nn::{Act, Kernels, attention, merge_heads, split_heads};

/// transformers `CLIPAttention`.
#[derive(Module, Debug)]
pub struct ClipAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    pub num_heads: usize,
    #[module(skip)]
    pub kernels: Kernels,
}

impl ClipAttention {
    pub fn init(dim: usize, heads: usize, device: &Device) -> Self {
        Self {
            q_proj: LinearConfig::new(dim, dim).init(device),
            k_proj: LinearConfig::new(dim, dim).init(device),
            v_proj: LinearConfig::new(dim, dim).init(device),
            out_proj: LinearConfig::new(dim, dim).init(device),
            num_heads: heads,
            kernels: Kernels::for_device(device),
        }
    }

    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let q = split_heads(self.q_proj.forward(x.clone()), self.num_heads);
        let k = split_heads(self.k_proj.forward(x.clone()), self.num_heads);
        let v = split_heads(self.v_proj.forward(x), self.num_heads);
        self.out_proj.forward(merge_heads(attention(self.kernels, q, k, v, bias)))
    }
}

/// transformers `CLIPMLP`.
#[derive(Module, Debug)]
pub struct ClipMlp {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub act: Act,
}

/// transformers `CLIPEncoderLayer`.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    pub self_attn: ClipAttention,
    pub layer_norm1: LayerNorm,
    pub mlp: ClipMlp,
    pub layer_norm2: LayerNorm,
}

impl ClipEncoderLayer {
    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let h = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), bias);
        let m = self.mlp.fc2.forward(self.mlp.act.forward(self.mlp.fc1.forward(self.layer_norm2.forward(h.clone()))));
        h + m
    }
}

/// Shape of a CLIP transformer tower.
#[derive(Debug, Clone, Copy)]
pub struct EncoderShape {
    pub width: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub eps: f64,
    pub act: Act,
}

impl EncoderShape {
    /// The tower a transformers CLIP config describes: `[hidden_size, intermediate_size,
    /// num_hidden_layers, num_attention_heads]`, `layer_norm_eps` and `hidden_act`.
    /// `component` names the tower in the error for an activation we do not have.
    pub fn of(component: &str, sizes: [usize; 4], eps: f64, hidden_act: &str) -> Result<Self, ModelError> {
        let act = Act::parse(hidden_act).ok_or_else(|| ModelError::unsupported(component, format!("hidden_act {hidden_act}")))?;
        let [width, intermediate, layers, heads] = sizes;
        Ok(Self { width, intermediate, layers, heads, eps, act })
    }
}

/// transformers `CLIPEncoder`.
#[derive(Module, Debug)]
pub struct ClipEncoder {
    pub layers: Vec<ClipEncoderLayer>,
}

impl ClipEncoder {
    pub fn init(s: EncoderShape, device: &Device) -> Self {
        let layers = (0..s.layers)
            .map(|_| ClipEncoderLayer {
                self_attn: ClipAttention::init(s.width, s.heads, device),
                layer_norm1: LayerNormConfig::new(s.width).with_epsilon(s.eps).init(device),
                mlp: ClipMlp {
                    fc1: LinearConfig::new(s.width, s.intermediate).init(device),
                    fc2: LinearConfig::new(s.intermediate, s.width).init(device),
                    act: s.act,
                },
                layer_norm2: LayerNormConfig::new(s.width).with_epsilon(s.eps).init(device),
            })
            .collect();
        Self { layers }
    }

    pub fn forward(&self, mut x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        for layer in &self.layers {
            x = layer.forward(x, bias.clone());
        }
        x
    }
}
