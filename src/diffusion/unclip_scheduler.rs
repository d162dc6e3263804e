//! diffusers `UnCLIPScheduler`: the DDPM variant Karlo samples with (`fixed_small_log` or
//! `learned_range` variance, `epsilon` or `sample` prediction, x̂₀ clipping).
//! Scalar coefficients are computed in f32 as the reference's 0-d tensors are.

use burn::prelude::*;

use super::schedule::{alpha_bar_at, alphas_cumprod, squaredcos_cap_v2_betas, unclip_timesteps};
use super::{DiffusionError, Prediction, StepOutput, clip_x0};
use super::config::SchedulerConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variance {
    FixedSmallLog,
    LearnedRange,
}

/// The scalars of one DDPM step t → prev: x_prev = c_x0·x̂₀ + c_x·x_t + σ·z. The burn-ops
/// step and the fused WGSL kernel both read these, so the two cannot drift apart.
#[derive(Debug, Clone, Copy)]
pub struct DdpmCoefficients {
    /// ᾱ_t, for x̂₀ from the model output.
    pub alpha_bar: f32,
    pub c_x0: f32,
    pub c_x: f32,
    /// log of the posterior variance and of β, between which `learned_range` interpolates.
    pub log_posterior: f32,
    pub log_beta: f32,
    /// σ of `fixed_small_log`.
    pub fixed_std: f32,
}

#[derive(Debug, Clone)]
pub struct UnclipScheduler {
    pub betas: Vec<f32>,
    pub alphas_cumprod: Vec<f32>,
    pub variance: Variance,
    pub prediction: Prediction,
    pub clip_sample: Option<f32>,
}

impl UnclipScheduler {
    pub fn new(cfg: &SchedulerConfig) -> Result<Self, DiffusionError> {
        if cfg.beta_schedule != "squaredcos_cap_v2" {
            return Err(DiffusionError::Config(format!("beta_schedule {} (unCLIP uses squaredcos_cap_v2)", cfg.beta_schedule)));
        }
        if cfg.num_train_timesteps < 2 {
            return Err(DiffusionError::Config("num_train_timesteps must be at least 2".into()));
        }
        let variance = match cfg.variance_type.as_str() {
            "fixed_small_log" => Variance::FixedSmallLog,
            "learned_range" => Variance::LearnedRange,
            other => return Err(DiffusionError::Config(format!("variance_type {other}"))),
        };
        let betas = squaredcos_cap_v2_betas(cfg.num_train_timesteps);
        Ok(Self {
            alphas_cumprod: alphas_cumprod(&betas),
            betas,
            variance,
            prediction: Prediction::parse(&cfg.prediction_type)?,
            clip_sample: cfg.clip_sample.then_some(cfg.clip_sample_range as f32),
        })
    }

    pub fn num_train_timesteps(&self) -> usize {
        self.betas.len()
    }

    /// `set_timesteps(n)`: descending, rounded half-to-even.
    pub fn timesteps(&self, steps: usize) -> Result<Vec<usize>, DiffusionError> {
        unclip_timesteps(self.num_train_timesteps(), steps).map_err(|e| DiffusionError::Steps(e.to_string()))
    }

    /// ᾱ at `t`, or 1 before the first timestep.
    pub fn alpha_bar(&self, t: Option<usize>) -> f32 {
        alpha_bar_at(&self.alphas_cumprod, t)
    }

    /// Whether `step` at `t` consumes noise (the caller draws it, so the random stream stays
    /// in the reference's order).
    pub fn needs_noise(&self, t: usize) -> bool {
        t > 0
    }

    /// β and α of the (possibly respaced) transition t → prev.
    fn beta_alpha(&self, t: usize, prev: Option<usize>) -> (f32, f32) {
        if prev == t.checked_sub(1) && prev.is_some() || (t == 0 && prev.is_none()) {
            (self.betas[t], 1.0 - self.betas[t])
        } else {
            let beta = 1.0 - self.alpha_bar(Some(t)) / self.alpha_bar(prev);
            (beta, 1.0 - beta)
        }
    }

