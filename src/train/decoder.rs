//! Stage 3: the decoder — text_proj + the conditional UNet, predicting ε and the learned
//! variance interpolation with the hybrid loss of Improved DDPM (simple MSE on ε plus the
//! per-timestep variational bound with the mean gradient stopped). The CLIP embedding is
//! replaced by the learned null embedding 10 % of the time and the caption dropped 50 % of
//! the time, as the paper trains for classifier-free guidance.
//!
//! The ε-MSE rows are weighted (`noising::eps_weights`): at high noise the background colour and
//! the layout must come from z_i and the caption, and plain ε-MSE hardly asks for that.
//!
//! Half the kept CLIP embeddings are turned by a random angle (`jitter_embeddings`).

use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::prelude::*;

use super::data::planar;
use super::encode::FrozenClip;
use super::noising::{gaussian, noise_levels, weighted_eps_loss};
use super::run::StageRun;
use super::world::{SplitMix64, World, render};
use crate::diffusion::schedule::{alphas_cumprod, squaredcos_cap_v2_betas};
use crate::model::nn::tensor_from;
use crate::model::text_proj::UnCLIPTextProjModel;
use crate::model::unet::UNet;
use crate::model::unet::attention::Context;
use crate::model::unet::decoder::mask_bias;
use crate::pipeline::latent::norm;

#[derive(Module, Debug)]
pub struct DecoderPair {
    pub text_proj: UnCLIPTextProjModel,
    pub decoder: UNet,
}

/// Share of rows whose embedding is jittered, and the largest tangent of the turn (≈ 31°).
const JITTER_CHANCE: f64 = 0.5;
const JITTER_MAX_TAN: f64 = 0.6;

/// Turns some rows' embeddings by a random angle off their direction, keeping their length.
///
/// Interpolations and text diffs hand the decoder embeddings between or beside the ones real
/// pictures have; a decoder that only ever saw exact image embeddings drew shapes that are
/// neither end (an orange cross between an orange circle and a red star). Isotropic noise in
/// the embedding's dimensions points mostly off the pictures' manifold, so the decoder learns
/// to read the nearest picture's attributes, not to ignore moves along them.
pub fn jitter_embeddings(z: &mut [f32], dim: usize, rng: &mut SplitMix64) {
    for row in z.chunks_mut(dim.max(1)) {
        if !rng.chance(JITTER_CHANCE) {
            continue;
        }
        let len = norm(row);
        if len == 0.0 {
            continue;
        }
        // A unit direction plus noise of norm ≈ tan: turned by about atan(tan).
        let tan = rng.uniform(0.0, JITTER_MAX_TAN);
        let per = tan / (row.len() as f64).sqrt();
        let turned: Vec<f32> = row.iter().map(|v| (*v as f64 / len + per * rng.normal()) as f32).collect();
        let scale = len / norm(&turned).max(1e-12);
        for (v, t) in row.iter_mut().zip(turned) {
            *v = (t as f64 * scale) as f32;
        }
    }
}

/// Per-row [b, 1, 1, 1] tensor from host scalars.
fn per_row(v: &[f32], device: &Device) -> Tensor<4> {
    tensor_from(v.to_vec(), [v.len(), 1, 1, 1], device)
}

/// The variational-bound term (bits per dimension) for rows with t > 0.
#[allow(clippy::too_many_arguments)]
pub fn vlb_term(
    eps_pred: Tensor<4>,
    var_channels: Tensor<4>,
    x0: Tensor<4>,
    xt: Tensor<4>,
    ts: &[usize],
    device: &Device,
) -> Tensor<1> {
    let betas = squaredcos_cap_v2_betas(1000);
    let ac = alphas_cumprod(&betas);
    let b = ts.len();
    let (mut c0, mut ct, mut log_beta, mut log_post, mut inv_sa, mut sb, mut weight) = (
        vec![0f32; b],
        vec![0f32; b],
        vec![0f32; b],
        vec![0f32; b],
        vec![0f32; b],
        vec![0f32; b],
        vec![0f32; b],
    );
    for (i, &t) in ts.iter().enumerate() {
        let t = t.max(1);
        let (ab, ab_prev, beta) = (ac[t], ac[t - 1], betas[t]);
        c0[i] = ab_prev.sqrt() * beta / (1.0 - ab);
        ct[i] = (1.0 - beta).sqrt() * (1.0 - ab_prev) / (1.0 - ab);
        log_beta[i] = beta.ln();
        log_post[i] = ((1.0 - ab_prev) / (1.0 - ab) * beta).max(1e-20).ln();
        inv_sa[i] = 1.0 / ab.sqrt();
        sb[i] = (1.0 - ab).sqrt();
        // t = 0 would need the discretised decoder likelihood; it is left out (weight 0).
        weight[i] = if ts[i] == 0 { 0.0 } else { 1.0 };
    }
    let r = |v: &[f32]| per_row(v, device);
    let true_mean = x0 * r(&c0) + xt.clone() * r(&ct);
    // The mean's gradient is stopped: the bound only trains the variance.
    let x0_hat = (xt.clone() - eps_pred.detach() * r(&sb)) * r(&inv_sa);
    let model_mean = x0_hat * r(&c0) + xt * r(&ct);
    let frac = var_channels.add_scalar(1.0).div_scalar(2.0);
    let model_log_var = frac.clone() * r(&log_beta) + frac.neg().add_scalar(1.0) * r(&log_post);
    let true_log_var = r(&log_post);
    let kl = (model_log_var.clone() - true_log_var.clone()).add_scalar(-1.0)
        + (true_log_var - model_log_var.clone()).exp()
        + (true_mean - model_mean).square() * model_log_var.neg().exp();
    let kl = kl.mul_scalar(0.5 / std::f64::consts::LN_2);
    let per_sample = kl.mean_dim(3).mean_dim(2).mean_dim(1).reshape([b]);
    (per_sample * tensor_from(weight, [b], device))
        .mean()
        .reshape([1])
}

