//! The hand-written WGSL kernels equal their burn-ops references on a wgpu device (Mesa's
//! lavapipe in CI): f32 within 1e-5, f16 within 1e-2 (both relative above magnitude 1), the
//! preview packing exactly; and the whole text→image pipeline on wgpu equals the flex result.
//!
//! Skipped, with the reason printed, only where wgpu sees no adapter at all (or when
//! `UNCLIP_SKIP_WGPU_TESTS=1`).

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use burn::backend::wgpu::wgpu;
use burn::module::Param;
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::prelude::*;
use burn::tensor::{DType, DeviceKind};
use common::tiny_model;
use unclip::diffusion::StepOutput;
use unclip::diffusion::ddim::Ddim;
use unclip::diffusion::unclip_scheduler::UnclipScheduler;
use unclip::kernels::group_norm::{self, TimeCond};
use unclip::kernels::sampler::{self, Rule, StepInput};
use unclip::kernels::{self, preview};
use unclip::model::config::SchedulerConfig;
use unclip::model::nn::{Act, tensor_from, to_vec};
use unclip::pipeline::images::to_pictures;
use unclip::pipeline::{Control, Engine, GenerateParams, Progress, Sampler, Seeds, StageParams, silent};

/// A wgpu device on a software adapter (lavapipe) when there is one, else on a GPU; `None`
/// (with the reason printed) when wgpu sees no adapter.
fn wgpu_device() -> Option<Device> {
    if std::env::var("UNCLIP_SKIP_WGPU_TESTS").is_ok_and(|v| v == "1") {
        println!("skipped: UNCLIP_SKIP_WGPU_TESTS=1");
        return None;
    }
    let adapters = unclip::device::adapters();
    let has = |k: wgpu::DeviceType| adapters.iter().any(|a| a.kind == k);
    let kind = if has(wgpu::DeviceType::Cpu) {
        DeviceKind::Cpu
    } else if has(wgpu::DeviceType::DiscreteGpu) {
        DeviceKind::DiscreteGpu(0)
    } else if has(wgpu::DeviceType::IntegratedGpu) {
        DeviceKind::IntegratedGpu(0)
    } else if !adapters.is_empty() {
        DeviceKind::DefaultDevice
    } else {
        println!(
            "skipped: wgpu sees no adapter (install Mesa's lavapipe, e.g. `apt-get install mesa-vulkan-drivers`, to run these tests on the CPU)"
        );
        return None;
    };
    quick_autotune();
    let names: Vec<String> = adapters.iter().map(|a| format!("{} ({:?}, {})", a.name, a.kind, a.backend)).collect();
    println!("wgpu adapters: {}; using {kind:?}", names.join(", "));
    Some(Device::wgpu(kind))
}

/// Software adapters spend minutes autotuning every new matmul/conv shape at cubecl's default
/// level; the tests check values, not speed, so they tune minimally unless
/// `CUBECL_AUTOTUNE_LEVEL` says otherwise.
fn quick_autotune() {
    use burn_cubecl::cubecl::config::autotune::AutotuneLevel;
    use burn_cubecl::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    if std::env::var("CUBECL_AUTOTUNE_LEVEL").is_err() {
        let mut cfg = CubeClRuntimeConfig::from_current_dir().override_from_env();
        cfg.autotune.level = AutotuneLevel::Minimal;
        // Refused (and harmless) once the configuration has been read.
        let _ = CubeClRuntimeConfig::try_set(cfg);
    }
}

use unclip::bench::values;

fn tensor<const D: usize>(v: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    tensor_from(v.to_vec(), shape, device)
}

/// |got − want| ≤ tol·max(1, |want|) everywhere.
fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: lengths");
    let mut worst = (0.0f32, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(1.0);
        assert!(err.is_finite() || (g.is_nan() && w.is_nan()), "{name}: non-finite at {i}: {g} vs {w}");
        if err > worst.0 {
            worst = (err, i);
        }
    }
    println!("{name}: max scaled error {:.2e} at {}", worst.0, worst.1);
    assert!(worst.0 <= tol, "{name}: {} vs {} at {} (error {:.2e} > {tol:.0e})", got[worst.1], want[worst.1], worst.1, worst.0);
}

fn scheduler(variance: &str, prediction: &str, clip: Option<f64>) -> UnclipScheduler {
    let cfg = SchedulerConfig { clip_sample: clip.is_some(), ..SchedulerConfig::unclip(variance, prediction, clip.unwrap_or(1.0)) };
    UnclipScheduler::new(&cfg).expect("scheduler")
}

