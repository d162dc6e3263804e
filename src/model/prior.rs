//! diffusers `PriorTransformer` (`prior/`): the diffusion prior that predicts a CLIP image
//! embedding from the caption.

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::attention::Attention;
use super::config::PriorConfig;
use super::embeddings::{TimestepEmbedding, timestep_tensor};
use super::nn::{Act, Kernels, gelu, tensor_from};
use super::ModelError;

/// diffusers `FeedForward` with exact GELU; checkpoint keys `ff.net.0.proj` and `ff.net.2`.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub net_0_proj: Linear,
    pub net_2: Linear,
}

/// diffusers `BasicTransformerBlock` as the prior configures it: pre-LayerNorm
/// self-attention and feed-forward, no cross-attention (hence `norm3` and no `norm2`).
#[derive(Module, Debug)]
pub struct BasicTransformerBlock {
    pub norm1: LayerNorm,
    pub attn1: Attention,
    pub norm3: LayerNorm,
    pub ff: FeedForward,
    #[module(skip)]
    pub kernels: Kernels,
}

impl BasicTransformerBlock {
    /// A block of width `heads · head_dim` with a 4× feed-forward.
    pub fn init(heads: usize, head_dim: usize, device: &Device) -> Self {
        let inner = heads * head_dim;
        let ln = || LayerNormConfig::new(inner).init(device);
        Self {
            norm1: ln(),
            attn1: Attention::init(inner, heads, head_dim, true, device),
            norm3: ln(),
            ff: FeedForward {
                net_0_proj: LinearConfig::new(inner, 4 * inner).init(device),
                net_2: LinearConfig::new(4 * inner, inner).init(device),
            },
            kernels: Kernels::for_device(device),
        }
    }

    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let x = x.clone() + self.attn1.forward(self.norm1.forward(x), bias);
        let h = self.ff.net_2.forward(gelu(self.kernels, self.ff.net_0_proj.forward(self.norm3.forward(x.clone()))));
        x + h
    }
}

#[derive(Module, Debug)]
pub struct PriorTransformer {
    pub time_embedding: TimestepEmbedding,
    pub proj_in: Linear,
    pub embedding_proj: Linear,
    pub encoder_hidden_states_proj: Linear,
    pub positional_embedding: Param<Tensor<3>>,
    pub prd_embedding: Param<Tensor<3>>,
    pub transformer_blocks: Vec<BasicTransformerBlock>,
    pub norm_out: LayerNorm,
    pub proj_to_clip_embeddings: Linear,
    pub clip_mean: Param<Tensor<2>>,
    pub clip_std: Param<Tensor<2>>,
    #[module(skip)]
    pub config: PriorConfig,
}

impl PriorTransformer {
    pub fn init(config: &PriorConfig, device: &Device) -> Result<Self, ModelError> {
        let c = config;
        // Karlo's variant; the Kandinsky-style options change the token layout and are not built.
        let unsupported = |what: &str| Err(ModelError::unsupported("prior", what.to_string()));
        if c.norm_in_type.is_some() {
            return unsupported("norm_in_type");
        }
        if c.embedding_proj_norm_type.is_some() {
            return unsupported("embedding_proj_norm_type");
        }
        if c.encoder_hid_proj_type.as_deref() != Some("linear") {
            return unsupported("encoder_hid_proj_type other than \"linear\"");
        }
        if c.added_emb_type.as_deref() != Some("prd") {
            return unsupported("added_emb_type other than \"prd\"");
        }
        let act = Act::parse(&c.time_embed_act_fn)
            .ok_or_else(|| ModelError::unsupported("prior", format!("time_embed_act_fn {}", c.time_embed_act_fn)))?;
        if c.time_embed_dim() != c.inner_dim() {
            return unsupported("time_embed_dim different from the transformer width");
        }
        let inner = c.inner_dim();
        let tokens = c.num_embeddings + c.additional_embeddings;
        let ln = || LayerNormConfig::new(inner).init(device);
        Ok(Self {
            time_embedding: TimestepEmbedding::init(inner, c.time_embed_dim(), act, device),
            proj_in: LinearConfig::new(c.embedding_dim, inner).init(device),
            embedding_proj: LinearConfig::new(c.embedding_proj_dim(), inner).init(device),
            encoder_hidden_states_proj: LinearConfig::new(c.embedding_dim, inner).init(device),
            positional_embedding: Param::from_tensor(Tensor::zeros([1, tokens, inner], device)),
            prd_embedding: Param::from_tensor(Tensor::zeros([1, 1, inner], device)),
            transformer_blocks: (0..c.num_layers)
                .map(|_| BasicTransformerBlock::init(c.num_attention_heads, c.attention_head_dim, device))
                .collect(),
            norm_out: ln(),
            proj_to_clip_embeddings: LinearConfig::new(inner, c.clip_embed_dim()).init(device),
            clip_mean: Param::from_tensor(Tensor::zeros([1, c.clip_embed_dim()], device)),
            clip_std: Param::from_tensor(Tensor::ones([1, c.clip_embed_dim()], device)),
            config: config.clone(),
        })
    }

