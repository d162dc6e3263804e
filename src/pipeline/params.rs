//! The parameters of every operation, shared by the CLI, the app and the recipes saved
//! beside each picture (so a recipe reproduces the call exactly).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// The model's own UnCLIP DDPM scheduler (learned variance for the decoder).
    Ddpm,
    /// DDIM with η (η = 0: deterministic; η = 1: DDPM-like).
    Ddim,
}

impl std::str::FromStr for Sampler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::choice::parse(s, "sampler", &[(&["ddpm"], Sampler::Ddpm), (&["ddim"], Sampler::Ddim)])
    }
}

/// Which prior turns the caption into a CLIP image embedding (the paper's two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorKind {
    /// The diffusion prior (`prior/`, what diffusers and Karlo ship).
    #[default]
    Diffusion,
    /// The autoregressive prior over quantised PCA codes (`ar_prior/`, the shipped model).
    #[serde(rename = "ar")]
    Autoregressive,
}

impl std::str::FromStr for PriorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let choices: &[(&[&str], _)] =
            &[(&["diffusion"], PriorKind::Diffusion), (&["ar", "autoregressive"], PriorKind::Autoregressive)];
        crate::choice::parse(s, "prior", choices)
    }
}

/// Sampling temperature of the autoregressive prior: above this the tokens are noise.
pub const MAX_TEMPERATURE: f32 = 10.0;

fn unit_temperature() -> f32 {
    1.0
}

fn is_diffusion(k: &PriorKind) -> bool {
    *k == PriorKind::Diffusion
}

/// One diffusion stage's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StageParams {
    pub steps: usize,
    pub guidance: f32,
    pub sampler: Sampler,
    pub eta: f32,
}

/// Limits every front end applies before a network runs (the CLI, the app's queue, restored
/// recipes): values outside them are refused with one line, never clamped silently.
pub const MAX_STEPS: usize = 1000;
/// Classifier-free guidance beyond this only saturates the picture; 1e30 or inf gives noise.
pub const MAX_GUIDANCE: f32 = 100.0;
pub const MAX_BEST_OF: usize = 16;
pub const MAX_IMAGES: usize = 64;

impl StageParams {
    /// Steps 2..=1000 (the UnCLIP schedule needs two), guidance a number in [0, 100], η in
    /// [0, 1] and only with DDIM (the DDPM sampler has no η).
    pub fn validate(&self, stage: &str) -> Result<(), String> {
        if !(2..=MAX_STEPS).contains(&self.steps) {
            return Err(format!("{stage} steps must be 2..={MAX_STEPS}, got {}", self.steps));
        }
        if !(self.guidance.is_finite() && (0.0..=MAX_GUIDANCE).contains(&self.guidance)) {
            return Err(format!("{stage} guidance must be a number in [0, {MAX_GUIDANCE}], got {}", self.guidance));
        }
        if !(self.eta.is_finite() && (0.0..=1.0).contains(&self.eta)) {
            return Err(format!("{stage} η must be in [0, 1], got {}", self.eta));
        }
        if self.sampler == Sampler::Ddpm && self.eta != 0.0 {
            return Err(format!("{stage} η applies to the DDIM sampler only (choose DDIM, or set η to 0)"));
        }
        Ok(())
    }
}

fn check_images(n: usize) -> Result<(), String> {
    if !(1..=MAX_IMAGES).contains(&n) {
        return Err(format!("number of images must be 1..={MAX_IMAGES}, got {n}"));
    }
    Ok(())
}

fn check_super_res(steps: usize) -> Result<(), String> {
    if steps == 1 || steps > MAX_STEPS {
        return Err(format!("super-resolution steps must be 0 (off) or 2..={MAX_STEPS}, got {steps}"));
    }
    Ok(())
}

/// Seeds. `decoder: None` continues the prior's random stream, which is what diffusers
/// does with one generator (so the same seed gives the same picture as diffusers). A
/// separate decoder seed keeps the composition (the CLIP embedding) and rerolls details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeds {
    pub prior: u64,
    pub decoder: Option<u64>,
}