fn ddim_of(s: &UnclipScheduler, clipped_eps: bool) -> Ddim {
    Ddim {
        alphas_cumprod: s.alphas_cumprod.clone(),
        prediction: s.prediction,
        clip_sample: s.clip_sample,
        use_clipped_model_output: clipped_eps,
    }
}

fn both(o: StepOutput<4>) -> (Vec<f32>, Vec<f32>) {
    (to_vec(o.prev_sample), to_vec(o.pred_original_sample))
}

struct StepCase<'a> {
    name: &'a str,
    rule: Rule<'a>,
    /// model output channels per sample channel (1 or 2) and whether it is the CFG batch
    out_channels: usize,
    guidance: Option<f32>,
    t: usize,
    prev: Option<usize>,
    noise: bool,
}

impl StepCase<'_> {
    fn input(&self, model_output: Tensor<4>, sample: Tensor<4>, noise: Option<Tensor<4>>) -> StepInput<4> {
        StepInput { model_output, guidance: self.guidance, t: self.t, prev: self.prev, sample, noise }
    }
}

/// The prior's step 800 → 600 on `[b, E]` embeddings, unguided.
fn prior_step((model_output, sample, noise): (Tensor<2>, Tensor<2>, Option<Tensor<2>>)) -> StepInput<2> {
    StepInput { model_output, guidance: None, t: 800, prev: Some(600), sample, noise }
}

/// The shader indexes 8×8 images flat and 16×20 ones by rows (with a ragged tail).
const FLAT: (usize, usize) = (8, 8);
const ROWS: (usize, usize) = (16, 20);

/// Runs one step case with the kernel on `gpu` and the reference on `gpu` and on flex.
fn check_step(case: &StepCase, gpu: &Device, dtype: DType, tol: f32, (h, w): (usize, usize)) {
    let (b, c) = (2, 3);
    let rows = if case.guidance.is_some() { 2 * b } else { b };
    let out_shape = [rows, case.out_channels * c, h, w];
    let out_v: Vec<f32> = values(out_shape.iter().product(), 1).iter().map(|v| v * 1.5).collect();
    let x_v: Vec<f32> = values(b * c * h * w, 2).iter().map(|v| v * 2.0).collect();
    let z_v = values(b * c * h * w, 3);
    let make = |device: &Device, dtype: DType| {
        let cast = |t: Tensor<4>| if dtype == DType::F32 { t } else { t.cast(dtype) };
        (
            cast(tensor(&out_v, out_shape, device)),
            cast(tensor(&x_v, [b, c, h, w], device)),
            case.noise.then(|| cast(tensor(&z_v, [b, c, h, w], device))),
        )
    };
    let (o, x, z) = make(gpu, dtype);
    let (k_prev, k_x0) = both(sampler::kernel(case.rule, case.input(o, x, z)).expect("kernel runs"));
    // The reference on flex, in f32 from the same (possibly f16-rounded) inputs.
    let rounded = |v: &[f32]| -> Vec<f32> {
        if dtype == DType::F32 { v.to_vec() } else { v.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect() }
    };
    let cpu = Device::flex();
    let (o, x, z) = (
        tensor(&rounded(&out_v), out_shape, &cpu),
        tensor(&rounded(&x_v), [b, c, h, w], &cpu),
        case.noise.then(|| tensor(&rounded(&z_v), [b, c, h, w], &cpu)),
    );
    let (r_prev, r_x0) = both(sampler::reference(case.rule, case.input(o, x, z)).expect("reference"));
    let tag = format!("{} {h}x{w} {:?}", case.name, dtype);
    assert_close(&format!("{tag}: x_prev vs flex"), &k_prev, &r_prev, tol);
    assert_close(&format!("{tag}: x0 vs flex"), &k_x0, &r_x0, tol);
    if dtype == DType::F32 {
        // And against the same burn ops on the same wgpu device.
        let (o, x, z) = make(gpu, dtype);
        let (g_prev, g_x0) = both(sampler::reference(case.rule, case.input(o, x, z)).expect("reference"));
        assert_close(&format!("{tag}: x_prev vs wgpu burn ops"), &k_prev, &g_prev, tol);
        assert_close(&format!("{tag}: x0 vs wgpu burn ops"), &k_x0, &g_x0, tol);
    }
}

