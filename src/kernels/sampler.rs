//! The fused guided sampler step (`shaders/sampler_step.wgsl`).
//!
//! Reference: the burn-ops path the pipeline always ran, [`guide_decoder`] on the CFG batch
//! followed by [`UnclipScheduler::step`] (DDPM, `fixed_small_log` or `learned_range`) or
//! [`Ddim::step`] (DDIM-η). The kernel does the same arithmetic per element, in one pass, with
//! the scalar coefficients the schedulers hand out (`coefficients`), which their own steps use.

use burn::backend::Dispatch;
use burn::prelude::*;
use burn_cubecl::tensor::CubeTensor;

use burn_cubecl::cubecl::CubeCount;

use super::{Kernels, WgslKernels, Wgsl, contiguous, cube_count, empty_like, f32_bits, kernel_dtype, launch_wgsl};
use crate::diffusion::ddim::Ddim;
use crate::diffusion::guidance::guide_decoder;
use crate::diffusion::unclip_scheduler::{UnclipScheduler, Variance};
use crate::diffusion::{DiffusionError, Prediction, StepOutput};

const SOURCE: &str = include_str!("../../shaders/sampler_step.wgsl");

/// Which update the step applies.
#[derive(Clone, Copy)]
pub enum Rule<'a> {
    /// diffusers' `UnCLIPScheduler` (DDPM over possibly respaced timesteps).
    Ddpm(&'a UnclipScheduler),
    /// DDIM with η over the same schedule.
    Ddim { ddim: &'a Ddim, eta: f32 },
}

/// What the shader needs besides the tensors: shapes, flags and the step's scalar
/// coefficients (see the layout at the top of `shaders/sampler_step.wgsl`).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerParams {
    pub words: [u32; 16],
}

const F_CFG: u32 = 1;
const F_EPSILON: u32 = 2;
const F_CLIP: u32 = 4;
const F_DDIM: u32 = 8;
const F_NOISE: u32 = 16;
const F_LEARNED: u32 = 32;
const F_CLIPPED_EPS: u32 = 64;
const F_ROWS: u32 = 128;

/// One sampler step t → `prev` on `model_output` (the CFG batch `[uncond; cond]` of `2b` rows
/// when `guidance` is `Some(scale)`, else already guided or unguided, `b` rows). `noise` must
/// be given when the step needs it.
pub struct StepInput<const D: usize> {
    pub model_output: Tensor<D>,
    pub guidance: Option<f32>,
    pub t: usize,
    pub prev: Option<usize>,
    pub sample: Tensor<D>,
    pub noise: Option<Tensor<D>>,
}

/// The step: the kernel where `kernels` says WGSL (and it handles these shapes), the reference
/// otherwise; both return x_{t−1} and x̂₀.
pub fn step<const D: usize>(kernels: Kernels, rule: Rule, input: StepInput<D>) -> Result<StepOutput<D>, DiffusionError> {
    if kernels.is_wgsl()
        && let Some(params) = plan(rule, &input)?
    {
        return Ok(run(input, params));
    }
    reference(rule, input)
}

/// The burn-ops reference: guidance ([`guide_decoder`]) then the scheduler's own step.
pub fn reference<const D: usize>(rule: Rule, input: StepInput<D>) -> Result<StepOutput<D>, DiffusionError> {
    let StepInput { model_output, guidance, t, prev, sample, noise } = input;
    let channels = sample.dims()[1];
    let out = match guidance {
        Some(scale) => guide(model_output, channels, scale),
        None => model_output,
    };
    match rule {
        Rule::Ddpm(s) => s.step(out, t, prev, sample, noise),
        Rule::Ddim { ddim, eta } => ddim.step(out, t, prev, sample, eta, noise),
    }
}

/// The kernel; an error where it cannot run (not a wgpu tensor, a dtype or layout it does not
/// handle).
pub fn kernel<const D: usize>(rule: Rule, input: StepInput<D>) -> Result<StepOutput<D>, DiffusionError> {
    if !super::is_wgpu(&input.sample.device()) {
        return Err(DiffusionError::Config("the sampler kernel needs a wgpu device".into()));
    }
    match plan(rule, &input)? {
        Some(params) => Ok(run(input, params)),
        None => Err(DiffusionError::Config("the sampler kernel does not handle these shapes/dtypes".into())),
    }
}

/// [`guide_decoder`] for any rank ≥ 2, viewing the tensor as `[n, C, rest, 1]`.
fn guide<const D: usize>(out: Tensor<D>, channels: usize, scale: f32) -> Tensor<D> {
    let dims = out.dims();
    let rest: usize = dims[2..].iter().product();
    let guided = guide_decoder(out.reshape([dims[0], dims[1], rest, 1]), channels, scale);
    let [b, c, _, _] = guided.dims();
    let mut shape = dims;
    shape[0] = b;
    shape[1] = c;
    guided.reshape(shape)
}

fn run<const D: usize>(input: StepInput<D>, params: SamplerParams) -> StepOutput<D> {
    let StepInput { model_output, sample, noise, .. } = input;
    // The shader binds a noise buffer either way; it reads it only when the flag says so.
    let noise = noise.unwrap_or_else(|| sample.clone());
    let (prev, x0) =
        <Dispatch as WgslKernels>::sampler_step(model_output.into_dispatch(), sample.into_dispatch(), noise.into_dispatch(), params);
    StepOutput { prev_sample: Tensor::from_dispatch(prev), pred_original_sample: Tensor::from_dispatch(x0) }
}

