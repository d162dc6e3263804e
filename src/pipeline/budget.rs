//! Peak memory of a run, estimated from the weight headers before any network loads, and the
//! check that refuses a run the machine cannot hold (rather than being killed part-way).

use burn::tensor::DType;

use super::{Engine, PipelineError};

/// The networks resident together when each stage's are freed as it ends (`release_stages`):
/// the two super-resolution networks are never loaded at once.
const STAGES: [&[&str]; 6] =
    [&["text_encoder"], &["image_encoder"], &["prior"], &["text_proj", "decoder"], &["super_res_first"], &["super_res_last"]];

/// Memory above the weights: activations, the runtime, the caches. On the full-size
/// Karlo-shaped model with freed stages the peak is 4.16 GB for 4.08 GB of prior weights in
/// f32, and 2.50 GB for 2.04 GB in f16; half a GiB covers both.
const OVERHEAD: u64 = 512 << 20;

/// What a model needs, in bytes at the engine's compute precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Every network of the folder (what stays resident when stages are not freed).
    pub all_weights: u64,
    /// The largest set of networks one stage holds.
    pub largest_stage: u64,
}

impl MemoryEstimate {
    pub fn peak(&self, release_stages: bool) -> u64 {
        (if release_stages { self.largest_stage } else { self.all_weights }) + OVERHEAD
    }
}

/// Bytes as "4.6 GB".
pub fn gigabytes(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// Memory the system can still hand out (Linux's MemAvailable); None where unknown.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl Engine {
    /// The estimate for this folder at the current precision.
    pub fn memory_estimate(&self) -> MemoryEstimate {
        self.memory_estimate_at(self.dtype)
    }

    /// The estimate for this folder with its networks in `dtype`.
    pub fn memory_estimate_at(&self, dtype: DType) -> MemoryEstimate {
        let bytes_per_value = if dtype == DType::F16 { 2 } else { 4 };
        let values = self.stage_values.get_or_init(|| {
            let count = |component: &&str| self.folder.value_count(component).unwrap_or(0);
            STAGES.iter().map(|parts| parts.iter().map(count).sum()).collect()
        });
        MemoryEstimate {
            all_weights: values.iter().sum::<u64>() * bytes_per_value,
            largest_stage: values.iter().copied().max().unwrap_or(0) * bytes_per_value,
        }
    }

    /// Refuses, in one line with what would fit, a run whose estimated peak exceeds `available`.
    pub fn check_memory_against(&self, available: Option<u64>) -> Result<(), PipelineError> {
        let Some(available) = available else { return Ok(()) };
        let estimate = self.memory_estimate();
        let need = estimate.peak(self.release_stages);
        if need <= available {
            return Ok(());
        }
        // What would fit: the app's Model menu has the same two switches.
        let mut options = Vec::new();
        if !self.release_stages {
            options.push(format!("freeing each stage's networks (--release-stages) needs about {}", gigabytes(estimate.peak(true))));
        }
        if self.dtype != DType::F16 {
            let half = MemoryEstimate { all_weights: estimate.all_weights / 2, largest_stage: estimate.largest_stage / 2 };
            options.push(format!("with half precision (--dtype f16) too, about {}", gigabytes(half.peak(true))));
        }
        let hint = if options.is_empty() { String::new() } else { format!("; {}", options.join("; ")) };
        Err(PipelineError::Input(format!(
            "this model needs about {} of memory and {} are available{hint}",
            gigabytes(need),
            gigabytes(available)
        )))
    }

    /// Fits the next run into `available`. When every network resident at once would not
    /// fit but freeing each stage's networks as it ends would, the engine frees them from now
    /// on and says so in the returned note: a 16 GB desktop then runs a Karlo-sized model at
    /// default settings in about 4.6 GB instead of being told to change them. Refuses in one
    /// line ([`Engine::check_memory_against`]) when even that does not fit.
    pub fn fit_memory_against(&mut self, available: Option<u64>) -> Result<Option<String>, PipelineError> {
        if let Some(available) = available
            && !self.release_stages
        {
            let estimate = self.memory_estimate();
            if estimate.peak(false) > available && estimate.peak(true) <= available {
                self.release_stages = true;
                return Ok(Some(format!(
                    "all networks at once need about {} and {} are available, so each stage's networks \
                     are freed when it ends (about {}; slower when runs repeat)",
                    gigabytes(estimate.peak(false)),
                    gigabytes(available),
                    gigabytes(estimate.peak(true))
                )));
            }
        }
        self.check_memory_against(available).map(|()| None)
    }

    /// [`Engine::fit_memory_against`] this machine's available memory.
    pub fn fit_memory(&mut self) -> Result<Option<String>, PipelineError> {
        self.fit_memory_against(available_memory())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeing_stages_needs_the_largest_stage_and_the_default_needs_all() {
        let e = MemoryEstimate { all_weights: 13_700_000_000, largest_stage: 4_080_000_000 };
        assert_eq!(e.peak(false), 13_700_000_000 + OVERHEAD);
        assert_eq!(e.peak(true), 4_080_000_000 + OVERHEAD);
        assert_eq!(gigabytes(e.peak(true)), "4.6 GB");
    }
}
