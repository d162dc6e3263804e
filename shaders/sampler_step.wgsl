{{ enable }}
// Fused guided sampler step (unCLIP decoder / super-resolution / prior).
//
// Four elements of the sample x_t ([b, c, hw]) per invocation. Row mode (F_ROWS, when hw fills
// workgroups): workgroup (x, y) covers pixels [1024x, 1024x + 1024) of row y = (batch,
// channel), so no invocation divides; flat mode (small hw, e.g. the prior's [b, E]): one index
// over all elements, split with division. In one pass it
//   1. combines classifier-free guidance: ε = ε_u + (ε_c − ε_u)·s, where the model output holds
//      [uncond; cond] rows (the learned-variance channels come from the cond half), or reads an
//      already-guided / unguided output,
//   2. predicts x̂₀ from ε (or takes the "sample" prediction as x̂₀) and clips it,
//   3. applies the DDPM (UnCLIPScheduler, fixed_small_log or learned_range) or the DDIM-η update
//      with the supplied noise,
// and writes both x_{t−1} and x̂₀ (the preview). Scalar coefficients are computed on the host in
// f32 exactly as the burn-ops reference computes them (src/kernels/sampler.rs).
//
// Every index is guarded: the module is created without bounds checks.

@group(0) @binding(0) var<storage, read_write> model_out: array<{{ elem }}>;
@group(0) @binding(1) var<storage, read_write> sample: array<{{ elem }}>;
@group(0) @binding(2) var<storage, read_write> noise: array<{{ elem }}>;
@group(0) @binding(3) var<storage, read_write> prev_out: array<{{ elem }}>;
@group(0) @binding(4) var<storage, read_write> x0_out: array<{{ elem }}>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

// params layout (u32 words; floats are bit patterns)
const P_N: u32 = 0u;          // elements of the sample (b·c·hw)
const P_C: u32 = 1u;          // sample channels
const P_HW: u32 = 2u;         // product of the trailing (spatial) dims
const P_C_OUT: u32 = 3u;      // model output channels
const P_B: u32 = 4u;          // sample batch
const P_FLAGS: u32 = 5u;
const P_SCALE: u32 = 6u;      // guidance scale
const P_SQRT_AB: u32 = 7u;    // √ᾱ_t
const P_SQRT_1M_AB: u32 = 8u; // √(1−ᾱ_t)
const P_CLIP: u32 = 9u;       // clip range r: x̂₀ ∈ [−r, r]
const P_A: u32 = 10u;         // DDPM: x̂₀ coefficient of the posterior mean; DDIM: √ᾱ_prev
const P_B_COEF: u32 = 11u;    // DDPM: x_t coefficient of the posterior mean; DDIM: direction coefficient
const P_STD: u32 = 12u;       // DDPM fixed std / DDIM σ
const P_MIN_LOG: u32 = 13u;   // learned_range: log posterior variance
const P_MAX_LOG: u32 = 14u;   // learned_range: log β
const P_WORDS: u32 = 16u;

const F_CFG: u32 = 1u;        // model_out is the [uncond; cond] batch (2b rows)
const F_EPSILON: u32 = 2u;    // epsilon prediction (else "sample")
const F_CLIP: u32 = 4u;       // clip x̂₀
const F_DDIM: u32 = 8u;       // DDIM-η update (else DDPM posterior)
const F_NOISE: u32 = 16u;     // add noise
const F_LEARNED: u32 = 32u;   // learned_range variance from channels [c, 2c)
const F_CLIPPED_EPS: u32 = 64u; // DDIM: recompute ε from the clipped x̂₀
const F_ROWS: u32 = 128u;     // row-mode dispatch (see the top)

// The flags are a template constant: each configuration is its own specialised pipeline, so
// the compiler folds the branches away (a software rasterizer would otherwise run both sides
// of every branch under a mask). The P_FLAGS word carries the same value for reference.
const FLAGS: u32 = {{ spec }}u;

fn param(i: u32) -> u32 {
    if (i < arrayLength(&params)) {
        return params[i];
    }
    return 0u;
}

fn paramf(i: u32) -> f32 {
    return bitcast<f32>(param(i));
}

fn load_out(row: u32, ch: u32, p: u32, c_out: u32, hw: u32) -> f32 {
    let j = (row * c_out + ch) * hw + p;
    if (j < arrayLength(&model_out)) {
        return f32(model_out[j]);
    }
    return 0.0;
}

// The parameters, read once per invocation.
struct Step {
    n: u32,
    c: u32,
    hw: u32,
    c_out: u32,
    b: u32,
    flags: u32,
    scale: f32,
    sab: f32,
    s1m: f32,
    clip: f32,
    a: f32,
    b_coef: f32,
    sd: f32,
    min_log: f32,
    max_log: f32,
}

