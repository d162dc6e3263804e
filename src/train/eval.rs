//! `unclip eval`: measures a shapes model like a paper would, with the oracle as the judge —
//! caption accuracy (seen and held-out colour–shape pairs), diversity of what the caption
//! leaves open against a text-only decoder, variations, text diffs, interpolation and
//! inversion.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::Serialize;

use super::oracle::{Reading, analyse};
use super::world::{Colour, Mentioned, Position, Sample, Shape, Size, Split, World, render, with_article};
use crate::model::nn::to_vec;
use crate::pipeline::latent::cosine;
use crate::pipeline::ops::Endpoint;
use crate::pipeline::stages::Start;
use crate::pipeline::{
    DecodeParams, Engine, GenerateParams, Picture, Sampler, Seeds, StageParams, StartLatent, silent,
};

#[derive(Debug, Default, Clone, Serialize)]
pub struct Tally {
    pub correct: usize,
    pub total: usize,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        self.total += 1;
        self.correct += ok as usize;
    }
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            f64::NAN
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Accuracy of the attributes captions state.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CaptionAccuracy {
    pub all: Tally,
    pub shape: Tally,
    pub colour: Tally,
    pub size: Tally,
    pub position: Tally,
    pub background: Tally,
}

impl CaptionAccuracy {
    pub(crate) fn score(&mut self, m: &Mentioned, r: Option<&Reading>) {
        let mut all = true;
        let mut check = |t: &mut Tally, ok: Option<bool>| {
            if let Some(ok) = ok {
                t.add(ok);
                all &= ok;
            }
        };
        check(
            &mut self.shape,
            m.shape.map(|v| r.is_some_and(|r| r.shape == v)),
        );
        check(
            &mut self.colour,
            m.colour.map(|v| r.is_some_and(|r| r.colour == v)),
        );
        check(
            &mut self.size,
            m.size.map(|v| r.is_some_and(|r| r.size == v)),
        );
        check(
            &mut self.position,
            m.position.map(|v| r.is_some_and(|r| r.position == v)),
        );
        check(
            &mut self.background,
            m.background.map(|v| r.is_some_and(|r| r.background == v)),
        );
        self.all.add(all);
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Diversity {
    /// Mean number of distinct (position, size, background) readings per caption.
    pub unclip_distinct: f64,
    pub text_only_distinct: f64,
    /// Caption accuracy of the stated attributes, to show diversity is not bought with errors.
    pub unclip_accuracy: f64,
    pub text_only_accuracy: f64,
    pub samples_per_caption: usize,
    pub captions: usize,
}

/// The world every evaluation draws its captions and pictures from (not the training seed).
pub const EVAL_WORLD_SEED: u64 = 12345;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub samples: usize,
    pub seen: CaptionAccuracy,
    pub held_out: CaptionAccuracy,
    pub diversity: Diversity,
    /// Variations keep shape and colour…
    pub variations_kept: Tally,
    /// …while position or size change.
    pub variations_moved: Tally,
    /// Variations of generated pictures keep the shape and colour the source reads as.
    pub variations_of_generated_kept: Tally,
    /// Red → blue text diffs that flip the colour and keep the shape, per θ.
    pub text_diff: Vec<(f32, Tally)>,
    /// Interpolation ends that read as their own pictures (two per pair).
    pub interpolation_ends_fixed: Tally,
    pub interpolation_ends_inverted: Tally,
    pub interpolation_monotonic_fixed: Tally,
    pub interpolation_monotonic_inverted: Tally,
    pub inversion_psnr_db: f64,
    /// What the CLIP image embedding carries, read zero-shot against captions: the
    /// decoder can only draw what is in it.
    pub clip_shape: Tally,
    pub clip_colour: Tally,
    pub clip_position: Tally,
    pub clip_background: Tally,
    pub clip_size: Tally,
    pub seconds: f64,
}

fn picture(rgb: Vec<u8>, size: usize) -> Picture {
    Picture {
        width: size,
        height: size,
        rgb,
    }
}

pub(crate) fn read(p: &Picture) -> Option<Reading> {
    analyse(&p.rgb, p.width).ok()
}

/// The captions diversity is measured on (what they leave open: position, size, background),
/// and how many samples each.
pub(crate) const DIVERSITY_CAPTIONS: [&str; 5] =
    ["a red circle", "a blue star", "a green triangle", "a yellow square", "a purple cross"];
pub(crate) const DIVERSITY_PER_CAPTION: usize = 6;

/// How many distinct (position, size, background) readings the pictures show.
pub(crate) fn compositions<'a>(readings: impl IntoIterator<Item = &'a Reading>) -> usize {
    readings.into_iter().map(|rd| (rd.position.name(), rd.size.name(), rd.background.name())).collect::<BTreeSet<_>>().len()
}

