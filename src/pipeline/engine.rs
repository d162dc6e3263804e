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
        if self.parts.tokenizer.is_none() {
            self.parts.tokenizer = Some(self.folder.tokenizer()?);
        }
        Ok(())
    }

    pub fn load_text_encoder(&mut self) -> Result<(), PipelineError> {
        self.load_tokenizer()?;
        if self.parts.text_encoder.is_none() {
            self.parts.text_encoder = Some(self.folder.text_encoder(&self.device, self.dtype)?);
        }
        Ok(())
    }

    pub fn load_image_encoder(&mut self) -> Result<(), PipelineError> {
        if self.parts.image_encoder.is_none() {
            self.parts.image_encoder = Some(self.folder.image_encoder(&self.device, self.dtype)?);
        }
        if self.parts.image_processor.is_none() {
            self.parts.image_processor = Some(self.folder.image_processor()?);
        }
        Ok(())
    }

    pub fn load_prior(&mut self) -> Result<(), PipelineError> {
        if self.parts.prior.is_none() {
            self.parts.prior = Some(self.folder.prior(&self.device, self.dtype)?);
        }
        if self.parts.prior_scheduler.is_none() {
            self.parts.prior_scheduler = Some(UnclipScheduler::new(&self.folder.scheduler("prior_scheduler")?)?);
        }
        Ok(())
    }

    pub fn load_ar_prior(&mut self) -> Result<(), PipelineError> {
        if self.parts.ar_prior.is_none() {
            if !self.folder.has_ar_prior() {
                return Err(PipelineError::Input(
                    "this model has no autoregressive prior (ar_prior/); choose the diffusion prior".into(),
                ));
            }
            self.parts.ar_prior = Some(self.folder.ar_prior(&self.device, self.dtype)?);
        }
        Ok(())
    }

    pub fn load_decoder(&mut self) -> Result<(), PipelineError> {
        if self.parts.text_proj.is_none() {
            self.parts.text_proj = Some(self.folder.text_proj(&self.device, self.dtype)?);
        }
        if self.parts.decoder.is_none() {
            self.parts.decoder = Some(self.folder.decoder(&self.device, self.dtype)?);
        }
        if self.parts.decoder_scheduler.is_none() {
            self.parts.decoder_scheduler = Some(UnclipScheduler::new(&self.folder.scheduler("decoder_scheduler")?)?);
        }
        Ok(())
    }

    /// Returns false when the folder has no super-resolution stage.
    pub fn load_super_res(&mut self) -> Result<bool, PipelineError> {
        if !self.folder.has_super_res() {
            return Ok(false);
        }
        if self.parts.super_res_first.is_none() {
            self.parts.super_res_first = Some(self.folder.super_res("super_res_first", &self.device, self.dtype)?);
        }
        // With release_stages the last network waits for the last step, after the first one
        // is freed: the two are never resident together (Karlo: 2 × 2.8 GB in f32).
        if !self.release_stages && self.parts.super_res_last.is_none() {
            self.load_super_res_last()?;
        }
        if self.parts.super_res_scheduler.is_none() {
            self.parts.super_res_scheduler =
                Some(UnclipScheduler::new(&self.folder.scheduler("super_res_scheduler")?)?);
        }
        Ok(true)
    }

    pub fn load_super_res_last(&mut self) -> Result<(), PipelineError> {
        if self.parts.super_res_last.is_none() {
            self.parts.super_res_last = Some(self.folder.super_res("super_res_last", &self.device, self.dtype)?);
        }
        Ok(())
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