fn step_cases<'a>(learned: &'a UnclipScheduler, fixed: &'a UnclipScheduler, sample_pred: &'a UnclipScheduler, ddim: &'a Ddim, ddim_clipped: &'a Ddim) -> Vec<StepCase<'a>> {
    vec![
        // The decoder's step: CFG batch with learned-range variance, respaced 5-step schedule.
        StepCase { name: "ddpm learned_range cfg respaced", rule: Rule::Ddpm(learned), out_channels: 2, guidance: Some(8.0), t: 749, prev: Some(499), noise: true },
        StepCase { name: "ddpm learned_range cfg t-1", rule: Rule::Ddpm(learned), out_channels: 2, guidance: Some(4.0), t: 300, prev: Some(299), noise: true },
        StepCase { name: "ddpm learned_range last step", rule: Rule::Ddpm(learned), out_channels: 2, guidance: Some(8.0), t: 0, prev: None, noise: false },
        StepCase { name: "ddpm learned_range guided input", rule: Rule::Ddpm(learned), out_channels: 2, guidance: None, t: 600, prev: Some(400), noise: true },
        // Super-resolution / prior style: fixed_small_log, unguided.
        StepCase { name: "ddpm fixed_small_log", rule: Rule::Ddpm(fixed), out_channels: 1, guidance: None, t: 500, prev: Some(250), noise: true },
        StepCase { name: "ddpm fixed_small_log cfg", rule: Rule::Ddpm(fixed), out_channels: 1, guidance: Some(3.0), t: 999, prev: Some(666), noise: true },
        StepCase { name: "ddpm sample prediction", rule: Rule::Ddpm(sample_pred), out_channels: 1, guidance: None, t: 400, prev: Some(200), noise: true },
        // DDIM-η, with the variance channels present and ignored.
        StepCase { name: "ddim eta 0.5 cfg", rule: Rule::Ddim { ddim, eta: 0.5 }, out_channels: 2, guidance: Some(8.0), t: 749, prev: Some(499), noise: true },
        StepCase { name: "ddim eta 0", rule: Rule::Ddim { ddim, eta: 0.0 }, out_channels: 1, guidance: None, t: 499, prev: Some(249), noise: false },
        StepCase { name: "ddim to clean", rule: Rule::Ddim { ddim, eta: 1.0 }, out_channels: 2, guidance: Some(2.0), t: 249, prev: None, noise: false },
        StepCase { name: "ddim clipped eps", rule: Rule::Ddim { ddim: ddim_clipped, eta: 0.3 }, out_channels: 1, guidance: Some(5.0), t: 600, prev: Some(300), noise: true },
    ]
}

#[test]
fn sampler_step_kernel_equals_burn_ops() {
    let Some(gpu) = wgpu_device() else { return };
    let start = Instant::now();
    let learned = scheduler("learned_range", "epsilon", Some(1.0));
    let fixed = scheduler("fixed_small_log", "epsilon", None);
    let sample_pred = scheduler("fixed_small_log", "sample", Some(5.0));
    let ddim = ddim_of(&learned, false);
    let ddim_clipped = ddim_of(&learned, true);
    // Every configuration is its own specialised pipeline (each a shader compile on lavapipe):
    // all of them flat, the pipeline's main ones by rows too.
    for (i, case) in step_cases(&learned, &fixed, &sample_pred, &ddim, &ddim_clipped).iter().enumerate() {
        check_step(case, &gpu, DType::F32, 1e-5, FLAT);
        if [0, 2, 4, 7].contains(&i) {
            check_step(case, &gpu, DType::F32, 1e-5, ROWS);
        }
    }
    println!("sampler step cases took {:.1} s", start.elapsed().as_secs_f32());
}

#[test]
fn sampler_step_kernel_handles_prior_shaped_tensors_and_missing_noise() {
    let Some(gpu) = wgpu_device() else { return };
    // The prior steps [b, E] embeddings (sample prediction, clip 5).
    let s = scheduler("fixed_small_log", "sample", Some(5.0));
    let (b, e) = (2, 32);
    let (o, x, z) = (values(b * e, 4), values(b * e, 5), values(b * e, 6));
    let run = |device: &Device, kernel: bool| {
        let args = (tensor(&o, [b, e], device), tensor(&x, [b, e], device), Some(tensor(&z, [b, e], device)));
        let out = if kernel {
            sampler::kernel(Rule::Ddpm(&s), prior_step(args))
        } else {
            sampler::reference(Rule::Ddpm(&s), prior_step(args))
        };
        let out = out.expect("step");
        (to_vec(out.prev_sample), to_vec(out.pred_original_sample))
    };
    let (kp, kx) = run(&gpu, true);
    let (rp, rx) = run(&Device::flex(), false);
    assert_close("prior x_prev", &kp, &rp, 1e-5);
    assert_close("prior x0", &kx, &rx, 1e-5);
    // A noisy step without noise is the reference's error, not a silent zero.
    let err = sampler::kernel(Rule::Ddpm(&s), prior_step((tensor(&o, [b, e], &gpu), tensor(&x, [b, e], &gpu), None)));
    assert!(matches!(err, Err(unclip::diffusion::DiffusionError::MissingNoise)));
}

