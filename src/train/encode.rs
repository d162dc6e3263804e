//! Frozen CLIP features for the later stages, computed on the plain (non-autodiff) device
//! and handed over as host vectors.

use burn::prelude::*;

use super::clip::tokenize;
use super::data::planar;
use super::world::{Split, SplitMix64, World, render};
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

impl Features {
    /// Replaces each row's caption by the empty one with probability `p` (the unconditional
    /// branch classifier-free guidance needs); returns which rows were dropped.
    pub fn drop_captions(&mut self, empty: &Features, rng: &mut SplitMix64, p: f64) -> Vec<bool> {
        let (e, w, n) = (self.embed_dim, self.width, self.seq);
        (0..self.masks.len())
            .map(|r| {
                let drop = rng.chance(p);
                if drop {
                    self.text_embeds[r * e..(r + 1) * e].copy_from_slice(&empty.text_embeds[..e]);
                    self.text_hidden[r * n * w..(r + 1) * n * w].copy_from_slice(&empty.text_hidden[..n * w]);
                    self.masks[r] = empty.masks[0].clone();
                }
                drop
            })
            .collect()
    }
}

impl FrozenClip {
    /// Features of the training pictures `start..start + n` of `world`, rendered at CLIP's
    /// 32 px: the batches of the prior stages and the statistics they are fitted on.
    pub fn world_features(&self, world: &World, start: u64, n: usize) -> Result<Features, String> {
        let samples: Vec<_> = (0..n as u64).map(|i| world.sample(start + i, Split::Train)).collect();
        let mut pixels = Vec::with_capacity(n * 3 * 32 * 32);
        for s in &samples {
            pixels.extend(planar(&render(&s.scene, 32)?, 32));
        }
        let captions: Vec<String> = samples.into_iter().map(|s| s.caption).collect();
        self.features(&captions, Some((pixels, 32)))
    }

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
