//! `scheduler_config.json` of diffusers' `UnCLIPScheduler`, with its defaults for the keys
//! older configs (Karlo's) leave out.

use serde::Deserialize;

/// diffusers `UnCLIPScheduler` (`scheduler_config.json`).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
pub struct SchedulerConfig {
    #[serde(default = "thousand")]
    pub num_train_timesteps: usize,
    #[serde(default = "fixed_small_log")]
    pub variance_type: String,
    #[serde(default = "yes")]
    pub clip_sample: bool,
    #[serde(default = "one")]
    pub clip_sample_range: f64,
    #[serde(default = "epsilon")]
    pub prediction_type: String,
    #[serde(default = "cos_cap")]
    pub beta_schedule: String,
}
impl SchedulerConfig {
    /// An UnCLIPScheduler config as Karlo's folders state them (1000 steps, squaredcos_cap_v2,
    /// x̂₀ clipped to ±`clip_sample_range`).
    pub fn unclip(variance_type: &str, prediction_type: &str, clip_sample_range: f64) -> Self {
        Self {
            num_train_timesteps: 1000,
            variance_type: variance_type.into(),
            clip_sample: true,
            clip_sample_range,
            prediction_type: prediction_type.into(),
            beta_schedule: "squaredcos_cap_v2".into(),
        }
    }
}

fn thousand() -> usize {
    1000
}
fn fixed_small_log() -> String {
    "fixed_small_log".into()
}
fn epsilon() -> String {
    "epsilon".into()
}
fn cos_cap() -> String {
    "squaredcos_cap_v2".into()
}

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