#[test]
fn each_device_gets_its_kernels_once_and_training_gets_the_references() {
    use kernels::Kernels;
    assert_eq!(Kernels::for_device(&Device::flex()), Kernels::Host, "plain flex runs the host loops");
    assert_eq!(Kernels::for_device(&Device::flex().autodiff()), Kernels::Reference, "autodiff must use the burn-ops references");
    if let Some(gpu) = wgpu_device() {
        assert!(Kernels::for_device(&gpu).is_wgsl());
        assert_eq!(Kernels::for_device(&gpu.autodiff()), Kernels::Reference, "training on wgpu must use the burn-ops references");
    }
    // A network keeps the choice made for the device it was built on.
    let attn = unclip::model::attention::Attention::init(8, 2, 4, true, &Device::flex().autodiff());
    assert_eq!(attn.kernels, Kernels::Reference);
    let attn = unclip::model::attention::Attention::init(8, 2, 4, true, &Device::flex());
    assert_eq!(attn.kernels, Kernels::Host);
}

/// x̂₀-like values: random, beyond the clip range, and every 1/1024 step of [-1.05, 1.05]
/// (which includes the exact tie at 0 → 127.5 → 128).
fn preview_values(n: usize) -> Vec<f32> {
    let grid = (-1075..=1075).map(|i| i as f32 / 1024.0);
    let random = values(n, 7).into_iter().map(|v| v * 1.2);
    grid.chain(random).take(n).collect()
}

#[test]
fn preview_pack_kernel_equals_host_conversion() {
    let Some(gpu) = wgpu_device() else { return };
    for (b, c, h, w) in [(2, 3, 32, 32), (1, 1, 7, 5), (1, 4, 9, 11)] {
        let v = preview_values(b * c * h * w);
        let x = tensor(&v, [b, c, h, w], &gpu);
        let packed = preview::read_packed(preview::pack_kernel(x.clone()));
        assert_eq!(packed.len(), b * h * w);
        // Against the pipeline's own host conversion, byte for byte.
        let host = to_pictures(x.clone());
        let kernel = preview::unpack(&packed, [b, c, h, w]);
        assert_eq!(kernel, host, "{b}x{c}x{h}x{w}: packed pixels differ from images::to_pictures");
        assert!(packed.iter().all(|p| p >> 24 == 255), "alpha is opaque");
        assert_eq!(packed, preview::pack_reference(x.clone()));
        // The dispatching preview (the kernel here) equals the host one.
        let kernels = kernels::Kernels::for_device(&gpu);
        assert_eq!(preview::to_preview(kernels, x.clone()), unclip::pipeline::images::to_preview(x));
    }
}

fn group_norm_on(device: &Device, groups: usize, channels: usize) -> GroupNorm {
    let mut norm = GroupNormConfig::new(groups, channels).with_epsilon(1e-5).init(device);
    let g: Vec<f32> = values(channels, 11).iter().map(|v| 1.0 + 0.5 * v).collect();
    let bta: Vec<f32> = values(channels, 12).iter().map(|v| 0.3 * v).collect();
    norm.gamma = Some(Param::from_tensor(tensor(&g, [channels], device)));
    norm.beta = Some(Param::from_tensor(tensor(&bta, [channels], device)));
    norm
}

