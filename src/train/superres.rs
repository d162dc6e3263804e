//! Stage 4: super-resolution 32 → 64 — a UNet2DModel that sees the noisy high-resolution
//! picture next to the antialiased bicubic upscale of the low-resolution one and predicts ε.
//! Unconditional on text, like the paper's upsamplers.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;

use super::data::planar;
use super::prior::{gaussian, noise_levels};
use super::run::StageRun;
use super::world::{Split, SplitMix64, World, render};
use crate::imaging::resample::resize_bicubic_antialias;
use crate::model::nn::{tensor_from, to_vec};
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
    let mut rng = SplitMix64::new(0x51 + start_step as u64);
    for step in start_step..budget.steps {
        let b = budget.batch;
        let (mut hi, mut up) = (Vec::new(), Vec::new());
        for i in 0..b {
            let s = world.sample(3_000_000 + (step * b + i) as u64, Split::Train);
            let (h, u) = pair_for(&s.scene, low, high)?;
            hi.extend(h);
            up.extend(u);
        }
        let n = 3 * high * high;
        let (ts, sa, sb) = noise_levels(&mut rng, b);
        let eps = gaussian(&mut rng, b * n);
        let xt: Vec<f32> = (0..b * n)
            .map(|i| sa[i / n] * hi[i] + sb[i / n] * eps[i])
            .collect();
        let input = Tensor::cat(
            vec![
                tensor_from(xt, [b, 3, high, high], device),
                tensor_from(up, [b, 3, high, high], device),
            ],
            1,
        );
        let tsf: Vec<f32> = ts.iter().map(|&t| t as f32).collect();
        let pred = unet.forward_timesteps(input, &tsf, None, None);
        let loss = (pred - tensor_from(eps, [b, 3, high, high], device))
            .square()
            .mean();
        let value = to_vec(loss.clone())[0] as f64;
        if !value.is_finite() {
            return Err(format!("superres: loss became {value} at step {step}"));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &unet);
        unet = optim.step(budget.lr_at(step), unet, grads);
        run.record(step, value);
        if run.should_checkpoint(step) {
            run.checkpoint(&unet, step + 1)?;
        }
    }
    Ok(unet)
}