    /// diffusers' `_get_variance`: the standard deviation for `fixed_small_log`, the log
    /// variance for `learned_range` given the raw variance channel value.
    pub fn variance(&self, t: usize, prev: Option<usize>, predicted_variance: Option<f32>) -> f32 {
        let (v, beta) = self.posterior_variance(t, prev);
        match (self.variance, predicted_variance) {
            (Variance::LearnedRange, Some(pv)) => {
                let frac = (pv + 1.0) / 2.0;
                frac * beta.ln() + (1.0 - frac) * v.ln()
            }
            _ => (0.5 * v.max(1e-20).ln()).exp(),
        }
    }

    /// The step's scalars, in f32 as diffusers computes them.
    pub fn coefficients(&self, t: usize, prev: Option<usize>) -> DdpmCoefficients {
        let (ab_t, ab_prev) = (self.alpha_bar(Some(t)), self.alpha_bar(prev));
        let (bp_t, bp_prev) = (1.0 - ab_t, 1.0 - ab_prev);
        let (beta, alpha) = self.beta_alpha(t, prev);
        let (v, _) = self.posterior_variance(t, prev);
        DdpmCoefficients {
            alpha_bar: ab_t,
            c_x0: ab_prev.sqrt() * beta / bp_t,
            c_x: alpha.sqrt() * bp_prev / bp_t,
            log_posterior: v.ln(),
            log_beta: beta.ln(),
            fixed_std: self.variance(t, prev, None),
        }
    }

    /// Posterior variance (1−ᾱ_prev)/(1−ᾱ_t)·β of the transition, and β.
    fn posterior_variance(&self, t: usize, prev: Option<usize>) -> (f32, f32) {
        let (beta, _) = self.beta_alpha(t, prev);
        ((1.0 - self.alpha_bar(prev)) / (1.0 - self.alpha_bar(Some(t))) * beta, beta)
    }

    /// One reverse step t → prev (`None` = to the clean image). `model_output` may carry the
    /// learned-variance channels after the prediction channels. `noise` must be given when
    /// `needs_noise(t)`; its shape is the sample's.
    pub fn step<const D: usize>(
        &self,
        model_output: Tensor<D>,
        t: usize,
        prev: Option<usize>,
        sample: Tensor<D>,
        noise: Option<Tensor<D>>,
    ) -> Result<StepOutput<D>, DiffusionError> {
        if t >= self.num_train_timesteps() {
            return Err(DiffusionError::Steps(format!("timestep {t} out of range")));
        }
        let channels = sample.dims()[1];
        let (pred, predicted_variance) = if self.variance == Variance::LearnedRange && model_output.dims()[1] == 2 * channels {
            let v = model_output.clone().narrow(1, channels, channels);
            (model_output.narrow(1, 0, channels), Some(v))
        } else {
            (model_output, None)
        };
        let k = self.coefficients(t, prev);
        let x0 = self.prediction.x0(pred, sample.clone(), k.alpha_bar);
        let x0 = clip_x0(x0, self.clip_sample);
        let mut prev_sample = x0.clone().mul_scalar(k.c_x0) + sample.mul_scalar(k.c_x);

        if self.needs_noise(t) {
            let noise = noise.ok_or(DiffusionError::MissingNoise)?;
            let std = match (self.variance, predicted_variance) {
                (Variance::LearnedRange, Some(pv)) => {
                    // log σ² interpolates between log β and log of the posterior variance,
                    // by the raw (unclamped) model channel mapped from [-1, 1] to [0, 1].
                    let frac = pv.add_scalar(1.0).div_scalar(2.0);
                    (frac.clone().mul_scalar(k.log_beta) + frac.neg().add_scalar(1.0).mul_scalar(k.log_posterior))
                        .mul_scalar(0.5)
                        .exp()
                }
                _ => noise.zeros_like().add_scalar(k.fixed_std),
            };
            prev_sample = prev_sample + std * noise;
        }
        Ok(StepOutput { prev_sample, pred_original_sample: x0 })
    }
}
