//! The samplers and the noise equal diffusers/PyTorch on recorded fixtures, and DDIM
//! inversion pairs with DDIM sampling.

mod common;

use burn::prelude::*;
use common::{Fixture, assert_close, cpu};
use unclip::diffusion::ddim::Ddim;
use unclip::diffusion::rng::TorchGenerator;
use unclip::diffusion::schedule::{alphas_cumprod, squaredcos_cap_v2_betas, unclip_timesteps};
use unclip::diffusion::unclip_scheduler::UnclipScheduler;
use unclip::diffusion::Prediction;
use unclip::model::config::SchedulerConfig;
use unclip::model::nn::to_vec;

#[test]
fn betas_and_alphas_cumprod_equal_diffusers() {
    let fx = Fixture::open("schedulers");
    let betas = squaredcos_cap_v2_betas(1000);
    assert_close("betas", &betas, &fx.values("unclip.betas"), 0.0);
    assert_close("alphas_cumprod", &alphas_cumprod(&betas), &fx.values("unclip.alphas_cumprod"), 0.0);
}

#[test]
fn timesteps_round_half_to_even_like_numpy() {
    let fx = Fixture::open("schedulers");
    for n in [2usize, 7, 25, 50] {
        let (_, expected) = fx.i64(&format!("unclip.timesteps.{n}"));
        let got: Vec<i64> = unclip_timesteps(1000, n).expect("timesteps").into_iter().map(|t| t as i64).collect();
        assert_eq!(&got, expected, "n = {n}");
    }
    assert!(unclip_timesteps(1000, 1).is_err(), "one step divides by zero in diffusers: must be an error here");
    assert!(unclip_timesteps(1000, 0).is_err());
}

#[test]
fn unclip_scheduler_steps_equal_diffusers() {
    let fx = Fixture::open("schedulers");
    let cases = fx.json["unclip_step_cases"].as_array().expect("cases");
    assert!(cases.len() >= 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let cfg: SchedulerConfig =
            serde_json::from_value(fx.json["unclip_configs"][case["config"].as_str().unwrap()].clone()).unwrap();
        let sched = UnclipScheduler::new(&cfg).expect("scheduler");
        let t = case["t"].as_u64().unwrap() as usize;
        // diffusers' `prev_timestep=None` means t − 1.
        let prev = match case["prev_timestep"].as_i64() {
            Some(p) if p >= 0 => Some(p as usize),
            Some(_) => None,
            None => t.checked_sub(1),
        };
        // The prior's cases are `[b, d]`, the decoder's `[b, c, h, w]`.
        if fx.f32(&format!("{name}.sample")).0.len() == 2 {
            check_unclip_step::<2>(&fx, &sched, name, t, prev);
        } else {
            check_unclip_step::<4>(&fx, &sched, name, t, prev);
        }
    }
}

/// One recorded `UnCLIPScheduler.step`: x̂₀ and x_{t−1} equal diffusers'.
fn check_unclip_step<const D: usize>(fx: &Fixture, sched: &UnclipScheduler, name: &str, t: usize, prev: Option<usize>) {
    let device = cpu();
    let input = |what: &str| fx.tensor::<D>(&format!("{name}.{what}"), &device);
    let noise = fx.has(&format!("{name}.noise")).then(|| input("noise"));
    let o = sched.step(input("model_output"), t, prev, input("sample"), noise).expect("step");
    for (what, got) in [("pred_original_sample", o.pred_original_sample), ("prev_sample", o.prev_sample)] {
        assert_close(&format!("{name} {what}"), &to_vec(got), &fx.values(&format!("{name}.{what}")), 1e-5);
    }
}

fn ddim_for(prediction: &str, clip: bool) -> Ddim {
    Ddim {
        alphas_cumprod: alphas_cumprod(&squaredcos_cap_v2_betas(1000)),
        prediction: Prediction::parse(prediction).unwrap(),
        clip_sample: clip.then_some(1.0),
        use_clipped_model_output: false,
    }
}

#[test]
fn ddim_steps_with_eta_equal_diffusers() {
    let fx = Fixture::open("schedulers");
    let device = cpu();
    let cases = fx.json["ddim_cases"].as_array().expect("cases");
    assert!(cases.len() >= 12);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let ddim = Ddim {
            use_clipped_model_output: case["use_clipped_model_output"].as_bool().unwrap_or(false),
            ..ddim_for(case["prediction_type"].as_str().unwrap(), case["clip_sample"].as_bool().unwrap())
        };
        let t = case["t"].as_u64().unwrap() as usize;
        let prev = case["prev_t"].as_i64().filter(|p| *p >= 0).map(|p| p as usize);
        let eta = case["eta"].as_f64().unwrap() as f32;
        let o = ddim
            .step(
                fx.tensor::<4>(&format!("{name}.model_output"), &device),
                t,
                prev,
                fx.tensor::<4>(&format!("{name}.sample"), &device),
                eta,
                Some(fx.tensor::<4>(&format!("{name}.variance_noise"), &device)),
            )
            .expect("step");
        assert_close(&format!("{name} prev"), &to_vec(o.prev_sample), &fx.values(&format!("{name}.prev_sample")), 1e-5);
        assert_close(
            &format!("{name} x0"),
            &to_vec(o.pred_original_sample),
            &fx.values(&format!("{name}.pred_original_sample")),
            1e-5,
        );
    }
}

