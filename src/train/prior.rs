//! Stage 2: the diffusion prior — predicts the clean (normalised) CLIP image embedding from a
//! noised one and the caption, with MSE; the caption is dropped 10 % of the time so that
//! classifier-free guidance works.

use burn::optim::AdamWConfig;
use burn::prelude::*;

use super::encode::FrozenClip;
use super::noising::{gaussian, noise_levels};
use super::run::StageRun;
use super::world::World;
use crate::model::nn::{tensor_from, to_vec};
use crate::model::prior::PriorTransformer;

/// Per-dimension mean and standard deviation of CLIP image embeddings over `n` samples
/// (Karlo stores the same statistics as `clip_mean` / `clip_std`).
pub fn embedding_stats(
    clip: &FrozenClip,
    world: &World,
    n: usize,
) -> Result<(Vec<f32>, Vec<f32>), String> {
    let mut all: Vec<Vec<f32>> = Vec::new();
    let mut i = 0;
    while i < n {
        let b = 128.min(n - i);
        let f = clip.world_features(world, 10_000_000 + i as u64, b)?;
        all.extend(f.image_embeds.chunks(f.embed_dim).map(|c| c.to_vec()));
        i += b;
    }
    let d = all.first().map(|r| r.len()).unwrap_or(0);
    let mean: Vec<f32> = (0..d)
        .map(|j| all.iter().map(|r| r[j]).sum::<f32>() / all.len() as f32)
        .collect();
    let std: Vec<f32> = (0..d)
        .map(|j| {
            (all.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f32>() / all.len() as f32)
                .sqrt()
                .max(1e-4)
        })
        .collect();
    Ok((mean, std))
}

pub fn train(
    mut prior: PriorTransformer,
    clip: &FrozenClip,
    world: &World,
    run: &mut StageRun,
    start_step: usize,
    device: &Device,
) -> Result<PriorTransformer, String> {
    let budget = run.budget;
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut ema = run.ema(&prior, start_step)?;
    let mean = to_vec(prior.clip_mean.val());
    let std = to_vec(prior.clip_std.val());
    let empty = clip.features(&[String::new()], None)?;
    let mut rng = super::world::SplitMix64::new(0x9e37 + start_step as u64);
    for step in start_step..budget.steps {
        let b = budget.batch;
        let mut f = clip.world_features(world, 1_000_000 + (step * b) as u64, b)?;
        // Drop 10 % of captions to the empty one (the unconditional branch of guidance).
        let (e, w, n) = (f.embed_dim, f.width, f.seq);
        f.drop_captions(&empty, &mut rng, 0.1);
        let x0: Vec<f32> = f
            .image_embeds
            .iter()
            .enumerate()
            .map(|(i, v)| (v - mean[i % e]) / std[i % e])
            .collect();
        let (ts, sa, sb) = noise_levels(&mut rng, b);
        let eps = gaussian(&mut rng, b * e);
        let xt: Vec<f32> = (0..b * e)
            .map(|i| sa[i / e] * x0[i] + sb[i / e] * eps[i])
            .collect();
        let tsf: Vec<f32> = ts.iter().map(|&t| t as f32).collect();
        let pred = prior.forward_timesteps(
            tensor_from(xt, [b, e], device),
            &tsf,
            tensor_from(f.text_embeds, [b, e], device),
            tensor_from(f.text_hidden, [b, n, w], device),
            &f.masks,
        );
        let loss = (pred - tensor_from(x0, [b, e], device)).square().mean();
        prior = run.optimise(step, loss, prior, &mut optim, &mut ema)?;
    }
    // The average is what ships; the raw weights live on in the checkpoint.
    Ok(ema.shadow)
}
