{{ enable }}
// GroupNorm fused with the resnet's time conditioning and SiLU, one workgroup per
// (batch, group):
//   mode 0 (plain):       y = silu(GN(x))
//   mode 1 (additive):    y = silu(GN(x + t[b, c]))                 ("default" resnets)
//   mode 2 (scale_shift): y = silu(GN(x)·(1 + t[b, c]) + t[b, C + c])
// GN(v) = (v − μ) / √(σ² + ε)·γ[c] + β[c], with μ and σ² the biased statistics of the group,
// two-pass (mean, then mean of squared deviations) like burn's GroupNorm, accumulated in f32.
//
// Barriers sit only in workgroup-uniform control flow: nothing returns early, out-of-range
// workgroups just find nothing to do. Every index is guarded (no bounds checks on the module).

@group(0) @binding(0) var<storage, read_write> x: array<{{ elem }}>;
@group(0) @binding(1) var<storage, read_write> gamma: array<{{ elem }}>;
@group(0) @binding(2) var<storage, read_write> beta: array<{{ elem }}>;
@group(0) @binding(3) var<storage, read_write> cond: array<{{ elem }}>;
@group(0) @binding(4) var<storage, read_write> y: array<{{ elem }}>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

// params: [batch, channels, groups, hw, mode, eps (f32 bits)]
// The mode is also a template constant, so each mode is a specialised pipeline with its
// branches folded away (the params word carries the same value).
const MODE: u32 = {{ spec }}u;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

fn param(i: u32) -> u32 {
    if (i < arrayLength(&params)) {
        return params[i];
    }
    return 0u;
}

fn load_x(j: u32) -> f32 {
    if (j < arrayLength(&x)) {
        return f32(x[j]);
    }
    return 0.0;
}

fn load_cond(j: u32) -> f32 {
    if (j < arrayLength(&cond)) {
        return f32(cond[j]);
    }
    return 0.0;
}

fn load_gamma(j: u32) -> f32 {
    if (j < arrayLength(&gamma)) {
        return f32(gamma[j]);
    }
    return 1.0;
}

fn load_beta(j: u32) -> f32 {
    if (j < arrayLength(&beta)) {
        return f32(beta[j]);
    }
    return 0.0;
}

// Sums partial[0..256) into partial[0]; uniform control flow.
fn reduce(lid: u32) {
    workgroupBarrier();
    for (var s: u32 = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            partial[lid] = partial[lid] + partial[lid + s];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let batch = param(0u);
    let channels = param(1u);
    let groups = max(param(2u), 1u);
    let hw = max(param(3u), 1u);
    let mode = MODE;
    let eps = bitcast<f32>(param(5u));

    let index = wid.y * nwg.x + wid.x;
    // Out-of-range workgroups get no channels instead of returning early.
    var per_group: u32 = channels / groups;
    if (index >= batch * groups) {
        per_group = 0u;
    }
    let count = per_group * hw;
    let bi = index / groups;
    let g = index % groups;
    let c0 = g * per_group;
    let base = (bi * channels + c0) * hw;

    // The loops run channel by channel so the channel index (conditioning, γ, β) is
    // loop-invariant and no invocation divides.

    // pass 1: mean
    var acc: f32 = 0.0;
    for (var cc: u32 = 0u; cc < per_group; cc = cc + 1u) {
        var add: f32 = 0.0;
        if (mode == 1u) {
            add = load_cond(bi * channels + c0 + cc);
        }
        let off = base + cc * hw;
        for (var p: u32 = lid; p < hw; p = p + WG) {
            acc = acc + (load_x(off + p) + add);
        }
    }
    partial[lid] = acc;
    reduce(lid);
    let mean = partial[0] / f32(max(count, 1u));
    workgroupBarrier();

    // pass 2: biased variance of the deviations
    acc = 0.0;
    for (var cc: u32 = 0u; cc < per_group; cc = cc + 1u) {
        var add: f32 = 0.0;
        if (mode == 1u) {
            add = load_cond(bi * channels + c0 + cc);
        }
        let off = base + cc * hw;
        for (var p: u32 = lid; p < hw; p = p + WG) {
            let d = (load_x(off + p) + add) - mean;
            acc = acc + d * d;
        }
    }
    partial[lid] = acc;
    reduce(lid);
    let denom = sqrt(partial[0] / f32(max(count, 1u)) + eps);

    // pass 3: normalise, affine, condition, SiLU
    for (var cc: u32 = 0u; cc < per_group; cc = cc + 1u) {
        let ch = c0 + cc;
        var add: f32 = 0.0;
        var scale1: f32 = 1.0;
        var shift: f32 = 0.0;
        if (mode == 1u) {
            add = load_cond(bi * channels + ch);
        }
        if (mode == 2u) {
            let row = bi * 2u * channels;
            scale1 = load_cond(row + ch) + 1.0;
            shift = load_cond(row + channels + ch);
        }
        let gm = load_gamma(ch);
        let bt = load_beta(ch);
        let off = base + cc * hw;
        for (var p: u32 = lid; p < hw; p = p + WG) {
            var h = ((load_x(off + p) + add) - mean) / denom * gm + bt;
            if (mode == 2u) {
                h = h * scale1 + shift;
            }
            let res = h * (1.0 / (1.0 + exp(-h)));
            let k = off + p;
            if (k < arrayLength(&y)) {
                y[k] = {{ elem }}(res);
            }
        }
    }
}
