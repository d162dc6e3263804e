//! The operations users run, each reading top to bottom like the paper.

use std::hash::{Hash, Hasher};

use burn::prelude::*;

use super::engine::{Engine, part};
use super::images::{clip_pixel_values, picture_to_tensor, to_pictures};
use super::latent::{cosine, slerp, text_diff};
use super::noise::Noise;
use super::stages::{Start, TextBatch, rows};
use super::{Control, DecodeParams, GenerateParams, Picture, PipelineError, PriorKind, Sampler, StageParams, StartLatent};
use crate::model::nn::{tensor_from, to_vec};

/// What an operation hands back.
#[derive(Debug, Clone)]
pub struct Generated {
    pub pictures: Vec<Picture>,
    /// The CLIP image embedding each picture was decoded from.
    pub embeddings: Vec<Vec<f32>>,
}

pub use super::request::Endpoint;

/// A DDIM-inverted image.
#[derive(Debug, Clone)]
pub struct Inversion {
    /// x_T, `[3, s, s]` flattened.
    pub x_t: Vec<f32>,
    pub size: usize,
}

pub fn picture_hash(p: &Picture) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (p.width, p.height).hash(&mut h);
    p.rgb.hash(&mut h);
    h.finish()
}

impl Engine {
    /// Text → image: caption → CLIP text → prior (guided) → z_i → decoder (guided) →
    /// super-resolution. With `seeds.decoder == None` the random stream is diffusers'.
    pub fn text_to_image(&mut self, p: &GenerateParams, ctl: &mut Control) -> Result<Generated, PipelineError> {
        p.validate().map_err(PipelineError::Input)?;
        let best_of = p.best_of;
        let guided = p.prior.guidance > 1.0 || p.decoder.guidance > 1.0;

        // 1. The caption, and the empty caption for classifier-free guidance.
        let n = p.num_images * best_of;
        let cond = self.text_batch(&p.prompt, n, ctl)?;
        let uncond = if guided { Some(self.text_batch("", n, ctl)?) } else { None };

        // 2. The prior samples CLIP image embeddings z_i.
        let mut noise = Noise::seeded(p.seeds.prior);
        let z = match p.prior_kind {
            PriorKind::Diffusion => self.run_prior(&cond, uncond.as_ref(), &p.prior, &mut noise, ctl)?,
            PriorKind::Autoregressive => {
                self.run_ar_prior(&cond, uncond.as_ref(), p.prior.guidance, p.temperature, &mut noise, ctl)?
            }
        };
        let z = if best_of > 1 { self.keep_best(z, &cond, p.num_images, best_of)? } else { z };
        let embeddings = rows(z.clone());

        // 3. The decoder inverts z_i to a 64 px picture, 4. super-resolution upsamples it.
        let cond = self.text_batch(&p.prompt, p.num_images, ctl)?;
        let uncond = if guided { Some(self.text_batch("", p.num_images, ctl)?) } else { None };
        let mut noise = match p.seeds.decoder {
            Some(seed) => Noise::seeded(seed),
            None => noise,
        };
        let small = self.run_decoder(z, &cond, uncond.as_ref(), &p.decoder, Start::Noise, &mut noise, ctl)?;
        let image = self.run_super_res(small, p.super_res_steps, &mut noise, ctl)?;
        Ok(Generated { pictures: to_pictures(image), embeddings })
    }

    /// Best-of-N: per image, the candidate whose z_i is closest to the caption's z_t.
    fn keep_best(&self, z: Tensor<2>, cond: &TextBatch, images: usize, n: usize) -> Result<Tensor<2>, PipelineError> {
        let candidates = rows(z.clone());
        let text = rows(cond.embeds.clone());
        let picks: Vec<usize> = (0..images)
            .map(|k| {
                (k * n..(k + 1) * n)
                    .max_by(|&a, &b| cosine(&candidates[a], &text[a]).total_cmp(&cosine(&candidates[b], &text[b])))
                    .unwrap_or(k * n)
            })
            .collect();
        let chosen: Vec<Tensor<2>> = picks.into_iter().map(|i| z.clone().narrow(0, i, 1)).collect();
        Ok(Tensor::cat(chosen, 0))
    }

