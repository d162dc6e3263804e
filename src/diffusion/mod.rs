//! Diffusion math over tensors, with no knowledge of the networks: noise schedules, the
//! UnCLIP DDPM scheduler, DDIM with η and its inversion, guidance, and PyTorch-compatible
//! noise.

pub mod config;
pub mod ddim;
pub mod guidance;
pub mod rng;
pub mod schedule;
pub mod unclip_scheduler;

use burn::prelude::*;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DiffusionError {
    #[error("scheduler: {0}")]
    Config(String),
    #[error("steps: {0}")]
    Steps(String),
    #[error("internal: a noisy step was called without noise")]
    MissingNoise,
}

/// What the network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    Epsilon,
    Sample,
}

impl Prediction {
    pub fn parse(s: &str) -> Result<Self, DiffusionError> {
        match s {
            "epsilon" => Ok(Prediction::Epsilon),
            "sample" => Ok(Prediction::Sample),
            other => Err(DiffusionError::Config(format!("prediction_type {other}"))),
        }
    }

    /// x̂₀ from the model output at noise level ᾱ_t.
    pub fn x0<const D: usize>(self, pred: Tensor<D>, sample: Tensor<D>, ab_t: f32) -> Tensor<D> {
        match self {
            Prediction::Epsilon => (sample - pred.mul_scalar((1.0 - ab_t).sqrt())).div_scalar(ab_t.sqrt()),
            Prediction::Sample => pred,
        }
    }

    /// (x̂₀, ε̂) from the model output, both unclipped.
    pub fn x0_and_eps<const D: usize>(self, pred: Tensor<D>, sample: Tensor<D>, ab_t: f32) -> (Tensor<D>, Tensor<D>) {
        match self {
            Prediction::Epsilon => (self.x0(pred.clone(), sample, ab_t), pred),
            Prediction::Sample => {
                let eps = (sample - pred.clone().mul_scalar(ab_t.sqrt())).div_scalar((1.0 - ab_t).sqrt());
                (pred, eps)
            }
        }
    }
}

/// x̂₀ clamped to ±`range` when the scheduler clips (`clip_sample`), else unchanged.
pub fn clip_x0<const D: usize>(x0: Tensor<D>, range: Option<f32>) -> Tensor<D> {
    match range {
        Some(r) => x0.clamp(-r, r),
        None => x0,
    }
}

/// A scheduler step's result.
pub struct StepOutput<const D: usize> {
    pub prev_sample: Tensor<D>,
    pub pred_original_sample: Tensor<D>,
}
