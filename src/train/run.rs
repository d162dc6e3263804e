//! What every training stage shares: the recipe's budget, a progress bar, a CSV loss log,
//! periodic checkpoints that `--resume` continues from, and the learning-rate schedule.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use indicatif::{ProgressBar, ProgressStyle};

use super::ema::{EMA_DECAY, Ema};

fn load_checkpoint<M: Module + ModuleSnapshot>(path: &Path, model: &mut M) -> Result<(), String> {
    let mut store = SafetensorsStore::from_file(path);
    let r = model
        .load_from(&mut store)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !r.errors.is_empty() || !r.missing.is_empty() {
        return Err(format!("{}: checkpoint does not match the model", path.display()));
    }
    Ok(())
}

/// quick: minutes, for tests and smoke runs; full: the shipped model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipeKind {
    Quick,
    Full,
}

impl std::str::FromStr for RecipeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::choice::parse(s, "recipe", &[(&["quick"], RecipeKind::Quick), (&["full"], RecipeKind::Full)])
    }
}

/// One stage's budget.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub warmup: usize,
    pub checkpoint_every: usize,
}

impl Budget {
    /// Linear warm-up, then cosine decay to 10 %.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let p =
            (step - self.warmup) as f64 / (self.steps.saturating_sub(self.warmup)).max(1) as f64;
        self.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos()))
    }
}

/// Progress, log and checkpoints of one stage.
pub struct StageRun {
    pub name: &'static str,
    pub budget: Budget,
    dir: PathBuf,
    bar: ProgressBar,
    log: std::fs::File,
    started: Instant,
    /// Mean loss of the first and the latest logging windows (to state what was learned).
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
    window: Vec<f64>,
    pub quiet: bool,
}