fn check_group_norm(gpu: &Device, dtype: DType, tol: f32) {
    let cases = [(2usize, 64usize, 8usize, 16usize, 16usize), (1, 12, 4, 5, 7), (1, 32, 8, 32, 32)];
    for (b, c, g, h, w) in cases {
        let x_v: Vec<f32> = values(b * c * h * w, 13).iter().map(|v| 3.0 * v + 0.7).collect();
        let add_v: Vec<f32> = values(b * c, 14);
        let ss_v: Vec<f32> = values(b * 2 * c, 15).iter().map(|v| 0.5 * v).collect();
        for mode in ["plain", "additive", "scale_shift"] {
            let cond = |device: &Device, cast: &dyn Fn(Tensor<4>) -> Tensor<4>| match mode {
                "plain" => TimeCond::None,
                "additive" => TimeCond::Add(cast(tensor(&add_v, [b, c, 1, 1], device))),
                _ => TimeCond::ScaleShift(cast(tensor(&ss_v, [b, 2 * c, 1, 1], device))),
            };
            let cast = |t: Tensor<4>| if dtype == DType::F32 { t } else { t.cast(dtype) };
            let mut norm = group_norm_on(gpu, g, c);
            if dtype != DType::F32 {
                norm.gamma = norm.gamma.map(|p| Param::from_tensor(p.val().cast(dtype)));
                norm.beta = norm.beta.map(|p| Param::from_tensor(p.val().cast(dtype)));
            }
            let x = cast(tensor(&x_v, [b, c, h, w], gpu));
            let got = to_vec(group_norm::kernel(&norm, x.clone(), cond(gpu, &cast)).expect("kernel runs"));
            let tag = format!("group norm {mode} {b}x{c}x{h}x{w}/{g} {dtype:?}");
            if dtype == DType::F32 {
                let same_device = to_vec(group_norm::reference(&norm, x, cond(gpu, &cast), Act::Silu));
                assert_close(&format!("{tag} vs wgpu burn ops"), &got, &same_device, tol);
            }
            let cpu = Device::flex();
            let id = |t: Tensor<4>| t;
            let x_cpu = if dtype == DType::F32 {
                tensor(&x_v, [b, c, h, w], &cpu)
            } else {
                tensor(&x_v.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect::<Vec<_>>(), [b, c, h, w], &cpu)
            };
            let flex = to_vec(group_norm::reference(&group_norm_on(&cpu, g, c), x_cpu, cond(&cpu, &id), Act::Silu));
            assert_close(&format!("{tag} vs flex"), &got, &flex, tol);
        }
    }
}

#[test]
fn group_norm_silu_kernel_equals_burn_ops() {
    let Some(gpu) = wgpu_device() else { return };
    let start = Instant::now();
    check_group_norm(&gpu, DType::F32, 1e-5);
    println!("group norm cases took {:.1} s", start.elapsed().as_secs_f32());
}

#[test]
fn f16_kernels_equal_burn_ops_within_1e_2() {
    let Some(gpu) = wgpu_device() else { return };
    if !gpu.supports_dtype(DType::F16) {
        println!("skipped: this adapter has no SHADER_F16");
        return;
    }
    let learned = scheduler("learned_range", "epsilon", Some(1.0));
    let fixed = scheduler("fixed_small_log", "epsilon", None);
    let sample_pred = scheduler("fixed_small_log", "sample", Some(5.0));
    let ddim = ddim_of(&learned, false);
    let ddim_clipped = ddim_of(&learned, true);
    for case in step_cases(&learned, &fixed, &sample_pred, &ddim, &ddim_clipped) {
        // f16 can't carry x̂₀ = (x − √(1−ᾱ)ε)/√ᾱ at t ≈ 1000 (×160 amplification) to 1e-2.
        if case.t < 900 {
            check_step(&case, &gpu, DType::F16, 1e-2, FLAT);
        }
    }
    check_group_norm(&gpu, DType::F16, 1e-2);
    let v = preview_values(3 * 16 * 16);
    let x = tensor(&v, [1, 3, 16, 16], &gpu).cast(DType::F16);
    let packed = preview::read_packed(preview::pack_kernel(x.clone()));
    assert_eq!(preview::unpack(&packed, [1, 3, 16, 16]), to_pictures(x), "f16 packing equals the host conversion");
}

fn stage(steps: usize, guidance: f32) -> StageParams {
    StageParams { steps, guidance, sampler: Sampler::Ddpm, eta: 0.0 }
}

