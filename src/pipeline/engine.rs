//! The engine: one model folder on one device, its components loaded when first needed
//! (and optionally released after each stage), plus the caches that make scrubbing a
//! slider cheap (prompt encodings, image embeddings, inverted latents).

use std::path::Path;

use burn::prelude::*;
use burn::tensor::DType;

use super::PipelineError;
use super::cache::Lru;
use crate::diffusion::unclip_scheduler::UnclipScheduler;
use crate::kernels::Kernels;
use crate::model::clip_text::ClipTextModelWithProjection;
use crate::model::clip_vision::ClipVisionModelWithProjection;
use crate::model::config::ImageProcessorConfig;
use crate::model::folder::ModelFolder;
use crate::model::ar_prior::ArPrior;
use crate::model::prior::PriorTransformer;
use crate::model::text_proj::UnCLIPTextProjModel;
use crate::model::tokenizer::ClipTokenizer;
use crate::model::unet::UNet;

/// Loaded components; `None` until first use.
#[derive(Default)]
pub struct Parts {
    pub tokenizer: Option<ClipTokenizer>,
    pub text_encoder: Option<ClipTextModelWithProjection>,
    pub image_encoder: Option<ClipVisionModelWithProjection>,
    pub image_processor: Option<ImageProcessorConfig>,
    pub prior: Option<PriorTransformer>,
    pub ar_prior: Option<ArPrior>,
    pub prior_scheduler: Option<UnclipScheduler>,
    pub text_proj: Option<UnCLIPTextProjModel>,
    pub decoder: Option<UNet>,
    pub decoder_scheduler: Option<UnclipScheduler>,
    pub super_res_first: Option<UNet>,
    pub super_res_last: Option<UNet>,
    pub super_res_scheduler: Option<UnclipScheduler>,
}

/// A prompt's encoding, kept on the device.
#[derive(Clone)]
pub struct PromptEncoding {
    pub embeds: Tensor<2>,
    pub hidden: Tensor<3>,
    pub mask: Vec<bool>,
}

/// What the engine remembers between runs, each bounded (least recently used first out).
pub struct Caches {
    pub prompts: Lru<String, PromptEncoding>,
    /// Image embeddings by image content hash.
    pub image_embeds: Lru<u64, Vec<f32>>,
    /// Inverted latents by (image hash, steps, guidance bits).
    pub inverted: Lru<(u64, usize, u32), Vec<f32>>,
    /// Prior samples for prompt endpoints of interpolations, by (prompt, seed): scrubbing θ
    /// between two prompts must not re-run the prior for every frame.
    pub prompt_embeds: Lru<(String, u64), Vec<f32>>,
}

impl Default for Caches {
    fn default() -> Self {
        // Entries are small (an embedding, or a decoder-sized latent: 48 KB at Karlo's 64 px),
        // so a few hundred cost megabytes at most.
        Self { prompts: Lru::new(256), image_embeds: Lru::new(256), inverted: Lru::new(64), prompt_embeds: Lru::new(256) }
    }
}

pub struct Engine {
    pub folder: ModelFolder,
    pub device: Device,
    /// The implementation of the sampler step and the preview packing on `device`, chosen
    /// when the engine opens (the networks keep their own, chosen as they load).
    pub(crate) kernels: Kernels,
    pub dtype: DType,
    pub(crate) parts: Parts,
    pub(crate) caches: Caches,
    /// Drop each stage's networks when the stage ends (less memory, slower next run).
    pub release_stages: bool,
    /// Output sides of the decoder and super-resolution, read from their configs once.
    sizes: (usize, usize),
    /// Weight values per memory stage (`budget`), read from the weight headers on first use:
    /// the check before every run must not re-read them.
    pub(super) stage_values: std::sync::OnceLock<Vec<u64>>,
}

/// Borrow a loaded part or report the internal slip as an error rather than panicking.
macro_rules! part {
    ($engine:expr, $name:ident) => {
        $engine
            .parts
            .$name
            .as_ref()
            .ok_or_else(|| PipelineError::Input(concat!(stringify!($name), " is not loaded").into()))
    };
}
pub(crate) use part;

impl Engine {
    pub fn open(folder: &Path, device: Device) -> Result<Self, PipelineError> {
        let folder = ModelFolder::open(folder)?;
        let decoder = folder.sample_size("decoder").unwrap_or(64);
        let super_res = folder.sample_size("super_res_first").unwrap_or(4 * decoder);
        Ok(Self {
            folder,
            kernels: Kernels::for_device(&device),
            device,
            dtype: DType::F32,
            parts: Parts::default(),
            caches: Caches::default(),
            release_stages: false,
            sizes: (decoder, super_res),
            stage_values: std::sync::OnceLock::new(),
        })
    }

    /// The device and its kernels, as the sampler step takes them.
    pub(crate) fn at(&self) -> (&Device, Kernels) {
        (&self.device, self.kernels)
    }

