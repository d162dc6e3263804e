//! Training the shipped model: a complete small unCLIP (CLIP, prior, decoder,
//! super-resolution) on a procedural world of captioned shapes (`world`), judged by a
//! non-learned analyser (`oracle`), exported as a diffusers folder. Each stage loads the
//! stages before it from the output folder.

pub mod ar_prior;
pub mod clip;
pub mod data;
pub mod decoder;
pub mod ema;
pub mod encode;
pub mod eval;
pub mod eval_priors;
pub mod export;
pub mod noising;
pub mod oracle;
pub mod prior;
pub mod run;
pub mod spec;
pub mod superres;
pub mod tokenizer_files;
pub mod world;

use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;
use serde_json::Value;

use crate::model::config;
use crate::model::folder::ModelFolder;
use crate::model::nn::tensor_from;
use run::{Budget, RecipeKind, StageRun};
use spec::Spec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageName {
    Clip,
    Prior,
    Decoder,
    Superres,
    /// The autoregressive prior (needs CLIP; diffusers ignores its folder).
    ArPrior,
}

impl std::str::FromStr for StageName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let choices: &[(&[&str], _)] = &[
            (&["clip"], StageName::Clip),
            (&["prior"], StageName::Prior),
            (&["decoder"], StageName::Decoder),
            (&["superres", "super-res", "super_res"], StageName::Superres),
            (&["ar-prior", "ar_prior"], StageName::ArPrior),
        ];
        crate::choice::parse(s, "stage", choices)
    }
}

/// The recipe: architecture and per-stage budget.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub kind: RecipeKind,
    pub spec: Spec,
    pub clip: Budget,
    pub prior: Budget,
    pub decoder: Budget,
    pub superres: Budget,
    pub ar_prior: Budget,
    pub world_seed: u64,
    /// Where the trainees live (the frozen CLIP that prepares batches stays on the CPU).
    pub device: Device,
}

impl Recipe {
    pub fn new(kind: RecipeKind) -> Self {
        let b = |(steps, batch, lr): (usize, usize, f64)| Budget {
            steps,
            batch,
            lr,
            warmup: (steps / 20).max(1),
            checkpoint_every: 100,
        };
        // (steps, batch, learning rate) for CLIP, prior, decoder, super-res, AR prior.
        let (spec, [clip, prior, decoder, superres, ar_prior]) = match kind {
            RecipeKind::Quick => {
                (Spec::quick(), [(700, 32, 3e-3), (150, 32, 1e-3), (60, 8, 1e-3), (45, 8, 1e-3), (150, 32, 1e-3)])
            }
            // The shipped model's budgets. `train all` runs CLIP → decoder beside super-res →
            // prior: about 25–40 + 85–110 minutes on 2 cores (decoder 1.1–1.5 s a step, super-res
            // on 32 px crops about 1 s, depending on what else the machine does).
            RecipeKind::Full => {
                (Spec::full(), [(4000, 64, 1e-3), (2000, 64, 5e-4), (4500, 16, 5e-4), (4000, 16, 5e-4), (4000, 64, 1e-3)])
            }
        };
        Self {
            kind,
            spec,
            clip: b(clip),
            prior: b(prior),
            decoder: b(decoder),
            superres: b(superres),
            ar_prior: b(ar_prior),
            world_seed: 1,
            device: Device::flex(),
        }
    }
}

