{{ enable }}
// Preview packing: x̂₀ [b, c, h, w] in [−1, 1] → one u32 per pixel holding RGBA8
// (R in the lowest byte, so the little-endian bytes read R, G, B, A).
//
// Each channel is mapped as diffusers (and src/pipeline/images.rs `to_u8`) do:
// round_half_to_even(clamp(x·0.5 + 0.5, 0, 1)·255). WGSL's round() rounds half to even.
// Single-channel inputs give grey (channel min(k, c−1)); alpha is 255.
// Every index is guarded: the module is created without bounds checks.

@group(0) @binding(0) var<storage, read_write> x: array<{{ elem }}>;
@group(0) @binding(1) var<storage, read_write> packed: array<u32>;
@group(0) @binding(2) var<storage, read_write> params: array<u32>;

// params: [pixels (b·hw), c, hw]
// Dispatch: workgroup (x, y) packs pixels [256x, 256x + 256) of image y.

fn param(i: u32) -> u32 {
    if (i < arrayLength(&params)) {
        return params[i];
    }
    return 0u;
}

fn to_u8(v: f32) -> u32 {
    return u32(round(clamp(v * 0.5 + 0.5, 0.0, 1.0) * 255.0));
}

@compute @workgroup_size(256)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let pixels = param(0u);
    let c = max(param(1u), 1u);
    let hw = max(param(2u), 1u);
    let bi = wid.y;
    let p = gid.x;
    let i = bi * hw + p;
    if (p >= hw || i >= pixels || i >= arrayLength(&packed)) {
        return;
    }
    var word: u32 = 255u << 24u;
    for (var k: u32 = 0u; k < 3u; k = k + 1u) {
        let j = (bi * c + min(k, c - 1u)) * hw + p;
        var v: f32 = 0.0;
        if (j < arrayLength(&x)) {
            v = f32(x[j]);
        }
        word = word | (to_u8(v) << (8u * k));
    }
    packed[i] = word;
}
