//! The stages of the cascade, each a method on the engine, in the order the paper runs
//! them: caption → CLIP text encoding → prior → image embedding → decoder (64 px) →
//! super-resolution. Also DDIM inversion of the decoder, for the bipartite latent.

use burn::prelude::*;

use super::engine::{Engine, PromptEncoding, part};
use super::images::resize_batch;
use super::noise::Noise;
use super::{Control, PipelineError, Progress, Sampler, Stage, StageParams};
use crate::diffusion::ddim::Ddim;
use crate::diffusion::guidance::{guide_decoder, guide_prior};
use crate::diffusion::unclip_scheduler::UnclipScheduler;
use crate::kernels::preview::to_preview;
use crate::kernels::Kernels;
use crate::kernels::sampler::{self as sampler_kernel, Rule, StepInput};
use crate::model::ar_codebook::DotHalf;
use crate::model::nn::{tensor_from, to_vec};
use crate::model::unet::attention::Context;
use crate::model::unet::decoder::mask_bias;

/// A batch of prompt encodings, one row per image.
#[derive(Clone)]
pub struct TextBatch {
    pub embeds: Tensor<2>,
    pub hidden: Tensor<3>,
    pub mask: Vec<Vec<bool>>,
}

impl TextBatch {
    fn rows(&self) -> usize {
        self.mask.len()
    }

    /// [uncond; cond], the batch layout of classifier-free guidance.
    pub fn with_uncond(uncond: &TextBatch, cond: &TextBatch) -> TextBatch {
        TextBatch {
            embeds: Tensor::cat(vec![uncond.embeds.clone(), cond.embeds.clone()], 0),
            hidden: Tensor::cat(vec![uncond.hidden.clone(), cond.hidden.clone()], 0),
            mask: uncond.mask.iter().chain(&cond.mask).cloned().collect(),
        }
    }
}

/// Fails on NaN/inf so a broken model gives a message instead of a black picture.
fn ensure_finite<const D: usize>(x: &Tensor<D>, stage: &'static str) -> Result<(), PipelineError> {
    let bad = x.clone().is_nan().any().into_scalar::<bool>() || x.clone().is_inf().any().into_scalar::<bool>();
    if bad { Err(PipelineError::NotFinite(stage)) } else { Ok(()) }
}

impl Engine {
    /// Encodes one prompt (cached), warning when it had to be cut to the model's length.
    pub fn encode_prompt(&mut self, prompt: &str, ctl: &mut Control) -> Result<PromptEncoding, PipelineError> {
        if let Some(hit) = self.caches.prompts.get(&prompt.to_string()) {
            return Ok(hit);
        }
        self.load_text_encoder()?;
        ctl.check()?;
        let tokens = part!(self, tokenizer)?.encode(prompt)?;
        if tokens.truncated {
            ctl.report(Progress::Note(format!(
                "the prompt is longer than {} tokens; the end was cut",
                part!(self, tokenizer)?.max_length
            )));
        }
        let enc = part!(self, text_encoder)?.forward(&[tokens.ids], &self.device)?;
        let out = PromptEncoding { embeds: enc.text_embeds, hidden: enc.last_hidden_state, mask: tokens.mask };
        self.caches.prompts.insert(prompt.to_string(), out.clone());
        Ok(out)
    }

    /// The prompt repeated for `n` images.
    pub fn text_batch(&mut self, prompt: &str, n: usize, ctl: &mut Control) -> Result<TextBatch, PipelineError> {
        let e = self.encode_prompt(prompt, ctl)?;
        Ok(TextBatch {
            embeds: e.embeds.repeat_dim(0, n),
            hidden: e.hidden.repeat_dim(0, n),
            mask: vec![e.mask; n],
        })
    }