#[test]
fn text_to_image_on_wgpu_equals_flex() {
    let Some(gpu) = wgpu_device() else { return };
    // The fixture call of tests/pipelines.rs ("a red circle", seed 0) with 3/3/2 steps instead
    // of 5/5/3: on a loaded 2-core lavapipe machine 5/5/3 took 60 s, nearly all of it shader
    // compilation and autotuning on each stage's first step; the later steps add ~1.5 s each.
    let p = GenerateParams {
        prompt: "a red circle".into(),
        num_images: 1,
        seeds: Seeds { prior: 0, decoder: None },
        prior: stage(3, 4.0),
        decoder: stage(3, 8.0),
        super_res_steps: 2,
        best_of: 1,
        ..GenerateParams::default()
    };
    let start = Instant::now();
    let mut e = Engine::open(&tiny_model(), Device::flex()).expect("open on flex");
    let want = silent(|ctl| e.text_to_image(&p, ctl)).expect("flex run");
    let flex_s = start.elapsed().as_secs_f32();
    let start = Instant::now();
    let mut e = Engine::open(&tiny_model(), gpu).expect("open on wgpu");
    // With previews on, so the packing kernel runs inside the pipeline too; per-step times.
    let mut previews = 0;
    let mut sink = |progress: Progress| {
        if let Progress::Step { stage, step, total, preview } = progress {
            previews += preview.is_some() as usize;
            println!("  {:6.1} s  {} {step}/{total}", start.elapsed().as_secs_f32(), stage.label());
        }
    };
    let mut ctl = Control::new(Arc::new(AtomicBool::new(false)), &mut sink);
    ctl.previews = true;
    let got = e.text_to_image(&p, &mut ctl).expect("wgpu run");
    assert!(previews > 0, "the decoder reports previews");
    println!("text→image: flex {flex_s:.1} s, wgpu {:.1} s", start.elapsed().as_secs_f32());
    assert_close("image embedding", &got.embeddings[0], &want.embeddings[0], 1e-3);
    let (g, w) = (&got.pictures[0], &want.pictures[0]);
    assert_eq!((g.width, g.height), (w.width, w.height));
    // lavapipe compiles the shaders with LLVM for the host CPU, so its summation order (and
    // rounding) changes with the vector width, and the random-weight super-resolution can
    // amplify that on a few values (see `assert_pixels_agree_but_for_chaos`): bound the share.
    let off = g.rgb.iter().zip(&w.rgb).filter(|(a, b)| a != b).count();
    println!("text→image pixels: {off} of {} values differ", g.rgb.len());
    common::assert_pixels_agree_but_for_chaos("wgpu vs flex text→image", &g.rgb, &w.rgb);
}

// ---- Host (flex CPU) fused loops, `kernels::host`: no GPU needed. ----

/// Attention inputs over every bias layout the networks use (none, per-key mask, causal
/// [1, 1, n, m], full), with mask-like entries (−10000 and f32::MIN), head dims 3…64.
fn attention_cases(device: &Device) -> Vec<(String, Tensor<4>, Tensor<4>, Tensor<4>, Option<Tensor<4>>)> {
    let bias_of = |shape: [usize; 4], seed: u64| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = values(n, seed).iter().enumerate().map(|(i, x)| if i % 7 == 3 { -10_000.0 } else if i % 11 == 5 { f32::MIN } else { *x }).collect();
        tensor(&v, shape, device)
    };
    // (b, heads, n, m, d, bias shape)
    let shapes: Vec<(usize, usize, usize, usize, usize, Option<[usize; 4]>)> = vec![
        (2, 2, 256, 337, 32, Some([2, 1, 1, 337])),
        // More query rows than two of the host loop's 128-row tiles, the last one partial.
        (1, 2, 300, 41, 8, Some([1, 1, 1, 41])),
        (2, 3, 70, 45, 8, Some([2, 1, 1, 45])),
        (1, 4, 77, 77, 16, Some([1, 1, 77, 77])),
        (2, 2, 33, 33, 4, Some([2, 2, 33, 33])),
        (1, 1, 5, 9, 3, None),
        (3, 2, 40, 40, 64, None),
    ];
    shapes
        .into_iter()
        .map(|(b, h, n, m, d, bias)| {
            let q = tensor(&values(b * h * n * d, 1).iter().map(|x| 3.0 * x).collect::<Vec<_>>(), [b, h, n, d], device);
            let k = tensor(&values(b * h * m * d, 2), [b, h, m, d], device);
            let v = tensor(&values(b * h * m * d, 3), [b, h, m, d], device);
            (format!("attention b{b} h{h} n{n} m{m} d{d}"), q, k, v, bias.map(|s| bias_of(s, 4)))
        })
        .collect()
}