impl Recipe {
    /// The same recipe, training on `device` (a plain device; autodiff is added per stage).
    pub fn on(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// The same recipe with every stage cut (or stretched) to `steps` steps.
    pub fn with_steps(mut self, steps: usize) -> Self {
        for b in [&mut self.clip, &mut self.prior, &mut self.decoder, &mut self.superres, &mut self.ar_prior] {
            b.steps = steps.max(1);
            b.warmup = (steps / 20).max(1);
        }
        self
    }
}

/// What a stage reports when it ends.
#[derive(Debug, Clone)]
pub struct StageSummary {
    pub stage: StageName,
    pub first_loss: f64,
    pub last_loss: f64,
    pub seconds: f64,
    /// CLIP's in-batch image→text accuracy at the end (chance is 1/batch).
    pub accuracy: Option<f64>,
}

/// burn's CPU random generator is one global: stages trained at the same time (`train_all`)
/// hold this from seeding to the end of their initialisation, so each stage's initial
/// weights do not depend on the other thread's timing.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The training device (`base` with autodiff), with burn's random initialisation seeded so a
/// recipe is repeatable; the returned guard must live until the stage's networks are initialised.
fn train_device(base: &Device, seed: u64) -> (Device, std::sync::MutexGuard<'static, ()>) {
    let guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let device = base.clone().autodiff();
    device.seed(seed);
    (device, guard)
}

fn read_cfg<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

fn frozen_clip(out: &Path) -> Result<encode::FrozenClip, String> {
    let folder = ModelFolder { root: out.to_path_buf(), image_side: None, variant: None };
    let device = Device::flex();
    Ok(encode::FrozenClip {
        tokenizer: folder.tokenizer().map_err(|e| format!("train the clip stage first: {e}"))?,
        text: folder.text_encoder(&device, DType::F32).map_err(|e| e.to_string())?,
        vision: folder.image_encoder(&device, DType::F32).map_err(|e| e.to_string())?,
        device,
    })
}

/// Weights exported earlier into `out`, loaded into a freshly initialised trainee.
fn load_exported<M: burn::module::Module + burn::store::ModuleSnapshot>(
    out: &Path,
    component: &str,
    module: M,
) -> Result<M, String> {
    let files = crate::model::weights::weight_files(&out.join(component), None).map_err(|e| e.to_string())?;
    crate::model::weights::load_into(module, &files, DType::F32).map_err(|e| e.to_string())
}

/// Where `--resume` continues from: the stage's checkpoint, or, when there is none (a fresh
/// clone: checkpoints are not committed), the weights already exported into `out` at the step
/// the committed loss log reached. `warm` loads the exported weights into the trainee.
fn resume_point<M: burn::module::Module + burn::store::ModuleSnapshot>(
    run: &StageRun,
    resume: bool,
    trainee: &mut M,
    exported: bool,
    warm: impl FnOnce(M) -> Result<M, String>,
) -> Result<usize, String> {
    if !resume {
        return Ok(0);
    }
    let step = run.resume(trainee)?;
    if step > 0 || !exported {
        return Ok(step);
    }
    let fresh = trainee.clone();
    *trainee = warm(fresh)?;
    let step = run.logged_steps();
    run.warm_started(step);
    Ok(step)
}

/// Runs one stage and exports its components into `out`.
pub fn train_stage(
    stage: StageName,
    recipe: &Recipe,
    out: &Path,
    work: &Path,
    resume: bool,
    quiet: bool,
) -> Result<StageSummary, String> {
    // One seed per stage: a stage trained alone starts from the same weights as in `all`.
    let (device, init_guard) = train_device(&recipe.device, recipe.world_seed * 16 + stage as u64);
    let world = world::World::new(recipe.world_seed);
    let spec = &recipe.spec;
    let summary = |run: &StageRun, accuracy| StageSummary {
        stage,
        first_loss: run.first_loss.unwrap_or(f64::NAN),
        last_loss: run.last_loss.unwrap_or(f64::NAN),
        seconds: run.elapsed(),
        accuracy,
    };
    match stage {
        StageName::Clip => {
            let words = world::vocabulary();
            let tok_info = tokenizer_files::write_tokenizer(&out.join("tokenizer"), &words, spec.context)
                .map_err(|e| e.to_string())?;
            let tok = crate::model::tokenizer::ClipTokenizer::from_folder(&out.join("tokenizer"))
                .map_err(|e| e.to_string())?;
            let text_cfg = spec.text_encoder(&tok_info);
            let vision_cfg = spec.image_encoder();
            let mut pair = clip::ClipPair {
                text: crate::model::clip_text::ClipTextModelWithProjection::init(&read_cfg(&text_cfg)?, &device)
                    .map_err(|e| e.to_string())?,
                vision: crate::model::clip_vision::ClipVisionModelWithProjection::init(
                    &read_cfg(&vision_cfg)?,
                    &device,
                )
                .map_err(|e| e.to_string())?,
                logit_scale: Param::from_tensor(Tensor::from_floats([(1.0f32 / 0.07).ln()], &device)),
            };
            let prototypes = clip::AttributePrototypes::init(spec.embed_dim, &device);
            drop(init_guard);
            let mut run = StageRun::new("clip", recipe.clip, work, quiet).map_err(|e| e.to_string())?;
            let exported = out.join("text_encoder").is_dir() && out.join("image_encoder").is_dir();
            let start = resume_point(&run, resume, &mut pair, exported, |p| {
                Ok(clip::ClipPair {
                    text: load_exported(out, "text_encoder", p.text)?,
                    vision: load_exported(out, "image_encoder", p.vision)?,
                    // Not exported: re-learnt from CLIP's starting temperature.
                    logit_scale: p.logit_scale,
                })
            })?;
            let trainee = clip::ClipTrainee { pair, prototypes };
            let (pair, acc) = clip::train(trainee, &tok, &world, &mut run, start, &device)?;
            run.finish();
            export::save_component(out, "text_encoder", &pair.text, &text_cfg, true)?;
            export::save_component(out, "image_encoder", &pair.vision, &vision_cfg, true)?;
            export::write_json(&out.join("feature_extractor").join("preprocessor_config.json"), &spec.feature_extractor())?;
            Ok(summary(&run, Some(acc)))
        }
        StageName::Prior => {
            let clip = frozen_clip(out)?;
            let cfg = spec.prior();
            let mut prior =
                crate::model::prior::PriorTransformer::init(&read_cfg(&cfg)?, &device).map_err(|e| e.to_string())?;
            let stats_n = if recipe.kind == RecipeKind::Quick { 256 } else { 4096 };
            let (mean, std) = prior::embedding_stats(&clip, &world, stats_n)?;
            let e = mean.len();
            prior.clip_mean = Param::from_tensor(tensor_from(mean, [1, e], &device));
            prior.clip_std = Param::from_tensor(tensor_from(std, [1, e], &device));
            drop(init_guard);
            let mut run = StageRun::new("prior", recipe.prior, work, quiet).map_err(|e| e.to_string())?;
            let start = resume_point(&run, resume, &mut prior, out.join("prior").is_dir(), |m| {
                load_exported(out, "prior", m)
            })?;
            let prior = prior::train(prior, &clip, &world, &mut run, start, &device)?;
            run.finish();
            export::save_component(out, "prior", &prior, &cfg, false)?;
            export::write_json(
                &out.join("prior_scheduler").join("scheduler_config.json"),
                &Spec::scheduler("fixed_small_log", "sample", 5.0),
            )?;
            Ok(summary(&run, None))
        }
        StageName::Decoder => {
            let clip = frozen_clip(out)?;
            let (tp_cfg, dec_cfg) = (spec.text_proj(), spec.decoder());
            let mut pair = decoder::DecoderPair {
                text_proj: crate::model::text_proj::UnCLIPTextProjModel::init(&read_cfg(&tp_cfg)?, &device),
                decoder: crate::model::unet::decoder::init(&read_cfg::<config::DecoderConfig>(&dec_cfg)?, &device)
                    .map_err(|e| e.to_string())?,
            };
            drop(init_guard);
            let mut run = StageRun::new("decoder", recipe.decoder, work, quiet).map_err(|e| e.to_string())?;
            let start = resume_point(&run, resume, &mut pair, out.join("decoder").is_dir(), |p| {
                Ok(decoder::DecoderPair {
                    text_proj: load_exported(out, "text_proj", p.text_proj)?,
                    decoder: load_exported(out, "decoder", p.decoder)?,
                })
            })?;
            let pair = decoder::train(pair, &clip, &world, &mut run, start, spec.image_size, &device)?;
            run.finish();
            export::save_component(out, "text_proj", &pair.text_proj, &tp_cfg, false)?;
            export::save_component(out, "decoder", &pair.decoder, &dec_cfg, false)?;
            export::write_json(
                &out.join("decoder_scheduler").join("scheduler_config.json"),
                &Spec::scheduler("learned_range", "epsilon", 1.0),
            )?;
            Ok(summary(&run, None))
        }
        StageName::Superres => {
            let cfg = spec.super_res_first();
            let mut unet =
                crate::model::unet::super_res::init(&read_cfg(&cfg)?, &device).map_err(|e| e.to_string())?;
            drop(init_guard);
            let mut run = StageRun::new("superres", recipe.superres, work, quiet).map_err(|e| e.to_string())?;
            let start = resume_point(&run, resume, &mut unet, out.join("super_res_first").is_dir(), |m| {
                load_exported(out, "super_res_first", m)
            })?;
            let unet = superres::train(unet, &world, &mut run, start, (spec.image_size, spec.sr_size), &device)?;
            run.finish();
            // One network serves both slots; Karlo fine-tunes its last one with a GAN loss,
            // which is not reproduced here.
            export::save_component(out, "super_res_first", &unet, &cfg, false)?;
            export::save_component(out, "super_res_last", &unet, &spec.super_res_last(), false)?;
            export::write_json(
                &out.join("super_res_scheduler").join("scheduler_config.json"),
                &Spec::scheduler("fixed_small_log", "epsilon", 1.0),
            )?;
            export::write_json(&out.join("model_index.json"), &export::model_index())?;
            Ok(summary(&run, None))
        }
        StageName::ArPrior => {
            let clip = frozen_clip(out)?;
            let fit_n = if recipe.kind == RecipeKind::Quick { 512 } else { 8192 };
            let book = ar_prior::fit(&clip, &world, fit_n)?;
            let text_width = clip.text.config.hidden_size;
            let cfg = ar_prior::config(&book, text_width, spec.prior_heads, spec.prior_head_dim, spec.prior_layers);
            let mut model = crate::model::ar_prior::ArPrior::init(&read_cfg(&cfg)?, &device)
                .and_then(|m| m.with_codebook(&book))
                .map_err(|e| e.to_string())?;
            drop(init_guard);
            let mut run = StageRun::new("ar_prior", recipe.ar_prior, work, quiet).map_err(|e| e.to_string())?;
            let start = resume_point(&run, resume, &mut model, out.join("ar_prior").is_dir(), |m| {
                load_exported(out, "ar_prior", m)
            })?;
            let model = ar_prior::train(model, &clip, &world, &mut run, start, &device)?;
            run.finish();
            export::save_component(out, "ar_prior", &model, &cfg, false)?;
            Ok(summary(&run, None))
        }
    }
}

/// All four stages as two chains on two threads (flex trains mostly on one core): CLIP then
/// the decoder (the longest stage), and super-resolution (which needs no CLIP) then the prior
/// (which waits for CLIP).
pub fn train_all(
    recipe: &Recipe,
    out: &Path,
    work: &Path,
    resume: bool,
    quiet: bool,
) -> Result<Vec<StageSummary>, String> {
    let stage = |s| train_stage(s, recipe, out, work, resume, quiet);
    let (clip_ready, wait_clip) = std::sync::mpsc::channel::<bool>();
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(move || -> Result<Vec<StageSummary>, String> {
            let clip = stage(StageName::Clip);
            let _ = clip_ready.send(clip.is_ok());
            let clip = clip?;
            Ok(vec![clip, stage(StageName::Decoder)?])
        });
        let b = scope.spawn(move || -> Result<Vec<StageSummary>, String> {
            let superres = stage(StageName::Superres)?;
            if !wait_clip.recv().unwrap_or(false) {
                return Err("prior: the clip stage did not finish".into());
            }
            Ok(vec![superres, stage(StageName::Prior)?, stage(StageName::ArPrior)?])
        });
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<Vec<StageSummary>, String>>| {
            h.join().unwrap_or_else(|_| Err("a training thread panicked".into()))
        };
        (join(a), join(b))
    });
    let (mut a, b) = (a?, b?);
    a.extend(b);
    export::write_json(&out.join("model_index.json"), &export::model_index())?;
    Ok(a)
}

/// Default places: the shipped model folder and its training work folder.
pub fn default_dirs() -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets");
    (root.join("model"), root.join("training"))
}
