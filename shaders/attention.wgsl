{{ enable }}
// Fused attention: out = softmax(q·kᵀ·scale + bias)·v over [b·heads, n, d] queries and
// [b·heads, m, d] keys/values. A workgroup takes 256 query rows of one (batch, head), one row
// per invocation, and walks the keys in tiles of 16 that the workgroup loads once into shared
// memory (so each key is read from global memory once per 256 rows, not once per row). The
// softmax is computed online (running maximum, rescaled sum and accumulator), so the [n, m]
// score matrix never exists in memory: burn's composed ops write it, read it for the softmax
// and read it again for the second product. Scores and sums are f32 whatever the element type.
//
// bias (when params[6] = 1) is indexed with strides for its batch, head and query dimensions;
// a stride of 0 broadcasts. A fully masked row gives zeros instead of NaN. Barriers sit in
// workgroup-uniform control flow only (the key count comes through workgroupUniformLoad);
// invocations past the end take part in the loads and skip the arithmetic. Every index is
// guarded.

@group(0) @binding(0) var<storage, read_write> q: array<{{ elem }}>;
@group(0) @binding(1) var<storage, read_write> k: array<{{ elem }}>;
@group(0) @binding(2) var<storage, read_write> v: array<{{ elem }}>;
@group(0) @binding(3) var<storage, read_write> bias: array<{{ elem }}>;
@group(0) @binding(4) var<storage, read_write> out: array<{{ elem }}>;
@group(0) @binding(5) var<storage, read_write> params: array<u32>;

// params: [b·heads, heads, n, m, d, scale (f32 bits), has_bias, bias stride b, h, n]
const MAX_D: u32 = 128u;
const WG: u32 = 256u;
const TILE: u32 = 16u;

// 16 keys × 128 dims × 2 × 4 bytes = 16 KiB, WebGPU's default workgroup storage limit.
var<workgroup> k_tile: array<f32, 2048>;
var<workgroup> v_tile: array<f32, 2048>;
var<workgroup> key_count: u32;

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
    if (lid == 0u) {
        key_count = param(3);
    }
    let m = workgroupUniformLoad(&key_count);

    let heads = max(param(1), 1u);
    let n = max(param(2), 1u);
    let d = min(param(4), MAX_D);
    let scale = bitcast<f32>(param(5));
    let has_bias = param(6) == 1u;
    let blocks = (n + WG - 1u) / WG;
    let group = wid.y * nwg.x + wid.x;
    let bh = group / blocks;
    let i = (group % blocks) * WG + lid;
    let in_range = bh < param(0) && i < n;
    let row = bh * n + i;
    let bias_row = (bh / heads) * param(7) + (bh % heads) * param(8) + i * param(9);
    let q_base = row * d;
    let kv_base = bh * m * d;

    var acc: array<f32, 128>;
    for (var c = 0u; c < d; c = c + 1u) {
        acc[c] = 0.0;
    }
    var running_max = -3.0e38;
    var sum = 0.0;
    for (var t0 = 0u; t0 < m; t0 = t0 + TILE) {
        // The workgroup loads keys t0..t0+16 of its (batch, head).
        for (var e = lid; e < TILE * d; e = e + WG) {
            let jj = e / d;
            let c = e % d;
            var kx = 0.0;
            var vx = 0.0;
            if (t0 + jj < m) {
                kx = load_k(kv_base + (t0 + jj) * d + c);
                vx = load_v(kv_base + (t0 + jj) * d + c);
            }
            k_tile[jj * MAX_D + c] = kx;
            v_tile[jj * MAX_D + c] = vx;
        }
        workgroupBarrier();
        if (in_range) {
            let in_tile = min(TILE, m - t0);
            for (var jj = 0u; jj < in_tile; jj = jj + 1u) {
                var s = 0.0;
                for (var c = 0u; c < d; c = c + 1u) {
                    s = s + load_q(q_base + c) * k_tile[jj * MAX_D + c];
                }
                s = s * scale;
                if (has_bias) {
                    s = s + load_bias(bias_row + t0 + jj);
                }
                let new_max = max(running_max, s);
                let rescale = exp(running_max - new_max);
                let p = exp(s - new_max);
                sum = sum * rescale + p;
                for (var c = 0u; c < d; c = c + 1u) {
                    acc[c] = acc[c] * rescale + p * v_tile[jj * MAX_D + c];
                }
                running_max = new_max;
            }
        }
        workgroupBarrier();
    }
    if (in_range) {
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
}