#[test]
fn host_attention_equals_burn_ops_for_every_bias_layout() {
    for (name, q, k, v, bias) in attention_cases(&Device::flex()) {
        let want = to_vec(unclip::model::nn::attention_reference(q.clone(), k.clone(), v.clone(), bias.clone()));
        let got = kernels::host::attention(&q, &k, &v, bias.as_ref()).expect("host attention applies on flex f32");
        assert_close(&name, &to_vec(got), &want, 1e-5);
    }
}

#[test]
fn attention_kernel_equals_burn_ops_in_f32_and_f16() {
    let Some(gpu) = wgpu_device() else { return };
    let start = Instant::now();
    let half = gpu.supports_dtype(DType::F16);
    if !half {
        println!("f16 part skipped: this adapter has no SHADER_F16");
    }
    for (name, q, k, v, bias) in attention_cases(&gpu) {
        let want = to_vec(unclip::model::nn::attention_reference(q.clone(), k.clone(), v.clone(), bias.clone()));
        let got = kernels::attention::kernel(&q, &k, &v, bias.as_ref()).expect("the kernel applies");
        assert_close(&format!("{name} f32"), &to_vec(got), &want, 1e-5);
        if half {
            let h = |t: &Tensor<4>| t.clone().cast(DType::F16);
            // The reference on the f16-rounded inputs, computed in f32.
            let f = |t: &Tensor<4>| h(t).cast(DType::F32);
            let want = to_vec(unclip::model::nn::attention_reference(f(&q), f(&k), f(&v), bias.clone()));
            let got = kernels::attention::kernel(&h(&q), &h(&k), &h(&v), bias.as_ref()).expect("the kernel applies in f16");
            assert_close(&format!("{name} f16"), &to_vec(got), &want, 1e-2);
        }
    }
    println!("attention cases took {:.1} s", start.elapsed().as_secs_f32());
}

#[test]
fn host_group_norm_silu_equals_burn_ops_in_every_mode() {
    let cpu = Device::flex();
    for (b, c, g, hw, mode) in [(2usize, 64usize, 32usize, 16usize, 0u8), (2, 48, 8, 9, 1), (1, 96, 32, 7, 2), (3, 32, 4, 5, 2)] {
        let mut norm = GroupNormConfig::new(g, c).with_epsilon(1e-5).init(&cpu);
        norm.gamma = Some(Param::from_tensor(tensor(&values(c, 5).iter().map(|x| x + 1.0).collect::<Vec<_>>(), [c], &cpu)));
        norm.beta = Some(Param::from_tensor(tensor(&values(c, 6), [c], &cpu)));
        // An offset mean and a wide spread, so a one-pass variance would lose digits.
        let x = tensor(&values(b * c * hw * hw, 7).iter().map(|x| 40.0 + 5.0 * x).collect::<Vec<_>>(), [b, c, hw, hw], &cpu);
        let cond = match mode {
            0 => TimeCond::None,
            1 => TimeCond::Add(tensor(&values(b * c, 8), [b, c, 1, 1], &cpu)),
            _ => TimeCond::ScaleShift(tensor(&values(b * 2 * c, 8), [b, 2 * c, 1, 1], &cpu)),
        };
        let want = to_vec(group_norm::reference(&norm, x.clone(), cond.clone(), Act::Silu));
        let got = kernels::host::group_norm_silu(&norm, &x, &cond).expect("host group norm applies on flex f32");
        assert_close(&format!("group norm mode {mode} [{b}, {c}, {hw}, {hw}]"), &to_vec(got), &want, 1e-5);
    }
}

#[test]
fn host_loops_stay_off_autodiff_devices_so_training_keeps_its_gradients() {
    let ad = Device::flex().autodiff();
    let q = tensor(&values(2 * 4 * 8, 1), [1, 2, 4, 8], &ad);
    assert!(kernels::host::attention(&q, &q, &q, None).is_none());
    let norm = GroupNormConfig::new(2, 2).init(&ad);
    assert!(kernels::host::group_norm_silu(&norm, &q, &TimeCond::None).is_none());
}

