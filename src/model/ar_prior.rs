//! The paper's autoregressive prior (`ar_prior/`, §2.1 and Appendix C): a causal transformer
//! that predicts a CLIP image embedding as a sequence of quantised principal-component
//! coordinates, conditioned on the caption (its encoder tokens and CLIP text embedding) and
//! on the quantised z_i·z_t. diffusers has no such component: the folder is not listed in
//! `model_index.json`, so diffusers loads the rest of the model unchanged. Its PCA basis and
//! buckets (`ar_codebook`) are stored as tensors in the same weights file.

use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::{DType, Distribution, TensorData};
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::ar_codebook::Codebook;
use super::config::CheckConfig;
use super::nn::{tensor_from, to_vec};
use super::prior::{BasicTransformerBlock, causal_text_bias};

/// `ar_prior/config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArPriorConfig {
    #[serde(rename = "_class_name")]
    pub class_name: String,
    /// CLIP embedding width E.
    pub embedding_dim: usize,
    /// Width of the text encoder's hidden states.
    pub text_hidden_dim: usize,
    pub max_text_tokens: usize,
    /// Principal components kept (K): the length of the predicted sequence.
    pub num_components: usize,
    /// Buckets per component (B): the token vocabulary.
    pub num_buckets: usize,
    /// Buckets of z_i·z_t (D); index D stands for "no caption" (the unconditional branch).
    pub num_dot_buckets: usize,
    pub num_layers: usize,
    pub num_attention_heads: usize,
    pub attention_head_dim: usize,
}

impl CheckConfig for ArPriorConfig {
    fn check(&self) -> Result<(), String> {
        let within = |name: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) { Ok(()) } else { Err(format!("{name} must be {lo}..={hi}, got {v}")) }
        };
        within("embedding_dim", self.embedding_dim, 1, 16_384)?;
        within("text_hidden_dim", self.text_hidden_dim, 1, 16_384)?;
        within("max_text_tokens", self.max_text_tokens, 1, 4096)?;
        within("num_components", self.num_components, 1, self.embedding_dim)?;
        within("num_buckets", self.num_buckets, 2, 65_536)?;
        within("num_dot_buckets", self.num_dot_buckets, 2, 65_536)?;
        within("num_layers", self.num_layers, 1, 128)?;
        within("num_attention_heads", self.num_attention_heads, 1, 256)?;
        within("attention_head_dim", self.attention_head_dim, 1, 1024)?;
        within("width", self.width(), 1, 16_384)
    }
}

impl ArPriorConfig {
    pub fn width(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }

    /// How many values the weights of this config hold (network and codebook), so a config
    /// that disagrees with its weights file is refused before anything is allocated.
    pub fn value_count(&self) -> u64 {
        let (d, w, e) = (self.width() as u64, self.text_hidden_dim as u64, self.embedding_dim as u64);
        let (k, b, dots, t) =
            (self.num_components as u64, self.num_buckets as u64, self.num_dot_buckets as u64, self.max_text_tokens as u64);
        let block = 12 * d * d + 13 * d;
        let network = (w + 1) * d + (e + 1) * d + (dots + 1) * d + b * d + d + t * d + (k + 2) * d
            + self.num_layers as u64 * block
            + 2 * d
            + (d + 1) * b;
        let codebook = e + k * e + k * (b - 1) + k * b + (dots - 1);
        network + codebook
    }
}

#[derive(Module, Debug)]
pub struct ArPrior {
    pub text_proj: Linear,
    pub embedding_proj: Linear,
    pub dot_embedding: Embedding,
    pub token_embedding: Embedding,
    pub bos_embedding: Param<Tensor<3>>,
    /// Positions of the caption's tokens, `[1, max_text_tokens, width]`.
    pub text_positional_embedding: Param<Tensor<3>>,
    /// Positions of [text embedding, dot, BOS, tokens 1‥K−1], `[1, K + 2, width]`: independent
    /// of the caption's length, so a batch can be cut to its longest caption.
    pub positional_embedding: Param<Tensor<3>>,
    pub transformer_blocks: Vec<BasicTransformerBlock>,
    pub norm_out: LayerNorm,
    pub proj_out: Linear,
    pub pca_mean: Param<Tensor<2>>,
    pub pca_components: Param<Tensor<2>>,
    pub bucket_edges: Param<Tensor<2>>,
    pub bucket_centres: Param<Tensor<2>>,
    pub dot_edges: Param<Tensor<2>>,
    #[module(skip)]
    pub config: ArPriorConfig,
}