    /// Prior: samples normalised CLIP image embeddings for `cond` (with `uncond` for
    /// guidance) and returns them in raw CLIP space, `[rows, E]`.
    pub fn run_prior(
        &mut self,
        cond: &TextBatch,
        uncond: Option<&TextBatch>,
        p: &StageParams,
        noise: &mut Noise,
        ctl: &mut Control,
    ) -> Result<Tensor<2>, PipelineError> {
        // Encodings are cached: the encoders can go before a diffusion stage loads.
        self.release_encoders();
        self.load_prior()?;
        let prior = part!(self, prior)?;
        let sched = part!(self, prior_scheduler)?;
        let timesteps = sched.timesteps(p.steps)?;
        let b = cond.rows();
        let dim = prior.config.clip_embed_dim();
        let text = match uncond {
            Some(u) => TextBatch::with_uncond(u, cond),
            None => cond.clone(),
        };
        let ddim = ddim_for(sched);
        let mut latents: Tensor<2> = noise.draw([b, dim], &self.device)?;
        for (i, &t) in timesteps.iter().enumerate() {
            ctl.check()?;
            let prev = timesteps.get(i + 1).copied();
            let input = if uncond.is_some() { Tensor::cat(vec![latents.clone(), latents.clone()], 0) } else { latents.clone() };
            let out = prior.forward(input, t as f32, text.embeds.clone(), text.hidden.clone(), &text.mask);
            let pred = if uncond.is_some() { guide_prior(out, p.guidance) } else { out };
            latents = step(sched, &ddim, p, pred, None, t, prev, latents, noise, self.at())?.0;
            ctl.report(Progress::Step { stage: Stage::Prior, step: i + 1, total: timesteps.len(), preview: None });
        }
        ensure_finite(&latents, "prior")?;
        let z = prior.post_process_latents(latents);
        self.release(Stage::Prior);
        Ok(z)
    }

    /// The autoregressive prior: draws each image embedding's PCA tokens one at a time,
    /// guided in logit space (uncond + g·(cond − uncond)) at `temperature`, with z_i·z_t set
    /// to the top half of its range as the paper samples. Returns raw CLIP embeddings `[rows, E]`.
    pub fn run_ar_prior(
        &mut self,
        cond: &TextBatch,
        uncond: Option<&TextBatch>,
        guidance: f32,
        temperature: f32,
        noise: &mut Noise,
        ctl: &mut Control,
    ) -> Result<Tensor<2>, PipelineError> {
        self.run_ar_prior_at(cond, uncond, guidance, temperature, DotHalf::High, noise, ctl)
    }

    /// As `run_ar_prior`, with the z_i·z_t condition drawn from `half` (the evaluation
    /// compares both halves).
    #[allow(clippy::too_many_arguments)]
    pub fn run_ar_prior_at(
        &mut self,
        cond: &TextBatch,
        uncond: Option<&TextBatch>,
        guidance: f32,
        temperature: f32,
        half: DotHalf,
        noise: &mut Noise,
        ctl: &mut Control,
    ) -> Result<Tensor<2>, PipelineError> {
        self.release_encoders();
        self.load_ar_prior()?;
        let model = part!(self, ar_prior)?;
        let book = model.codebook();
        let (k, vocab) = (model.config.num_components, model.config.num_buckets);
        let b = cond.rows();
        let text = match uncond {
            Some(u) => TextBatch::with_uncond(u, cond),
            None => cond.clone(),
        };
        let mut dot: Vec<usize> = noise.uniform(b)?.into_iter().map(|u| book.dot_in_half(half, u)).collect();
        if uncond.is_some() {
            // The unconditional rows saw no caption in training, hence no z_i·z_t either.
            let null = vec![model.config.num_dot_buckets; b];
            dot = null.into_iter().chain(dot).collect();
        }
        let mut tokens: Vec<Vec<usize>> = vec![Vec::with_capacity(k); b];
        for j in 0..k {
            ctl.check()?;
            let rows: Vec<Vec<usize>> =
                if uncond.is_some() { tokens.iter().chain(&tokens).cloned().collect() } else { tokens.clone() };
            let logits = model.logits(text.hidden.clone(), text.embeds.clone(), &text.mask, &dot, &rows)?;
            let n = logits.dims()[0];
            let last = to_vec(logits.narrow(1, j, 1).reshape([n, vocab]));
            let draws = noise.uniform(b)?;
            for (r, u) in draws.into_iter().enumerate() {
                let c = &last[(n - b + r) * vocab..(n - b + r + 1) * vocab];
                let guided: Vec<f64> = match uncond {
                    Some(_) => {
                        let un = &last[r * vocab..(r + 1) * vocab];
                        un.iter().zip(c).map(|(&u, &c)| u as f64 + guidance as f64 * (c - u) as f64).collect()
                    }
                    None => c.iter().map(|&v| v as f64).collect(),
                };
                tokens[r].push(sample_token(&guided, temperature as f64, u)?);
            }
            ctl.report(Progress::Step { stage: Stage::Prior, step: j + 1, total: k, preview: None });
        }
        let e = book.dim;
        let z: Vec<f32> = tokens.iter().flat_map(|t| book.decode(t)).collect();
        let z = tensor_from(z, [b, e], &self.device);
        ensure_finite(&z, "prior")?;
        self.release(Stage::Prior);
        Ok(z)
    }

