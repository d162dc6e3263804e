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
        match s.to_ascii_lowercase().as_str() {
            "ddpm" => Ok(Sampler::Ddpm),
            "ddim" => Ok(Sampler::Ddim),
            other => Err(format!("unknown sampler '{other}' (ddpm or ddim)")),
        }
    }
}

/// One diffusion stage's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StageParams {
    pub steps: usize,
    pub guidance: f32,
    pub sampler: Sampler,
    pub eta: f32,
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
