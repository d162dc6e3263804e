//! `unclip eval --priors`: the paper's prior comparison (its Tables 1–2) in miniature. The
//! same captions go through the diffusion prior, the autoregressive prior (with z_i·z_t set
//! to the top and to the bottom half of its range) and a random-embedding baseline; every
//! embedding is decoded by the same decoder with the same seeds, and the oracle reads the
//! pictures. Only the prior differs between rows, and only the prior is timed.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::eval::{CaptionAccuracy, DIVERSITY_CAPTIONS, DIVERSITY_PER_CAPTION, EVAL_WORLD_SEED, Tally, compositions, read};
use super::oracle::Reading;
use super::world::{Split, World};
use crate::model::ar_codebook::DotHalf;
use crate::pipeline::latent::cosine;
use crate::pipeline::noise::Noise;
use crate::pipeline::stages::{Start, rows};
use crate::pipeline::{DecodeParams, Engine, GenerateParams, Picture, silent};

/// The priors compared, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PriorRowKind {
    Diffusion,
    AutoregressiveHighDot,
    AutoregressiveLowDot,
    /// Uniformly random tokens of the autoregressive prior's codebook: embeddings with the
    /// training distribution's per-component spread that ignore the caption.
    RandomEmbedding,
}

impl PriorRowKind {
    pub const ALL: [PriorRowKind; 4] = [
        PriorRowKind::Diffusion,
        PriorRowKind::AutoregressiveHighDot,
        PriorRowKind::AutoregressiveLowDot,
        PriorRowKind::RandomEmbedding,
    ];