    /// One denoising call. `latents` `[b, E]` (normalised CLIP space), `text_embeds` `[b, E]`,
    /// `text_hidden` `[b, 77, E]`, `text_mask` one bool row per batch item (true = real token).
    /// Returns the predicted clean embedding `[b, E]`, still normalised.
    pub fn forward(
        &self,
        latents: Tensor<2>,
        timestep: f32,
        text_embeds: Tensor<2>,
        text_hidden: Tensor<3>,
        text_mask: &[Vec<bool>],
    ) -> Tensor<2> {
        self.forward_timesteps(latents, &[timestep], text_embeds, text_hidden, text_mask)
    }

    /// As `forward`, with one timestep per batch row (training) or one for all.
    pub fn forward_timesteps(
        &self,
        latents: Tensor<2>,
        timesteps: &[f32],
        text_embeds: Tensor<2>,
        text_hidden: Tensor<3>,
        text_mask: &[Vec<bool>],
    ) -> Tensor<2> {
        let [b, _] = latents.dims();
        let device = latents.device();
        let inner = self.config.inner_dim();
        // Inputs in the weights' dtype, the output back in f32 (see `UNet::forward_timesteps`).
        let dtype = self.proj_in.weight.val().dtype();
        let (latents, text_embeds, text_hidden) = (latents.cast(dtype), text_embeds.cast(dtype), text_hidden.cast(dtype));

        let t = timestep_tensor(timesteps, b, inner, true, 0.0, &device).cast(dtype);
        let time = self.time_embedding.forward(t).reshape([b, 1, inner]);
        let proj = self.embedding_proj.forward(text_embeds).reshape([b, 1, inner]);
        let text = self.encoder_hidden_states_proj.forward(text_hidden);
        let x = self.proj_in.forward(latents).reshape([b, 1, inner]);
        let prd = self.prd_embedding.val().repeat_dim(0, b);
        // [text tokens, text embedding, time, noisy embedding, prd]: the paper's order.
        let seq = Tensor::cat(vec![text, proj, time, x, prd], 1);
        let [_, n, _] = seq.dims();
        let mut h = seq + self.positional_embedding.val().narrow(1, 0, n);

        let bias = causal_text_bias(text_mask, n, &device).cast(dtype);
        for block in &self.transformer_blocks {
            h = block.forward(h, Some(bias.clone()));
        }
        let h = self.norm_out.forward(h);
        let last = h.narrow(1, n - 1, 1).reshape([b, inner]);
        self.proj_to_clip_embeddings.forward(last).cast(burn::tensor::DType::F32)
    }

    /// Normalised → raw CLIP space: x·clip_std + clip_mean.
    pub fn post_process_latents(&self, x: Tensor<2>) -> Tensor<2> {
        let dtype = self.clip_std.val().dtype();
        (x.cast(dtype) * self.clip_std.val() + self.clip_mean.val()).cast(burn::tensor::DType::F32)
    }
}

/// The reference's additive mask over `[text tokens, …]`: −10000 for padded text tokens and
/// for future tokens, `[b, 1, n, n]`. Rows of `text_mask` shorter than `n` leave the later
/// tokens unpadded.
pub fn causal_text_bias(text_mask: &[Vec<bool>], n: usize, device: &Device) -> Tensor<4> {
    let b = text_mask.len();
    let mut v = vec![0f32; b * n * n];
    for (bi, row) in text_mask.iter().enumerate() {
        for i in 0..n {
            for j in 0..n {
                let padded = j < row.len() && !row[j];
                let mut value = if padded { -10000.0 } else { 0.0 };
                if j > i {
                    value += -10000.0;
                }
                v[(bi * n + i) * n + j] = value;
            }
        }
    }
    tensor_from(v, [b, 1, n, n], device)
}