impl StageRun {
    pub fn new(
        name: &'static str,
        budget: Budget,
        work_dir: &Path,
        quiet: bool,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(work_dir)?;
        let log_path = work_dir.join(format!("{name}_loss.csv"));
        let fresh = !log_path.exists();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        if fresh {
            writeln!(log, "step,loss,lr,seconds")?;
        }
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(budget.steps as u64)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>8} [{bar:30}] {pos}/{len} {elapsed}<{eta} loss {prefix}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(name);
        Ok(Self {
            name,
            budget,
            dir: work_dir.to_path_buf(),
            bar,
            log,
            started: Instant::now(),
            first_loss: None,
            last_loss: None,
            window: Vec::new(),
            quiet,
        })
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir
            .join(format!("{}_checkpoint.safetensors", self.name))
    }

    fn step_path(&self) -> PathBuf {
        self.dir.join(format!("{}_checkpoint.step", self.name))
    }

    fn ema_path(&self) -> PathBuf {
        self.dir.join(format!("{}_ema.safetensors", self.name))
    }

    /// The last step the loss log recorded: where a warm start from exported weights picks up
    /// the data stream and the learning-rate schedule.
    pub fn logged_steps(&self) -> usize {
        let text = std::fs::read_to_string(self.dir.join(format!("{}_loss.csv", self.name)))
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split(',').next()?.parse::<usize>().ok())
            .next_back()
            .unwrap_or(0)
    }

    /// Marks a warm start at `step` (weights came from the exported folder, not a checkpoint).
    pub fn warm_started(&self, step: usize) {
        self.bar.set_position(step as u64);
        if !self.quiet {
            eprintln!("{}: no checkpoint; continuing the exported weights from step {step}", self.name);
        }
    }

    /// Restores the latest checkpoint into `model`; returns the step to continue from.
    pub fn resume<M: Module + ModuleSnapshot>(&self, model: &mut M) -> Result<usize, String> {
        let (ck, st) = (self.checkpoint_path(), self.step_path());
        if !ck.is_file() || !st.is_file() {
            return Ok(0);
        }
        let step: usize = std::fs::read_to_string(&st)
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|_| format!("{}: not a step number", st.display()))?;
        load_checkpoint(&ck, model)?;
        self.bar.set_position(step as u64);
        Ok(step)
    }

    /// The weight average to keep: the saved one when training continues from a step with
    /// one, else a new one started at the trainee's weights.
    pub fn ema<M: Module + ModuleSnapshot>(&self, trainee: &M, step: usize) -> Result<Ema<M>, String> {
        let path = self.ema_path();
        if step > 0 && path.is_file() {
            let mut shadow = trainee.valid();
            load_checkpoint(&path, &mut shadow)?;
            return Ok(Ema::resume(shadow, EMA_DECAY));
        }
        Ok(Ema::new(trainee, EMA_DECAY))
    }

    /// Saves the raw weights, their average (if kept) and the step, in that order, so a
    /// step file never names weights that were not written.
    pub fn checkpoint<M: Module + ModuleSnapshot>(
        &self,
        model: &M,
        ema: Option<&Ema<M>>,
        step: usize,
    ) -> Result<(), String> {
        let mut store = SafetensorsStore::from_file(self.checkpoint_path()).overwrite(true);
        model.save_into(&mut store).map_err(|e| e.to_string())?;
        if let Some(ema) = ema {
            let mut store = SafetensorsStore::from_file(self.ema_path()).overwrite(true);
            ema.shadow.save_into(&mut store).map_err(|e| e.to_string())?;
        }
        crate::files::write_atomic(&self.step_path(), step.to_string().as_bytes())
    }

    /// Records one step's loss; logs the window mean every 10 steps.
    pub fn record(&mut self, step: usize, loss: f64) {
        self.window.push(loss);
        if self.window.len() >= 10 || step + 1 == self.budget.steps {
            let mean = self.window.iter().sum::<f64>() / self.window.len() as f64;
            self.window.clear();
            if self.first_loss.is_none() {
                self.first_loss = Some(mean);
            }
            self.last_loss = Some(mean);
            let _ = writeln!(
                self.log,
                "{},{:.6},{:.3e},{:.1}",
                step + 1,
                mean,
                self.budget.lr_at(step),
                self.started.elapsed().as_secs_f64()
            );
            self.bar.set_prefix(format!("{mean:.4}"));
        }
        self.bar.set_position(step as u64 + 1);
    }

    /// Everything after an optimiser step of a stage that exports its weight average: the
    /// average, the loss log and the periodic checkpoint.
    pub fn stepped<M: Module + ModuleSnapshot>(
        &mut self,
        step: usize,
        loss: f64,
        model: &M,
        ema: &mut Ema<M>,
    ) -> Result<(), String> {
        ema.update(model);
        self.record(step, loss);
        if self.should_checkpoint(step) {
            self.checkpoint(model, Some(ema), step + 1)?;
        }
        Ok(())
    }

    /// The end of every stage's step: refuse a non-finite loss, take one optimiser step, then
    /// `stepped`. Returns the updated trainee.
    pub fn optimise<M: Module + ModuleSnapshot>(
        &mut self,
        step: usize,
        loss: burn::tensor::Tensor<1>,
        model: M,
        optim: &mut burn::optim::ModuleOptimizer,
        ema: &mut Ema<M>,
    ) -> Result<M, String> {
        let value = crate::model::nn::to_vec(loss.clone())[0] as f64;
        if !value.is_finite() {
            return Err(format!("{}: loss became {value} at step {step}", self.name));
        }
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(self.budget.lr_at(step), model, grads);
        self.stepped(step, value, &model, ema)?;
        Ok(model)
    }

    pub fn should_checkpoint(&self, step: usize) -> bool {
        (step + 1) % self.budget.checkpoint_every == 0 || step + 1 == self.budget.steps
    }

    pub fn finish(&self) {
        self.bar.finish();
        if !self.quiet && self.first_loss.is_some() {
            eprintln!(
                "{}: loss {:.4} → {:.4} in {:.0} s",
                self.name,
                self.first_loss.unwrap_or(f64::NAN),
                self.last_loss.unwrap_or(f64::NAN),
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}