    fn label(self) -> &'static str {
        match self {
            PriorRowKind::Diffusion => "diffusion prior (25 steps)",
            PriorRowKind::AutoregressiveHighDot => "autoregressive prior, z_i·z_t top half (the paper's setting)",
            PriorRowKind::AutoregressiveLowDot => "autoregressive prior, z_i·z_t bottom half",
            PriorRowKind::RandomEmbedding => "random embedding (baseline)",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PriorRow {
    pub prior: PriorRowKind,
    /// Caption accuracy on seen colour–shape pairs.
    pub seen: CaptionAccuracy,
    /// …and on held-out pairs.
    pub held_out: CaptionAccuracy,
    /// Mean distinct (position, size, background) readings per caption.
    pub distinct: f64,
    /// Mean cosine between the sampled z_i and the caption's z_t.
    pub clip_score: f64,
    /// Seconds the prior alone takes per embedding (batch of one, guided).
    pub prior_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PriorReport {
    pub samples: usize,
    pub diversity_captions: usize,
    pub diversity_per_caption: usize,
    pub rows: Vec<PriorRow>,
    pub seconds: f64,
}

/// Samples `n` embeddings for `caption` with one of the priors, at the app's defaults
/// (guidance 4; temperature 1).
fn sample(e: &mut Engine, kind: PriorRowKind, caption: &str, n: usize, seed: u64) -> Result<Vec<Vec<f32>>, String> {
    let d = GenerateParams::default();
    silent(|ctl| {
        let cond = e.text_batch(caption, n, ctl)?;
        let uncond = e.text_batch("", n, ctl)?;
        let mut noise = Noise::seeded(seed);
        let z = match kind {
            PriorRowKind::Diffusion => e.run_prior(&cond, Some(&uncond), &d.prior, &mut noise, ctl)?,
            PriorRowKind::AutoregressiveHighDot | PriorRowKind::AutoregressiveLowDot => {
                let half = if kind == PriorRowKind::AutoregressiveHighDot { DotHalf::High } else { DotHalf::Low };
                e.run_ar_prior_at(&cond, Some(&uncond), d.prior.guidance, d.temperature, half, &mut noise, ctl)?
            }
            PriorRowKind::RandomEmbedding => {
                e.load_ar_prior()?;
                let book = e.parts().ar_prior.as_ref().map(|m| m.codebook()).ok_or_else(|| {
                    crate::pipeline::PipelineError::Input("the autoregressive prior is not loaded".into())
                })?;
                let u = noise.uniform(n * book.components_kept())?;
                let z: Vec<f32> = u.chunks_exact(book.components_kept()).flat_map(|r| book.random_embedding(r)).collect();
                crate::model::nn::tensor_from(z, [n, book.dim], &e.device)
            }
        };
        Ok(rows(z))
    })
    .map_err(|err: crate::pipeline::PipelineError| err.to_string())
}

fn decode(e: &mut Engine, z: &[Vec<f32>], caption: &str, seed: u64) -> Result<Vec<Option<Reading>>, String> {
    let p = DecodeParams { num_images: z.len(), seed, ..DecodeParams::default() };
    let pics: Vec<Picture> = silent(|ctl| e.decode_embeddings(z, caption, &p, Start::Noise, ctl))
        .map_err(|err| err.to_string())?
        .pictures;
    Ok(pics.iter().map(read).collect())
}

/// The caption's CLIP text embedding.
fn text_embedding(e: &mut Engine, caption: &str) -> Result<Vec<f32>, String> {
    let t = silent(|ctl| e.encode_prompt(caption, ctl)).map_err(|err| err.to_string())?;
    Ok(crate::model::nn::to_vec(t.embeds))
}

fn row(e: &mut Engine, world: &World, kind: PriorRowKind, samples: usize) -> Result<PriorRow, String> {
    let mut r = PriorRow {
        prior: kind,
        seen: CaptionAccuracy::default(),
        held_out: CaptionAccuracy::default(),
        distinct: 0.0,
        clip_score: 0.0,
        prior_seconds: 0.0,
    };
    let (mut timed, mut scored) = (0usize, 0usize);
    for (split, acc) in [(Split::Train, &mut r.seen), (Split::HeldOut, &mut r.held_out)] {
        for i in 0..samples {
            let s = world.sample(i as u64, split);
            // Encoded (and cached) first, so that only the prior is timed.
            let t = text_embedding(e, &s.caption)?;
            let started = Instant::now();
            let z = sample(e, kind, &s.caption, 1, i as u64)?;
            // The first call loads the networks; it is not part of the prior's time.
            if i > 0 {
                r.prior_seconds += started.elapsed().as_secs_f64();
                timed += 1;
            }
            r.clip_score += cosine(&z[0], &t);
            scored += 1;
            let reading = decode(e, &z, &s.caption, i as u64)?;
            acc.score(&s.mentioned, reading[0].as_ref());
        }
    }
    r.prior_seconds /= timed.max(1) as f64;
    r.clip_score /= scored.max(1) as f64;
    for (k, c) in DIVERSITY_CAPTIONS.iter().enumerate() {
        let z = sample(e, kind, c, DIVERSITY_PER_CAPTION, 1000 + k as u64)?;
        let readings = decode(e, &z, c, 1000 + k as u64)?;
        r.distinct += compositions(readings.iter().flatten()) as f64 / DIVERSITY_CAPTIONS.len() as f64;
    }
    Ok(r)
}

/// Every row, `samples` captions per split; the rows run two at a time on two engines.
pub fn compare(model: &Path, samples: usize, device: burn::tensor::Device) -> Result<PriorReport, String> {
    let started = Instant::now();
    let world = World::new(EVAL_WORLD_SEED);
    let open = || Engine::open(model, device.clone()).map_err(|err| err.to_string());
    if !crate::model::folder::ModelFolder::open(model).map_err(|err| err.to_string())?.has_ar_prior() {
        return Err(format!("{}: no autoregressive prior (ar_prior/) to compare", model.display()));
    }
    let halves: Vec<Result<Vec<PriorRow>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = PriorRowKind::ALL
            .chunks(2)
            .map(|kinds| {
                let (open, world) = (&open, &world);
                scope.spawn(move || -> Result<Vec<PriorRow>, String> {
                    let mut e = open()?;
                    kinds.iter().map(|&k| row(&mut e, world, k, samples)).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("an evaluation thread panicked".into()))).collect()
    });
    let mut rows = Vec::new();
    for h in halves {
        rows.extend(h?);
    }
    Ok(PriorReport {
        samples,
        diversity_captions: DIVERSITY_CAPTIONS.len(),
        diversity_per_caption: DIVERSITY_PER_CAPTION,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The README table.
pub fn table(r: &PriorReport) -> String {
    let pct = |t: &Tally| format!("{:.0}% ({}/{})", 100.0 * t.rate(), t.correct, t.total);
    let mut s = String::from(
        "| prior | seen: all stated / shape / colour | held-out: shape / colour | distinct compositions per caption | z_i·z_t (cosine) | prior time per sample |\n|---|---|---|---|---|---|\n",
    );
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} / {} / {} | {} / {} | {:.2} | {:.3} | {} |\n",
            row.prior.label(),
            pct(&row.seen.all),
            pct(&row.seen.shape),
            pct(&row.seen.colour),
            pct(&row.held_out.shape),
            pct(&row.held_out.colour),
            row.distinct,
            row.clip_score,
            if row.prior == PriorRowKind::RandomEmbedding { "—".to_string() } else { format!("{:.3} s", row.prior_seconds) }
        ));
    }
    s
}