fn stage(steps: usize, guidance: f32, sampler: Sampler, eta: f32) -> StageParams {
    StageParams {
        steps,
        guidance,
        sampler,
        eta,
    }
}

fn generate(e: &mut Engine, prompt: &str, seed: u64, n: usize) -> Result<Vec<Picture>, String> {
    let p = GenerateParams {
        prompt: prompt.to_string(),
        num_images: n,
        seeds: Seeds {
            prior: seed,
            decoder: None,
        },
        ..GenerateParams::default()
    };
    silent(|ctl| e.text_to_image(&p, ctl))
        .map(|g| g.pictures)
        .map_err(|err| err.to_string())
}

/// The strengths at which text diffs are measured (the target: some θ ≤ 0.5 works).
const TEXT_DIFF_THETAS: [f32; 3] = [0.3, 0.4, 0.5];

/// Whether a reading shows `shape` in `colour`.
fn same_object(r: Option<&Reading>, shape: Shape, colour: Colour) -> bool {
    r.is_some_and(|r| r.shape == shape && r.colour == colour)
}

/// One switch when the ends differ, none when they agree.
fn changes_once(vals: Vec<Option<&'static str>>) -> bool {
    let switches = vals.windows(2).filter(|w| w[0] != w[1]).count();
    switches == (vals.first() != vals.last()) as usize
}

/// The candidate whose caption embedding is closest to `image` (CLIP zero-shot). Caption
/// embeddings are kept in `known`: the read-out asks for the same few hundred captions
/// again and again over its pictures.
fn zero_shot(
    e: &mut Engine,
    known: &mut HashMap<String, Vec<f32>>,
    image: &[f32],
    candidates: &[String],
) -> Result<usize, String> {
    let mut best = (f64::MIN, 0);
    for (i, c) in candidates.iter().enumerate() {
        if !known.contains_key(c) {
            let t = silent(|ctl| e.encode_prompt(c, ctl)).map_err(|err| err.to_string())?;
            known.insert(c.clone(), to_vec(t.embeds));
        }
        let sim = known.get(c).map_or(f64::MIN, |t| cosine(image, t));
        if sim > best.0 {
            best = (sim, i);
        }
    }
    Ok(best.1)
}

