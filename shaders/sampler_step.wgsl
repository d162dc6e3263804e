{{ enable }}
// Fused guided sampler step (unCLIP decoder / super-resolution / prior).
//
// One invocation per element of the sample x_t ([b, c, hw]). Row mode (F_ROWS, when hw fills
// workgroups): workgroup (x, y) covers pixels [256x, 256x + 256) of row y = (batch, channel), so
// no invocation divides; flat mode (small hw, e.g. the prior's [b, E]): one index over all
// elements, split with division. In one pass it
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

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let n = param(P_N);
    let c = max(param(P_C), 1u);
    let hw = max(param(P_HW), 1u);
    let c_out = param(P_C_OUT);
    let b = param(P_B);
    let flags = param(P_FLAGS);

    var i: u32;
    var bi: u32;
    var ch: u32;
    var p: u32;
    if ((flags & F_ROWS) != 0u) {
        // Per-workgroup (uniform) split of the row; per-invocation only the pixel.
        let row = wid.y;
        bi = row / c;
        ch = row % c;
        p = gid.x;
        if (p >= hw) {
            return;
        }
        i = row * hw + p;
    } else {
        i = gid.y * (nwg.x * 256u) + gid.x;
        bi = i / (c * hw);
        let rem = i % (c * hw);
        ch = rem / hw;
        p = rem % hw;
    }
    if (i >= n || i >= arrayLength(&sample) || i >= arrayLength(&prev_out) || i >= arrayLength(&x0_out)) {
        return;
    }

    // 1. guidance
    var pred: f32;
    var pv: f32 = 0.0;
    let learned = (flags & F_LEARNED) != 0u;
    if ((flags & F_CFG) != 0u) {
        let u = load_out(bi, ch, p, c_out, hw);
        let cnd = load_out(b + bi, ch, p, c_out, hw);
        pred = u + (cnd - u) * paramf(P_SCALE);
        if (learned) {
            pv = load_out(b + bi, c + ch, p, c_out, hw);
        }
    } else {
        pred = load_out(bi, ch, p, c_out, hw);
        if (learned) {
            pv = load_out(bi, c + ch, p, c_out, hw);
        }
    }

    // 2. x̂₀ (and ε̂) from the prediction
    let xt = f32(sample[i]);
    let sab = paramf(P_SQRT_AB);
    let s1m = paramf(P_SQRT_1M_AB);
    var x0: f32;
    var eps: f32;
    if ((flags & F_EPSILON) != 0u) {
        x0 = (xt - pred * s1m) / sab;
        eps = pred;
    } else {
        x0 = pred;
        eps = (xt - pred * sab) / s1m;
    }
    if ((flags & F_CLIP) != 0u) {
        let r = paramf(P_CLIP);
        x0 = clamp(x0, -r, r);
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
            eps = (xt - x0 * sab) / s1m;
        }
        prev = x0 * paramf(P_A) + eps * paramf(P_B_COEF);
        if (add_noise) {
            prev = prev + z * paramf(P_STD);
        }
    } else {
        prev = x0 * paramf(P_A) + xt * paramf(P_B_COEF);
        if (add_noise) {
            var sd = paramf(P_STD);
            if (learned) {
                // log σ² interpolates between the log posterior variance and log β by the raw
                // model channel mapped from [−1, 1] to [0, 1].
                let frac = (pv + 1.0) / 2.0;
                sd = exp((frac * paramf(P_MAX_LOG) + (1.0 - frac) * paramf(P_MIN_LOG)) * 0.5);
            }
            prev = prev + sd * z;
        }
    }

    prev_out[i] = {{ elem }}(prev);
    x0_out[i] = {{ elem }}(x0);
}
