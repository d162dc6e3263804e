//! What the user set, persisted as JSON between launches. Unknown or missing fields fall
//! back to defaults, so an old or hand-edited file never stops the app from starting.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::device::DevicePref;
use crate::pipeline::ops::Endpoint;
use crate::pipeline::{DecodeParams, GenerateParams, PriorKind, Sampler, Seeds, StageParams, StartLatent};
use crate::recipe::Operation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Generate,
    Variations,
    Interpolate,
    TextDiff,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Generate, Mode::Variations, Mode::Interpolate, Mode::TextDiff];

    /// Tab titles; distinct from every button label so tests can find each by name.
    pub fn title(self) -> &'static str {
        match self {
            // Only glyphs of egui's bundled font (no arrows), so no platform font is needed.
            Mode::Generate => "Text to image",
            Mode::Variations => "Variations",
            Mode::Interpolate => "Interpolate",
            Mode::TextDiff => "Text diff",
        }
    }
}

/// One end of an interpolation: an image (in a slot) or a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EndKind {
    #[default]
    Image,
    Prompt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InterpSettings {
    pub a_kind: EndKind,
    pub b_kind: EndKind,
    pub a_prompt: String,
    pub b_prompt: String,
    pub theta: f32,
    pub start: StartLatent,
    /// Frames in the filmstrip, θ evenly spaced from 0 to 1.
    pub frames: usize,
}

