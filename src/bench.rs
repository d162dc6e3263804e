//! Benchmarks (not timed tests): each WGSL kernel against the composed burn ops it replaces,
//! on one device, in one run, as ratios.
//!
//! Method: a warm-up call of each side (shader compilation, autotune), then `iters` rounds
//! alternating reference and kernel so that machine load hits both alike; each call is timed
//! to completion (`Device::sync` with the outputs alive, or, for the preview, the read-back
//! the UI does). Medians are reported; ratio = reference / kernel (> 1: the kernel is faster).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use burn::module::Param;
use burn::nn::GroupNormConfig;
use burn::prelude::*;

use crate::diffusion::unclip_scheduler::UnclipScheduler;
use crate::kernels::group_norm::{self, TimeCond};
use crate::kernels::preview;
use crate::kernels::sampler::{self, Rule, StepInput};
use crate::model::config::SchedulerConfig;
use crate::model::nn::{Act, tensor_from};

/// Deterministic values in [-1, 1) (also the kernel tests' inputs).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn rand<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    tensor_from(values(shape.iter().product(), seed), shape, device)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

struct Row {
    name: String,
    reference: Duration,
    kernel: Duration,
}

/// Times `reference` and `kernel` alternately; each closure must finish its work (sync or read).
fn compare(name: String, iters: usize, mut reference: impl FnMut(), mut kernel: impl FnMut()) -> Row {
    reference();
    kernel();
    let (mut r, mut k) = (Vec::new(), Vec::new());
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        reference();
        r.push(t.elapsed());
        let t = Instant::now();
        kernel();
        k.push(t.elapsed());
    }
    Row { name, reference: median(r), kernel: median(k) }
}

fn sync(device: &Device) {
    device.sync().expect("device sync");
}

/// Runs the kernel benchmarks on `device` — the WGSL kernels on a wgpu device, the fused host
/// loops on flex — and returns the table.
pub fn run_kernels(device: &Device, iters: usize) -> Result<String, String> {
    let rows = if crate::kernels::is_wgpu(device) {
        wgsl_rows(device, iters)?
    } else if crate::kernels::host::is_plain_flex(device) {
        host_rows(device, iters)
    } else {
        return Err("the kernel benchmark needs a wgpu or a plain CPU (flex) device".into());
    };
    Ok(table(device, iters, rows))
}

/// A GroupNorm with non-trivial affine parameters and its conditioning, for one bench case.
fn group_norm_case(b: usize, c: usize, g: usize, size: usize, mode: &str, device: &Device) -> (burn::nn::GroupNorm, Tensor<4>, TimeCond) {
    let mut norm = GroupNormConfig::new(g, c).with_epsilon(1e-5).init(device);
    norm.gamma = Some(Param::from_tensor(rand([c], 5, device).add_scalar(1.0)));
    norm.beta = Some(Param::from_tensor(rand([c], 6, device)));
    let x = rand([b, c, size, size], 7, device);
    let cond = match mode {
        "scale_shift" => TimeCond::ScaleShift(rand([b, 2 * c, 1, 1], 8, device)),
        "additive" => TimeCond::Add(rand([b, c, 1, 1], 8, device)),
        _ => TimeCond::None,
    };
    (norm, x, cond)
}

const GROUP_NORM_CASES: [(usize, usize, usize, usize, &str); 4] = [
    (2, 64, 32, 64, "scale_shift"),
    (2, 192, 32, 64, "scale_shift"),
    (2, 128, 32, 32, "additive"),
    (2, 128, 32, 32, "plain"),
];

/// The flex host loops (`kernels::host`) against burn's composed ops on the CPU.
fn host_rows(device: &Device, iters: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    // (label, batch, heads, queries, keys, head dim, masked context tokens)
    for (label, b, h, n, m, d, masked) in [
        ("shipped decoder 16² + 81 context", 2usize, 2usize, 256usize, 337usize, 32usize, true),
        ("mid fixture decoder 32² + 32 context", 2, 3, 1024, 1056, 8, true),
        ("Karlo decoder 32² + 81 context", 2, 6, 1024, 1105, 64, true),
        ("CLIP text, causal 77 tokens", 2, 4, 77, 77, 16, false),
    ] {
        let q = rand([b, h, n, d], 11, device);
        let k = rand([b, h, m, d], 12, device);
        let v = rand([b, h, m, d], 13, device);
        let bias = if masked {
            let mut mask = vec![0f32; b * m];
            mask[m - 8..m].fill(-10_000.0);
            tensor_from(mask, [b, 1, 1, m], device)
        } else {
            let causal: Vec<f32> = (0..n * m).map(|i| if i % m > i / m { f32::MIN } else { 0.0 }).collect();
            tensor_from(causal, [1, 1, n, m], device)
        };
        let name = format!("attention, {label} [{b}, {h}, {n}, {d}] x {m} keys");
        rows.push(compare(
            name,
            iters,
            || drop(crate::model::nn::attention_reference(q.clone(), k.clone(), v.clone(), Some(bias.clone()))),
            || drop(crate::kernels::host::attention(&q, &k, &v, Some(&bias)).expect("host attention applies")),
        ));
    }
    for (b, ci, co, size) in [(2usize, 32usize, 32usize, 32usize), (2, 64, 96, 16), (1, 64, 32, 64), (2, 192, 192, 64)] {
        let layer = burn::nn::conv::Conv2dConfig::new([ci, co], [3, 3])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        let x = rand([b, ci, size, size], 9, device);
        let name = format!("conv 3x3 [{b}, {ci}, {size}, {size}] -> {co} channels");
        rows.push(compare(
            name,
            iters,
            || drop(layer.forward(x.clone())),
            || drop(crate::kernels::host::conv3x3(&layer, &x).expect("host conv applies")),
        ));
    }
    for (b, c, g, size, mode) in GROUP_NORM_CASES {
        let (norm, x, cond) = group_norm_case(b, c, g, size, mode, device);
        let name = format!("group norm + {mode} + SiLU [{b}, {c}, {size}, {size}] / {g} groups");
        rows.push(compare(
            name,
            iters,
            || drop(group_norm::reference(&norm, x.clone(), cond.clone(), Act::Silu)),
            || drop(crate::kernels::host::group_norm_silu(&norm, &x, &cond).expect("host group norm applies")),
        ));
    }
    rows
}

