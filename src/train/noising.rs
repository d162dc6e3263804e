//! Noising for the diffusion trainers: timesteps, Gaussian noise, and the per-row weight of
//! the ε loss.
//!
//! The ε-MSE rows of the decoder and super-resolution are weighted by 1 + 1/SNR (what a
//! v-prediction loss weighs ε errors by), truncated at [`MAX_WEIGHT`]. An ε error at SNR s
//! costs plain ε-MSE only s × the x₀ error it implies, and at t ≈ 950 (SNR 0.005) a 32 px
//! picture's background colour is still open: it must come from the conditioning. Trained
//! with plain ε-MSE the decoder drew whatever background the noise decided (random muted
//! colours whatever the caption said) and super-resolution pulled colours toward grey.

use burn::prelude::*;

use crate::diffusion::schedule::{alphas_cumprod, squaredcos_cap_v2_betas};
use crate::model::nn::tensor_from;

/// Draws per-row timesteps and the noising coefficients √ᾱ_t, √(1−ᾱ_t).
pub fn noise_levels(
    rng: &mut super::world::SplitMix64,
    b: usize,
) -> (Vec<usize>, Vec<f32>, Vec<f32>) {
    let ts: Vec<usize> = (0..b).map(|_| rng.below(1000)).collect();
    let (sa, sb) = coefficients(&ts);
    (ts, sa, sb)
}

/// The noising coefficients √ᾱ_t, √(1−ᾱ_t) of timesteps `ts` (squaredcos_cap_v2, 1000 steps).
pub fn coefficients(ts: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let ac = alphas_cumprod(&squaredcos_cap_v2_betas(1000));
    let sa = ts.iter().map(|&t| ac[t].sqrt()).collect();
    let sb = ts.iter().map(|&t| (1.0 - ac[t]).sqrt()).collect();
    (sa, sb)
}

/// `n` standard normal draws.
pub fn gaussian(rng: &mut super::world::SplitMix64, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

/// Truncation of the per-row ε weight 1 + 1/SNR (reached at SNR ≈ 0.02, t ≈ 900 of 1000).
pub const MAX_WEIGHT: f32 = 50.0;

/// Per-row ε-MSE weights for noise levels √ᾱ (`sa`) and √(1−ᾱ) (`sb`).
pub fn eps_weights(sa: &[f32], sb: &[f32]) -> Vec<f32> {
    sa.iter()
        .zip(sb)
        .map(|(&a, &b)| (1.0 + (b * b) / (a * a).max(1e-12)).min(MAX_WEIGHT))
        .collect()
}

/// The weighted ε loss of a batch: per-row MSE of `pred` against `eps`, weighted by
/// [`eps_weights`], averaged over the rows.
pub fn weighted_eps_loss(pred: Tensor<4>, eps: Tensor<4>, sa: &[f32], sb: &[f32]) -> Tensor<1> {
    let b = sa.len();
    let device = pred.device();
    let per_row = (pred - eps).square().mean_dim(3).mean_dim(2).mean_dim(1).reshape([b]);
    (per_row * tensor_from(eps_weights(sa, sb), [b], &device)).mean().reshape([1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noisier_steps_weigh_more_up_to_the_cap() {
        let ac = alphas_cumprod(&squaredcos_cap_v2_betas(1000));
        let (sa, sb) = coefficients(&[0, 300, 600, 800, 900, 960, 999]);
        let w = eps_weights(&sa, &sb);
        assert!((w[0] - 1.0).abs() < 1e-3, "clean steps keep the plain ε loss: {w:?}");
        assert!(w.windows(2).all(|p| p[1] >= p[0]), "not monotone in t: {w:?}");
        let snr = ac[600] / (1.0 - ac[600]);
        assert!((w[2] - (1.0 + 1.0 / snr)).abs() < 1e-3, "{w:?}");
        assert_eq!(w[6], MAX_WEIGHT);
        assert!(w.iter().all(|x| x.is_finite()));
    }
}