impl Default for InterpSettings {
    fn default() -> Self {
        Self {
            a_kind: EndKind::Image,
            b_kind: EndKind::Image,
            a_prompt: String::new(),
            b_prompt: String::new(),
            theta: 0.5,
            start: StartLatent::Fixed,
            frames: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextDiffSettings {
    pub to: String,
    pub from: String,
    pub theta: f32,
}

impl Default for TextDiffSettings {
    fn default() -> Self {
        Self { to: String::new(), from: String::new(), theta: 0.25 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub mode: Mode,
    pub prompt: String,
    pub num_images: usize,
    pub best_of: usize,
    pub prior: StageParams,
    /// Diffusion or autoregressive prior (offered when the model has both).
    pub prior_kind: PriorKind,
    /// The autoregressive prior's temperature.
    pub temperature: f32,
    pub decoder: StageParams,
    pub super_res_steps: usize,
    /// The prior's seed, and the seed of the decode-only operations.
    pub seed: u64,
    /// Keep `seed` for every run (otherwise a seed that a run has used is replaced by a new
    /// one when the next run starts, so the field always shows the seed of the last result).
    pub lock_seed: bool,
    /// `seed` has been used by a run (and is what the field shows for its result).
    pub seed_used: bool,
    /// Give the decoder its own seed: same composition, new details.
    pub separate_decoder_seed: bool,
    pub decoder_seed: u64,
    pub lock_decoder_seed: bool,
    pub decoder_seed_used: bool,
    pub variations: usize,
    pub interp: InterpSettings,
    pub text_diff: TextDiffSettings,
    /// Decoder steps of the quick frames rendered while a θ slider is dragged.
    pub draft_steps: usize,
    pub device: DevicePref,
    /// Networks in f16 (half the weight memory; for GPUs with shader-f16).
    pub half_precision: bool,
    /// Free each stage's networks when it ends (less memory, reload on the next run).
    pub release_stages: bool,
    /// A model folder picked with "Open model folder…" (None: the shipped model).
    pub model: Option<PathBuf>,
    /// Images in the input slots, re-opened at start when they still exist.
    pub vary_source: Option<PathBuf>,
    pub interp_a: Option<PathBuf>,
    pub interp_b: Option<PathBuf>,
    pub text_diff_source: Option<PathBuf>,
    /// Bumped by View → Reset layout: the side panels get new ids, so egui's remembered
    /// widths are dropped for their defaults (also across restarts).
    pub layout_generation: u32,
    /// Model folders and repo ids opened lately, newest first.
    pub recent_models: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let g = GenerateParams::default();
        Self {
            mode: Mode::Generate,
            prompt: String::new(),
            num_images: 1,
            best_of: 1,
            prior: g.prior,
            prior_kind: g.prior_kind,
            temperature: g.temperature,
            decoder: g.decoder,
            super_res_steps: g.super_res_steps,
            seed: 0,
            lock_seed: false,
            seed_used: false,
            separate_decoder_seed: false,
            decoder_seed: 1,
            lock_decoder_seed: false,
            decoder_seed_used: false,
            variations: 4,
            interp: InterpSettings::default(),
            text_diff: TextDiffSettings::default(),
            draft_steps: 8,
            device: DevicePref::Auto,
            half_precision: false,
            release_stages: false,
            model: None,
            vary_source: None,
            interp_a: None,
            interp_b: None,
            text_diff_source: None,
            layout_generation: 0,
            recent_models: Vec::new(),
        }
    }
}

impl Settings {
    /// Reads the file; a missing file gives defaults, a broken one gives defaults and a
    /// message for the banner.
    pub fn load(path: &Path) -> (Self, Option<String>) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Self::default(), None),
            Err(e) => return (Self::default(), Some(format!("settings not read ({}): {e}", path.display()))),
        };
        match serde_json::from_str::<Settings>(&text) {
            Ok(s) => s.sanitized(),
            Err(e) => (Self::default(), Some(format!("settings reset, {} is not valid: {e}", path.display()))),
        }
    }

    pub fn to_json(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec_pretty(self).map_err(|e| e.to_string())
    }

    /// Values a hand-edited file could put out of range, clamped to what the sliders allow;
    /// texts longer than any caption are cut (with a note), so a huge prompt cannot stall the
    /// window's text layout.
    fn sanitized(mut self) -> (Self, Option<String>) {
        let mut cut = false;
        for text in [
            &mut self.prompt,
            &mut self.interp.a_prompt,
            &mut self.interp.b_prompt,
            &mut self.text_diff.to,
            &mut self.text_diff.from,
        ] {
            if text.len() > MAX_TEXT {
                let mut end = MAX_TEXT;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                cut = true;
            }
        }
        self.num_images = self.num_images.clamp(1, 16);
        self.best_of = self.best_of.clamp(1, 16);
        self.variations = self.variations.clamp(1, 16);
        self.super_res_steps = if self.super_res_steps == 1 { 2 } else { self.super_res_steps.min(1000) };
        self.draft_steps = self.draft_steps.clamp(2, 1000);
        for s in [&mut self.prior, &mut self.decoder] {
            s.steps = s.steps.clamp(2, 1000);
            s.guidance = if s.guidance.is_finite() { s.guidance.clamp(0.0, crate::pipeline::MAX_GUIDANCE) } else { 1.0 };
            s.eta = if s.eta.is_finite() { s.eta.clamp(0.0, 1.0) } else { 0.0 };
        }
        self.temperature = if self.temperature.is_finite() {
            self.temperature.clamp(0.05, crate::pipeline::params::MAX_TEMPERATURE)
        } else {
            1.0
        };
        let unit = |t: f32| if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.5 };
        self.interp.theta = unit(self.interp.theta);
        self.text_diff.theta = unit(self.text_diff.theta);
        self.interp.frames = self.interp.frames.clamp(2, 32);
        self.recent_models.truncate(MAX_RECENT);
        self.recent_models.retain(|r| r.len() <= MAX_TEXT);
        let note = cut.then(|| format!("a saved prompt was longer than {MAX_TEXT} bytes and was cut"));
        (self, note)
    }

    /// Puts a model at the top of the recent list (at most 8, no repeats).
    pub fn remember_model(&mut self, reference: &str) {
        self.recent_models.retain(|r| r != reference);
        self.recent_models.insert(0, reference.to_string());
        self.recent_models.truncate(MAX_RECENT);
    }

    pub fn seeds(&self) -> Seeds {
        Seeds { prior: self.seed, decoder: self.separate_decoder_seed.then_some(self.decoder_seed) }
    }

