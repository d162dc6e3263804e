//! The status bar: device, model and memory. Memory is the process's resident set (RSS),
//! sampled at most once a second because reading it is a file read.

use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Memory {
    last: Option<(Instant, Option<u64>)>,
}

impl Memory {
    /// Resident memory in bytes, if the platform tells us.
    pub fn rss(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some((t, v)) if now.duration_since(t) < Duration::from_secs(1) => v,
            _ => {
                let v = read_rss();
                self.last = Some((now, v));
                v
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn read_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(not(target_os = "linux"))]
fn read_rss() -> Option<u64> {
    None
}

pub fn bytes(n: u64) -> String {
    let mb = n as f64 / (1024.0 * 1024.0);
    if mb >= 1024.0 { format!("{:.1} GB", mb / 1024.0) } else { format!("{mb:.0} MB") }
}

/// What the worker said about the model.
#[derive(Debug, Clone, Default)]
pub enum ModelState {
    #[default]
    Opening,
    Ready {
        device: String,
        is_gpu: bool,
        /// Why text→image is off (None: on).
        generate_off: Option<String>,
        /// Why variations, interpolation and text diffs are off (None: on).
        vary_off: Option<String>,
        /// What the model needs with its networks in f32 and in f16.
        memory: [crate::pipeline::budget::MemoryEstimate; 2],
        /// The model has the autoregressive prior beside the diffusion one.
        ar_prior: bool,
    },
    Failed(String),
}

impl ModelState {
    pub fn can_generate(&self) -> bool {
        matches!(self, ModelState::Ready { generate_off: None, .. })
    }
    pub fn has_ar_prior(&self) -> bool {
        matches!(self, ModelState::Ready { ar_prior: true, .. })
    }
    pub fn can_vary(&self) -> bool {
        matches!(self, ModelState::Ready { vary_off: None, .. })
    }

    /// Why an operation cannot run now, in words for the banner or a tooltip.
    fn why_not(&self, off: impl Fn(&Self) -> Option<&String>) -> String {
        match self {
            ModelState::Opening => "the model is still opening".into(),
            ModelState::Failed(m) => format!("no model is open: {m}"),
            ModelState::Ready { .. } => off(self).cloned().unwrap_or_default(),
        }
    }
    pub fn why_not_generate(&self) -> String {
        self.why_not(|s| if let ModelState::Ready { generate_off, .. } = s { generate_off.as_ref() } else { None })
    }
    pub fn why_not_vary(&self) -> String {
        self.why_not(|s| if let ModelState::Ready { vary_off, .. } = s { vary_off.as_ref() } else { None })
    }
}
