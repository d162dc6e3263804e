//! transformers `CLIPTextModelWithProjection` (`text_encoder/`).

use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::clip_encoder::{ClipEncoder, EncoderShape};
use super::config::ClipTextConfig;
use super::nn::tensor_from;
use super::ModelError;

#[derive(Module, Debug)]
pub struct ClipTextEmbeddings {
    pub token_embedding: Embedding,
    pub position_embedding: Embedding,
}

#[derive(Module, Debug)]
pub struct ClipTextTransformer {
    pub embeddings: ClipTextEmbeddings,
    pub encoder: ClipEncoder,
    pub final_layer_norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct ClipTextModelWithProjection {
    pub text_model: ClipTextTransformer,
    pub text_projection: Linear,
    #[module(skip)]
    pub config: ClipTextConfig,
}

/// What the unCLIP pipelines read from the text encoder.
pub struct TextEncoding {
    /// Projected pooled embedding `[batch, projection_dim]` (not L2-normalised).
    pub text_embeds: Tensor<2>,
    /// Final-LayerNorm hidden states `[batch, seq, hidden]`.
    pub last_hidden_state: Tensor<3>,
}

impl ClipTextModelWithProjection {
    pub fn init(config: &ClipTextConfig, device: &Device) -> Result<Self, ModelError> {
        let c = config;
        let sizes = [c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads];
        let shape = EncoderShape::of("text_encoder", sizes, c.layer_norm_eps, &c.hidden_act)?;
        Ok(Self {
            text_model: ClipTextTransformer {
                embeddings: ClipTextEmbeddings {
                    token_embedding: EmbeddingConfig::new(c.vocab_size, c.hidden_size).init(device),
                    position_embedding: EmbeddingConfig::new(c.max_position_embeddings, c.hidden_size).init(device),
                },
                encoder: ClipEncoder::init(shape, device),
                final_layer_norm: LayerNormConfig::new(c.hidden_size).with_epsilon(c.layer_norm_eps).init(device),
            },
            text_projection: LinearConfig::new(c.hidden_size, c.projection_dim).with_bias(false).init(device),
            config: config.clone(),
        })
    }

    /// Where each row is pooled. transformers keeps a legacy rule for configs whose
    /// `eos_token_id` is 2 (Karlo's): the position of the largest id, which is EOS in CLIP's
    /// vocabulary; otherwise the first occurrence of `eos_token_id`.
    pub fn pooling_positions(&self, ids: &[Vec<u32>]) -> Vec<usize> {
        ids.iter()
            .map(|row| {
                if self.config.eos_token_id == 2 {
                    // First maximum, as torch.argmax returns it.
                    let mut best = 0;
                    for (i, &v) in row.iter().enumerate() {
                        if v > row[best] {
                            best = i;
                        }
                    }
                    best
                } else {
                    let eos = self.config.eos_token_id;
                    row.iter().position(|&v| v as i64 == eos).unwrap_or(row.len().saturating_sub(1))
                }
            })
            .collect()
    }

    /// Encodes token ids (all rows the same length) with the causal mask and no padding mask,
    /// as diffusers' unCLIP pipelines call it.
    pub fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<TextEncoding, ModelError> {
        let batch = ids.len();
        let seq = ids.first().map(|r| r.len()).unwrap_or(0);
        if batch == 0 || seq == 0 || ids.iter().any(|r| r.len() != seq) {
            return Err(ModelError::Input("token rows must be non-empty and of equal length".into()));
        }
        if seq > self.config.max_position_embeddings {
            return Err(ModelError::Input(format!(
                "{seq} tokens exceed the text encoder's {} positions",
                self.config.max_position_embeddings
            )));
        }
        if let Some(bad) = ids.iter().flatten().find(|&&v| v as usize >= self.config.vocab_size) {
            return Err(ModelError::Input(format!("token id {bad} is outside the vocabulary")));
        }
        let flat: Vec<i64> = ids.iter().flatten().map(|&v| v as i64).collect();
        let ids_t = Tensor::<2, Int>::from_data(TensorData::new(flat, [batch, seq]), device);
        let positions: Vec<i64> = (0..seq as i64).collect();
        let pos_t = Tensor::<2, Int>::from_data(TensorData::new(positions, [1, seq]), device);
        let emb = &self.text_model.embeddings;
        let x = emb.token_embedding.forward(ids_t) + emb.position_embedding.forward(pos_t);

        let causal = causal_bias(seq, device).cast(x.dtype());
        let h = self.text_model.encoder.forward(x, Some(causal));
        let last_hidden_state = self.text_model.final_layer_norm.forward(h);

        let rows: Vec<Tensor<2>> = self
            .pooling_positions(ids)
            .into_iter()
            .enumerate()
            .map(|(b, p)| last_hidden_state.clone().narrow(0, b, 1).narrow(1, p, 1).reshape([1, self.config.hidden_size]))
            .collect();
        let pooled = Tensor::cat(rows, 0);
        // Outputs in f32 whatever the weights' dtype.
        let f32 = burn::tensor::DType::F32;
        Ok(TextEncoding { text_embeds: self.text_projection.forward(pooled).cast(f32), last_hidden_state: last_hidden_state.cast(f32) })
    }
}

/// `[1, 1, seq, seq]` additive mask hiding later tokens.
fn causal_bias(seq: usize, device: &Device) -> Tensor<4> {
    let mut v = vec![0f32; seq * seq];
    for i in 0..seq {
        for j in (i + 1)..seq {
            v[i * seq + j] = f32::NEG_INFINITY;
        }
    }
    tensor_from(v, [1, 1, seq, seq], device)
}