impl ArPrior {
    pub fn init(config: &ArPriorConfig, device: &Device) -> Result<Self, ModelError> {
        config.check().map_err(|e| ModelError::unsupported("ar_prior", e))?;
        let c = config;
        let d = c.width();
        let (k, b, e) = (c.num_components, c.num_buckets, c.embedding_dim);
        let normal = |shape: [usize; 3]| Param::from_tensor(Tensor::random(shape, Distribution::Normal(0.0, 0.02), device));
        let zeros = |shape: [usize; 2]| Param::from_tensor(Tensor::zeros(shape, device));
        Ok(Self {
            text_proj: LinearConfig::new(c.text_hidden_dim, d).init(device),
            embedding_proj: LinearConfig::new(e, d).init(device),
            dot_embedding: EmbeddingConfig::new(c.num_dot_buckets + 1, d).init(device),
            token_embedding: EmbeddingConfig::new(b, d).init(device),
            bos_embedding: normal([1, 1, d]),
            text_positional_embedding: normal([1, c.max_text_tokens, d]),
            positional_embedding: normal([1, k + 2, d]),
            transformer_blocks: (0..c.num_layers)
                .map(|_| BasicTransformerBlock::init(c.num_attention_heads, c.attention_head_dim, device))
                .collect(),
            norm_out: LayerNormConfig::new(d).init(device),
            proj_out: LinearConfig::new(d, b).init(device),
            pca_mean: zeros([1, e]),
            pca_components: zeros([k, e]),
            bucket_edges: zeros([k, b - 1]),
            bucket_centres: zeros([k, b]),
            dot_edges: zeros([1, c.num_dot_buckets - 1]),
            config: config.clone(),
        })
    }

    /// Stores a fitted codebook in the weights (its sizes must match the config).
    pub fn with_codebook(mut self, book: &Codebook) -> Result<Self, ModelError> {
        let c = &self.config;
        let (k, b, e) = (c.num_components, c.num_buckets, c.embedding_dim);
        if book.dim != e || book.components_kept() != k || book.buckets != b || book.dot_buckets() != c.num_dot_buckets {
            return Err(ModelError::Input("ar_prior: the codebook does not match the config".into()));
        }
        let device = self.proj_out.weight.val().device();
        let p = |v: &[f32], shape: [usize; 2]| Param::from_tensor(tensor_from(v.to_vec(), shape, &device));
        self.pca_mean = p(&book.mean, [1, e]);
        self.pca_components = p(&book.components, [k, e]);
        self.bucket_edges = p(&book.edges, [k, b - 1]);
        self.bucket_centres = p(&book.centres, [k, b]);
        self.dot_edges = p(&book.dot_edges, [1, c.num_dot_buckets - 1]);
        Ok(self)
    }

    /// The codebook stored in the weights, on the host.
    pub fn codebook(&self) -> Codebook {
        let c = &self.config;
        let f32s = |t: &Param<Tensor<2>>| to_vec(t.val().cast(DType::F32));
        Codebook {
            dim: c.embedding_dim,
            mean: f32s(&self.pca_mean),
            components: f32s(&self.pca_components),
            buckets: c.num_buckets,
            edges: f32s(&self.bucket_edges),
            centres: f32s(&self.bucket_centres),
            dot_edges: f32s(&self.dot_edges),
        }
    }

    /// Next-token logits. `text_hidden` `[b, L, w]` (L ≤ max_text_tokens; positions after the
    /// batch's longest caption are dropped here, they cannot change the result),
    /// `text_embeds` `[b, E]`, `text_mask` one row per item, `dot`
    /// one z_i·z_t bucket per item (`num_dot_buckets` = no caption), `tokens` the `t < K`
    /// tokens so far per item. Returns `[b, t + 1, B]`: position i predicts token i.
    pub fn logits(
        &self,
        text_hidden: Tensor<3>,
        text_embeds: Tensor<2>,
        text_mask: &[Vec<bool>],
        dot: &[usize],
        tokens: &[Vec<usize>],
    ) -> Result<Tensor<3>, ModelError> {
        let c = &self.config;
        let [b, l, _] = text_hidden.dims();
        let t = tokens.first().map_or(0, Vec::len);
        let bad = |what: String| Err(ModelError::Input(format!("ar_prior: {what}")));
        if l > c.max_text_tokens {
            return bad(format!("{l} text tokens exceed {}", c.max_text_tokens));
        }
        if t >= c.num_components || tokens.len() != b || tokens.iter().any(|r| r.len() != t) {
            return bad(format!("token rows must all have the same length below {}", c.num_components));
        }
        if dot.len() != b || text_mask.len() != b {
            return bad("one dot bucket and one mask row per item are needed".into());
        }
        if dot.iter().any(|&v| v > c.num_dot_buckets) || tokens.iter().flatten().any(|&v| v >= c.num_buckets) {
            return bad("a token is outside the vocabulary".into());
        }
        let l = text_tokens_needed(text_mask).min(l);
        let text_hidden = text_hidden.narrow(1, 0, l);
        let device = text_hidden.device();
        let d = c.width();
        let dtype = self.proj_out.weight.val().dtype();
        let ints = |v: Vec<i64>, shape: [usize; 2]| Tensor::<2, Int>::from_data(TensorData::new(v, shape), &device);

        let text = self.text_proj.forward(text_hidden.cast(dtype))
            + self.text_positional_embedding.val().narrow(1, 0, l);
        let embed = self.embedding_proj.forward(text_embeds.cast(dtype)).reshape([b, 1, d]);
        let dot = self.dot_embedding.forward(ints(dot.iter().map(|&v| v as i64).collect(), [b, 1]));
        let bos = self.bos_embedding.val().repeat_dim(0, b);
        let mut tail = vec![embed, dot, bos];
        if t > 0 {
            let flat = tokens.iter().flatten().map(|&v| v as i64).collect();
            tail.push(self.token_embedding.forward(ints(flat, [b, t])));
        }
        let tail = Tensor::cat(tail, 1) + self.positional_embedding.val().narrow(1, 0, t + 3);
        let mut h = Tensor::cat(vec![text, tail], 1);
        let n = l + t + 3;
        let mask: Vec<Vec<bool>> = text_mask.iter().map(|r| r.iter().copied().take(l).collect()).collect();
        let bias = causal_text_bias(&mask, n, &device).cast(dtype);
        for block in &self.transformer_blocks {
            h = block.forward(h, Some(bias.clone()));
        }
        let h = self.norm_out.forward(h.narrow(1, l + 2, t + 1));
        Ok(self.proj_out.forward(h).cast(DType::F32))
    }
}