#[test]
fn host_gelu_equals_burn_erf_gelu_within_the_erf_formulas_error() {
    let cpu = Device::flex();
    // Values over [-12, 12] plus the edges: ±∞ and large magnitudes.
    let mut v: Vec<f32> = values(4099, 9).iter().map(|x| 12.0 * x).collect();
    v.extend([f32::INFINITY, f32::NEG_INFINITY, 1e6, -1e6, 0.0, -0.0]);
    let x = tensor(&v, [v.len()], &cpu);
    let want = to_vec(unclip::model::nn::gelu_erf(x.clone()));
    let got = to_vec(kernels::host::gelu_erf(&x).expect("host gelu applies on flex f32"));
    for ((g, w), xv) in got.iter().zip(&want).zip(&v) {
        if xv.is_infinite() {
            // x·Φ(x): +∞ at +∞; at −∞ burn's form gives −∞ · 0 = NaN, as PyTorch's does.
            assert!(g.is_nan() == w.is_nan() && (g.is_nan() || g == w), "gelu({xv}): {g} vs {w}");
            continue;
        }
        // ½·|x|·(erf error ≤ 5e-7), plus f32 rounding of the product.
        let tol = 0.5 * xv.abs() * 5e-7 + 1e-7 * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "gelu({xv}): {g} vs {w}");
    }
}

#[test]
fn host_resampling_gives_the_same_bits_as_burn_ops_at_odd_and_even_sizes() {
    use unclip::kernels::Kernels;
    use unclip::model::unet::resnet::{avg_pool2x, upsample_nearest2x};
    let cpu = Device::flex();
    for [b, c, h, w] in [[1usize, 1usize, 1usize, 1usize], [2, 3, 5, 4], [1, 4, 7, 9], [2, 8, 16, 16]] {
        let x = tensor(&values(b * c * h * w, 5), [b, c, h, w], &cpu);
        let up = |k| to_vec(upsample_nearest2x(k, x.clone()));
        assert_eq!(up(Kernels::Host), up(Kernels::Reference), "upsample [{b}, {c}, {h}, {w}]");
        let host_up = upsample_nearest2x(Kernels::Host, x.clone());
        assert_eq!(host_up.dims(), [b, c, 2 * h, 2 * w]);
        if h >= 2 && w >= 2 {
            let pool = |k| to_vec(avg_pool2x(k, x.clone()));
            assert_eq!(pool(Kernels::Host), pool(Kernels::Reference), "pool [{b}, {c}, {h}, {w}]");
        }
        // Pooling what was up-sampled gives the input back exactly (four equal values).
        assert_eq!(to_vec(avg_pool2x(Kernels::Host, host_up)), to_vec(x.clone()));
    }
}

#[test]
fn host_conv3x3_equals_burn_conv_with_and_without_bias() {
    let cpu = Device::flex();
    // The second case has an image's few channels (the unfolded form); the last is wide
    // enough (≥ 192 channels, ≥ 256 tiles) for the Winograd form, at odd sizes so that its
    // partial edge tiles are exercised too.
    let cases = [(2usize, 8usize, 16usize, 12usize, 12usize, true), (1, 3, 5, 7, 9, false), (3, 16, 4, 1, 1, true), (1, 32, 32, 16, 5, true), (1, 192, 200, 33, 31, true)];
    for (b, ci, co, h, w, bias) in cases {
        let mut layer = burn::nn::conv::Conv2dConfig::new([ci, co], [3, 3])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(bias)
            .init(&cpu);
        layer.weight = Param::from_tensor(tensor(&values(co * ci * 9, 1), [co, ci, 3, 3], &cpu));
        if bias {
            layer.bias = Some(Param::from_tensor(tensor(&values(co, 2), [co], &cpu)));
        }
        let x = tensor(&values(b * ci * h * w, 3), [b, ci, h, w], &cpu);
        let want = to_vec(layer.forward(x.clone()));
        let got = kernels::host::conv3x3(&layer, &x).expect("host conv applies");
        // The direct form keeps its 1e-5. The Winograd form (from 192 channels) sums 9·ci
        // products of values ≤ 1 through transforms whose differences cancel: its rounding is
        // bounded by the length times f32's epsilon of the terms' size, far below an output of
        // size 1 (measured 4e-5 at 192 channels; a wrong tap or transform is off by O(1)).
        let tol = if ci < 192 { 1e-5 } else { 1e-7 * 9.0 * ci as f32 };
        assert_close(&format!("conv [{b}, {ci}, {h}, {w}] -> {co}"), &to_vec(got), &want, tol);
    }
    // Strided (down-sampling) convs are left to burn.
    let strided = burn::nn::conv::Conv2dConfig::new([4, 4], [3, 3])
        .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_stride([2, 2])
        .init(&cpu);
    assert!(kernels::host::conv3x3(&strided, &tensor(&values(64, 4), [1, 4, 4, 4], &cpu)).is_none());
}
