//! Frozen CLIP features for the later stages, computed on the plain (non-autodiff) device
//! and handed over as host vectors.

use burn::prelude::*;

use super::clip::tokenize;
use crate::model::clip_text::ClipTextModelWithProjection;
use crate::model::clip_vision::ClipVisionModelWithProjection;
use crate::model::nn::{tensor_from, to_vec};
use crate::model::tokenizer::ClipTokenizer;

/// CLIP features of a batch, on the host.
pub struct Features {
    pub text_embeds: Vec<f32>,
    pub text_hidden: Vec<f32>,
    pub masks: Vec<Vec<bool>>,
    pub image_embeds: Vec<f32>,
    pub embed_dim: usize,
    pub width: usize,
    pub seq: usize,
}

pub struct FrozenClip {
    pub tokenizer: ClipTokenizer,
    pub text: ClipTextModelWithProjection,
    pub vision: ClipVisionModelWithProjection,
    pub device: Device,
}

impl FrozenClip {
    /// Captions and `[b, 3, 32, 32]` pictures (host, [-1, 1]) → features.
    pub fn features(
        &self,
        captions: &[String],
        images: Option<(Vec<f32>, usize)>,
    ) -> Result<Features, String> {
        let (ids, masks) = tokenize(&self.tokenizer, captions)?;
        let enc = self
            .text
            .forward(&ids, &self.device)
            .map_err(|e| e.to_string())?;
        let [_, seq, width] = enc.last_hidden_state.dims();
        let embed_dim = enc.text_embeds.dims()[1];
        let image_embeds = match images {
            Some((pixels, size)) => {
                let b = captions.len();
                let x = tensor_from(pixels, [b, 3, size, size], &self.device);
                to_vec(self.vision.forward(x).map_err(|e| e.to_string())?)
            }
            None => Vec::new(),
        };
        Ok(Features {
            text_embeds: to_vec(enc.text_embeds),
            text_hidden: to_vec(enc.last_hidden_state),
            masks,
            image_embeds,
            embed_dim,
            width,
            seq,
        })
    }
}
