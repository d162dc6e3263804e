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
    let mode = param(4u);
    let eps = bitcast<f32>(param(5u));

    let index = wid.y * nwg.x + wid.x;
    let per_group = channels / groups;
    // Out-of-range workgroups get an empty range instead of returning early.
    var count: u32 = per_group * hw;
    if (index >= batch * groups) {
        count = 0u;
    }
    let bi = index / groups;
    let g = index % groups;
    let c0 = g * per_group;
    let base = (bi * channels + c0) * hw;

    // pass 1: mean
    var acc: f32 = 0.0;
    for (var j: u32 = lid; j < count; j = j + WG) {
        var v = load_x(base + j);
        if (mode == 1u) {
            v = v + load_cond(bi * channels + c0 + j / hw);
        }
        acc = acc + v;
    }
    partial[lid] = acc;
    reduce(lid);
    let mean = partial[0] / f32(max(count, 1u));
    workgroupBarrier();

    // pass 2: biased variance of the deviations
    acc = 0.0;
    for (var j: u32 = lid; j < count; j = j + WG) {
        var v = load_x(base + j);
        if (mode == 1u) {
            v = v + load_cond(bi * channels + c0 + j / hw);
        }
        let d = v - mean;
        acc = acc + d * d;
    }
    partial[lid] = acc;
    reduce(lid);
    let denom = sqrt(partial[0] / f32(max(count, 1u)) + eps);

    // pass 3: normalise, affine, condition, SiLU
    for (var j: u32 = lid; j < count; j = j + WG) {
        let ch = c0 + j / hw;
        var v = load_x(base + j);
        if (mode == 1u) {
            v = v + load_cond(bi * channels + ch);
        }
        var h = (v - mean) / denom * load_gamma(ch) + load_beta(ch);
        if (mode == 2u) {
            let row = bi * 2u * channels;
            h = h * (load_cond(row + ch) + 1.0) + load_cond(row + channels + ch);
        }
        let res = h * (1.0 / (1.0 + exp(-h)));
        let k = base + j;
        if (k < arrayLength(&y)) {
            y[k] = {{ elem }}(res);
        }
    }
}
