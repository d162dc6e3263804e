//! The headless command line: the same pipeline calls as the app, with progress bars.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::device::{DevicePref, choose};
use crate::model::folder::default_model_dir;
use crate::image_io::{load_picture, save_png};
use crate::pipeline::ops::{Endpoint, Generated};
use crate::pipeline::{
    Control, DecodeParams, Engine, GenerateParams, Picture, Progress, Request, Sampler, Seeds, Stage, StageParams,
    StartLatent,
};
use crate::recipe::{Operation, Recipe};

#[derive(Parser, Debug)]
#[command(
    name = "unclip",
    version,
    about = "unCLIP (DALL·E 2) image generation: text→image, variations, interpolation, text diffs.\nRun without a command to open the app."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Where to run: auto (a real GPU if present, else CPU), cpu, gpu.
    #[arg(long, global = true, default_value = "auto")]
    pub device: DevicePref,
    /// A diffusers-layout unCLIP folder (default: the shipped model).
    #[arg(long, global = true)]
    pub model: Option<PathBuf>,
    /// Compute precision of the networks: f32, or f16 (halves weight memory; meant for GPUs
    /// with shader-f16; samplers stay in f32). Default f32; in the app, the Memory menu's
    /// setting, which this changes.
    #[arg(long, global = true)]
    pub dtype: Option<Precision>,
    /// Free each stage's networks when it ends (less memory, reloads next time). In the app,
    /// ticks the Memory menu's box.
    #[arg(long, global = true)]
    pub release_stages: bool,
    /// Load a weight variant, as diffusers' `variant=`: e.g. fp16 reads
    /// `diffusion_pytorch_model.fp16.safetensors` (or `.fp16.bin`) and computes in --dtype.
    #[arg(long, global = true, value_name = "NAME")]
    pub variant: Option<String>,
    /// Show the device probe (adapters found, and the graphics stack's own messages).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// Open the app, generate PROMPT once, and close (a scripted end-to-end check).
    #[arg(long, value_name = "PROMPT")]
    pub smoke: Option<String>,
    /// Images to open in the app: one for variations, two to interpolate between.
    #[arg(value_name = "IMAGE")]
    pub open: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Text → image through the prior, the decoder and super-resolution.
    Generate(GenerateArgs),
    /// Variations of an image: its CLIP embedding decoded with new noise.
    Vary(VaryArgs),
    /// Interpolate between two images' CLIP embeddings.
    Interpolate(InterpolateArgs),
    /// Push an image toward a caption (the paper's text diffs).
    Textdiff(TextDiffArgs),
    /// DDIM-invert an image to the decoder's x_T and report the reconstruction PSNR.
    Invert(InvertArgs),
    /// Train the shipped shapes model (one stage, or all in order).
    Train(TrainArgs),
    /// Measure a shapes model with the oracle; prints the README table and writes JSON.
    Eval(EvalArgs),
    /// Benchmarks: text→image wall time (for tests/reference/bench_reference.py) or the WGSL
    /// kernels against the burn ops they replace.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Times text→image at diffusers' default steps; prints one JSON line.
    Pipeline {
        #[arg(long, default_value = "a small red star on a blue background")]
        prompt: String,
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// The window's frame times while a generation runs on the CPU (the real app, headless),
    /// time to the first preview and from Esc to the cancel notice.
    Ui {
        #[arg(long, default_value = "a small red star on a blue background")]
        prompt: String,
        /// Images per run (more images: a longer run to sample frames from).
        #[arg(long, default_value_t = 4)]
        images: usize,
    },
    /// Each WGSL kernel against the composed burn ops it replaces (needs --device gpu).
    Kernels {
        #[arg(long, default_value_t = 20)]
        iters: usize,
    },
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Captions per split (seen / held-out colour–shape pairs).
    #[arg(long, default_value_t = 100)]
    pub samples: usize,
    /// Where to write the JSON report.
    #[arg(long, default_value = "eval.json")]
    pub json: PathBuf,
    /// Compare the priors instead (diffusion, autoregressive with a high and a low z_i·z_t,
    /// random embeddings): caption accuracy, diversity, CLIP score and time per sample.
    #[arg(long)]
    pub priors: bool,
    /// Only CLIP's zero-shot read-out of the world's pictures (10 × samples of them): the
    /// check of a newly trained CLIP before the stages that depend on it.
    #[arg(long, conflicts_with = "priors")]
    pub clip: bool,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// clip, prior, decoder, superres, or all.
    pub stage: String,
    /// quick (minutes) or full (the shipped model, about 2 hours on 2 cores).
    #[arg(long, default_value = "full")]
    pub recipe: crate::train::run::RecipeKind,
    /// Continue from the stage's last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Output diffusers folder (default: assets/model).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Checkpoints and loss logs (default: assets/training).
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Override the recipe's number of steps for every stage trained (short experiments).
    #[arg(long)]
    pub steps: Option<usize>,
}

