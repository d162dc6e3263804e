{{ enable }}
// Fused attention: out = softmax(q·kᵀ·scale + bias)·v over [b·heads, n, d] queries and
// [b·heads, m, d] keys/values, one invocation per query row. The softmax is computed online
// (running maximum, rescaled sum and accumulator), so the [n, m] score matrix never exists in
// memory: burn's composed ops write it, read it for the softmax and read it again for the
// second product. Scores and sums are f32 whatever the element type.
//
// bias (when params[6] = 1) is indexed with strides for its batch, head and query
// dimensions; a stride of 0 broadcasts. A fully masked row gives zeros instead of NaN.
// No barriers, so out-of-range invocations may return early. Every index is guarded.

@group(0) @binding(0) var<storage, read_write> q: array<{{ elem }}>;
@group(0) @binding(1) var<storage, read_write> k: array<{{ elem }}>;
@group(0) @binding(2) var<storage, read_write> v: array<{{ elem }}>;
@group(0) @binding(3) var<storage, read_write> bias: array<{{ elem }}>;
@group(0) @binding(4) var<storage, read_write> out: array<{{ elem }}>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

// params: [b·heads, heads, n, m, d, scale (f32 bits), has_bias, bias stride b, h, n]
const MAX_D: u32 = 128u;
const WG: u32 = 256u;

fn param(i: u32) -> u32 {
    if (i < arrayLength(&params)) {
        return params[i];
    }
    return 0u;
}

fn load_q(j: u32) -> f32 {
    if (j < arrayLength(&q)) {
        return f32(q[j]);
    }
    return 0.0;
}

fn load_k(j: u32) -> f32 {
    if (j < arrayLength(&k)) {
        return f32(k[j]);
    }
    return 0.0;
}

fn load_v(j: u32) -> f32 {
    if (j < arrayLength(&v)) {
        return f32(v[j]);
    }
    return 0.0;
}

fn load_bias(j: u32) -> f32 {
    if (j < arrayLength(&bias)) {
        return f32(bias[j]);
    }
    return 0.0;
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let rows = param(0) * param(2);
    let row = (wid.y * nwg.x + wid.x) * WG + lid;
    if (row >= rows) {
        return;
    }
    let heads = max(param(1), 1u);
    let n = max(param(2), 1u);
    let m = param(3);
    let d = min(param(4), MAX_D);
    let scale = bitcast<f32>(param(5));
    let has_bias = param(6) == 1u;
    let bh = row / n;
    let i = row % n;
    let bias_row = (bh / heads) * param(7) + (bh % heads) * param(8) + i * param(9);
    let q_base = row * d;
    let kv_base = bh * m * d;

    var acc: array<f32, 128>;
    for (var c = 0u; c < d; c = c + 1u) {
        acc[c] = 0.0;
    }
    var running_max = -3.0e38;
    var sum = 0.0;
    for (var j = 0u; j < m; j = j + 1u) {
        var s = 0.0;
        let key = kv_base + j * d;
        for (var c = 0u; c < d; c = c + 1u) {
            s = s + load_q(q_base + c) * load_k(key + c);
        }
        s = s * scale;
        if (has_bias) {
            s = s + load_bias(bias_row + j);
        }
        let new_max = max(running_max, s);
        let rescale = exp(running_max - new_max);
        let p = exp(s - new_max);
        sum = sum * rescale + p;
        for (var c = 0u; c < d; c = c + 1u) {
            acc[c] = acc[c] * rescale + p * load_v(key + c);
        }
        running_max = new_max;
    }
    var inv = 0.0;
    if (sum > 0.0) {
        inv = 1.0 / sum;
    }
    for (var c = 0u; c < d; c = c + 1u) {
        let o = q_base + c;
        if (o < arrayLength(&out)) {
            out[o] = {{ elem }}(acc[c] * inv);
        }
    }
}