/// Text → image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateParams {
    pub prompt: String,
    pub num_images: usize,
    pub seeds: Seeds,
    pub prior: StageParams,
    pub decoder: StageParams,
    pub super_res_steps: usize,
    /// Sample this many prior embeddings per image and keep the one closest to the caption
    /// (the paper's trick); 1 = off.
    pub best_of: usize,
    /// Which prior samples z_i; `prior.guidance` guides either. Recipes from before the
    /// autoregressive prior read as the diffusion prior.
    #[serde(default, skip_serializing_if = "is_diffusion")]
    pub prior_kind: PriorKind,
    /// The autoregressive prior's token temperature (1 = the learned distribution).
    #[serde(default = "unit_temperature")]
    pub temperature: f32,
}

impl GenerateParams {
    pub fn validate(&self) -> Result<(), String> {
        check_images(self.num_images)?;
        if !(1..=MAX_BEST_OF).contains(&self.best_of) {
            return Err(format!("best-of must be 1..={MAX_BEST_OF}, got {}", self.best_of));
        }
        self.prior.validate("prior")?;
        self.decoder.validate("decoder")?;
        if !(self.temperature.is_finite() && self.temperature > 0.0 && self.temperature <= MAX_TEMPERATURE) {
            return Err(format!("temperature must be in (0, {MAX_TEMPERATURE}], got {}", self.temperature));
        }
        if self.prior_kind == PriorKind::Diffusion && self.temperature != 1.0 {
            return Err("temperature applies to the autoregressive prior only (choose it, or leave temperature at 1)".into());
        }
        check_super_res(self.super_res_steps)
    }
}

impl Default for GenerateParams {
    /// diffusers' UnCLIPPipeline defaults.
    fn default() -> Self {
        Self {
            prompt: String::new(),
            num_images: 1,
            seeds: Seeds { prior: 0, decoder: None },
            prior: StageParams { steps: 25, guidance: 4.0, sampler: Sampler::Ddpm, eta: 0.0 },
            decoder: StageParams { steps: 25, guidance: 8.0, sampler: Sampler::Ddpm, eta: 0.0 },
            super_res_steps: 7,
            best_of: 1,
            prior_kind: PriorKind::Diffusion,
            temperature: 1.0,
        }
    }
}

/// Image → variations (and the decoding half of interpolation and text diffs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeParams {
    pub num_images: usize,
    pub seed: u64,
    pub decoder: StageParams,
    pub super_res_steps: usize,
}

/// The decoder guidance a decode from inverted latents runs at, at most. Inversion and
/// decoding at the same guidance round-trip at any guidance (≈ 40 dB at 8), but a blend of two
/// inverted latents, or one under a moved embedding, is pushed off the picture by strong
/// guidance: on the shipped model a star → circle interpolation stays clean at 1–2, draws an
/// unseen cross at 4 and noise at 8.
pub const MAX_INVERTED_GUIDANCE: f32 = 2.0;

impl DecodeParams {
    pub fn validate(&self) -> Result<(), String> {
        check_images(self.num_images)?;
        self.decoder.validate("decoder")?;
        check_super_res(self.super_res_steps)
    }

    /// These parameters as a decode from inverted latents runs them (guidance capped).
    pub fn from_inverted(&self) -> Self {
        let mut p = self.clone();
        p.decoder.guidance = p.decoder.guidance.min(MAX_INVERTED_GUIDANCE);
        p
    }
}

impl Default for DecodeParams {
    /// diffusers' UnCLIPImageVariationPipeline defaults.
    fn default() -> Self {
        Self {
            num_images: 1,
            seed: 0,
            decoder: StageParams { steps: 25, guidance: 8.0, sampler: Sampler::Ddpm, eta: 0.0 },
            super_res_steps: 7,
        }
    }
}

/// Where the decoder starts for interpolation and text diffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartLatent {
    /// One random x_T (from the seed) for the whole trajectory: the paper's Figure 4.
    Fixed,
    /// The DDIM-inverted x_T of the input image(s), slerped: the endpoints reconstruct
    /// the inputs.
    Inverted,
}

impl std::str::FromStr for StartLatent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::choice::parse(s, "start", &[(&["fixed"], StartLatent::Fixed), (&["inverted"], StartLatent::Inverted)])
    }
}