    pub fn generate_params(&self) -> GenerateParams {
        GenerateParams {
            prompt: self.prompt.trim().to_string(),
            num_images: self.num_images,
            seeds: self.seeds(),
            prior: as_run(self.prior),
            decoder: as_run(self.decoder),
            super_res_steps: self.super_res_steps,
            best_of: self.best_of,
            prior_kind: self.prior_kind,
            // The slider's value is kept for when the autoregressive prior is chosen again.
            temperature: if self.prior_kind == PriorKind::Autoregressive { self.temperature } else { 1.0 },
        }
    }

    /// Decode settings of variations, interpolation and text diffs. With a separate decoder
    /// seed that seed is used, otherwise the main one.
    pub fn decode_params(&self, num_images: usize) -> DecodeParams {
        DecodeParams {
            num_images,
            seed: if self.separate_decoder_seed { self.decoder_seed } else { self.seed },
            decoder: as_run(self.decoder),
            super_res_steps: self.super_res_steps,
        }
    }

    /// The quick version shown while a slider moves: fewer decoder steps, no super-resolution.
    pub fn draft_params(&self) -> DecodeParams {
        let mut p = self.decode_params(1);
        p.decoder.steps = p.decoder.steps.min(self.draft_steps.max(2));
        p.super_res_steps = 0;
        p
    }

    /// Called as a run is queued, before its parameters are read: an unlocked seed that an
    /// earlier run used is replaced by a new one, a seed typed or rerolled since is kept. The
    /// field then shows the seed of the run it belongs to, as the recipe and file name do.
    pub fn seeds_for_next_run(&mut self) {
        for (seed, used, locked, active) in [
            (&mut self.seed, &mut self.seed_used, self.lock_seed, true),
            (&mut self.decoder_seed, &mut self.decoder_seed_used, self.lock_decoder_seed, self.separate_decoder_seed),
        ] {
            if !active {
                continue;
            }
            if *used && !locked {
                *seed = random_seed();
            }
            *used = true;
        }
    }

    /// Copies a recipe's settings back (the seed too, so the same run can be made again).
    /// Sources that were files are returned for the caller to re-open.
    pub fn restore(&mut self, op: &Operation) -> Vec<(super::inputs::Slot, PathBuf)> {
        use super::inputs::Slot;
        let mut sources = Vec::new();
        let decode = |s: &mut Settings, p: &DecodeParams| {
            s.decoder = p.decoder;
            s.super_res_steps = p.super_res_steps;
            if s.separate_decoder_seed {
                s.decoder_seed = p.seed;
                s.decoder_seed_used = false;
            } else {
                s.seed = p.seed;
                s.seed_used = false;
            }
        };
        // Whether a source still exists is the loader thread's to find out (`Purpose::Reopen`).
        let file = |s: &str| Some(PathBuf::from(s));
        match op {
            Operation::Generate(g) => {
                self.mode = Mode::Generate;
                self.prompt = g.prompt.clone();
                self.num_images = g.num_images.clamp(1, 16);
                self.best_of = g.best_of.clamp(1, 16);
                self.prior = g.prior;
                self.prior_kind = g.prior_kind;
                self.temperature = g.temperature;
                self.decoder = g.decoder;
                self.super_res_steps = g.super_res_steps;
                // Not yet "used": the next run makes the same picture again.
                self.seed = g.seeds.prior;
                self.seed_used = false;
                self.separate_decoder_seed = g.seeds.decoder.is_some();
                if let Some(d) = g.seeds.decoder {
                    self.decoder_seed = d;
                    self.decoder_seed_used = false;
                }
            }
            Operation::Variations { source, params } => {
                self.mode = Mode::Variations;
                self.variations = params.num_images.clamp(1, 16);
                decode(self, params);
                sources.extend(file(source).map(|p| (Slot::VarySource, p)));
            }
            Operation::Interpolate { a, b, theta, start, params } => {
                self.mode = Mode::Interpolate;
                self.interp.theta = theta.clamp(0.0, 1.0);
                self.interp.start = *start;
                decode(self, params);
                for (end, slot, kind, prompt) in [
                    (a, Slot::InterpA, &mut self.interp.a_kind, &mut self.interp.a_prompt),
                    (b, Slot::InterpB, &mut self.interp.b_kind, &mut self.interp.b_prompt),
                ] {
                    match end {
                        Endpoint::Prompt(p) => {
                            *kind = EndKind::Prompt;
                            *prompt = p.clone();
                        }
                        Endpoint::Image(path) => {
                            *kind = EndKind::Image;
                            sources.extend(file(path).map(|p| (slot, p)));
                        }
                    }
                }
            }
            Operation::TextDiff { source, to, from, theta, params } => {
                self.mode = Mode::TextDiff;
                self.text_diff.to = to.clone();
                self.text_diff.from = from.clone();
                self.text_diff.theta = theta.clamp(0.0, 1.0);
                decode(self, params);
                sources.extend(file(source).map(|p| (Slot::TextDiffSource, p)));
            }
        }
        sources
    }
}