    /// The loaded components (for tools and tests that call a network directly).
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    pub fn caches(&self) -> &Caches {
        &self.caches
    }

    /// Frees every loaded network (they reload on next use); the caches stay.
    pub fn unload(&mut self) {
        self.parts = Parts::default();
        self.device.memory_cleanup();
    }

    pub fn load_tokenizer(&mut self) -> Result<(), PipelineError> {
        fill(&mut self.parts.tokenizer, || self.folder.tokenizer())
    }

    pub fn load_text_encoder(&mut self) -> Result<(), PipelineError> {
        self.load_tokenizer()?;
        fill(&mut self.parts.text_encoder, || self.folder.text_encoder(&self.device, self.dtype))
    }

    pub fn load_image_encoder(&mut self) -> Result<(), PipelineError> {
        fill(&mut self.parts.image_encoder, || self.folder.image_encoder(&self.device, self.dtype))?;
        fill(&mut self.parts.image_processor, || self.folder.image_processor())
    }

    pub fn load_prior(&mut self) -> Result<(), PipelineError> {
        fill(&mut self.parts.prior, || self.folder.prior(&self.device, self.dtype))?;
        fill(&mut self.parts.prior_scheduler, || scheduler(&self.folder, "prior_scheduler"))
    }

    pub fn load_ar_prior(&mut self) -> Result<(), PipelineError> {
        if self.parts.ar_prior.is_none() && !self.folder.has_ar_prior() {
            return Err(PipelineError::Input(
                "this model has no autoregressive prior (ar_prior/); choose the diffusion prior".into(),
            ));
        }
        fill(&mut self.parts.ar_prior, || self.folder.ar_prior(&self.device, self.dtype))
    }

    pub fn load_decoder(&mut self) -> Result<(), PipelineError> {
        fill(&mut self.parts.text_proj, || self.folder.text_proj(&self.device, self.dtype))?;
        fill(&mut self.parts.decoder, || self.folder.decoder(&self.device, self.dtype))?;
        fill(&mut self.parts.decoder_scheduler, || scheduler(&self.folder, "decoder_scheduler"))
    }

    /// Returns false when the folder has no super-resolution stage.
    pub fn load_super_res(&mut self) -> Result<bool, PipelineError> {
        if !self.folder.has_super_res() {
            return Ok(false);
        }
        fill(&mut self.parts.super_res_first, || self.folder.super_res("super_res_first", &self.device, self.dtype))?;
        // With release_stages the last network waits for the last step, after the first one
        // is freed: the two are never resident together (Karlo: 2 × 2.8 GB in f32).
        if !self.release_stages {
            self.load_super_res_last()?;
        }
        fill(&mut self.parts.super_res_scheduler, || scheduler(&self.folder, "super_res_scheduler"))?;
        Ok(true)
    }

    pub fn load_super_res_last(&mut self) -> Result<(), PipelineError> {
        fill(&mut self.parts.super_res_last, || self.folder.super_res("super_res_last", &self.device, self.dtype))
    }

    /// With `release_stages`, frees the text and image encoders once their outputs are in the
    /// caches, before a diffusion stage loads its (larger) networks.
    pub fn release_encoders(&mut self) {
        if self.parts.text_encoder.is_some() {
            self.release(super::Stage::Text);
        }
        if self.parts.image_encoder.is_some() {
            self.release(super::Stage::ImageEncoder);
        }
    }

    /// Frees a stage's networks when `release_stages` is set.
    pub fn release(&mut self, stage: super::Stage) {
        if !self.release_stages {
            return;
        }
        use super::Stage::*;
        match stage {
            Text => self.parts.text_encoder = None,
            ImageEncoder => self.parts.image_encoder = None,
            Prior => {
                self.parts.prior = None;
                self.parts.ar_prior = None;
            }
            Decoder | Inversion => {
                self.parts.decoder = None;
                self.parts.text_proj = None;
            }
            SuperRes => {
                self.parts.super_res_first = None;
                self.parts.super_res_last = None;
            }
            Loading => {}
        }
        self.device.memory_cleanup();
    }

    /// Output side of the decoder (its `sample_size`, 64 for Karlo).
    pub fn decoder_size(&self) -> usize {
        self.sizes.0
    }

    /// Output side of the super-resolution stage (`super_res_first.sample_size`).
    pub fn super_res_size(&self) -> usize {
        self.sizes.1
    }
}

/// Loads into an empty slot; a filled one stays as it is (networks load once, on first use).
fn fill<T, E>(slot: &mut Option<T>, load: impl FnOnce() -> Result<T, E>) -> Result<(), PipelineError>
where
    PipelineError: From<E>,
{
    if slot.is_none() {
        *slot = Some(load()?);
    }
    Ok(())
}

/// A stage's scheduler from its `scheduler_config.json`.
fn scheduler(folder: &ModelFolder, name: &str) -> Result<UnclipScheduler, PipelineError> {
    Ok(UnclipScheduler::new(&folder.scheduler(name)?)?)
}
