//! Stage 2: the diffusion prior — predicts the clean (normalised) CLIP image embedding from a
//! noised one and the caption, with MSE; the caption is dropped 10 % of the time so that
//! classifier-free guidance works.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;

use super::data::{batch, planar};
use super::encode::FrozenClip;
use super::noising::{gaussian, noise_levels};
use super::run::StageRun;
use super::world::{Split, World, render};
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
    let chunk = 128;
    let mut i = 0;
    while i < n {
        let b = chunk.min(n - i);
        let samples: Vec<_> = (0..b)
            .map(|k| world.sample(10_000_000 + (i + k) as u64, Split::Train))
            .collect();
        let mut pixels = Vec::new();
        for s in &samples {
            pixels.extend(planar(&render(&s.scene, 32)?, 32));
        }
        let captions: Vec<String> = samples.iter().map(|s| s.caption.clone()).collect();
        let f = clip.features(&captions, Some((pixels, 32)))?;
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
        let data = batch(world, 1_000_000 + (step * b) as u64, b, &[], &clip.device)?;
        let mut pixels = Vec::with_capacity(b * 3 * 32 * 32);
        for s in &data.samples {
            pixels.extend(planar(&render(&s.scene, 32)?, 32));
        }
        let mut f = clip.features(&data.captions, Some((pixels, 32)))?;
        // Drop 10 % of captions to the empty one (the unconditional branch of guidance).
        let (e, w, n) = (f.embed_dim, f.width, f.seq);
        for r in 0..b {
            if rng.chance(0.1) {
                f.text_embeds[r * e..(r + 1) * e].copy_from_slice(&empty.text_embeds);
                f.text_hidden[r * n * w..(r + 1) * n * w].copy_from_slice(&empty.text_hidden);
                f.masks[r] = empty.masks[0].clone();
            }
        }
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
        let value = to_vec(loss.clone())[0] as f64;
        if !value.is_finite() {
            return Err(format!("prior: loss became {value} at step {step}"));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &prior);
        prior = optim.step(budget.lr_at(step), prior, grads);
        run.stepped(step, value, &prior, &mut ema)?;
    }
    // The average is what ships; the raw weights live on in the checkpoint.
    Ok(ema.shadow)
}