/// Zero-shot shape (among five, colour given), colour (among eight, shape given),
/// placement (among nine), background (among eight) and size (among two) of CLIP image
/// embeddings of the world's own pictures; the last three with shape and colour given.
fn clip_probe(e: &mut Engine, world: &World, n: usize) -> Result<[Tally; 5], String> {
    let mut t: [Tally; 5] = Default::default();
    let mut known = HashMap::new();
    for i in 0..n {
        let s = world.sample(500_000 + i as u64, Split::All);
        let pic = picture(render(&s.scene, 64)?, 64);
        let z = silent(|ctl| e.image_embedding(&pic, ctl)).map_err(|err| err.to_string())?;
        let (c, sh) = (s.scene.colour.name(), s.scene.shape.name());
        let object = with_article(&format!("{c} {sh}"));
        let shapes: Vec<String> = Shape::ALL.iter().map(|x| with_article(&format!("{c} {}", x.name()))).collect();
        let colours: Vec<String> = Colour::ALL.iter().map(|x| with_article(&format!("{} {sh}", x.name()))).collect();
        let places: Vec<String> = Position::ALL.iter().map(|p| format!("{object} {}", p.phrases()[0])).collect();
        let grounds: Vec<String> =
            Colour::ALL.iter().map(|b| format!("{object} on {} background", with_article(b.name()))).collect();
        let sizes: Vec<String> = Size::ALL.iter().map(|x| with_article(&format!("{} {c} {sh}", x.name()))).collect();
        t[0].add(Shape::ALL[zero_shot(e, &mut known, &z, &shapes)?] == s.scene.shape);
        t[1].add(Colour::ALL[zero_shot(e, &mut known, &z, &colours)?] == s.scene.colour);
        t[2].add(Position::ALL[zero_shot(e, &mut known, &z, &places)?] == s.scene.position);
        t[3].add(Colour::ALL[zero_shot(e, &mut known, &z, &grounds)?] == s.scene.background);
        t[4].add(Size::ALL[zero_shot(e, &mut known, &z, &sizes)?] == s.scene.size);
    }
    Ok(t)
}

