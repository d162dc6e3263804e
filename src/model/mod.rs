//! The networks of unCLIP, one file per diffusers/transformers component, and the loading
//! of a diffusers-layout model folder.

pub mod ar_codebook;
pub mod ar_prior;
pub mod attention;
pub mod clip_encoder;
pub mod clip_text;
pub mod clip_vision;
pub mod config;
pub mod embeddings;
pub mod folder;
pub mod hub;
pub mod nn;
pub mod prior;
pub mod text_proj;
pub mod tokenizer;
pub mod torch_layout;
pub mod unet;
pub mod weights;

use std::path::PathBuf;

/// Everything that can go wrong while reading a model, as one-line messages.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: invalid config: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: {hint}")]
    MissingFile { path: PathBuf, hint: String },
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("{component}: unsupported configuration: {what}")]
    Unsupported { component: String, what: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Input(String),
}

impl ModelError {
    pub fn unsupported(component: &str, what: impl Into<String>) -> Self {
        ModelError::Unsupported { component: component.into(), what: what.into() }
    }
}
