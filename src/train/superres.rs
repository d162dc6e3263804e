//! Stage 4: super-resolution 32 → 64 — a UNet2DModel that sees the noisy high-resolution
//! picture next to the antialiased bicubic upscale of the low-resolution one and predicts ε.
//! Unconditional on text, like the paper's upsamplers, and like them trained on random crops
//! a quarter of the target's area: the network is convolutional only, so a crop teaches it
//! the same thing at a quarter of the cost, and it samples whole pictures afterwards. The ε
//! loss is weighted like the decoder's (`noising::eps_weights`), so that it copies the
//! low-resolution colours at high noise.

use burn::optim::AdamWConfig;
use burn::prelude::*;

use super::data::planar;
use super::noising::{gaussian, noise_levels, weighted_eps_loss};
use super::run::StageRun;
use super::world::{Split, SplitMix64, World, render};
use crate::imaging::resample::resize_bicubic_antialias;
use crate::model::nn::tensor_from;
use crate::model::unet::UNet;

/// (high-res target, upscaled low-res condition) for one scene, planar [-1, 1].
pub fn pair_for(
    scene: &super::world::Scene,
    low: usize,
    high: usize,
) -> Result<(Vec<f32>, Vec<f32>), String> {
    let hi = planar(&render(scene, high)?, high);
    let lo = planar(&render(scene, low)?, low);
    let up = resize_bicubic_antialias(&lo, 3, low, low, high, high).map_err(|e| e.to_string())?;
    Ok((hi, up))
}

/// From this timestep on, noisy inputs carry a drifted colour ([`drift`]).
const DRIFT_FROM: usize = 700;
/// Standard deviation of that drift per channel, in [-1, 1] units.
const DRIFT_STD: f64 = 0.3;

/// Teaches the upsampler to take colour from the low-resolution picture, not from the noisy
/// sample. At sampling time the noisy sample's colour is not what training shows it: the
/// first step (t = 999, SNR 2e-9) reads x₀ as a clipped ±1 field and hands it on with weight
/// ≈ 0.26, so the sample reaching t = 832 carries a colour cast; a network that trusts the
/// sample keeps that cast (measured: finished pictures off by 0.15–0.4 per channel, a different
/// way for each checkpoint). Here rows with t ≥ [`DRIFT_FROM`] get a random per-channel offset
/// on their signal, and their ε target absorbs it, so the x₀ to predict is still the clean one.
fn drift(
    xt: &mut [f32],
    eps: &mut [f32],
    (ts, sa, sb): (&[usize], &[f32], &[f32]),
    plane: usize,
    rng: &mut SplitMix64,
) {
    for (r, &t) in ts.iter().enumerate() {
        if t < DRIFT_FROM {
            continue;
        }
        for c in 0..3 {
            let o = (DRIFT_STD * rng.normal()) as f32;
            let at = (r * 3 + c) * plane;
            for i in at..at + plane {
                xt[i] += sa[r] * o;
                eps[i] += sa[r] * o / sb[r];
            }
        }
    }
}

/// A `crop`×`crop` window of a planar [3, size, size] picture, top-left at (y, x).
fn crop_planar(p: &[f32], size: usize, crop: usize, (y, x): (usize, usize)) -> Vec<f32> {
    let mut out = Vec::with_capacity(3 * crop * crop);
    for c in 0..3 {
        for row in y..y + crop {
            let start = (c * size + row) * size + x;
            out.extend_from_slice(&p[start..start + crop]);
        }
    }
    out
}

pub fn train(
    mut unet: UNet,
    world: &World,
    run: &mut StageRun,
    start_step: usize,
    (low, high): (usize, usize),
    device: &Device,
) -> Result<UNet, String> {
    let budget = run.budget;
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let mut ema = run.ema(&unet, start_step)?;
    let mut rng = SplitMix64::new(0x51 + start_step as u64);
    let crop = high / 2;
    for step in start_step..budget.steps {
        let b = budget.batch;
        let (mut hi, mut up) = (Vec::new(), Vec::new());
        for i in 0..b {
            let s = world.sample(3_000_000 + (step * b + i) as u64, Split::Train);
            let (h, u) = pair_for(&s.scene, low, high)?;
            let at = (rng.below(high - crop + 1), rng.below(high - crop + 1));
            hi.extend(crop_planar(&h, high, crop, at));
            up.extend(crop_planar(&u, high, crop, at));
        }
        let n = 3 * crop * crop;
        let (ts, sa, sb) = noise_levels(&mut rng, b);
        let mut eps = gaussian(&mut rng, b * n);
        let mut xt: Vec<f32> = (0..b * n)
            .map(|i| sa[i / n] * hi[i] + sb[i / n] * eps[i])
            .collect();
        drift(&mut xt, &mut eps, (&ts, &sa, &sb), crop * crop, &mut rng);
        let input = Tensor::cat(
            vec![
                tensor_from(xt, [b, 3, crop, crop], device),
                tensor_from(up, [b, 3, crop, crop], device),
            ],
            1,
        );
        let tsf: Vec<f32> = ts.iter().map(|&t| t as f32).collect();
        let pred = unet.forward_timesteps(input, &tsf, None, None);
        let loss = weighted_eps_loss(pred, tensor_from(eps, [b, 3, crop, crop], device), &sa, &sb);
        unet = run.optimise(step, loss, unet, &mut optim, &mut ema)?;
    }
    // The average is what ships; the raw weights live on in the checkpoint.
    Ok(ema.shadow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_keeps_the_clean_picture_the_target() {
        // x₀ = (x_t − √(1−ᾱ)·ε)/√ᾱ must be unchanged by the drift, for every row.
        let (plane, ts) = (4, vec![100usize, 900]);
        let (sa, sb) = (vec![0.9f32, 0.2], vec![0.43589f32, 0.9798]);
        let hi: Vec<f32> = (0..2 * 3 * plane).map(|i| (i as f32 / 12.0) - 1.0).collect();
        let mut rng = SplitMix64::new(3);
        let mut eps = gaussian(&mut rng, hi.len());
        let n = 3 * plane;
        let mut xt: Vec<f32> = (0..hi.len()).map(|i| sa[i / n] * hi[i] + sb[i / n] * eps[i]).collect();
        let before = xt.clone();
        drift(&mut xt, &mut eps, (&ts, &sa, &sb), plane, &mut rng);
        assert_eq!(&xt[..n], &before[..n], "rows before DRIFT_FROM are left alone");
        assert!(xt[n..].iter().zip(&before[n..]).any(|(a, b)| a != b), "noisy rows drift");
        for i in 0..hi.len() {
            let x0 = (xt[i] - sb[i / n] * eps[i]) / sa[i / n];
            assert!((x0 - hi[i]).abs() < 1e-4, "pixel {i}: {x0} vs {}", hi[i]);
        }
    }

    #[test]
    fn a_crop_takes_the_same_window_from_every_channel() {
        let size = 4;
        let p: Vec<f32> = (0..3 * size * size).map(|i| i as f32).collect();
        let c = crop_planar(&p, size, 2, (1, 2));
        // channel 0 rows 1–2, columns 2–3; channel 2 starts 32 later
        assert_eq!(&c[..4], &[6.0, 7.0, 10.0, 11.0]);
        assert_eq!(&c[8..], &[38.0, 39.0, 42.0, 43.0]);
    }
}
