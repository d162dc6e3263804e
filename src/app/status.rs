//! The status bar: device, model and memory. Memory is the process's resident set (RSS).
//! Reading it is a file read on Linux, so one background thread samples it once a second and
//! the UI thread only loads the last sample.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The last sample in bytes; 0 until the first one, or where the platform does not say.
static RESIDENT: AtomicU64 = AtomicU64::new(0);
static SAMPLER: Once = Once::new();

/// Resident memory in bytes, if the platform tells us (the first call starts the sampler, so
/// the first frame may show none).
pub fn resident_bytes() -> Option<u64> {
    SAMPLER.call_once(|| {
        let _ = std::thread::Builder::new().name("rss-sampler".into()).spawn(|| {
            while let Some(v) = read_rss() {
                RESIDENT.store(v, Ordering::Relaxed);
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    });
    Some(RESIDENT.load(Ordering::Relaxed)).filter(|&v| v > 0)
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