/// Only CLIP's zero-shot read-out, on `10 × samples` pictures: the check of a CLIP stage
/// before the stages that depend on it are trained (seconds, not the full evaluation).
pub fn evaluate_clip(model: &Path, samples: usize, device: burn::tensor::Device) -> Result<Report, String> {
    let started = std::time::Instant::now();
    let mut e = Engine::open(model, device).map_err(|err| err.to_string())?;
    let mut r = Report { model: model.display().to_string(), samples, ..Default::default() };
    [r.clip_shape, r.clip_colour, r.clip_position, r.clip_background, r.clip_size] =
        clip_probe(&mut e, &World::new(EVAL_WORLD_SEED), 10 * samples.max(1))?;
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

/// Runs every measurement with `samples` captions per split, on two engines at once: the
/// shipped model's networks are too small for one run to keep two cores busy.
pub fn evaluate(
    model: &Path,
    samples: usize,
    device: burn::tensor::Device,
) -> Result<Report, String> {
    let started = std::time::Instant::now();
    let world = World::new(EVAL_WORLD_SEED);
    let open = || Engine::open(model, device.clone()).map_err(|err| err.to_string());
    let (generation, edits) = std::thread::scope(|scope| {
        let a = scope.spawn(|| generation_rows(&mut open()?, &world, samples));
        let b = scope.spawn(|| edit_rows(&mut open()?, &world, samples));
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<Report, String>>| {
            h.join().unwrap_or_else(|_| Err("an evaluation thread panicked".into()))
        };
        (join(a), join(b))
    });
    let (r, b) = (generation?, edits?);
    Ok(Report {
        model: model.display().to_string(),
        samples,
        text_diff: b.text_diff,
        interpolation_ends_fixed: b.interpolation_ends_fixed,
        interpolation_ends_inverted: b.interpolation_ends_inverted,
        interpolation_monotonic_fixed: b.interpolation_monotonic_fixed,
        interpolation_monotonic_inverted: b.interpolation_monotonic_inverted,
        seconds: started.elapsed().as_secs_f64(),
        ..r
    })
}

/// CLIP's read-out, caption accuracy, diversity, variations and inversion.
fn generation_rows(e: &mut Engine, world: &World, samples: usize) -> Result<Report, String> {
    let mut r = Report::default();
    // 0. What the decoder is given to work from.
    [r.clip_shape, r.clip_colour, r.clip_position, r.clip_background, r.clip_size] =
        clip_probe(e, world, 10 * samples.max(1))?;

    // 1. Caption accuracy, seen and held-out colour–shape pairs. The seen pictures the
    //    oracle can read are kept as sources for variations.
    let mut generated: Vec<(Picture, Reading)> = Vec::new();
    for (split, acc) in [
        (Split::Train, &mut r.seen),
        (Split::HeldOut, &mut r.held_out),
    ] {
        for i in 0..samples {
            let s: Sample = world.sample(i as u64, split);
            let pic = generate(e, &s.caption, i as u64, 1)?;
            let reading = pic.first().and_then(read);
            acc.score(&s.mentioned, reading.as_ref());
            if let (Split::Train, Some(p), Some(rd)) = (split, pic.into_iter().next(), reading) {
                generated.push((p, rd));
            }
        }
    }

    // 2. Diversity of what a caption leaves open: unCLIP vs the same decoder given the null
    //    image embedding (a text-only decoder), both at the default decoder guidance.
    let per = DIVERSITY_PER_CAPTION;
    let captions = &DIVERSITY_CAPTIONS[..DIVERSITY_CAPTIONS.len().min(samples.max(1))];
    let (mut du, mut dt, mut au, mut at) = (0.0, 0.0, Tally::default(), Tally::default());
    e.load_decoder().map_err(|err| err.to_string())?;
    let null = e
        .parts()
        .text_proj
        .as_ref()
        .map(|tp| to_vec(tp.learned_classifier_free_guidance_embeddings.val()))
        .ok_or("decoder not loaded")?;
    for c in captions {
        let m = super::world::parse_caption(c);
        let unclip = generate(e, c, 7, per)?;
        let p = DecodeParams {
            num_images: per,
            seed: 7,
            ..DecodeParams::default()
        };
        let text_only =
            silent(|ctl| e.decode_embeddings(&vec![null.clone(); per], c, &p, Start::Noise, ctl))
                .map_err(|err| err.to_string())?
                .pictures;
        for (pics, distinct, acc) in [(&unclip, &mut du, &mut au), (&text_only, &mut dt, &mut at)] {
            let readings: Vec<Option<Reading>> = pics.iter().map(read).collect();
            for rd in &readings {
                acc.add(rd.as_ref().is_some_and(|rd| Some(rd.shape) == m.shape && Some(rd.colour) == m.colour));
            }
            *distinct += compositions(readings.iter().flatten()) as f64 / captions.len() as f64;
        }
    }
    r.diversity = Diversity {
        unclip_distinct: du,
        text_only_distinct: dt,
        unclip_accuracy: au.rate(),
        text_only_accuracy: at.rate(),
        samples_per_caption: per,
        captions: captions.len(),
    };

    // 3. Variations at the app's defaults (the model's own sampler, guidance 8) keep shape
    //    and colour, of the world's own pictures and of pictures the model generated (judged
    //    against the oracle's reading of the source). DDIM at guidance 8 washes this decoder's
    //    colours out to white, η = 0 or 1 alike; its own learned-variance sampler does not.
    let variation = |i: usize| DecodeParams { num_images: 2, seed: i as u64, ..DecodeParams::default() };
    let sources = samples.max(1).div_ceil(2);
    for i in 0..sources {
        let s = world.sample(100_000 + i as u64, Split::Train);
        let src = picture(render(&s.scene, 64)?, 64);
        let out = silent(|ctl| e.variations(&src, &variation(i), ctl)).map_err(|err| err.to_string())?;
        for pic in &out.pictures {
            let rd = read(pic);
            r.variations_kept.add(same_object(rd.as_ref(), s.scene.shape, s.scene.colour));
            r.variations_moved.add(
                rd.is_some_and(|rd| rd.position != s.scene.position || rd.size != s.scene.size),
            );
        }
    }
    for (i, (src, rd)) in generated.iter().take(sources).enumerate() {
        let out = silent(|ctl| e.variations(src, &variation(i), ctl)).map_err(|err| err.to_string())?;
        for pic in &out.pictures {
            r.variations_of_generated_kept.add(same_object(read(pic).as_ref(), rd.shape, rd.colour));
        }
    }

    // 6. Inversion → reconstruction PSNR at the decoder's resolution.
    let mut psnr = 0.0;
    let n = sources.min(10);
    for i in 0..n {
        let s = world.sample(400_000 + i as u64, Split::Train);
        let src = picture(render(&s.scene, 64)?, 64);
        let (_, db) = silent(|ctl| {
            let inv = e.invert_image(&src, 25, 1.0, ctl)?;
            e.reconstruct(&src, &inv, 25, 1.0, ctl)
        })
        .map_err(|err| err.to_string())?;
        psnr += db.min(60.0) / n as f64;
    }
    r.inversion_psnr_db = psnr;
    Ok(r)
}

/// Text diffs and interpolation, which decode from inverted latents.
fn edit_rows(e: &mut Engine, world: &World, samples: usize) -> Result<Report, String> {
    // 4. Text diffs: "a red X" → "a blue X" flips the colour and keeps the shape, at several
    //    strengths up to θ = 0.5.
    let mut r = Report {
        text_diff: TEXT_DIFF_THETAS.iter().map(|&t| (t, Tally::default())).collect(),
        ..Report::default()
    };
    let mut tried = 0;
    let mut k = 0u64;
    let decode = DecodeParams {
        num_images: 1,
        seed: 0,
        decoder: stage(25, 1.0, Sampler::Ddim, 0.0),
        super_res_steps: 7,
    };
    while tried < samples.max(1) && k < 100_000 {
        let s = world.sample(200_000 + k, Split::Train);
        k += 1;
        if s.scene.colour != Colour::Red || s.scene.background == Colour::Blue {
            continue;
        }
        tried += 1;
        let src = picture(render(&s.scene, 64)?, 64);
        let shape = s.scene.shape.name();
        for (theta, tally) in r.text_diff.iter_mut() {
            let out = silent(|ctl| {
                e.text_diff(&src, &format!("a blue {shape}"), &format!("a red {shape}"), *theta, &decode, ctl)
            })
            .map_err(|err| err.to_string())?;
            tally.add(same_object(out.pictures.first().and_then(read).as_ref(), s.scene.shape, Colour::Blue));
        }
    }

    // 5. Interpolation between two of the world's pictures, from fixed noise and from the
    //    inverted latents: each end reads as its own picture, and the reading (shape and
    //    colour) changes once, monotonically, along θ.
    let frames = 7;
    let pairs = samples.max(1).div_ceil(2);
    for (start, ends, monotonic) in [
        (StartLatent::Fixed, &mut r.interpolation_ends_fixed, &mut r.interpolation_monotonic_fixed),
        (StartLatent::Inverted, &mut r.interpolation_ends_inverted, &mut r.interpolation_monotonic_inverted),
    ] {
        for i in 0..pairs {
            let a = world.sample(300_000 + 2 * i as u64, Split::Train);
            let b = world.sample(300_001 + 2 * i as u64, Split::Train);
            let (pa, pb) = (picture(render(&a.scene, 64)?, 64), picture(render(&b.scene, 64)?, 64));
            // Fixed noise at the defaults (the same seed draws the same noise for every θ);
            // inverted latents need deterministic DDIM (and run at guidance ≤ 2).
            let decoder = match start {
                StartLatent::Fixed => DecodeParams::default().decoder,
                StartLatent::Inverted => stage(25, 8.0, Sampler::Ddim, 0.0),
            };
            let p = DecodeParams { num_images: 1, seed: i as u64, decoder, super_res_steps: 7 };
            let mut seq: Vec<Option<Reading>> = Vec::new();
            for f in 0..frames {
                let theta = f as f32 / (frames - 1) as f32;
                let out = silent(|ctl| {
                    e.interpolate(&Endpoint::Image(pa.clone()), &Endpoint::Image(pb.clone()), theta, start, &p, ctl)
                })
                .map_err(|err| err.to_string())?;
                seq.push(out.pictures.first().and_then(read));
            }
            ends.add(same_object(seq[0].as_ref(), a.scene.shape, a.scene.colour));
            ends.add(same_object(seq[frames - 1].as_ref(), b.scene.shape, b.scene.colour));
            let shapes = seq.iter().map(|r| r.as_ref().map(|r| r.shape.name())).collect();
            let colours = seq.iter().map(|r| r.as_ref().map(|r| r.colour.name())).collect();
            monotonic.add(changes_once(shapes) && changes_once(colours));
        }
    }

    Ok(r)
}

fn pct(t: &Tally) -> String {
    format!("{:.1}% ({}/{})", 100.0 * t.rate(), t.correct, t.total)
}

/// The README table.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    s.push_str("| measure | seen pairs | held-out pairs |\n|---|---|---|\n");
    for (name, a, b) in [
        ("all stated attributes", &r.seen.all, &r.held_out.all),
        ("shape", &r.seen.shape, &r.held_out.shape),
        ("colour", &r.seen.colour, &r.held_out.colour),
        ("size", &r.seen.size, &r.held_out.size),
        ("position", &r.seen.position, &r.held_out.position),
        ("background", &r.seen.background, &r.held_out.background),
    ] {
        s.push_str(&format!("| {name} | {} | {} |\n", pct(a), pct(b)));
    }
    s.push_str("\n| measure | value |\n|---|---|\n");
    let d = &r.diversity;
    s.push_str(&format!(
        "| distinct (position, size, background) per caption, unCLIP vs text-only decoder ({} samples × {} captions) | {:.2} vs {:.2} |\n",
        d.samples_per_caption, d.captions, d.unclip_distinct, d.text_only_distinct
    ));
    s.push_str(&format!(
        "| stated shape+colour right, unCLIP vs text-only | {:.1}% vs {:.1}% |\n",
        100.0 * d.unclip_accuracy,
        100.0 * d.text_only_accuracy
    ));
    s.push_str(&format!(
        "| variations keep shape and colour, of world pictures / of generated ones | {} / {} |\n",
        pct(&r.variations_kept),
        pct(&r.variations_of_generated_kept)
    ));
    s.push_str(&format!(
        "| variations move position or size | {} |\n",
        pct(&r.variations_moved)
    ));
    let diffs: Vec<String> = r.text_diff.iter().map(|(t, tally)| format!("θ {t}: {}", pct(tally))).collect();
    s.push_str(&format!(
        "| text diff red → blue flips colour, keeps shape | {} |\n",
        diffs.join(", ")
    ));
    s.push_str(&format!(
        "| interpolation ends read as their pictures, fixed noise / inverted latents | {} / {} |\n",
        pct(&r.interpolation_ends_fixed),
        pct(&r.interpolation_ends_inverted)
    ));
    s.push_str(&format!(
        "| interpolation reading changes once, monotonically, fixed noise / inverted latents | {} / {} |\n",
        pct(&r.interpolation_monotonic_fixed),
        pct(&r.interpolation_monotonic_inverted)
    ));
    s.push_str(&format!(
        "| inversion → reconstruction PSNR (25 DDIM steps) | {:.1} dB |\n",
        r.inversion_psnr_db
    ));
    s.push_str(&clip_row(r));
    s
}

/// The CLIP read-out's row, alone under `eval --clip`.
pub fn clip_row(r: &Report) -> String {
    format!(
        "| CLIP image embedding, zero-shot shape (of 5) / colour (of 8) / position (of 9) / background (of 8) / size (of 2) | {} / {} / {} / {} / {} |\n",
        pct(&r.clip_shape),
        pct(&r.clip_colour),
        pct(&r.clip_position),
        pct(&r.clip_background),
        pct(&r.clip_size)
    )
}