#[test]
fn ddim_inversion_steps_equal_diffusers_inverse_scheduler() {
    let fx = Fixture::open("schedulers");
    let device = cpu();
    let ddim = ddim_for("epsilon", false);
    for case in fx.json["ddim_inverse_cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap();
        let to = case["t"].as_u64().unwrap() as usize;
        let from = case["source_t"].as_i64().filter(|s| *s >= 0).map(|s| s as usize);
        let x = ddim.invert_step(
            fx.tensor::<4>(&format!("{name}.model_output"), &device),
            from,
            to,
            fx.tensor::<4>(&format!("{name}.sample"), &device),
        );
        assert_close(name, &to_vec(x), &fx.values(&format!("{name}.prev_sample")), 1e-5);
    }
}

#[test]
fn ddim_inversion_then_eta_zero_sampling_reconstructs() {
    // With a model whose ε does not depend on x the inversion is exact, so any mismatch in
    // how the two walk the timestep list shows up.
    let device = cpu();
    let ddim = ddim_for("epsilon", false);
    let ts = unclip_timesteps(1000, 25).unwrap();
    let x0: Tensor<4> = Tensor::random([1, 3, 8, 8], burn::tensor::Distribution::Uniform(-1.0, 1.0), &device);
    let eps: Tensor<4> = Tensor::random([1, 3, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let mut x = x0.clone();
    for i in (0..ts.len()).rev() {
        x = ddim.invert_step(eps.clone(), ts.get(i + 1).copied(), ts[i], x);
    }
    for (i, &t) in ts.iter().enumerate() {
        x = ddim.step(eps.clone(), t, ts.get(i + 1).copied(), x, 0.0, None).unwrap().prev_sample;
    }
    // f32 round-off through 1/√ᾱ at t = 999 (ᾱ ≈ 4e-5) leaves about 1e-3.
    assert_close("reconstruction", &to_vec(x.clone()), &to_vec(x0.clone()), 5e-3);
    // Walking the list one pair off (diffusers' `t − T//n` style slip) is far worse.
    let mut y = x0.clone();
    for i in (0..ts.len()).rev() {
        y = ddim.invert_step(eps.clone(), ts.get(i + 2).copied(), ts[i], y);
    }
    for (i, &t) in ts.iter().enumerate() {
        y = ddim.step(eps.clone(), t, ts.get(i + 1).copied(), y, 0.0, None).unwrap().prev_sample;
    }
    let off = common::max_abs_diff(&to_vec(y), &to_vec(x0));
    assert!(off > 0.05, "a mismatched pairing should not reconstruct ({off})");
}

#[test]
fn torch_randn_is_reproduced_bit_for_bit() {
    let fx = Fixture::open("randn");
    for case in fx.json["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap();
        let seed = case["seed"].as_u64().unwrap();
        let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let got = TorchGenerator::new(seed).randn(&shape).expect("randn");
        assert_close(name, &got, &fx.values(name), 0.0);
    }
    let seq = &fx.json["sequence"];
    let mut g = TorchGenerator::new(seq["seed"].as_u64().unwrap());
    for draw in seq["draws"].as_array().unwrap() {
        let name = draw["name"].as_str().unwrap();
        let shape: Vec<usize> = draw["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_close(name, &g.randn(&shape).unwrap(), &fx.values(name), 0.0);
    }
}

/// diffusers' scheduler tests' `dummy_model`: x·t/(t+1).
fn dummy_model(x: &Tensor<4>, t: usize) -> Tensor<4> {
    x.clone().mul_scalar(t as f32).div_scalar(t as f32 + 1.0)
}

#[test]
fn unclip_variance_equals_diffusers_scheduler_test_values() {
    let fx = Fixture::open("scheduler_anchors");
    let cfg = |variance: &str| SchedulerConfig::unclip(variance, "epsilon", 1.0);
    let small = UnclipScheduler::new(&cfg("fixed_small_log")).unwrap();
    for (t, v) in fx.json["unclip"]["variance_fixed_small_log"]["values"].as_object().unwrap() {
        let t: usize = t.parse().unwrap();
        let got = small.variance(t, t.checked_sub(1), None);
        println!("fixed_small_log variance at t={t}: {got:e} vs {v}");
        assert!((got as f64 - v.as_f64().unwrap()).abs() < 1e-7);
    }
    let learned = UnclipScheduler::new(&cfg("learned_range")).unwrap();
    let lr = &fx.json["unclip"]["variance_learned_range"];
    let pv = lr["predicted_variance"].as_f64().unwrap_or(0.5) as f32;
    for (t, v) in lr["values"].as_object().unwrap() {
        let t: usize = t.parse().unwrap();
        let got = learned.variance(t, t.checked_sub(1), Some(pv));
        println!("learned_range log variance at t={t}: {got} vs {v}");
        assert!((got as f64 - v.as_f64().unwrap()).abs() < 1e-5);
    }
}

#[test]
fn unclip_full_loops_equal_diffusers_scheduler_tests() {
    let fx = Fixture::open("scheduler_anchors");
    let device = cpu();
    let cfg: SchedulerConfig = serde_json::from_value(fx.json["unclip"]["full_loop"]["config"].clone()).unwrap();
    let sched = UnclipScheduler::new(&cfg).unwrap();
    // 1000 steps with prev = t − 1, and 25 steps over the respaced list; the noise is the
    // global torch generator seeded 0, reproduced by our torch-compatible generator.
    for (name, timesteps) in [
        ("full_loop", (0..1000).rev().collect::<Vec<usize>>()),
        ("full_loop_skip_timesteps", unclip_timesteps(1000, 25).unwrap()),
    ] {
        let mut g = TorchGenerator::new(0);
        let mut x: Tensor<4> = fx.tensor("dummy_sample_deter", &device);
        for (i, &t) in timesteps.iter().enumerate() {
            let prev = if name == "full_loop" { t.checked_sub(1) } else { timesteps.get(i + 1).copied() };
            let noise = (t > 0).then(|| common::tensor_of(g.randn(&[4, 3, 8, 8]).unwrap(), [4, 3, 8, 8], &device));
            x = sched.step(dummy_model(&x, t), t, prev, x.clone(), noise).unwrap().prev_sample;
        }
        let v = to_vec(x);
        let sum: f64 = v.iter().map(|a| a.abs() as f64).sum();
        let mean = sum / v.len() as f64;
        let want = &fx.json["unclip"][name];
        println!("{name}: sum {sum:.5} (diffusers {}), mean {mean:.6}", want["result_sum"]);
        assert!((sum - want["result_sum"].as_f64().unwrap()).abs() < 1e-2, "{name} sum");
        assert!((mean - want["result_mean"].as_f64().unwrap()).abs() < 1e-3, "{name} mean");
    }
}

#[test]
fn ddim_and_inverse_full_loops_equal_diffusers_scheduler_tests() {
    let fx = Fixture::open("scheduler_anchors");
    let device = cpu();
    // These tests use linear betas 1e-4..0.02 (torch.linspace in f32).
    let betas: Vec<f32> = (0..1000).map(|i| (1e-4f64 + (0.02f64 - 1e-4) * i as f64 / 999.0) as f32).collect();
    let ddim = Ddim {
        alphas_cumprod: alphas_cumprod(&betas),
        prediction: Prediction::Epsilon,
        clip_sample: Some(1.0),
        use_clipped_model_output: false,
    };
    let ts: Vec<usize> = (0..10).rev().map(|i| i * 100).collect();
    let mut x: Tensor<4> = fx.tensor("dummy_sample_deter", &device);
    for (i, &t) in ts.iter().enumerate() {
        x = ddim.step(dummy_model(&x, t), t, ts.get(i + 1).copied(), x.clone(), 0.0, None).unwrap().prev_sample;
    }
    let v = to_vec(x);
    let sum: f64 = v.iter().map(|a| a.abs() as f64).sum();
    let want = fx.json["ddim"]["no_noise"]["result_sum"].as_f64().unwrap();
    println!("DDIM full_loop_no_noise: sum {sum:.4} (diffusers {want:.4})");
    assert!((sum - want).abs() < 1e-2);

    // DDIMInverse: ascending, source = t − 100 (None below 0); its tests keep clip_sample on.
    let inv = ddim;
    let mut x: Tensor<4> = fx.tensor("dummy_sample_deter", &device);
    for t in (0..10usize).map(|i| i * 100) {
        let from = t.checked_sub(100);
        x = inv.invert_step(dummy_model(&x, t), from, t, x.clone());
    }
    let v = to_vec(x);
    let sum: f64 = v.iter().map(|a| a.abs() as f64).sum();
    let want = fx.json["ddim_inverse"]["no_noise"]["result_sum"].as_f64().unwrap();
    println!("DDIMInverse full_loop_no_noise: sum {sum:.4} (diffusers {want:.4})");
    assert!((sum - want).abs() < 1e-2);
}