pub fn train(
    mut pair: DecoderPair,
    clip: &FrozenClip,
    world: &World,
    run: &mut StageRun,
    start_step: usize,
    size: usize,
    device: &Device,
) -> Result<DecoderPair, String> {
    let budget = run.budget;
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut ema = run.ema(&pair, start_step)?;
    let empty = clip.features(&[String::new()], None)?;
    let mut rng = SplitMix64::new(0x5eed + start_step as u64);
    for step in start_step..budget.steps {
        let b = budget.batch;
        let samples: Vec<_> = (0..b)
            .map(|i| {
                world.sample(
                    2_000_000 + (step * b + i) as u64,
                    super::world::Split::Train,
                )
            })
            .collect();
        let mut pixels = Vec::with_capacity(b * 3 * size * size);
        for s in &samples {
            pixels.extend(planar(&render(&s.scene, size)?, size));
        }
        let captions: Vec<String> = samples.iter().map(|s| s.caption.clone()).collect();
        let mut f = clip.features(&captions, Some((pixels.clone(), size)))?;
        let (e, w, n) = (f.embed_dim, f.width, f.seq);
        f.drop_captions(&empty, &mut rng, 0.5);
        let keep: Vec<f32> = (0..b)
            .map(|_| if rng.chance(0.1) { 0.0 } else { 1.0 })
            .collect();
        jitter_embeddings(&mut f.image_embeds, e, &mut rng);
        let keep_t = tensor_from(keep.clone(), [b, 1], device);
        let null = pair
            .text_proj
            .learned_classifier_free_guidance_embeddings
            .val()
            .reshape([1, e]);
        let z = tensor_from(f.image_embeds, [b, e], device) * keep_t.clone()
            + null * keep_t.neg().add_scalar(1.0);
        let cond = pair.text_proj.forward(
            z,
            tensor_from(f.text_embeds, [b, e], device),
            tensor_from(f.text_hidden, [b, n, w], device),
            false,
        );
        let mask = pair.text_proj.context_mask(&f.masks);
        let ctx = Context::new(cond.encoder_hidden_states, Some(mask_bias(&mask, device)));

        let x0 = tensor_from(pixels, [b, 3, size, size], device);
        let (ts, sa, sb) = noise_levels(&mut rng, b);
        let eps = tensor_from(
            gaussian(&mut rng, b * 3 * size * size),
            [b, 3, size, size],
            device,
        );
        let xt = x0.clone() * per_row(&sa, device) + eps.clone() * per_row(&sb, device);
        let tsf: Vec<f32> = ts.iter().map(|&t| t as f32).collect();
        let out = pair.decoder.forward_timesteps(
            xt.clone(),
            &tsf,
            Some(cond.additive_clip_time_embeddings),
            Some(&ctx),
        );
        let eps_pred = out.clone().narrow(1, 0, 3);
        let var = out.narrow(1, 3, 3);
        let mse = weighted_eps_loss(eps_pred.clone(), eps, &sa, &sb);
        let vb = vlb_term(eps_pred, var, x0, xt, &ts, device);
        let loss = mse + vb;
        pair = run.optimise(step, loss, pair, &mut optim, &mut ema)?;
    }
    // The average is what ships; the raw weights live on in the checkpoint.
    Ok(ema.shadow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_embeddings_keep_their_length_and_turn_at_most_the_set_angle() {
        let dim = 64;
        let mut rng = SplitMix64::new(7);
        let z: Vec<f32> = (0..dim * 400).map(|_| rng.normal() as f32 * 3.0).collect();
        let mut j = z.clone();
        jitter_embeddings(&mut j, dim, &mut rng);
        let (mut turned, mut widest) = (0, 0f64);
        for (a, b) in z.chunks(dim).zip(j.chunks(dim)) {
            let (la, lb) = (norm(a), norm(b));
            assert!((la - lb).abs() < 1e-4 * la, "length changed: {la} → {lb}");
            let angle = crate::pipeline::latent::cosine(a, b).clamp(-1.0, 1.0).acos();
            if angle > 1e-3 {
                turned += 1;
            }
            widest = widest.max(angle);
        }
        assert!((120..280).contains(&turned), "{turned} of 400 rows turned");
        // atan(0.6) ≈ 0.54 rad; the noise's own length varies a little around its mean.
        assert!(widest > 0.3 && widest < 0.75, "widest turn {widest} rad");
    }
}
