//! The unCLIP operations — text→image, variations, inversion, interpolation, text diffs —
//! composed from the networks (`model`) and the samplers (`diffusion`). Every operation
//! reports progress with a preview of the current x̂₀ and checks a cancel flag before every
//! network call.

pub mod budget;
pub mod cache;
pub mod engine;
pub mod images;
pub mod latent;
pub mod noise;
pub mod ops;
pub mod params;
pub mod request;
pub mod stages;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use engine::Engine;
pub use params::*;
pub use request::{Request, PROMPT_PREFIX};

use crate::diffusion::DiffusionError;
use crate::model::ModelError;

/// Which part of the cascade is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stage {
    Loading,
    Text,
    ImageEncoder,
    Prior,
    Decoder,
    Inversion,
    SuperRes,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Loading => "loading",
            Stage::Text => "text encoder",
            Stage::ImageEncoder => "image encoder",
            Stage::Prior => "prior",
            Stage::Decoder => "decoder",
            Stage::Inversion => "inversion",
            Stage::SuperRes => "super-resolution",
        }
    }
}

pub use crate::tensor::Picture;

/// What an operation reports while it runs.
#[derive(Debug, Clone)]
pub enum Progress {
    Step { stage: Stage, step: usize, total: usize, preview: Option<Picture> },
    Note(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Diffusion(#[from] DiffusionError),
    #[error("{0}")]
    Input(String),
    #[error("cancelled")]
    Cancelled,
    #[error("the model produced non-finite values (NaN/inf) in the {0} stage")]
    NotFinite(&'static str),
}

/// Cancel flag and progress sink of one run.
pub struct Control<'a> {
    cancel: Arc<AtomicBool>,
    sink: &'a mut (dyn FnMut(Progress) + Send),
    /// Decode x̂₀ previews (costs one small read-back per step).
    pub previews: bool,
}

impl<'a> Control<'a> {
    pub fn new(cancel: Arc<AtomicBool>, sink: &'a mut (dyn FnMut(Progress) + Send)) -> Self {
        Self { cancel, sink, previews: true }
    }

    /// Called before every network call.
    pub fn check(&self) -> Result<(), PipelineError> {
        if self.cancel.load(Ordering::Relaxed) { Err(PipelineError::Cancelled) } else { Ok(()) }
    }

    pub fn report(&mut self, p: Progress) {
        (self.sink)(p)
    }
}

/// A control that never cancels and drops progress (tests, batch tools).
pub fn silent<R>(f: impl FnOnce(&mut Control) -> R) -> R {
    let mut sink = |_p: Progress| {};
    let mut ctl = Control::new(Arc::new(AtomicBool::new(false)), &mut sink);
    ctl.previews = false;
    f(&mut ctl)
}