/// Decoder and super-resolution settings shared by the image commands.
#[derive(Args, Debug, Clone)]
pub struct DecodeArgs {
    /// Seed of the run (for generate: the prior's, the decoder continuing the same stream).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 25)]
    pub decoder_steps: usize,
    #[arg(long, default_value_t = 8.0)]
    pub decoder_guidance: f32,
    #[arg(long, default_value_t = 7)]
    pub sr_steps: usize,
    /// ddpm (the model's scheduler) or ddim.
    #[arg(long, default_value = "ddpm")]
    pub sampler: Sampler,
    /// DDIM η (0 = deterministic).
    #[arg(long, default_value_t = 0.0)]
    pub eta: f32,
    #[arg(long, short = 'n', default_value_t = 1)]
    pub num_images: usize,
    /// Output PNG (numbered when there are several).
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Write all pictures of the run side by side in one PNG instead of one file each.
    #[arg(long)]
    pub grid: bool,
}

impl DecodeArgs {
    fn params(&self) -> DecodeParams {
        DecodeParams {
            num_images: self.num_images,
            seed: self.seed,
            decoder: StageParams {
                steps: self.decoder_steps,
                guidance: self.decoder_guidance,
                sampler: self.sampler,
                eta: self.eta,
            },
            super_res_steps: self.sr_steps,
        }
    }
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    pub prompt: String,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Overrides the prior's seed.
    #[arg(long)]
    pub prior_seed: Option<u64>,
    /// A separate decoder seed: same composition, new details.
    #[arg(long)]
    pub decoder_seed: Option<u64>,
    #[arg(long, default_value_t = 25)]
    pub prior_steps: usize,
    #[arg(long, default_value_t = 4.0)]
    pub prior_guidance: f32,
    /// Sample N prior embeddings per image and keep the closest to the caption.
    #[arg(long, default_value_t = 1)]
    pub best_of: usize,
    /// Which prior samples the image embedding: diffusion, or ar (the autoregressive prior,
    /// when the model has one; the built-in model does). --prior-guidance guides either.
    #[arg(long, default_value = "diffusion")]
    pub prior: crate::pipeline::PriorKind,
    /// The autoregressive prior's sampling temperature (1 = as trained; lower = more typical).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
}

impl GenerateArgs {
    pub fn params(&self) -> GenerateParams {
        let d = self.decode.params();
        GenerateParams {
            prompt: self.prompt.clone(),
            num_images: d.num_images,
            seeds: Seeds { prior: self.prior_seed.unwrap_or(d.seed), decoder: self.decoder_seed },
            // The prior samples with the decoder's sampler and η.
            prior: StageParams { steps: self.prior_steps, guidance: self.prior_guidance, ..d.decoder },
            decoder: d.decoder,
            super_res_steps: d.super_res_steps,
            best_of: self.best_of,
            prior_kind: self.prior,
            temperature: self.temperature,
        }
    }
}

#[derive(Args, Debug)]
pub struct VaryArgs {
    pub image: PathBuf,
    #[command(flatten)]
    pub decode: DecodeArgs,
}

#[derive(Args, Debug)]
pub struct InterpolateArgs {
    pub image_a: PathBuf,
    pub image_b: PathBuf,
    /// One frame at this θ ∈ [0, 1].
    #[arg(long, conflicts_with = "frames", allow_negative_numbers = true)]
    pub theta: Option<f32>,
    /// N frames from θ = 0 to 1.
    #[arg(long)]
    pub frames: Option<usize>,
    /// fixed (one random x_T) or inverted (slerp of the DDIM-inverted latents; decodes at
    /// decoder guidance ≤ 2, as text diffs do).
    #[arg(long, default_value = "fixed")]
    pub start: StartLatent,
    #[command(flatten)]
    pub decode: DecodeArgs,
}