// Element i = ((bi·c + ch)·hw + p) of the sample.
fn step_one(s: Step, i: u32, bi: u32, ch: u32, p: u32) {
    if (i >= s.n || i >= arrayLength(&sample) || i >= arrayLength(&prev_out) || i >= arrayLength(&x0_out)) {
        return;
    }
    let flags = FLAGS;

    // 1. guidance
    var pred: f32;
    var pv: f32 = 0.0;
    let learned = (flags & F_LEARNED) != 0u;
    if ((flags & F_CFG) != 0u) {
        let u = load_out(bi, ch, p, s.c_out, s.hw);
        let cnd = load_out(s.b + bi, ch, p, s.c_out, s.hw);
        pred = u + (cnd - u) * s.scale;
        if (learned) {
            pv = load_out(s.b + bi, s.c + ch, p, s.c_out, s.hw);
        }
    } else {
        pred = load_out(bi, ch, p, s.c_out, s.hw);
        if (learned) {
            pv = load_out(bi, s.c + ch, p, s.c_out, s.hw);
        }
    }

    // 2. x̂₀ (and ε̂) from the prediction
    let xt = f32(sample[i]);
    var x0: f32;
    var eps: f32;
    if ((flags & F_EPSILON) != 0u) {
        x0 = (xt - pred * s.s1m) / s.sab;
        eps = pred;
    } else {
        x0 = pred;
        eps = (xt - pred * s.sab) / s.s1m;
    }
    if ((flags & F_CLIP) != 0u) {
        x0 = clamp(x0, -s.clip, s.clip);
    }

    // 3. the update
    var z: f32 = 0.0;
    let add_noise = (flags & F_NOISE) != 0u;
    if (add_noise && i < arrayLength(&noise)) {
        z = f32(noise[i]);
    }
    var prev: f32;
    if ((flags & F_DDIM) != 0u) {
        if ((flags & F_CLIPPED_EPS) != 0u) {
            eps = (xt - x0 * s.sab) / s.s1m;
        }
        prev = x0 * s.a + eps * s.b_coef;
        if (add_noise) {
            prev = prev + z * s.sd;
        }
    } else {
        prev = x0 * s.a + xt * s.b_coef;
        if (add_noise) {
            var sd = s.sd;
            if (learned) {
                // log σ² interpolates between the log posterior variance and log β by the raw
                // model channel mapped from [−1, 1] to [0, 1].
                let frac = (pv + 1.0) / 2.0;
                sd = exp((frac * s.max_log + (1.0 - frac) * s.min_log) * 0.5);
            }
            prev = prev + sd * z;
        }
    }

    prev_out[i] = {{ elem }}(prev);
    x0_out[i] = {{ elem }}(x0);
}

// Each invocation steps PER_THREAD elements, 256 apart, so consecutive invocations touch
// consecutive elements and the per-invocation setup is shared.
const PER_THREAD: u32 = 4u;
const SPAN: u32 = 1024u; // 256 · PER_THREAD elements per workgroup

@compute @workgroup_size(256)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let s = Step(
        param(P_N),
        max(param(P_C), 1u),
        max(param(P_HW), 1u),
        param(P_C_OUT),
        param(P_B),
        param(P_FLAGS),
        paramf(P_SCALE),
        paramf(P_SQRT_AB),
        paramf(P_SQRT_1M_AB),
        paramf(P_CLIP),
        paramf(P_A),
        paramf(P_B_COEF),
        paramf(P_STD),
        paramf(P_MIN_LOG),
        paramf(P_MAX_LOG),
    );
    if ((FLAGS & F_ROWS) != 0u) {
        // Workgroup (x, y): pixels [SPAN·x, SPAN·(x + 1)) of row y = (batch, channel); the
        // row is split once per workgroup, no invocation divides.
        let row = wid.y;
        let bi = row / s.c;
        let ch = row % s.c;
        for (var k: u32 = 0u; k < PER_THREAD; k = k + 1u) {
            let p = wid.x * SPAN + k * 256u + lid;
            if (p < s.hw) {
                step_one(s, row * s.hw + p, bi, ch, p);
            }
        }
    } else {
        // Flat: SPAN elements per workgroup over the whole sample (small hw, e.g. the prior).
        let start = (wid.y * nwg.x + wid.x) * SPAN;
        for (var k: u32 = 0u; k < PER_THREAD; k = k + 1u) {
            let i = start + k * 256u + lid;
            if (i < s.n) {
                let bi = i / (s.c * s.hw);
                let rem = i % (s.c * s.hw);
                step_one(s, i, bi, rem / s.hw, rem % s.hw);
            }
        }
    }
}
