//! Classifier-free guidance: the model runs on [unconditional; conditional] halves of one
//! batch and the halves are recombined.

use burn::prelude::*;

/// Prior: the whole predicted embedding is guided. `out` is `[2b, E]`.
pub fn guide_prior(out: Tensor<2>, scale: f32) -> Tensor<2> {
    let b = out.dims()[0] / 2;
    let uncond = out.clone().narrow(0, 0, b);
    let cond = out.narrow(0, b, b);
    uncond.clone() + (cond - uncond).mul_scalar(scale)
}

/// Decoder: the first `channels` (ε) are guided; the learned-variance channels are taken
/// from the conditional half. `out` is `[2b, 2c, h, w]` → `[b, 2c, h, w]`.
pub fn guide_decoder(out: Tensor<4>, channels: usize, scale: f32) -> Tensor<4> {
    let [n, total, _, _] = out.dims();
    let b = n / 2;
    let uncond = out.clone().narrow(0, 0, b);
    let cond = out.narrow(0, b, b);
    let eps_u = uncond.narrow(1, 0, channels);
    let eps_c = cond.clone().narrow(1, 0, channels);
    let eps = eps_u.clone() + (eps_c - eps_u).mul_scalar(scale);
    if total > channels {
        Tensor::cat(vec![eps, cond.narrow(1, channels, total - channels)], 1)
    } else {
        eps
    }
}