#[derive(Args, Debug)]
pub struct TextDiffArgs {
    pub image: PathBuf,
    /// The caption to move toward.
    #[arg(long)]
    pub to: String,
    /// A caption of the current image ("" by default).
    #[arg(long, default_value = "")]
    pub from: String,
    /// Strength(s), comma-separated for a sweep (e.g. 0,0.1,0.2,0.3,0.4,0.5).
    #[arg(long, default_value = "0.25", value_delimiter = ',', allow_negative_numbers = true)]
    pub theta: Vec<f32>,
    #[command(flatten)]
    pub decode: DecodeArgs,
}

#[derive(Args, Debug)]
pub struct InvertArgs {
    pub image: PathBuf,
    #[arg(long, default_value_t = 25)]
    pub steps: usize,
    /// Decoder guidance during inversion and reconstruction (1 = none).
    #[arg(long, default_value_t = 1.0)]
    pub guidance: f32,
    /// Where to save the reconstruction.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
}


/// Progress bars, one per stage, and notes printed above them. When stderr is not a terminal
/// (a log, a script) the bars are hidden, so each stage prints plain lines instead: when its
/// first step is done (which includes loading its network and any kernel tuning) and when it
/// ends, with seconds since the stage began.
fn progress_printer() -> impl FnMut(Progress) + Send {
    use std::io::IsTerminal;
    let plain = !std::io::stderr().is_terminal();
    let mut bar: Option<(Stage, ProgressBar)> = None;
    let mut began = std::time::Instant::now();
    move |p| match p {
        Progress::Step { stage, step, total, .. } => {
            if bar.as_ref().map(|(s, _)| *s) != Some(stage) {
                if let Some((_, b)) = bar.take() {
                    b.finish();
                }
                let b = ProgressBar::new(total as u64);
                b.set_style(
                    ProgressStyle::with_template("{msg:>17} [{bar:30}] {pos}/{len} {elapsed}<{eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                b.set_message(stage.label());
                bar = Some((stage, b));
            }
            if let Some((_, b)) = &bar {
                b.set_position(step as u64);
                if step == total {
                    b.finish();
                }
            }
            if plain && (step == 1 || step == total) {
                let what = if step == total { format!("{total} steps done") } else { "first step done".into() };
                eprintln!("{}: {what} after {:.1} s", stage.label(), began.elapsed().as_secs_f64());
            }
            if step == total {
                began = std::time::Instant::now();
            }
        }
        Progress::Note(n) => eprintln!("note: {n}"),
    }
}

fn output_paths(out: &Option<PathBuf>, default_stem: &str, n: usize) -> Vec<PathBuf> {
    let base = out.clone().unwrap_or_else(|| PathBuf::from(format!("{default_stem}.png")));
    if n == 1 {
        return vec![base];
    }
    let stem = base.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| default_stem.into());
    let ext = base.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_else(|| "png".into());
    (1..=n).map(|i| base.with_file_name(format!("{stem}-{i}.{ext}"))).collect()
}

fn save_all(g: &Generated, out: &Option<PathBuf>, stem: &str, model: &str, op: &Operation, grid: bool) -> Result<(), String> {
    if grid {
        return save_strip(&g.pictures, out, stem, Some(&Recipe::new(model.to_string(), 0, op.clone())));
    }
    for (i, (pic, path)) in g.pictures.iter().zip(output_paths(out, stem, g.pictures.len())).enumerate() {
        save_png(&path, pic, Some(&Recipe::new(model.to_string(), i, op.clone())))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// Most frames of one interpolation or θ values of one text-diff sweep (like `-n`'s 64).
pub const MAX_FRAMES: usize = 64;

/// Every θ in [0, 1] and not too many of them: checked before any network runs.
fn check_thetas(thetas: &[f32]) -> Result<(), String> {
    if thetas.is_empty() || thetas.len() > MAX_FRAMES {
        return Err(format!("give 1..={MAX_FRAMES} θ values, got {}", thetas.len()));
    }
    if let Some(t) = thetas.iter().find(|t| !(0.0..=1.0).contains(*t)) {
        return Err(format!("θ must be in [0, 1], got {t}"));
    }
    Ok(())
}

/// Outputs are PNG files (the recipe lives in PNG text chunks): another extension is refused
/// rather than given PNG bytes under a misleading name.
fn check_output(out: &Option<PathBuf>) -> Result<(), String> {
    let Some(path) = out else { return Ok(()) };
    match path.extension() {
        None => Err(format!("{}: the output needs a .png extension", path.display())),
        Some(e) if !e.eq_ignore_ascii_case("png") => {
            Err(format!("{}: outputs are PNG files (they carry the recipe); use a .png name", path.display()))
        }
        _ => Ok(()),
    }
}

/// Runs one operation per θ and saves each frame (numbered), or all as one strip.
fn sweep(
    thetas: &[f32],
    out: &Option<PathBuf>,
    stem: &str,
    grid: bool,
    model: &str,
    mut frame: impl FnMut(f32) -> Result<(Generated, Operation), String>,
) -> Result<(), String> {
    let paths = output_paths(out, stem, thetas.len());
    let mut frames = Vec::new();
    for (theta, path) in thetas.iter().zip(paths) {
        let (g, op) = frame(*theta)?;
        if grid {
            frames.extend(g.pictures);
        } else {
            save_all(&g, &Some(path), stem, model, &op, false)?;
        }
    }
    if grid {
        save_strip(&frames, out, stem, None)?;
    }
    Ok(())
}

/// All pictures side by side in one PNG (`out`, or `{stem}.png`).
fn save_strip(pictures: &[Picture], out: &Option<PathBuf>, stem: &str, recipe: Option<&Recipe>) -> Result<(), String> {
    let path = out.clone().unwrap_or_else(|| PathBuf::from(format!("{stem}.png")));
    save_png(&path, &crate::pipeline::images::strip(pictures), recipe)?;
    println!("{}", path.display());
    Ok(())
}

/// The checks each image command's arguments get before the model is opened: the same
/// parameter rules as every other front end, θ ranges and counts, output names.
fn check_arguments(command: &Command) -> Result<(), String> {
    match command {
        Command::Generate(a) => {
            check_output(&a.decode.out)?;
            a.params().validate()
        }
        Command::Vary(a) => {
            check_output(&a.decode.out)?;
            a.decode.params().validate()
        }
        Command::Interpolate(a) => {
            check_output(&a.decode.out)?;
            if let Some(t) = a.theta {
                check_thetas(&[t])?;
            }
            DecodeParams { num_images: 1, ..a.decode.params() }.validate()
        }
        Command::Textdiff(a) => {
            check_output(&a.decode.out)?;
            check_thetas(&a.theta)?;
            DecodeParams { num_images: 1, ..a.decode.params() }.validate()
        }
        Command::Invert(a) => {
            check_output(&a.out)?;
            StageParams { steps: a.steps, guidance: a.guidance, sampler: Sampler::Ddim, eta: 0.0 }.validate("inversion")
        }
        _ => Ok(()),
    }
}

fn load(path: &Path) -> Result<Picture, String> {
    load_picture(path)
}

/// An input image of a request, with the path its recipe records.
fn input(path: &Path) -> Result<(Picture, String), String> {
    Ok((load_picture(path)?, path.display().to_string()))
}

/// Runs a request whose images carry their recipe names; returns the pictures and the
/// recipe's operation.
fn run_request(
    engine: &mut Engine,
    request: Request<(Picture, String)>,
    ctl: &mut Control,
) -> Result<(Generated, Operation), String> {
    let (request, op) = request.split();
    let g = engine.run(&request, ctl).map_err(|e| e.to_string())?;
    Ok((g, op))
}

/// Runs a CLI command; the error is one line for the user.
pub fn run(cli: Cli) -> Result<(), String> {
    let Some(command) = cli.command else { return Err("no command".into()) };
    if let Command::Train(a) = &command {
        return train(a, cli.device);
    }
    if let Command::Bench(BenchCommand::Ui { prompt, images }) = &command {
        let model_dir = cli.model.clone().unwrap_or_else(default_model_dir);
        println!("{}", crate::bench_ui::run_ui(&model_dir, prompt, *images)?);
        return Ok(());
    }
    if let Command::Bench(b) = &command {
        let chosen = choose(cli.device)?;
        let out = match b {
            BenchCommand::Pipeline { prompt, warmup, repeat } => {
                let model_dir = cli.model.clone().unwrap_or_else(default_model_dir);
                crate::bench_pipeline::run_pipeline(&model_dir, chosen.device, cli.dtype.unwrap_or_default().dtype(), prompt, *warmup, *repeat)?
            }
            BenchCommand::Ui { .. } => return Err("handled above".into()),
            BenchCommand::Kernels { iters } => {
                eprintln!("device: {}", chosen.name);
                crate::bench::run_kernels(&chosen.device, *iters)?
            }
        };
        println!("{out}");
        return Ok(());
    }
    if let Command::Eval(a) = &command {
        let model_dir = cli.model.clone().unwrap_or_else(default_model_dir);
        let chosen = choose(cli.device)?;
        // Prints the table and writes the JSON report.
        let publish = |table: String, json: serde_json::Result<String>, seconds: f64| -> Result<(), String> {
            println!("{table}");
            crate::files::write_atomic(&a.json, json.map_err(|e| e.to_string())?.as_bytes())?;
            println!("report written to {} ({seconds:.0} s)", a.json.display());
            Ok(())
        };
        if a.priors {
            let report = crate::train::eval_priors::compare(&model_dir, a.samples, chosen.device)?;
            return publish(crate::train::eval_priors::table(&report), serde_json::to_string_pretty(&report), report.seconds);
        }
        if a.clip {
            let report = crate::train::eval::evaluate_clip(&model_dir, a.samples, chosen.device)?;
            let table = format!("| measure | value |\n|---|---|\n{}", crate::train::eval::clip_row(&report));
            return publish(table, serde_json::to_string_pretty(&report), report.seconds);
        }
        let mut report = crate::train::eval::evaluate(&model_dir, a.samples, chosen.device)?;
        // A report committed beside the model names it the way recipes do, not by this
        // machine's path.
        if cli.model.is_none() {
            report.model = "default".into();
        }
        return publish(crate::train::eval::table(&report), serde_json::to_string_pretty(&report), report.seconds);
    }
    // Arguments first: a bad one costs no model load and writes nothing.
    check_arguments(&command)?;
    let model_dir = cli.model.clone().unwrap_or_else(default_model_dir);
    let model_name = if cli.model.is_some() { model_dir.display().to_string() } else { "default".into() };
    let chosen = choose(cli.device)?;
    eprintln!("device: {}", chosen.name);
    if cli.verbose {
        // Which folder a bare run picked (UNCLIP_MODEL, an installed package's, the source tree's).
        eprintln!("model: {}", model_dir.display());
    }
    let mut engine = Engine::open(&model_dir, chosen.device).map_err(|e| e.to_string())?;
    engine.dtype = cli.dtype.unwrap_or_default().dtype();
    engine.release_stages = cli.release_stages;
    engine.folder.variant = cli.variant.clone();
    // Every config and weights header is checked before any network is built or allocated.
    if let Some(problem) = engine.folder.validate().into_iter().next() {
        return Err(problem);
    }
    if cli.verbose {
        let need = crate::pipeline::budget::gigabytes(engine.memory_estimate().peak(engine.release_stages));
        eprintln!("memory: about {need} at most");
    }
    if let Some(note) = engine.fit_memory().map_err(|e| e.to_string())? {
        eprintln!("note: {note}");
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let mut sink = progress_printer();
    let mut ctl = Control::new(cancel, &mut sink);
    ctl.previews = false;
    let err = |e: crate::pipeline::PipelineError| e.to_string();
    match command {
        Command::Generate(a) => {
            let request = Request::Generate(a.params());
            let stem = format!("unclip-{}", a.decode.seed);
            let (g, op) = run_request(&mut engine, request, &mut ctl)?;
            save_all(&g, &a.decode.out, &stem, &model_name, &op, a.decode.grid)
        }
        Command::Vary(a) => {
            let request = Request::Variations { source: input(&a.image)?, params: a.decode.params() };
            let stem = format!("unclip-vary-{}", a.decode.seed);
            let (g, op) = run_request(&mut engine, request, &mut ctl)?;
            save_all(&g, &a.decode.out, &stem, &model_name, &op, a.decode.grid)
        }
        Command::Interpolate(a) => {
            let (ia, ib, start) = (input(&a.image_a)?, input(&a.image_b)?, a.start);
            let thetas: Vec<f32> = match (a.theta, a.frames) {
                (Some(t), _) => vec![t],
                (None, Some(n)) if (2..=MAX_FRAMES).contains(&n) => (0..n).map(|i| i as f32 / (n - 1) as f32).collect(),
                (None, Some(n)) => return Err(format!("--frames must be 2..={MAX_FRAMES}, got {n}")),
                (None, None) => return Err("give --theta F or --frames N".into()),
            };
            let mut p = a.decode.params();
            p.num_images = 1;
            let stem = format!("unclip-interp-{}", p.seed);
            let base = a.decode.out.clone().unwrap_or_else(|| PathBuf::from(format!("{stem}.png")));
            sweep(&thetas, &Some(base), &stem, a.decode.grid, &model_name, |theta| {
                let (a, b) = (Endpoint::Image(ia.clone()), Endpoint::Image(ib.clone()));
                run_request(&mut engine, Request::Interpolate { a, b, theta, start, params: p.clone() }, &mut ctl)
            })
        }
        Command::Textdiff(a) => {
            let source = input(&a.image)?;
            let mut p = a.decode.params();
            p.num_images = 1;
            let stem = format!("unclip-textdiff-{}", p.seed);
            sweep(&a.theta, &a.decode.out, &stem, a.decode.grid, &model_name, |theta| {
                let (to, from) = (a.to.clone(), a.from.clone());
                let request = Request::TextDiff { source: source.clone(), to, from, theta, params: p.clone() };
                run_request(&mut engine, request, &mut ctl)
            })
        }
        Command::Train(_) | Command::Eval(_) | Command::Bench(_) => Err("handled above".into()),
        Command::Invert(a) => {
            let img = load(&a.image)?;
            let inv = engine.invert_image(&img, a.steps, a.guidance, &mut ctl).map_err(err)?;
            let (rec, psnr) = engine.reconstruct(&img, &inv, a.steps, a.guidance, &mut ctl).map_err(err)?;
            println!("reconstruction PSNR at {}×{}: {psnr:.2} dB", inv.size, inv.size);
            let out = a.out.unwrap_or_else(|| PathBuf::from("unclip-inverted.png"));
            save_png(&out, &rec, None)?;
            println!("{}", out.display());
            Ok(())
        }
    }
}

fn train(a: &TrainArgs, device: DevicePref) -> Result<(), String> {
    use crate::train::{Recipe, StageName, default_dirs, train_all, train_stage};
    let (out_default, work_default) = default_dirs();
    let out = a.out.clone().unwrap_or(out_default);
    let work = a.work.clone().unwrap_or(work_default);
    let chosen = choose(device)?;
    eprintln!("training on {}", chosen.name);
    let mut recipe = Recipe::new(a.recipe).on(chosen.device);
    if let Some(n) = a.steps {
        recipe = recipe.with_steps(n);
    }
    let summaries = if a.stage == "all" {
        train_all(&recipe, &out, &work, a.resume, false)?
    } else {
        vec![train_stage(a.stage.parse::<StageName>()?, &recipe, &out, &work, a.resume, false)?]
    };
    for s in summaries {
        if !s.first_loss.is_finite() {
            // Resumed at or past the recipe's last step: the weights were exported as they were.
            println!("{:?}: no steps left to train; exported the checkpoint's weights", s.stage);
            continue;
        }
        println!(
            "{:?}: loss {:.4} -> {:.4} ({:.1}x lower) in {:.0} s{}",
            s.stage,
            s.first_loss,
            s.last_loss,
            s.first_loss / s.last_loss,
            s.seconds,
            s.accuracy.map(|a| format!(", in-batch retrieval {:.0}%", a * 100.0)).unwrap_or_default()
        );
    }
    println!("model written to {}", out.display());
    Ok(())
}

/// `--dtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl Precision {
    pub fn dtype(self) -> burn::tensor::DType {
        match self {
            Precision::F32 => burn::tensor::DType::F32,
            Precision::F16 => burn::tensor::DType::F16,
        }
    }
}