    /// Decoder conditioning for image embeddings `z` `[b, E]` and their captions.
    fn decoder_context(
        &self,
        z: Tensor<2>,
        cond: &TextBatch,
        uncond: Option<&TextBatch>,
    ) -> Result<(Context, Tensor<2>, Vec<Vec<bool>>), PipelineError> {
        let text_proj = part!(self, text_proj)?;
        let text = match uncond {
            Some(u) => TextBatch::with_uncond(u, cond),
            None => cond.clone(),
        };
        let c = text_proj.forward(z, text.embeds, text.hidden, uncond.is_some());
        let mask = text_proj.context_mask(&text.mask);
        // One context per generation: the added K/V projections are cached across its steps.
        let ctx = Context::new(c.encoder_hidden_states, Some(mask_bias(&mask, &self.device))).with_kv_cache();
        Ok((ctx, c.additive_clip_time_embeddings, mask))
    }

    /// One (guided) decoder evaluation on `latents` `[b, 3, s, s]`.
    fn decoder_eval(
        &self,
        latents: &Tensor<4>,
        t: usize,
        ctx: &Context,
        additive: &Tensor<2>,
        guided: Option<f32>,
    ) -> Result<Tensor<4>, PipelineError> {
        let channels = latents.dims()[1];
        let out = self.decoder_raw(latents, t, ctx, additive, guided.is_some())?;
        Ok(match guided {
            Some(scale) => guide_decoder(out, channels, scale),
            None => out,
        })
    }

    /// The decoder's raw output: the `[uncond; cond]` batch `[2b, ..]` when `cfg`.
    fn decoder_raw(&self, latents: &Tensor<4>, t: usize, ctx: &Context, additive: &Tensor<2>, cfg: bool) -> Result<Tensor<4>, PipelineError> {
        let decoder = part!(self, decoder)?;
        let input = if cfg { Tensor::cat(vec![latents.clone(), latents.clone()], 0) } else { latents.clone() };
        Ok(decoder.forward(input, t as f32, Some(additive.clone()), Some(ctx)))
    }