    /// The CLIP image embedding of a picture (cached by content).
    pub fn image_embedding(&mut self, image: &Picture, ctl: &mut Control) -> Result<Vec<f32>, PipelineError> {
        let key = picture_hash(image);
        if let Some(z) = self.caches.image_embeds.get(&key) {
            return Ok(z);
        }
        self.load_image_encoder()?;
        ctl.check()?;
        let pixels = clip_pixel_values(image, part!(self, image_processor)?, &self.device)?;
        let z = part!(self, image_encoder)?.forward(pixels)?;
        let z = to_vec(z);
        self.caches.image_embeds.insert(key, z.clone());
        Ok(z)
    }

    /// Decodes image embeddings (one picture per row) with a caption ("" for variations),
    /// optionally from a given x_T. Shared by variations, interpolation and text diffs.
    pub fn decode_embeddings(
        &mut self,
        z: &[Vec<f32>],
        caption: &str,
        p: &DecodeParams,
        start: Start,
        ctl: &mut Control,
    ) -> Result<Generated, PipelineError> {
        // The rules every front end applies (1..=64 pictures, steps, guidance, η).
        DecodeParams { num_images: z.len(), ..p.clone() }.validate().map_err(PipelineError::Input)?;
        let dim = z[0].len();
        if z.iter().any(|r| r.len() != dim || r.iter().any(|v| !v.is_finite())) {
            return Err(PipelineError::Input("image embeddings must be finite and of equal length".into()));
        }
        let b = z.len();
        let guided = p.decoder.guidance > 1.0;
        let cond = self.text_batch(caption, b, ctl)?;
        let uncond = if guided { Some(self.text_batch("", b, ctl)?) } else { None };
        let zt = tensor_from(z.concat(), [b, dim], &self.device);
        let mut noise = Noise::seeded(p.seed);
        let small = self.run_decoder(zt, &cond, uncond.as_ref(), &p.decoder, start, &mut noise, ctl)?;
        let image = self.run_super_res(small, p.super_res_steps, &mut noise, ctl)?;
        Ok(Generated { pictures: to_pictures(image), embeddings: z.to_vec() })
    }

    /// Variations: the picture's CLIP embedding decoded `num_images` times with new noise,
    /// as diffusers' UnCLIPImageVariationPipeline does.
    pub fn variations(&mut self, image: &Picture, p: &DecodeParams, ctl: &mut Control) -> Result<Generated, PipelineError> {
        p.validate().map_err(PipelineError::Input)?;
        let z = self.image_embedding(image, ctl)?;
        self.decode_embeddings(&vec![z; p.num_images], "", p, Start::Noise, ctl)
    }

    /// DDIM inversion of the decoder for a picture, conditioned on its own embedding and the
    /// empty caption (cached). Gives the x_T half of the bipartite latent (z_i, x_T).
    pub fn invert_image(&mut self, image: &Picture, steps: usize, guidance: f32, ctl: &mut Control) -> Result<Inversion, PipelineError> {
        let key = (picture_hash(image), steps, guidance.to_bits());
        let size = self.decoder_size();
        if let Some(x_t) = self.caches.inverted.get(&key) {
            return Ok(Inversion { x_t, size });
        }
        let z = self.image_embedding(image, ctl)?;
        let target = picture_to_tensor(image, size, &self.device)?;
        let cond = self.text_batch("", 1, ctl)?;
        let uncond = if guidance > 1.0 { Some(self.text_batch("", 1, ctl)?) } else { None };
        let zt = tensor_from(z.clone(), [1, z.len()], &self.device);
        let x_t = to_vec(self.invert(target, zt, &cond, uncond.as_ref(), steps, guidance, ctl)?);
        self.caches.inverted.insert(key, x_t.clone());
        Ok(Inversion { x_t, size })
    }

    /// Decodes an inversion back with deterministic DDIM at base resolution and returns the
    /// reconstruction and its PSNR (dB) against the input resized the same way.
    pub fn reconstruct(
        &mut self,
        image: &Picture,
        inv: &Inversion,
        steps: usize,
        guidance: f32,
        ctl: &mut Control,
    ) -> Result<(Picture, f64), PipelineError> {
        let z = self.image_embedding(image, ctl)?;
        let p = DecodeParams {
            num_images: 1,
            seed: 0,
            decoder: StageParams { steps, guidance, sampler: Sampler::Ddim, eta: 0.0 },
            super_res_steps: 0,
        };
        let start = tensor_from(inv.x_t.clone(), [1, 3, inv.size, inv.size], &self.device);
        let out = self.decode_embeddings(&[z], "", &p, Start::Inverted(start), ctl)?;
        let target = to_pictures(picture_to_tensor(image, inv.size, &self.device)?);
        let rec = out.pictures.into_iter().next().ok_or(PipelineError::Input("no picture".into()))?;
        let psnr = psnr(&rec.rgb, &target[0].rgb);
        Ok((rec, psnr))
    }

