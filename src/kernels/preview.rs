//! Preview packing (`shaders/preview_pack.wgsl`): x̂₀ `[b, c, h, w]` in [-1, 1] → one u32 per
//! pixel holding RGBA8 (R in the low byte), so a preview reads back 4 bytes per pixel instead
//! of the 12 of three f32 channels.
//!
//! Reference: the host conversion of `pipeline::images` (`to_pictures` / `to_preview`): read
//! the floats back, then diffusers' `round_half_to_even(clamp(x·0.5+0.5, 0, 1)·255)` per value.

use burn::backend::Dispatch;
use burn::backend::fusion::custom::TensorSpec;
use burn::prelude::*;
use burn::tensor::{DType, Shape};
use burn_cubecl::cubecl::CubeCount;
use burn_cubecl::tensor::CubeTensor;

use super::{Kernels, WgslKernels, Wgsl, contiguous, empty_like, kernel_dtype, launch_wgsl};
use crate::tensor::to_vec;
use crate::tensor::{Picture, strip, to_preview as to_preview_reference};

const SOURCE: &str = include_str!("../../shaders/preview_pack.wgsl");

/// The live preview of a batch (pictures side by side): packed on the device and read back as
/// u32 on wgpu, the host conversion elsewhere. Equal pixels either way.
pub fn to_preview(kernels: Kernels, x: Tensor<4>) -> Picture {
    if kernels.is_wgsl() && supported(&x) {
        strip(&unpack(&read_packed(pack_kernel(x.clone())), x.dims()))
    } else {
        to_preview_reference(x)
    }
}

/// Packed RGBA8 of every pixel, `[b, h, w]` (dispatching like [`to_preview`]).
pub fn pack(kernels: Kernels, x: Tensor<4>) -> Vec<u32> {
    if kernels.is_wgsl() && supported(&x) { read_packed(pack_kernel(x)) } else { pack_reference(x) }
}

fn supported(x: &Tensor<4>) -> bool {
    let n = x.shape().num_elements();
    kernel_dtype(x.dtype()) && n > 0 && n < u32::MAX as usize / 2 && x.dims()[0] <= 65_535
}

/// The kernel: a `[b, h, w]` u32 tensor on `x`'s (wgpu) device.
pub fn pack_kernel(x: Tensor<4>) -> Tensor<3, Int> {
    assert!(super::is_wgpu(&x.device()), "the packing kernel needs a wgpu device");
    assert!(supported(&x), "the packing kernel needs a non-empty f32/f16 tensor");
    Tensor::from_dispatch(<Dispatch as WgslKernels>::preview_pack(x.into_dispatch()))
}

/// Reads a packed tensor back.
pub fn read_packed(packed: Tensor<3, Int>) -> Vec<u32> {
    let data = packed.into_data();
    match data.try_to_vec::<u32>() {
        Ok(v) => v,
        Err(_) => data.convert::<u32>().try_to_vec::<u32>().unwrap_or_default(),
    }
}

/// The host reference: read the floats back and convert as `images::to_pictures` does.
pub fn pack_reference(x: Tensor<4>) -> Vec<u32> {
    let [b, c, h, w] = x.dims();
    let v = to_vec(x);
    let hw = h * w;
    let mut out = Vec::with_capacity(b * hw);
    for i in 0..b {
        for p in 0..hw {
            let mut word = 255u32 << 24;
            for k in 0..3 {
                word |= (to_u8(v[(i * c + k.min(c - 1)) * hw + p]) as u32) << (8 * k);
            }
            out.push(word);
        }
    }
    out
}

/// [-1, 1] → 0..=255 as `pipeline::images` (and diffusers) do.
fn to_u8(v: f32) -> u8 {
    ((v * 0.5 + 0.5).clamp(0.0, 1.0) * 255.0).round_ties_even() as u8
}

/// Packed words → one RGB picture per batch item.
pub fn unpack(packed: &[u32], [b, _, h, w]: [usize; 4]) -> Vec<Picture> {
    (0..b)
        .map(|i| {
            let words = packed.get(i * h * w..(i + 1) * h * w).unwrap_or(&[]);
            let rgb = words.iter().flat_map(|p| [*p as u8, (*p >> 8) as u8, (*p >> 16) as u8]).collect();
            Picture { width: w, height: h, rgb }
        })
        .collect()
}

/// Output metadata for the lazy (fusion) path.
pub(crate) fn packed_spec(x: &TensorSpec) -> TensorSpec {
    let s = &x.shape;
    TensorSpec::new(Shape::new([s[0], s[2], s[3]]), DType::U32)
}

/// The `CubeBackend` side: one thread per pixel.
pub(crate) fn launch(x: CubeTensor) -> CubeTensor {
    let x = contiguous(x);
    let dims: Vec<usize> = x.meta.shape().iter().copied().collect();
    let (b, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
    let out = empty_like(&x, Shape::new([b, h, w]), DType::U32);
    let pixels = b * h * w;
    let kernel = Wgsl { name: "preview_pack", source: SOURCE, dtype: x.dtype, spec: 0 };
    // Workgroup (x, y): pixels [256x, 256x + 256) of image y.
    let count = CubeCount::Static((h * w).div_ceil(super::WORKGROUP as usize) as u32, b as u32, 1);
    launch_wgsl(kernel, count, &[&x, &out], &[pixels as u32, c as u32, (h * w) as u32]);
    out
}