    /// Decoder: image embeddings `[b, E]` → images `[b, 3, s, s]` in [-1, 1], from `start`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_decoder(
        &mut self,
        z: Tensor<2>,
        cond: &TextBatch,
        uncond: Option<&TextBatch>,
        p: &StageParams,
        start: Start,
        noise: &mut Noise,
        ctl: &mut Control,
    ) -> Result<Tensor<4>, PipelineError> {
        self.release_encoders();
        self.load_decoder()?;
        let b = cond.rows();
        let size = self.decoder_size();
        let channels = part!(self, decoder)?.conv_in.weight.dims()[1];
        let (ctx, additive, _) = self.decoder_context(z, cond, uncond)?;
        let sched = part!(self, decoder_scheduler)?;
        let mut timesteps = sched.timesteps(p.steps)?;
        let ddim = match start {
            Start::Noise => ddim_for(sched),
            Start::Inverted(_) => Ddim { clip_sample: None, ..ddim_for(sched) },
            Start::Edited(_) => ddim_for(sched),
        };
        let mut latents = match start {
            Start::Noise => noise.draw([b, channels, size, size], &self.device)?,
            Start::Inverted(x) | Start::Edited(x) => {
                // An inverted latent sits at the second timestep (see `invert`).
                timesteps.remove(0);
                x
            }
        };
        let guided = uncond.map(|_| p.guidance);
        for (i, &t) in timesteps.iter().enumerate() {
            ctl.check()?;
            let prev = timesteps.get(i + 1).copied();
            // Guidance happens inside the step (fused into the sampler kernel on wgpu).
            let out = self.decoder_raw(&latents, t, &ctx, &additive, guided.is_some())?;
            let (next, x0) = step(&sched, &ddim, p, out, guided, t, prev, latents, noise, self.at())?;
            latents = next;
            let preview = if ctl.previews { Some(to_preview(self.kernels, x0)) } else { None };
            ctl.report(Progress::Step { stage: Stage::Decoder, step: i + 1, total: timesteps.len(), preview });
        }
        ensure_finite(&latents, "decoder")?;
        self.release(Stage::Decoder);
        Ok(latents.clamp(-1.0, 1.0))
    }

    /// DDIM inversion of the decoder: image `[b, 3, s, s]` in [-1, 1] with its embedding →
    /// the latent at the second of the timesteps of `steps`-step sampling, from which
    /// `run_decoder` (given it as `start`) reconstructs the image with η = 0.
    pub fn invert(
        &mut self,
        image: Tensor<4>,
        z: Tensor<2>,
        cond: &TextBatch,
        uncond: Option<&TextBatch>,
        steps: usize,
        guidance: f32,
        ctl: &mut Control,
    ) -> Result<Tensor<4>, PipelineError> {
        self.release_encoders();
        self.load_decoder()?;
        let (ctx, additive, _) = self.decoder_context(z, cond, uncond)?;
        let sched = part!(self, decoder_scheduler)?;
        let timesteps = sched.timesteps(steps)?;
        let ddim = Ddim { clip_sample: None, ..ddim_for(sched) };
        let guided = uncond.map(|_| guidance);
        let mut x = image;
        let n = timesteps.len();
        // The last step (to the first sampling timestep, ᾱ ≈ 2e-9 on a cosine schedule) is
        // left out: it scales the picture by √ᾱ ≈ 5e-5, below what an ε prediction resolves,
        // so nothing of the picture would survive the way back.
        for (k, i) in (1..n).rev().enumerate() {
            ctl.check()?;
            let to = timesteps[i];
            let from = timesteps.get(i + 1).copied();
            let out = self.decoder_eval(&x, to, &ctx, &additive, guided)?;
            let mut next = ddim.invert_step(out, from, to, x.clone());
            // Sampling steps `to → from` with ε evaluated at x_to, but the plain inversion step
            // only had ε at x_from. Iterating x_to ← invert(ε(x_to)) finds the x_to whose
            // sampling step lands on x exactly (fixed-point inversion).
            for _ in 0..INVERSION_REFINEMENTS {
                let out = self.decoder_eval(&next, to, &ctx, &additive, guided)?;
                next = ddim.invert_step_at(out, from, to, x.clone(), next);
            }
            x = next;
            ctl.report(Progress::Step { stage: Stage::Inversion, step: k + 1, total: n - 1, preview: None });
        }
        ensure_finite(&x, "inversion")?;
        Ok(x)
    }

    /// Super-resolution: `[b, 3, s, s]` → `[b, 3, S, S]` in [-1, 1]; the first network for
    /// all steps but the last, the last network for the last step. Without a
    /// super-resolution stage the input comes back unchanged.
    pub fn run_super_res(
        &mut self,
        small: Tensor<4>,
        steps: usize,
        noise: &mut Noise,
        ctl: &mut Control,
    ) -> Result<Tensor<4>, PipelineError> {
        self.release_encoders();
        if steps == 0 || !self.load_super_res()? {
            return Ok(small);
        }
        let [b, c, _, _] = small.dims();
        let size = self.super_res_size();
        // A copy, so the networks can be swapped inside the loop.
        let sched = part!(self, super_res_scheduler)?.clone();
        let timesteps = sched.timesteps(steps)?;
        let mut latents: Tensor<4> = noise.draw([b, c, size, size], &self.device)?;
        let upscaled = resize_batch(small, size, size)?;
        let p = StageParams { steps, guidance: 1.0, sampler: Sampler::Ddpm, eta: 0.0 };
        let ddim = ddim_for(&sched);
        for (i, &t) in timesteps.iter().enumerate() {
            ctl.check()?;
            let last = i + 1 == timesteps.len();
            if last && self.parts.super_res_last.is_none() {
                // release_stages: free the first network before the last one loads.
                self.parts.super_res_first = None;
                self.device.memory_cleanup();
                self.load_super_res_last()?;
            }
            let unet = if last { part!(self, super_res_last)? } else { part!(self, super_res_first)? };
            let input = Tensor::cat(vec![latents.clone(), upscaled.clone()], 1);
            let out = unet.forward(input, t as f32, None, None);
            let prev = timesteps.get(i + 1).copied();
            let (next, x0) = step(&sched, &ddim, &p, out, None, t, prev, latents, noise, self.at())?;
            latents = next;
            let preview = if ctl.previews { Some(to_preview(self.kernels, x0)) } else { None };
            ctl.report(Progress::Step { stage: Stage::SuperRes, step: i + 1, total: timesteps.len(), preview });
        }
        ensure_finite(&latents, "super-resolution")?;
        self.release(Stage::SuperRes);
        Ok(latents)
    }
}

