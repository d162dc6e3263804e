//! DDIM with η, and its deterministic inversion, over explicit (t, t_prev) pairs taken from
//! one timestep list (diffusers' `t − T//n` rule disagrees with non-leading spacings).

use burn::prelude::*;

use super::schedule::alpha_bar_at;
use super::{DiffusionError, Prediction, StepOutput, clip_x0};

#[derive(Debug, Clone)]
pub struct Ddim {
    pub alphas_cumprod: Vec<f32>,
    pub prediction: Prediction,
    pub clip_sample: Option<f32>,
    /// Recompute ε̂ from the clipped x̂₀ (diffusers' `use_clipped_model_output`).
    pub use_clipped_model_output: bool,
}

/// The scalars of one DDIM step t → prev: x_prev = √ᾱ_prev·x̂₀ + dir·ε̂ + σ·z. The burn-ops
/// step and the fused WGSL kernel both read these, so the two cannot drift apart.
#[derive(Debug, Clone, Copy)]
pub struct DdimCoefficients {
    /// ᾱ_t, for x̂₀ and ε̂ from the model output.
    pub alpha_bar: f32,
    pub sqrt_alpha_bar_prev: f32,
    pub dir: f32,
    pub sigma: f32,
}

/// The model output's prediction channels: a learned-variance model's extra channels dropped.
fn prediction_channels<const D: usize>(model_output: Tensor<D>, sample: &Tensor<D>) -> Tensor<D> {
    let channels = sample.dims()[1];
    if model_output.dims()[1] > channels { model_output.narrow(1, 0, channels) } else { model_output }
}

impl Ddim {
    fn alpha_bar(&self, t: Option<usize>) -> f32 {
        alpha_bar_at(&self.alphas_cumprod, t)
    }

    /// The step's scalars, in f32 as diffusers computes them.
    pub fn coefficients(&self, t: usize, prev: Option<usize>, eta: f32) -> DdimCoefficients {
        let ab_prev = self.alpha_bar(prev);
        let sigma = self.sigma(t, prev, eta);
        DdimCoefficients {
            alpha_bar: self.alpha_bar(Some(t)),
            sqrt_alpha_bar_prev: ab_prev.sqrt(),
            dir: (1.0 - ab_prev - sigma * sigma).max(0.0).sqrt(),
            sigma,
        }
    }

    /// σ for the step t → prev: η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev).
    pub fn sigma(&self, t: usize, prev: Option<usize>, eta: f32) -> f32 {
        let (ab_t, ab_prev) = (self.alpha_bar(Some(t)), self.alpha_bar(prev));
        let variance = (1.0 - ab_prev) / (1.0 - ab_t) * (1.0 - ab_t / ab_prev);
        eta * variance.max(0.0).sqrt()
    }

    /// Whether the step consumes noise.
    pub fn needs_noise(&self, t: usize, prev: Option<usize>, eta: f32) -> bool {
        eta > 0.0 && self.sigma(t, prev, eta) > 0.0
    }

    /// One step t → prev. Extra (variance) channels in `model_output` are ignored.
    pub fn step<const D: usize>(
        &self,
        model_output: Tensor<D>,
        t: usize,
        prev: Option<usize>,
        sample: Tensor<D>,
        eta: f32,
        noise: Option<Tensor<D>>,
    ) -> Result<StepOutput<D>, DiffusionError> {
        if t >= self.alphas_cumprod.len() {
            return Err(DiffusionError::Steps(format!("timestep {t} out of range")));
        }
        let pred = prediction_channels(model_output, &sample);
        let k = self.coefficients(t, prev, eta);
        let sample_for_eps = sample.clone();
        let (x0, eps) = self.prediction.x0_and_eps(pred, sample, k.alpha_bar);
        let x0 = clip_x0(x0, self.clip_sample);
        let eps = if self.use_clipped_model_output {
            (sample_for_eps - x0.clone().mul_scalar(k.alpha_bar.sqrt())).div_scalar((1.0 - k.alpha_bar).sqrt())
        } else {
            eps
        };
        let mut prev_sample = x0.clone().mul_scalar(k.sqrt_alpha_bar_prev) + eps.mul_scalar(k.dir);
        if self.needs_noise(t, prev, eta) {
            let noise = noise.ok_or(DiffusionError::MissingNoise)?;
            prev_sample = prev_sample + noise.mul_scalar(k.sigma);
        }
        Ok(StepOutput { prev_sample, pred_original_sample: x0 })
    }

    /// One inversion step from the less noisy `from` (None = clean) to `to`, using the model
    /// output evaluated at `to` on the current sample. x̂₀ is clipped only if `clip_sample`
    /// is set (diffusers' DDIMInverseScheduler default); the pipelines invert without it.
    pub fn invert_step<const D: usize>(
        &self,
        model_output: Tensor<D>,
        from: Option<usize>,
        to: usize,
        sample: Tensor<D>,
    ) -> Tensor<D> {
        let pred = prediction_channels(model_output, &sample);
        let (x0, eps) = self.prediction.x0_and_eps(pred, sample, self.alpha_bar(from));
        self.noised_to(x0, eps, to)
    }

    /// x̂₀ (clipped if `clip_sample` is set) noised with ε to the level of `to`.
    fn noised_to<const D: usize>(&self, x0: Tensor<D>, eps: Tensor<D>, to: usize) -> Tensor<D> {
        let x0 = clip_x0(x0, self.clip_sample);
        let ab_to = self.alpha_bar(Some(to));
        x0.mul_scalar(ab_to.sqrt()) + eps.mul_scalar((1.0 - ab_to).sqrt())
    }

    /// The exact inversion step's fixed-point update: `model_output` is ε evaluated at the
    /// current guess `at` of the noisier sample (time `to`); returns the x_to whose DDIM step
    /// to `from` with that ε gives `sample`.
    pub fn invert_step_at<const D: usize>(
        &self,
        model_output: Tensor<D>,
        from: Option<usize>,
        to: usize,
        sample: Tensor<D>,
        at: Tensor<D>,
    ) -> Tensor<D> {
        let pred = prediction_channels(model_output, &sample);
        // ε as the sampling step at `to` sees it, from the guess `at`.
        let (_, eps) = self.prediction.x0_and_eps(pred, at, self.alpha_bar(Some(to)));
        // Sampling (η = 0) lands on sample = √ᾱ_from·x̂₀ + √(1−ᾱ_from)·ε: the x̂₀ that needs,
        // noised with the same ε to `to`, is the x_to sought.
        let ab_from = self.alpha_bar(from);
        let x0_needed = (sample - eps.clone().mul_scalar((1.0 - ab_from).sqrt())).div_scalar(ab_from.sqrt());
        self.noised_to(x0_needed, eps, to)
    }
}