    /// The embedding of an interpolation endpoint.
    fn endpoint_embedding(&mut self, e: &Endpoint, p: &DecodeParams, ctl: &mut Control) -> Result<Vec<f32>, PipelineError> {
        match e {
            Endpoint::Image(img) => self.image_embedding(img, ctl),
            Endpoint::Prompt(text) => {
                let key = (text.clone(), p.seed);
                if let Some(z) = self.caches.prompt_embeds.get(&key) {
                    return Ok(z);
                }
                let prior = GenerateParams::default().prior;
                let cond = self.text_batch(text, 1, ctl)?;
                let uncond = self.text_batch("", 1, ctl)?;
                let mut noise = Noise::seeded(p.seed);
                let z = to_vec(self.run_prior(&cond, Some(&uncond), &prior, &mut noise, ctl)?);
                self.caches.prompt_embeds.insert(key, z.clone());
                Ok(z)
            }
        }
    }

    /// Interpolation: z_θ = slerp(z₁, z₂, θ), decoded from a fixed x_T or from the slerp of
    /// the two inverted x_T (image endpoints only).
    pub fn interpolate(
        &mut self,
        a: &Endpoint,
        b: &Endpoint,
        theta: f32,
        start: StartLatent,
        p: &DecodeParams,
        ctl: &mut Control,
    ) -> Result<Generated, PipelineError> {
        if !(0.0..=1.0).contains(&theta) {
            return Err(PipelineError::Input(format!("θ must be in [0, 1], got {theta}")));
        }
        let za = self.endpoint_embedding(a, p, ctl)?;
        let zb = self.endpoint_embedding(b, p, ctl)?;
        let z = slerp(&za, &zb, theta);
        match (start, a, b) {
            (StartLatent::Inverted, Endpoint::Image(ia), Endpoint::Image(ib)) => {
                let p = p.from_inverted();
                let xa = self.invert_image(ia, p.decoder.steps, p.decoder.guidance, ctl)?;
                let xb = self.invert_image(ib, p.decoder.steps, p.decoder.guidance, ctl)?;
                let x_t = tensor_from(slerp(&xa.x_t, &xb.x_t, theta), [1, 3, xa.size, xa.size], &self.device);
                self.decode_embeddings(&[z], "", &p, Start::Inverted(x_t), ctl)
            }
            (StartLatent::Inverted, _, _) => Err(PipelineError::Input("inverted start latents need two images".into())),
            // A fixed x_T: the decode seed draws the same noise for every θ.
            (StartLatent::Fixed, _, _) => self.decode_embeddings(&[z], "", p, Start::Noise, ctl),
        }
    }

    /// Text diff: push an image's embedding toward a caption,
    /// z_θ = slerp(ẑ_i, norm(z_t − z_t0), θ)·‖z_i‖, decoded from its inverted x_T.
    pub fn text_diff(
        &mut self,
        image: &Picture,
        to: &str,
        from: &str,
        theta: f32,
        p: &DecodeParams,
        ctl: &mut Control,
    ) -> Result<Generated, PipelineError> {
        if !(0.0..=1.0).contains(&theta) {
            return Err(PipelineError::Input(format!("θ must be in [0, 1], got {theta}")));
        }
        let z_i = self.image_embedding(image, ctl)?;
        let z_t = to_vec(self.encode_prompt(to, ctl)?.embeds);
        let z_t0 = to_vec(self.encode_prompt(from, ctl)?.embeds);
        if z_t.len() != z_i.len() {
            return Err(PipelineError::Input("text and image embeddings differ in size".into()));
        }
        let z = text_diff(&z_i, &z_t, &z_t0, theta);
        let p = p.from_inverted();
        let inv = self.invert_image(image, p.decoder.steps, p.decoder.guidance, ctl)?;
        let x_t = tensor_from(inv.x_t, [1, 3, inv.size, inv.size], &self.device);
        // θ = 0 is the image's own embedding: the exact round trip; any edit keeps clipping.
        let start = if theta == 0.0 { Start::Inverted(x_t) } else { Start::Edited(x_t) };
        self.decode_embeddings(&[z], "", &p, start, ctl)
    }
}

/// Peak signal-to-noise ratio of two RGB8 buffers, in dB.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let mse = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>() / a.len() as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64 * 255.0 / mse).log10() }
}