/// Where the decoder starts.
pub enum Start {
    /// x_T drawn from the run's noise.
    Noise,
    /// A latent from [`Engine::invert`] (or a blend of two) under the embedding it was
    /// inverted with (or their blend), decoded without x̂₀ clipping, which the inversion
    /// cannot undo: the round trip is then exact up to the fixed point's residual (≈ 50 dB on
    /// the shipped model, 25–36 dB clipped).
    Inverted(Tensor<4>),
    /// An inverted latent under a moved embedding (text diffs), decoded with the scheduler's
    /// clipping: unclipped, the edited latent decodes to noise.
    Edited(Tensor<4>),
}

/// Fixed-point iterations per inversion step: on the shipped model 0 → 1 → 2 → 3 give
/// 33 → 44 → 51 → 54 dB reconstruction at 25 steps; two keep inversion at 3× a sampling pass.
const INVERSION_REFINEMENTS: usize = 2;

/// A DDIM sampler over a model scheduler's schedule, prediction type and clipping.
fn ddim_for(s: &UnclipScheduler) -> Ddim {
    Ddim {
        alphas_cumprod: s.alphas_cumprod.clone(),
        prediction: s.prediction,
        clip_sample: s.clip_sample,
        use_clipped_model_output: false,
    }
}

/// One sampler step with the noise drawn (only) when the step needs it, in the
/// reference's order. `guidance`: `model_output` is the `[uncond; cond]` batch to combine
/// (`guide_decoder`) first. On wgpu the whole step is one WGSL kernel (`kernels::sampler`),
/// elsewhere the burn ops. Returns (x_prev, x̂₀).
#[allow(clippy::too_many_arguments)]
fn step<const D: usize>(
    sched: &UnclipScheduler,
    ddim: &Ddim,
    p: &StageParams,
    model_output: Tensor<D>,
    guidance: Option<f32>,
    t: usize,
    prev: Option<usize>,
    sample: Tensor<D>,
    noise: &mut Noise,
    (device, kernels): (&Device, Kernels),
) -> Result<(Tensor<D>, Tensor<D>), PipelineError> {
    let shape: [usize; D] = sample.dims();
    let (rule, z) = match p.sampler {
        Sampler::Ddpm => {
            let z = if sched.needs_noise(t) { Some(noise.draw(shape, device)?) } else { None };
            (Rule::Ddpm(sched), z)
        }
        Sampler::Ddim => {
            let z = if ddim.needs_noise(t, prev, p.eta) { Some(noise.draw(shape, device)?) } else { None };
            (Rule::Ddim { ddim, eta: p.eta }, z)
        }
    };
    let out = sampler_kernel::step(kernels, rule, StepInput { model_output, guidance, t, prev, sample, noise: z })?;
    Ok((out.prev_sample, out.pred_original_sample))
}

/// Host copy of an embedding batch, one row per item.
pub fn rows(x: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, e] = x.dims();
    to_vec(x).chunks(e.max(1)).map(|c| c.to_vec()).collect()
}

/// A draw from softmax(logits / temperature) by inverting its cumulative sum at `u` ∈ [0, 1).
fn sample_token(logits: &[f64], temperature: f64, u: f64) -> Result<usize, PipelineError> {
    let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return Err(PipelineError::NotFinite("prior"));
    }
    let weights: Vec<f64> = logits.iter().map(|&l| ((l - top) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut target = u * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return Ok(i);
        }
        target -= w;
    }
    Ok(weights.len() - 1)
}