/// The shader's parameters for this step, or `None` where the kernel does not apply (then the
/// reference runs and reports any error itself). Errors only for missing noise, as the
/// reference would.
fn plan<const D: usize>(rule: Rule, input: &StepInput<D>) -> Result<Option<SamplerParams>, DiffusionError> {
    let StepInput { model_output, guidance, t, prev, sample, .. } = input;
    let (guidance, t, prev, noise) = (*guidance, *t, *prev, input.noise.as_ref());
    if D < 2 {
        return Ok(None);
    }
    let (od, sd) = (model_output.dims(), sample.dims());
    let (b, c, c_out) = (sd[0], sd[1], od[1]);
    let hw: usize = sd[2..].iter().product();
    let rows = if guidance.is_some() { 2 * b } else { b };
    let dtype = sample.dtype();
    let same_dtype = model_output.dtype() == dtype && noise.is_none_or(|z| z.dtype() == dtype);
    let n = b * c * hw;
    if od[0] != rows
        || od[2..] != sd[2..]
        || noise.is_some_and(|z| z.dims() != sd)
        || !kernel_dtype(dtype)
        || !same_dtype
        || n == 0
        || n > u32::MAX as usize / 2
        || model_output.shape().num_elements() > u32::MAX as usize / 2
    {
        return Ok(None);
    }
    let mut w = [0u32; 16];
    w[0] = n as u32;
    w[1] = c as u32;
    w[2] = hw as u32;
    w[3] = c_out as u32;
    w[4] = b as u32;
    let mut flags = 0;
    if let Some(scale) = guidance {
        flags |= F_CFG;
        w[6] = f32_bits(scale);
    }
    let (prediction, clip, ab_t) = match rule {
        Rule::Ddpm(s) => {
            if t >= s.num_train_timesteps() {
                return Ok(None);
            }
            // As UnclipScheduler::step.
            let learned = s.variance == Variance::LearnedRange && c_out == 2 * c;
            if !learned && c_out != c {
                return Ok(None);
            }
            let k = s.coefficients(t, prev);
            w[10] = f32_bits(k.c_x0);
            w[11] = f32_bits(k.c_x);
            if s.needs_noise(t) {
                if noise.is_none() {
                    return Err(DiffusionError::MissingNoise);
                }
                flags |= F_NOISE;
                if learned {
                    flags |= F_LEARNED;
                    w[13] = f32_bits(k.log_posterior);
                    w[14] = f32_bits(k.log_beta);
                } else {
                    w[12] = f32_bits(k.fixed_std);
                }
            }
            (s.prediction, s.clip_sample, k.alpha_bar)
        }
        Rule::Ddim { ddim, eta } => {
            if t >= ddim.alphas_cumprod.len() || c_out < c {
                return Ok(None);
            }
            // As Ddim::step.
            flags |= F_DDIM;
            let k = ddim.coefficients(t, prev, eta);
            w[10] = f32_bits(k.sqrt_alpha_bar_prev);
            w[11] = f32_bits(k.dir);
            if ddim.use_clipped_model_output {
                flags |= F_CLIPPED_EPS;
            }
            if ddim.needs_noise(t, prev, eta) {
                if noise.is_none() {
                    return Err(DiffusionError::MissingNoise);
                }
                flags |= F_NOISE;
                w[12] = f32_bits(k.sigma);
            }
            (ddim.prediction, ddim.clip_sample, k.alpha_bar)
        }
    };
    if prediction == Prediction::Epsilon {
        flags |= F_EPSILON;
    }
    if let Some(r) = clip {
        flags |= F_CLIP;
        w[9] = f32_bits(r);
    }
    // As Prediction::x0 / x0_and_eps.
    w[7] = f32_bits(ab_t.sqrt());
    w[8] = f32_bits((1.0 - ab_t).sqrt());
    // Row-mode dispatch (no per-invocation division) when a row fills workgroups.
    if hw >= super::WORKGROUP as usize && b * c <= 65_535 {
        flags |= F_ROWS;
    }
    w[5] = flags;
    Ok(Some(SamplerParams { words: w }))
}


/// The `CubeBackend` side: allocate the two outputs and dispatch one thread per element.
pub(crate) fn launch(model_out: CubeTensor, sample: CubeTensor, noise: CubeTensor, params: SamplerParams) -> (CubeTensor, CubeTensor) {
    let (model_out, sample, noise) = (contiguous(model_out), contiguous(sample), contiguous(noise));
    let shape = sample.meta.shape().clone();
    let dtype = sample.dtype;
    let prev = empty_like(&sample, shape.clone(), dtype);
    let x0 = empty_like(&sample, shape, dtype);
    let [n, c, hw, _, b, flags] = [0, 1, 2, 3, 4, 5].map(|i| params.words[i] as usize);
    // Each workgroup steps SPAN = 256 invocations × 4 elements (see the shader).
    const SPAN: usize = 4 * super::WORKGROUP as usize;
    let count = if flags as u32 & F_ROWS != 0 {
        CubeCount::Static(hw.div_ceil(SPAN) as u32, (b * c) as u32, 1)
    } else {
        cube_count(n.div_ceil(SPAN))
    };
    let kernel = Wgsl { name: "sampler_step", source: SOURCE, dtype, spec: flags as u32 };
    launch_wgsl(kernel, count, &[&model_out, &sample, &noise, &prev, &x0], &params.words);
    (prev, x0)
}