fn wgsl_rows(device: &Device, iters: usize) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();

    // 1. The decoder's guided step (CFG batch, learned range) and an unguided 256² step.
    let sched = |variance: &str| {
        UnclipScheduler::new(&SchedulerConfig::unclip(variance, "epsilon", 1.0)).map_err(|e| e.to_string())
    };
    let learned = sched("learned_range")?;
    let fixed = sched("fixed_small_log")?;
    for (label, s, b, out_c, size, guidance) in [
        ("sampler step, decoder CFG learned_range", &learned, 1usize, 6usize, 64usize, Some(8.0f32)),
        ("sampler step, decoder CFG learned_range", &learned, 4, 6, 64, Some(8.0)),
        ("sampler step, decoder CFG learned_range", &learned, 1, 6, 256, Some(8.0)),
        ("sampler step, unguided learned_range", &learned, 1, 6, 256, None),
        ("sampler step, super-res fixed_small_log", &fixed, 1, 3, 256, None),
    ] {
        let rows_n = if guidance.is_some() { 2 * b } else { b };
        let out = rand([rows_n, out_c, size, size], 1, device);
        let x = rand([b, 3, size, size], 2, device);
        let z = rand([b, 3, size, size], 3, device);
        let input = |(model_output, sample, noise)| StepInput { model_output, guidance, t: 749, prev: Some(499), sample, noise };
        let step = |kernel: bool| {
            let args = (out.clone(), x.clone(), Some(z.clone()));
            let o = if kernel {
                sampler::kernel(Rule::Ddpm(s), input(args))
            } else {
                sampler::reference(Rule::Ddpm(s), input(args))
            }
            .expect("step");
            sync(device);
            drop(o);
        };
        let name = format!("{label} [{rows_n}, {out_c}, {size}, {size}]");
        rows.push(compare(name, iters, || step(false), || step(true)));
    }

    // 2. Preview packing, including the read-back the UI does.
    for (b, size) in [(1usize, 64usize), (4, 64), (1, 256)] {
        let x = rand([b, 3, size, size], 4, device);
        sync(device);
        let name = format!("preview to host [{b}, 3, {size}, {size}] (f32 read + convert vs pack + u32 read)");
        rows.push(compare(
            name,
            iters,
            || drop(preview::pack_reference(x.clone())),
            || drop(preview::read_packed(preview::pack_kernel(x.clone()))),
        ));
    }

    // 3. Attention at decoder-like sizes (added-K/V: context keys first, masked).
    for (b, h, n, m, d) in [(2usize, 2usize, 256usize, 337usize, 32usize), (2, 6, 1024, 1105, 64)] {
        let q = rand([b, h, n, d], 11, device);
        let k = rand([b, h, m, d], 12, device);
        let v = rand([b, h, m, d], 13, device);
        let bias = tensor_from(vec![0f32; b * m], [b, 1, 1, m], device);
        let run = |kernel: bool| {
            let o = if kernel {
                crate::kernels::attention::kernel(&q, &k, &v, Some(&bias)).expect("kernel applies")
            } else {
                crate::model::nn::attention_reference(q.clone(), k.clone(), v.clone(), Some(bias.clone()))
            };
            sync(device);
            drop(o);
        };
        let name = format!("attention [{b}, {h}, {n}, {d}] x {m} keys");
        rows.push(compare(name, iters, || run(false), || run(true)));
    }

    // 4. GroupNorm + conditioning + SiLU at decoder-like sizes.
    for (b, c, g, size, mode) in GROUP_NORM_CASES {
        let (norm, x, cond) = group_norm_case(b, c, g, size, mode, device);
        let run = |kernel: bool| {
            let y = if kernel {
                group_norm::kernel(&norm, x.clone(), cond.clone()).expect("kernel applies")
            } else {
                group_norm::reference(&norm, x.clone(), cond.clone(), Act::Silu)
            };
            sync(device);
            drop(y);
        };
        let name = format!("group norm + {mode} + SiLU [{b}, {c}, {size}, {size}] / {g} groups");
        rows.push(compare(name, iters, || run(false), || run(true)));
    }
    Ok(rows)
}

fn table(device: &Device, iters: usize, rows: Vec<Row>) -> String {
    let adapters: Vec<String> =
        crate::device::adapters().iter().map(|a| format!("{} ({:?}, {})", a.name, a.kind, a.backend)).collect();
    let mut out = String::new();
    let _ = writeln!(out, "device: {device:?}; adapters seen: {}", adapters.join(", "));
    let _ = writeln!(out, "medians of {iters} alternating rounds after one warm-up each; ratio = burn ops / kernel");
    let _ = writeln!(out, "{:<92} {:>12} {:>12} {:>7}", "case", "burn ops", "kernel", "ratio");
    for r in rows {
        let _ = writeln!(
            out,
            "{:<92} {:>10.3}ms {:>10.3}ms {:>6.2}x",
            r.name,
            r.reference.as_secs_f64() * 1e3,
            r.kernel.as_secs_f64() * 1e3,
            r.reference.as_secs_f64() / r.kernel.as_secs_f64().max(1e-9)
        );
    }
    out
}