/// A stage as it runs and as its recipe records it: the η slider keeps its value while DDPM
/// is chosen, but DDPM has no η.
fn as_run(mut s: StageParams) -> StageParams {
    if s.sampler == Sampler::Ddpm {
        s.eta = 0.0;
    }
    s
}

const MAX_RECENT: usize = 8;

/// Longest prompt or caption kept from the settings file (CLIP reads 77 tokens).
pub const MAX_TEXT: usize = 2000;

/// A seed from the clock, mixed (splitmix64) so consecutive calls differ in every bit.
pub fn random_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut z = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    // Keep seeds short enough to read and type.
    (z ^ (z >> 31)) % 1_000_000_000
}

/// Which samplers the combo boxes offer.
pub const SAMPLERS: [(Sampler, &str); 2] = [(Sampler::Ddpm, "DDPM (model's own)"), (Sampler::Ddim, "DDIM")];

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("unclip-settings-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_22_mb_prompt_in_the_settings_file_is_cut_with_a_note() {
        let d = scratch("huge");
        let path = d.join("settings.json");
        let s = Settings { prompt: "a red star ".repeat(2_000_000), ..Settings::default() };
        std::fs::write(&path, s.to_json().unwrap()).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 20_000_000);
        let (loaded, note) = Settings::load(&path);
        assert!(loaded.prompt.len() <= MAX_TEXT, "{} bytes kept", loaded.prompt.len());
        assert!(loaded.prompt.starts_with("a red star a red star"));
        assert!(note.is_some_and(|n| n.contains("cut")));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn out_of_range_values_in_a_hand_edited_file_are_clamped_to_what_runs() {
        let d = scratch("clamp");
        let path = d.join("settings.json");
        let mut s = Settings::default();
        s.decoder.steps = 0;
        s.prior.guidance = 1e30;
        s.super_res_steps = 1;
        s.draft_steps = 1;
        std::fs::write(&path, s.to_json().unwrap()).unwrap();
        let (loaded, note) = Settings::load(&path);
        assert_eq!(note, None);
        assert!(loaded.generate_params().validate().is_ok(), "{:?}", loaded.generate_params().validate());
        assert!(loaded.draft_params().validate().is_ok());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_unlocked_seed_is_replaced_only_once_it_has_been_used() {
        let mut s = Settings { seed: 42, ..Settings::default() };
        s.seeds_for_next_run();
        assert_eq!(s.seed, 42, "a fresh seed is used as it is");
        s.seeds_for_next_run();
        assert_ne!(s.seed, 42, "a used, unlocked seed is replaced");
        s.lock_seed = true;
        let locked = s.seed;
        s.seeds_for_next_run();
        assert_eq!(s.seed, locked);
    }

    #[test]
    fn ddpm_runs_and_records_no_eta() {
        let mut s = Settings::default();
        s.decoder.eta = 0.7;
        s.decoder.sampler = Sampler::Ddpm;
        assert_eq!(s.decode_params(1).decoder.eta, 0.0);
        s.decoder.sampler = Sampler::Ddim;
        assert_eq!(s.decode_params(1).decoder.eta, 0.7);
    }
}
