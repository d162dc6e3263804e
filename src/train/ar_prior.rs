//! The autoregressive prior (the paper's second prior): fit the PCA basis and buckets on
//! training embeddings, then train the causal transformer with cross-entropy on the token
//! sequences, the caption dropped 10 % of the time for classifier-free guidance and the
//! quantised z_i·z_t given as a condition.

use burn::optim::AdamWConfig;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde_json::{Value, json};

use super::encode::{Features, FrozenClip};
use super::run::StageRun;
use super::world::{SplitMix64, World};
use crate::model::ar_codebook::Codebook;
use crate::model::ar_prior::ArPrior;
use crate::model::nn::tensor_from;
use crate::pipeline::latent::cosine;

/// The shipped model's choices. The paper keeps 319 of 1024 components with 1024 buckets for
/// 250 M images; for a 64-wide embedding and a few hundred thousand training pictures, the
/// components that hold 99 % of the variance with 64 equal-count buckets each (with 256 the
/// loss sat at uniform guessing for the first 250 steps: each bucket is learned from a
/// quarter of the examples).
pub const EXPLAINED_VARIANCE: f64 = 0.99;
pub const BUCKETS: usize = 64;
pub const DOT_BUCKETS: usize = 16;

/// CLIP features of `n` training pictures (a stream apart from the training batches).
fn fit_features(clip: &FrozenClip, world: &World, n: usize) -> Result<(Vec<f32>, Vec<f32>), String> {
    let (mut embeds, mut dots) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < n {
        let b = 128.min(n - i);
        let f = clip.world_features(world, 20_000_000 + i as u64, b)?;
        dots.extend(pair_cosines(&f));
        embeds.extend(f.image_embeds);
        i += b;
    }
    Ok((embeds, dots))
}

/// z_i·z_t (as a cosine) of each row.
fn pair_cosines(f: &Features) -> Vec<f32> {
    let e = f.embed_dim;
    f.image_embeds.chunks_exact(e).zip(f.text_embeds.chunks_exact(e)).map(|(i, t)| cosine(i, t) as f32).collect()
}

/// Fits the codebook on `n` training embeddings.
pub fn fit(clip: &FrozenClip, world: &World, n: usize) -> Result<Codebook, String> {
    let (embeds, dots) = fit_features(clip, world, n)?;
    let dim = embeds.len() / n.max(1);
    Codebook::fit(&embeds, dim, EXPLAINED_VARIANCE, BUCKETS, &dots, DOT_BUCKETS)
}

/// `ar_prior/config.json` for a fitted codebook: the diffusion prior's width and depth.
pub fn config(book: &Codebook, text_hidden_dim: usize, heads: usize, head_dim: usize, layers: usize) -> Value {
    json!({
        "_class_name": "ArPrior",
        "embedding_dim": book.dim,
        "text_hidden_dim": text_hidden_dim,
        "max_text_tokens": 77,
        "num_components": book.components_kept(),
        "num_buckets": book.buckets,
        "num_dot_buckets": book.dot_buckets(),
        "num_layers": layers,
        "num_attention_heads": heads,
        "attention_head_dim": head_dim,
    })
}

/// Width (in buckets) of the Gaussian that spreads each target over its neighbours. Buckets
/// are ordered values, so a near miss is nearly right; plain one-hot targets leave every
/// bucket to be learned on its own, and the loss sat at uniform guessing for hundreds of steps.
const TARGET_SPREAD: f64 = 1.0;

/// Mean cross-entropy of `logits` `[b, K, B]` against targets (K per row) spread over
/// neighbouring buckets by a Gaussian of `TARGET_SPREAD` buckets.
fn cross_entropy(logits: Tensor<3>, targets: &[Vec<usize>]) -> Tensor<1> {
    let [b, k, vocab] = logits.dims();
    let device = logits.device();
    let mut soft = vec![0f32; b * k * vocab];
    for (row, t) in soft.chunks_exact_mut(vocab).zip(targets.iter().flatten()) {
        let mut total = 0.0;
        for (j, v) in row.iter_mut().enumerate() {
            let d = (j as f64 - *t as f64) / TARGET_SPREAD;
            let w = if d.abs() < 4.0 { (-0.5 * d * d).exp() } else { 0.0 };
            *v = w as f32;
            total += w;
        }
        row.iter_mut().for_each(|v| *v /= total as f32);
    }
    let soft = tensor_from(soft, [b, k, vocab], &device);
    (log_softmax(logits, 2) * soft).sum_dim(2).mean().neg()
}

pub fn train(
    mut model: ArPrior,
    clip: &FrozenClip,
    world: &World,
    run: &mut StageRun,
    start_step: usize,
    device: &Device,
) -> Result<ArPrior, String> {
    let budget = run.budget;
    let book = model.codebook();
    let null_dot = model.config.num_dot_buckets;
    let k = model.config.num_components;
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut ema = run.ema(&model, start_step)?;
    let empty = clip.features(&[String::new()], None)?;
    let mut rng = SplitMix64::new(0xa7 + start_step as u64);
    for step in start_step..budget.steps {
        let b = budget.batch;
        let mut f = clip.world_features(world, 3_000_000 + (step * b) as u64, b)?;
        let cosines = pair_cosines(&f);
        let dropped = f.drop_captions(&empty, &mut rng, 0.1);
        let dot: Vec<usize> = cosines
            .iter()
            .zip(&dropped)
            .map(|(&c, &d)| if d { null_dot } else { book.dot_bucket(c) })
            .collect();
        let e = f.embed_dim;
        let targets: Vec<Vec<usize>> = f.image_embeds.chunks_exact(e).map(|z| book.encode(z)).collect();
        let inputs: Vec<Vec<usize>> = targets.iter().map(|t| t[..k - 1].to_vec()).collect();
        let logits = model
            .logits(
                tensor_from(f.text_hidden, [b, f.seq, f.width], device),
                tensor_from(f.text_embeds, [b, e], device),
                &f.masks,
                &dot,
                &inputs,
            )
            .map_err(|e| e.to_string())?;
        let loss = cross_entropy(logits, &targets);
        model = run.optimise(step, loss, model, &mut optim, &mut ema)?;
    }
    Ok(ema.shadow)
}