/// The number of leading text tokens a batch needs: up to its longest caption (later
/// positions are padding in every row and cannot change the result).
fn text_tokens_needed(mask: &[Vec<bool>]) -> usize {
    mask.iter().map(|r| r.iter().rposition(|&m| m).map_or(1, |p| p + 1)).max().unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::activation::log_softmax;

    fn tiny() -> ArPriorConfig {
        ArPriorConfig {
            class_name: "ArPrior".into(),
            embedding_dim: 8,
            text_hidden_dim: 8,
            max_text_tokens: 6,
            num_components: 3,
            num_buckets: 16,
            num_dot_buckets: 4,
            num_layers: 2,
            num_attention_heads: 2,
            attention_head_dim: 8,
        }
    }

    /// Teacher-forced cross-entropy of the tiny model on a batch where token 0 is the dot
    /// bucket, token 1 copies token 0 and token 2 is the caption's first hidden feature sign.
    fn loss(model: &ArPrior, device: &Device, seed: usize) -> Tensor<1> {
        let b = 32;
        let mut hidden = vec![0f32; b * 4 * 8];
        let mut tokens = Vec::new();
        let mut dots = Vec::new();
        for r in 0..b {
            let dot = (r * 7 + seed) % 4;
            let sign = (r + seed / 3) % 2;
            hidden[r * 32] = if sign == 1 { 1.0 } else { -1.0 };
            dots.push(dot);
            tokens.push(vec![dot * 3, dot * 3, 10 + sign]);
        }
        let mask = vec![vec![true, true, true, false]; b];
        let inputs: Vec<Vec<usize>> = tokens.iter().map(|t| t[..2].to_vec()).collect();
        let logits = model
            .logits(tensor_from(hidden, [b, 4, 8], device), Tensor::zeros([b, 8], device), &mask, &dots, &inputs)
            .unwrap();
        let flat: Vec<i64> = tokens.iter().flatten().map(|&t| t as i64).collect();
        let idx = Tensor::<3, Int>::from_data(TensorData::new(flat, [b, 3, 1]), device);
        log_softmax(logits, 2).gather(2, idx).mean().neg()
    }

    #[test]
    fn the_autoregressive_prior_learns_tokens_its_conditions_decide() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let mut model = ArPrior::init(&tiny(), &device).unwrap();
        let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
        let first = to_vec(loss(&model, &device, 0))[0];
        for step in 0..150 {
            let l = loss(&model, &device, step);
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(3e-3, model, grads);
        }
        let last = to_vec(loss(&model, &device, 1000))[0];
        // Uniform guessing costs ln 16 ≈ 2.77 nats; every token here is determined.
        assert!(first > 2.0 && last < 0.3, "loss {first} → {last}");
    }

    #[test]
    fn logits_refuse_tokens_outside_the_vocabulary() {
        let device = Device::flex();
        let model = ArPrior::init(&tiny(), &device).unwrap();
        let r = model.logits(Tensor::zeros([1, 2, 8], &device), Tensor::zeros([1, 8], &device), &[vec![true, true]], &[0], &[vec![16]]);
        assert!(r.is_err());
        let r = model.logits(Tensor::zeros([1, 2, 8], &device), Tensor::zeros([1, 8], &device), &[vec![true, true]], &[5], &[vec![]]);
        assert!(r.is_err());
    }
}
