//! `unclip bench pipeline`: text→image wall time on one model, after a warm-up run (weights
//! loaded, kernels compiled), with the process's peak memory — the Rust half of
//! `tests/reference/bench_reference.py`, which runs diffusers alternately with it.

use std::path::Path;
use std::time::Instant;

use crate::pipeline::{Engine, GenerateParams, Request, Seeds, silent};

/// Peak resident memory of this process in MiB (Linux; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Runs `repeat` timed generations after `warmup` untimed ones; returns one JSON line.
pub fn run_pipeline(
    model: &Path,
    device: burn::tensor::Device,
    dtype: burn::tensor::DType,
    prompt: &str,
    warmup: usize,
    repeat: usize,
) -> Result<String, String> {
    let mut e = Engine::open(model, device).map_err(|err| err.to_string())?;
    e.dtype = dtype;
    let p = GenerateParams { prompt: prompt.to_string(), seeds: Seeds { prior: 0, decoder: None }, ..GenerateParams::default() };
    // Through `Engine::run`, as the CLI and the app's worker run requests.
    let request = Request::Generate(p);
    let mut run = || silent(|ctl| e.run(&request, ctl)).map(|_| ()).map_err(|err| err.to_string());
    for _ in 0..warmup {
        run()?;
    }
    let mut seconds = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        run()?;
        seconds.push(t.elapsed().as_secs_f64());
    }
    Ok(serde_json::json!({ "seconds": seconds, "peak_rss_mib": peak_rss_mib() }).to_string())
}
