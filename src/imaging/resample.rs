//! Image resampling that reproduces PyTorch, Pillow and transformers exactly.
//!
//! * [`resize_bicubic_antialias`]: `F.interpolate(x, size, mode="bicubic",
//!   align_corners=False, antialias=True)` on CPU float32 (torch's separable "aa" kernel).
//! * [`pil_resize_bicubic_rgb8`]: Pillow's `Image.resize(size, Image.BICUBIC)` on RGB
//!   (8-bit fixed-point path).
//! * [`center_crop_rgb8`] and [`shortest_edge_size`]: the geometry of transformers'
//!   `CLIPImageProcessor` (`center_crop`, `get_resize_output_image_size`).
//!
//! Both resamplers are the same PIL-style construction (Keys cubic with a = -0.5, support
//! widened by the scale when downsampling, taps outside the image dropped, weights
//! normalised per output pixel, two separable passes). They differ in the arithmetic and
//! in pass order, which is why each is written out separately:
//!
//! | step                | torch (float32 input)                 | Pillow (uint8 input)          |
//! |---------------------|---------------------------------------|-------------------------------|
//! | scale, center       | f32 (`in as f32 / out as f32`)        | f64                           |
//! | filter, weights     | f32, Keys form `((a·x−5a)·x+8a)·x−4a` | f64, `(((x−5)·x+8)·x−4)·a`    |
//! | accumulation        | f32, in tap order (see below)         | i32, weights · 2^22, rounded  |
//! | between passes      | f32 buffer                            | u8 buffer (clipped)           |
//! | pass order          | width, then height                    | usually width first (below)   |
//!
//! torch's AVX2/AVX-512 builds are compiled by GCC with FMA contraction, so the f32 Keys
//! polynomial is fused, and the tap sum is a mix of vectorised (unfused) and fused steps
//! (`torch_tap_sum`); the `DEFAULT` build fuses nothing. Both are reproduced bit for bit
//! ([`TorchCpuKernel`], checked against the torch 2.15 x86-64 wheel); the default is the
//! kernel torch runs on any x86-64 CPU with AVX2.
//!
//! Errors: zero sizes, buffer-length mismatches and sizes whose products overflow are
//! reported as [`ResampleError`]; nothing here panics on input.

use std::fmt;

/// Why a resampling request was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResampleError {
    /// A dimension that must be positive is zero (`what` names it).
    ZeroSize { what: &'static str },
    /// The input buffer does not hold `channels × height × width` values.
    LengthMismatch { expected: usize, actual: usize },
    /// A size product overflows, or a result would not be representable.
    TooLarge { what: &'static str },
}

impl fmt::Display for ResampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResampleError::ZeroSize { what } => write!(f, "{what} must be non-zero"),
            ResampleError::LengthMismatch { expected, actual } => {
                write!(f, "buffer holds {actual} values, expected {expected}")
            }
            ResampleError::TooLarge { what } => write!(f, "{what} is too large"),
        }
    }
}

impl std::error::Error for ResampleError {}

/// The first of `sides` that is zero, as an error.
fn nonzero(sides: &[(usize, &'static str)]) -> Result<(), ResampleError> {
    match sides.iter().find(|(v, _)| *v == 0) {
        Some(&(_, what)) => Err(ResampleError::ZeroSize { what }),
        None => Ok(()),
    }
}

/// `a × b × c` without overflow.
fn volume(a: usize, b: usize, c: usize, what: &'static str) -> Result<usize, ResampleError> {
    a.checked_mul(b)
        .and_then(|ab| ab.checked_mul(c))
        .ok_or(ResampleError::TooLarge { what })
}

/// Image sides are limited to C `int` range, as in Pillow; this also keeps every tap-table
/// size computation far from overflow.
fn check_dims(dims: &[usize]) -> Result<(), ResampleError> {
    if dims.iter().any(|&d| d > i32::MAX as usize) {
        Err(ResampleError::TooLarge {
            what: "image dimension",
        })
    } else {
        Ok(())
    }
}

/// A buffer of `len` elements of `elem` bytes must fit in `isize::MAX` bytes, or `Vec`
/// would panic instead of reporting an error.
fn check_alloc(len: usize, elem: usize, what: &'static str) -> Result<usize, ResampleError> {
    if len > isize::MAX as usize / elem {
        Err(ResampleError::TooLarge { what })
    } else {
        Ok(len)
    }
}

/// An interleaved RGB8 `w × h` input: both sides nonzero and `src` that long.
fn check_rgb8(src: &[u8], w: usize, h: usize) -> Result<(), ResampleError> {
    nonzero(&[(w, "input width"), (h, "input height")])?;
    check_len(src.len(), volume(w, h, 3, "input size")?)
}

fn check_len(len: usize, expected: usize) -> Result<(), ResampleError> {
    if len == expected {
        Ok(())
    } else {
        Err(ResampleError::LengthMismatch {
            expected,
            actual: len,
        })
    }
}

/// Contributing input range and normalised weights of every output index along one axis.
/// `weights[o * stride .. o * stride + len[o]]` belong to output `o`, starting at input
/// index `start[o]`.
struct Taps<W> {
    start: Vec<usize>,
    len: Vec<usize>,
    stride: usize,
    weights: Vec<W>,
}

impl<W: Copy> Taps<W> {
    fn of(&self, o: usize) -> (usize, &[W]) {
        let base = o * self.stride;
        (self.start[o], &self.weights[base..base + self.len[o]])
    }
}

// ------------------------------------------------------------------------------------
// torch: float32 antialiased bicubic
// ------------------------------------------------------------------------------------

/// Which torch CPU build to reproduce in [`resize_bicubic_antialias_with`]. The two differ
/// only in floating-point contraction (a few e-7 apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TorchCpuKernel {
    /// torch's AVX2 / AVX-512 kernels (any x86-64 CPU with AVX2): GCC fuses multiply-adds.
    #[default]
    Avx,
    /// torch's `DEFAULT` kernel (no AVX2, or `ATEN_CPU_CAPABILITY=default`): every product
    /// and sum rounded separately.
    Default,
}

/// Keys cubic with a = -0.5 in f32, in the operation order of torch's
/// `cubic_convolution1/2`; `fused` applies the multiply-adds GCC contracts.
fn torch_keys_cubic(x: f32, fused: bool) -> f32 {
    const A: f32 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        // ((A + 2)·x − (A + 3))·x·x + 1
        if fused {
            let t = (A + 2.0).mul_add(x, -(A + 3.0)) * x;
            t.mul_add(x, 1.0)
        } else {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        }
    } else if x < 2.0 {
        // ((A·x − 5A)·x + 8A)·x − 4A
        if fused {
            let t = A.mul_add(x, -(5.0 * A));
            let t = t.mul_add(x, 8.0 * A);
            t.mul_add(x, -(4.0 * A))
        } else {
            ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
        }
    } else {
        0.0
    }
}

/// torch's `_compute_indices_min_size_weights_aa` for every output index, with
/// `scalar_t = float`. Mixed f32/f64 expressions follow C++ promotion exactly.
fn torch_aa_taps(in_size: usize, out_size: usize, fused: bool) -> Taps<f32> {
    let scale = in_size as f32 / out_size as f32;
    // Support 2 (interp_size 4 / 2), widened by the scale when downsampling.
    let (support, invscale) = if scale >= 1.0 {
        ((2.0 * scale as f64) as f32, (1.0 / scale as f64) as f32)
    } else {
        (2.0f32, 1.0f32)
    };
    let stride = support.ceil() as usize * 2 + 1;
    let mut taps = Taps {
        start: Vec::with_capacity(out_size),
        len: Vec::with_capacity(out_size),
        stride,
        weights: vec![0.0f32; out_size * stride],
    };
    for o in 0..out_size {
        let center = (scale as f64 * (o as f64 + 0.5)) as f32;
        // `static_cast<int64_t>` truncates toward zero, like Rust's `as`.
        let lo = (((center - support) as f64 + 0.5) as i64).max(0);
        let hi = (((center + support) as f64 + 0.5) as i64).min(in_size as i64);
        let n = (hi - lo).clamp(0, stride as i64) as usize;
        let lo = lo as usize;
        let w = &mut taps.weights[o * stride..o * stride + n];
        let mut total = 0.0f32;
        for (j, wj) in w.iter_mut().enumerate() {
            let x = ((((j + lo) as f32 - center) as f64 + 0.5) * invscale as f64) as f32;
            *wj = torch_keys_cubic(x, fused);
            total += *wj;
        }
        if total != 0.0 {
            for wj in w.iter_mut() {
                *wj /= total;
            }
        }
        taps.start.push(lo);
        taps.len.push(n);
    }
    taps
}

/// Σ value(j)·w[j] in order, with the rounding of torch's compiled
/// `interpolate_aa_single_dim`. In the AVX builds the first product is rounded on its
/// own; of the remaining `n - 1` steps the first `4·⌊(n - 1)/4⌋` are multiply-then-add
/// (GCC vectorises the products four at a time and keeps the additions in order) and the
/// last `(n - 1) mod 4` are fused multiply-adds (the contracted scalar epilogue). Found
/// empirically with impulse-extracted weights (torch 2.15, AVX2 and AVX-512 kernels):
/// neither plain nor fully fused accumulation matches, this split matches bit for bit.
/// The `DEFAULT` build never fuses.
fn torch_tap_sum(value: impl Fn(usize) -> f32, w: &[f32], fused: bool) -> f32 {
    let Some((&w0, rest)) = w.split_first() else {
        return 0.0;
    };
    let mut acc = value(0) * w0;
    let blocked = if fused {
        rest.len() / 4 * 4
    } else {
        rest.len()
    };
    for (j, &wj) in rest.iter().enumerate() {
        let v = value(j + 1);
        acc = if j < blocked {
            acc + v * wj
        } else {
            v.mul_add(wj, acc)
        };
    }
    acc
}

/// One separable pass over a planar f32 image viewed as `outer × axis × inner`:
/// resamples the middle axis (the width pass uses inner = 1).
fn torch_pass(
    src: &[f32],
    outer: usize,
    in_axis: usize,
    inner: usize,
    taps: &Taps<f32>,
    out_axis: usize,
    fused: bool,
) -> Vec<f32> {
    let mut dst = vec![0.0f32; outer * out_axis * inner];
    for b in 0..outer {
        let plane = &src[b * in_axis * inner..(b + 1) * in_axis * inner];
        for o in 0..out_axis {
            let (start, w) = taps.of(o);
            let row = &mut dst[(b * out_axis + o) * inner..(b * out_axis + o + 1) * inner];
            for (i, out) in row.iter_mut().enumerate() {
                *out = torch_tap_sum(|j| plane[(start + j) * inner + i], w, fused);
            }
        }
    }
    dst
}

/// `torch.nn.functional.interpolate(x[None], size=(out_h, out_w), mode="bicubic",
/// align_corners=False, antialias=True)[0]` on CPU for a contiguous float32 tensor `x`
/// of shape `[channels, h, w]`, as computed by torch's AVX2/AVX-512 kernels (every
/// x86-64 CPU with AVX2). Works for up- and downsampling, per axis.
pub fn resize_bicubic_antialias(
    src: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
) -> Result<Vec<f32>, ResampleError> {
    resize_bicubic_antialias_with(src, channels, h, w, out_h, out_w, TorchCpuKernel::Avx)
}

/// [`resize_bicubic_antialias`] reproducing a chosen torch CPU kernel.
pub fn resize_bicubic_antialias_with(
    src: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
    kernel: TorchCpuKernel,
) -> Result<Vec<f32>, ResampleError> {
    nonzero(&[
        (channels, "channels"),
        (h, "input height"),
        (w, "input width"),
        (out_h, "output height"),
        (out_w, "output width"),
    ])?;
    check_len(src.len(), volume(channels, h, w, "input size")?)?;
    check_dims(&[h, w, out_h, out_w])?;
    let out_len = volume(channels, out_h, out_w, "output size")?;
    // The intermediate after the width pass is channels × h × out_w.
    let mid_len = volume(channels, h, out_w, "intermediate size")?;
    if out_len.max(mid_len) > isize::MAX as usize / std::mem::size_of::<f32>() {
        return Err(ResampleError::TooLarge {
            what: "output size",
        });
    }
    let fused = kernel == TorchCpuKernel::Avx;

    // torch resamples the last (contiguous) axis first and skips unchanged axes; when
    // nothing changes it returns a copy.
    let mut cur = src.to_vec();
    if out_w != w {
        let taps = torch_aa_taps(w, out_w, fused);
        cur = torch_pass(&cur, channels * h, w, 1, &taps, out_w, fused);
    }
    if out_h != h {
        let taps = torch_aa_taps(h, out_h, fused);
        cur = torch_pass(&cur, channels, h, out_w, &taps, out_h, fused);
    }
    Ok(cur)
}

// ------------------------------------------------------------------------------------
// Pillow: 8-bit bicubic
// ------------------------------------------------------------------------------------

/// Pillow's fixed-point precision: 32 bits minus 8 for the value and 2 for overshoot.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's `bicubic_filter` (a = -0.5) in f64, in its own operation order.
fn pil_bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = if x < 0.0 { -x } else { x };
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for a full-image box.
fn pil_taps(in_size: usize, out_size: usize) -> Taps<i32> {
    // The box edges are C floats: in1 - in0 is computed in f32, then widened.
    let scale = (in_size as f32) as f64 / out_size as f64;
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = 2.0 * filterscale;
    let stride = support.ceil() as usize * 2 + 1;
    let ss = 1.0 / filterscale;
    let mut taps = Taps {
        start: Vec::with_capacity(out_size),
        len: Vec::with_capacity(out_size),
        stride,
        weights: vec![0i32; out_size * stride],
    };
    let mut k = vec![0.0f64; stride];
    for o in 0..out_size {
        let center = 0.0 + (o as f64 + 0.5) * scale;
        // `(int)` truncates toward zero; Pillow clamps the low end to 0 afterwards.
        let lo = ((center - support + 0.5) as i64).max(0);
        let hi = ((center + support + 0.5) as i64).min(in_size as i64);
        // Pillow never clamps the count to ksize; keep it in range for safety only.
        let n = (hi - lo).clamp(0, stride as i64) as usize;
        let lo = lo as usize;
        let mut total = 0.0f64;
        for (j, kj) in k[..n].iter_mut().enumerate() {
            *kj = pil_bicubic_filter(((j + lo) as f64 - center + 0.5) * ss);
            total += *kj;
        }
        let fixed = &mut taps.weights[o * stride..o * stride + n];
        for (f, &kj) in fixed.iter_mut().zip(&k[..n]) {
            let kj = if total != 0.0 { kj / total } else { kj };
            // Round half away from zero into 2^22 fixed point, as `(int)(±0.5 + v)`.
            let v = kj * (1u32 << PRECISION_BITS) as f64;
            *f = if v < 0.0 {
                (v - 0.5) as i32
            } else {
                (v + 0.5) as i32
            };
        }
        taps.start.push(lo);
        taps.len.push(n);
    }
    taps
}

/// Pillow's `clip8`: drop the fraction bits and saturate to 0..=255.
fn pil_clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Fixed-point dot product of one tap set with the samples `value(0..weights.len())`.
fn pil_dot(weights: &[i32], value: impl Fn(usize) -> u8) -> u8 {
    let mut acc: i32 = 1 << (PRECISION_BITS - 1); // +0.5 for rounding
    for (j, &k) in weights.iter().enumerate() {
        acc = acc.wrapping_add((value(j) as i32).wrapping_mul(k));
    }
    pil_clip8(acc)
}

/// Horizontal 8-bit pass over `rows` interleaved RGB rows of width `in_w`.
fn pil_pass_horizontal(
    src: &[u8],
    rows: usize,
    in_w: usize,
    taps: &Taps<i32>,
    out_w: usize,
) -> Vec<u8> {
    let mut dst = vec![0u8; rows * out_w * 3];
    for r in 0..rows {
        let line = &src[r * in_w * 3..(r + 1) * in_w * 3];
        for x in 0..out_w {
            let (start, k) = taps.of(x);
            for c in 0..3 {
                dst[(r * out_w + x) * 3 + c] = pil_dot(k, |j| line[(start + j) * 3 + c]);
            }
        }
    }
    dst
}

/// Vertical 8-bit pass: output row `y` reads source rows `taps.start[y] - row_offset ..`.
fn pil_pass_vertical(
    src: &[u8],
    width: usize,
    taps: &Taps<i32>,
    row_offset: usize,
    out_h: usize,
) -> Vec<u8> {
    let mut dst = vec![0u8; out_h * width * 3];
    for y in 0..out_h {
        let (start, k) = taps.of(y);
        let start = start - row_offset;
        for x in 0..width {
            for c in 0..3 {
                dst[(y * width + x) * 3 + c] =
                    pil_dot(k, |j| src[((start + j) * width + x) * 3 + c]);
            }
        }
    }
    dst
}

/// Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height
/// loses more than twice as many pixels as the width; otherwise horizontal first.
fn pil_vertical_first(w: usize, h: usize, out_w: usize, out_h: usize) -> bool {
    out_h < h && (h as i128 - out_h as i128) > 2 * (w as i128 - out_w as i128)
}

/// `Image.fromarray(src, "RGB").resize((out_w, out_h), Image.BICUBIC)` (Pillow 13, no
/// `box`, no `reducing_gap`) on an interleaved RGB8 buffer of `w × h` pixels.
///
/// Two separable passes, each rounding and clipping to u8. An unchanged axis is skipped.
/// The pass order matters for the result: horizontal first (reading only the rows the
/// vertical pass will use), except that since Pillow 13 the vertical pass goes first when
/// `out_h < h` and `h - out_h > 2 · (w - out_w)`. Pillow ≤ 12 always went horizontal
/// first, so tall images shrunk mostly in height differ from those versions.
pub fn pil_resize_bicubic_rgb8(
    src: &[u8],
    w: usize,
    h: usize,
    out_w: usize,
    out_h: usize,
) -> Result<Vec<u8>, ResampleError> {
    check_rgb8(src, w, h)?;
    nonzero(&[(out_w, "output width"), (out_h, "output height")])?;
    check_dims(&[w, h, out_w, out_h])?;
    check_alloc(volume(out_w, out_h, 3, "output size")?, 1, "output size")?;
    // Either pass order's intermediate: out_w × h or w × out_h.
    check_alloc(
        volume(out_w, h, 3, "intermediate size")?,
        1,
        "intermediate size",
    )?;
    check_alloc(
        volume(w, out_h, 3, "intermediate size")?,
        1,
        "intermediate size",
    )?;
    if out_w == w && out_h == h {
        return Ok(src.to_vec());
    }

    let need_h = out_w != w;
    let need_v = out_h != h;
    if pil_vertical_first(w, h, out_w, out_h) {
        let vert = pil_taps(h, out_h);
        let tmp = pil_pass_vertical(src, w, &vert, 0, out_h);
        if !need_h {
            return Ok(tmp);
        }
        return Ok(pil_pass_horizontal(
            &tmp,
            out_h,
            w,
            &pil_taps(w, out_w),
            out_w,
        ));
    }

    if !need_v {
        return Ok(pil_pass_horizontal(src, h, w, &pil_taps(w, out_w), out_w));
    }
    let vert = pil_taps(h, out_h);
    // Only the source rows the vertical pass reads (Pillow's ybox_first..ybox_last).
    let first = vert.start[0];
    let last = (vert.start[out_h - 1] + vert.len[out_h - 1]).max(first);
    let tmp = if need_h {
        let rows = &src[first * w * 3..last * w * 3];
        pil_pass_horizontal(rows, last - first, w, &pil_taps(w, out_w), out_w)
    } else {
        src[first * w * 3..last * w * 3].to_vec()
    };
    Ok(pil_pass_vertical(&tmp, out_w, &vert, first, out_h))
}

// ------------------------------------------------------------------------------------
// transformers: CLIPImageProcessor geometry
// ------------------------------------------------------------------------------------

/// transformers `image_transforms.center_crop(image, (crop_h, crop_w))` on an interleaved
/// RGB8 `w × h` image. Cropping starts at `(orig - crop) // 2`; on an axis where the crop
/// is larger than the image, the image is centred in zeros with
/// `ceil((crop - orig) / 2)` zero rows/columns before it (the extra one goes first).
pub fn center_crop_rgb8(
    src: &[u8],
    w: usize,
    h: usize,
    crop_w: usize,
    crop_h: usize,
) -> Result<Vec<u8>, ResampleError> {
    check_rgb8(src, w, h)?;
    nonzero(&[(crop_w, "crop width"), (crop_h, "crop height")])?;
    let out_len = check_alloc(volume(crop_w, crop_h, 3, "crop size")?, 1, "crop size")?;

    // Per axis: (first source index, first destination index, count copied).
    fn axis(orig: usize, crop: usize) -> (usize, usize, usize) {
        if crop <= orig {
            ((orig - crop) / 2, 0, crop)
        } else {
            (0, (crop - orig).div_ceil(2), orig)
        }
    }
    let (sx, dx, nx) = axis(w, crop_w);
    let (sy, dy, ny) = axis(h, crop_h);

    let mut out = vec![0u8; out_len];
    for r in 0..ny {
        let s = ((sy + r) * w + sx) * 3;
        let d = ((dy + r) * crop_w + dx) * 3;
        out[d..d + nx * 3].copy_from_slice(&src[s..s + nx * 3]);
    }
    Ok(out)
}

/// Output `(width, height)` of transformers' `get_resize_output_image_size(image,
/// size=shortest_edge, default_to_square=False)`, as `CLIPImageProcessor.resize` uses it:
/// the short side becomes `shortest_edge`, the long side `int(shortest_edge * long /
/// short)` (true division, then truncation). Square images give a square.
pub fn shortest_edge_size(
    w: usize,
    h: usize,
    shortest_edge: usize,
) -> Result<(usize, usize), ResampleError> {
    nonzero(&[(w, "input width"), (h, "input height"), (shortest_edge, "shortest edge")])?;
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    // Python divides exactly-rounded; below 2^53 the integer floor division agrees with
    // int(float(a) / float(b)), so compute it exactly and refuse larger products.
    let num = (shortest_edge as u128) * (long as u128);
    if num > 1u128 << 53 {
        return Err(ResampleError::TooLarge {
            what: "shortest edge × long side",
        });
    }
    let new_long = (num / short as u128) as usize;
    Ok(if w <= h {
        (shortest_edge, new_long)
    } else {
        (new_long, shortest_edge)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic test image shared with tests/reference/check_math.py
    /// (`test_image_f32`): a smooth wave plus hashed noise, planar [c, h, w].
    fn test_image_f32(c: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
        let mut v = Vec::with_capacity(c * h * w);
        for idx in 0..(c * h * w) as u64 {
            let ch = idx as usize / (h * w);
            let y = (idx as usize / w) % h;
            let x = idx as usize % w;
            let noise = ((idx.wrapping_mul(2_654_435_761) + seed * 97) % (1u64 << 32)) as f64
                / 4_294_967_296.0;
            let smooth = (0.3 * x as f64 + 0.2 * y as f64 + ch as f64).sin() * 0.5;
            v.push((smooth + noise - 0.5) as f32);
        }
        v
    }

    /// Interleaved RGB8 noise shared with check_math.py (`test_image_u8`).
    fn test_image_u8(h: usize, w: usize, seed: u64) -> Vec<u8> {
        (0..(h * w * 3) as u64)
            .map(|idx| (((idx.wrapping_mul(2_654_435_761) + seed * 97) % (1u64 << 32)) >> 24) as u8)
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn aa_weights_are_normalised_and_cover_the_image() {
        for (i, o) in [
            (32usize, 64usize),
            (64, 24),
            (7, 3),
            (3, 7),
            (5, 5),
            (1, 4),
            (4, 1),
        ] {
            let t = torch_aa_taps(i, o, true);
            for k in 0..o {
                let (start, w) = t.of(k);
                assert!(start + w.len() <= i);
                let s: f32 = w.iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "{i}->{o} out {k}: sum {s}");
            }
            let p = pil_taps(i, o);
            for k in 0..o {
                let (start, w) = p.of(k);
                assert!(start + w.len() <= i);
                let s: i64 = w.iter().map(|&x| x as i64).sum();
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= w.len() as i64,
                    "{i}->{o}"
                );
            }
        }
    }

    #[test]
    fn aa_constant_image_stays_constant() {
        let src = vec![0.25f32; 2 * 10 * 13];
        let out = resize_bicubic_antialias(&src, 2, 10, 13, 7, 29).unwrap();
        assert_eq!(out.len(), 2 * 7 * 29);
        assert!(out.iter().all(|&v| (v - 0.25).abs() < 1e-6));
        // Same size is a plain copy, like torch.
        let same = resize_bicubic_antialias(&src, 2, 10, 13, 10, 13).unwrap();
        assert_eq!(bits(&same), bits(&src));
    }

    #[test]
    fn aa_matches_torch_first_values() {
        // F.interpolate(torch.from_numpy(test_image_f32(3, 32, 32, 1))[None], size=(64, 64),
        //   mode="bicubic", align_corners=False, antialias=True).reshape(-1)[:6]
        //   .view(torch.int32)   (torch 2.15.0, CPU)
        let src = test_image_f32(3, 32, 32, 1);
        let up = resize_bicubic_antialias(&src, 3, 32, 32, 64, 64).unwrap();
        assert_eq!(bits(&up[..6]), AA_32_TO_64_FIRST6.to_vec());
        // Same for test_image_f32(3, 64, 64, 3) resized to (24, 24).
        let src = test_image_f32(3, 64, 64, 3);
        let down = resize_bicubic_antialias(&src, 3, 64, 64, 24, 24).unwrap();
        assert_eq!(bits(&down[..6]), AA_64_TO_24_FIRST6.to_vec());
        // test_image_f32(2, 40, 30, 5) resized to (17, 50): mixed down/up, last 4 values.
        let src = test_image_f32(2, 40, 30, 5);
        let mixed = resize_bicubic_antialias(&src, 2, 40, 30, 17, 50).unwrap();
        assert_eq!(
            bits(&mixed[mixed.len() - 4..]),
            AA_40X30_TO_17X50_LAST4.to_vec()
        );
    }

    #[test]
    fn aa_default_kernel_matches_torch_default_capability() {
        // The expressions of aa_matches_torch_first_values, run with
        // ATEN_CPU_CAPABILITY=default (no FMA anywhere).
        let k = TorchCpuKernel::Default;
        let src = test_image_f32(3, 32, 32, 1);
        let up = resize_bicubic_antialias_with(&src, 3, 32, 32, 64, 64, k).unwrap();
        assert_eq!(bits(&up[..6]), DEFAULT_AA_32_TO_64_FIRST6.to_vec());
        let src = test_image_f32(2, 40, 30, 5);
        let mixed = resize_bicubic_antialias_with(&src, 2, 40, 30, 17, 50, k).unwrap();
        assert_eq!(
            bits(&mixed[mixed.len() - 4..]),
            DEFAULT_AA_40X30_TO_17X50_LAST4.to_vec()
        );
    }

    #[test]
    fn tap_sum_blocks_of_four_then_fused() {
        // q·q = 1 + 2^-11 + 2^-24 exactly; rounded on its own it loses the 2^-24, fused
        // into -1 + q·q it keeps it. With 1 + 4 taps the last step is in the unfused block;
        // with 1 + 5 taps it is the fused epilogue.
        let q = 1.0f32 + 2f32.powi(-12);
        let plain = 2f32.powi(-11);
        let fused = 2f32.powi(-11) + 2f32.powi(-24);
        let vals5 = [-1.0f32, 0.0, 0.0, 0.0, q];
        let w5 = [1.0f32, 1.0, 1.0, 1.0, q];
        assert_eq!(torch_tap_sum(|j| vals5[j], &w5, true), plain);
        let vals6 = [-1.0f32, 0.0, 0.0, 0.0, 0.0, q];
        let w6 = [1.0f32, 1.0, 1.0, 1.0, 1.0, q];
        assert_eq!(torch_tap_sum(|j| vals6[j], &w6, true), fused);
        assert_eq!(torch_tap_sum(|j| vals6[j], &w6, false), plain);
        assert_eq!(torch_tap_sum(|_| 1.0, &[], true), 0.0);
    }

    #[test]
    fn aa_rejects_bad_input() {
        let src = vec![0.0f32; 12];
        assert_eq!(
            resize_bicubic_antialias(&src, 3, 2, 2, 0, 4),
            Err(ResampleError::ZeroSize {
                what: "output height"
            })
        );
        assert_eq!(
            resize_bicubic_antialias(&src, 3, 2, 3, 4, 4),
            Err(ResampleError::LengthMismatch {
                expected: 18,
                actual: 12
            })
        );
        assert!(matches!(
            resize_bicubic_antialias(&src, usize::MAX, 2, 2, 4, 4),
            Err(ResampleError::TooLarge { .. })
        ));
        assert!(resize_bicubic_antialias(&[], 0, 1, 1, 1, 1).is_err());
        let one = [0.5f32];
        assert!(matches!(
            resize_bicubic_antialias(&one, 1, 1, 1, i32::MAX as usize, i32::MAX as usize),
            Err(ResampleError::TooLarge { .. })
        ));
    }

    #[test]
    fn pil_matches_pillow_first_values() {
        // np.asarray(Image.fromarray(test_image_u8(37, 53, 1), "RGB")
        //   .resize((160, 224), Image.BICUBIC)).reshape(-1)[:12]   (Pillow 13.0.0)
        let src = test_image_u8(37, 53, 1);
        let up = pil_resize_bicubic_rgb8(&src, 53, 37, 160, 224).unwrap();
        assert_eq!(up.len(), 160 * 224 * 3);
        assert_eq!(&up[..12], &PIL_37X53_FIRST12);
        // Same for test_image_u8(64, 64, 3) resized to (32, 64) (width only).
        let src = test_image_u8(64, 64, 3);
        let half = pil_resize_bicubic_rgb8(&src, 64, 64, 32, 64).unwrap();
        assert_eq!(&half[..12], &PIL_64_TO_32W_FIRST12);
        // test_image_u8(50, 20, 4) resized to (77, 13): height shrinks far more than the
        // width, so Pillow 13 runs the vertical pass first.
        assert!(pil_vertical_first(20, 50, 77, 13));
        let src = test_image_u8(50, 20, 4);
        let tall = pil_resize_bicubic_rgb8(&src, 20, 50, 77, 13).unwrap();
        assert_eq!(&tall[..12], &PIL_VFIRST_FIRST12);
    }

    #[test]
    fn pil_pass_order_rule() {
        // Probed against Pillow 13.0.0 on a 100×100 image: vertical first iff the height
        // shrinks by more than twice the width's shrink (ties stay horizontal first).
        assert!(pil_vertical_first(100, 100, 70, 35));
        assert!(!pil_vertical_first(100, 100, 70, 40));
        assert!(pil_vertical_first(100, 100, 130, 97));
        assert!(!pil_vertical_first(100, 100, 130, 110));
        assert!(!pil_vertical_first(100, 100, 50, 50));
        // CLIP-style shortest-edge resizes of common photos stay horizontal first.
        assert!(!pil_vertical_first(640, 480, 298, 224));
        assert!(!pil_vertical_first(480, 640, 224, 298));
    }

    #[test]
    fn pil_constant_and_identity() {
        let src = vec![200u8; 9 * 5 * 3];
        let out = pil_resize_bicubic_rgb8(&src, 9, 5, 4, 11).unwrap();
        assert!(out.iter().all(|&v| v == 200));
        let img = test_image_u8(5, 9, 7);
        assert_eq!(pil_resize_bicubic_rgb8(&img, 9, 5, 9, 5).unwrap(), img);
    }

    #[test]
    fn pil_overshoot_is_clipped() {
        // A hard black/white edge overshoots with the negative lobes; Pillow saturates.
        let mut src = vec![0u8; 8 * 3]; // 8 × 1 pixels
        for px in src.chunks_mut(3).skip(4) {
            px.fill(255);
        }
        let out = pil_resize_bicubic_rgb8(&src, 8, 1, 29, 1).unwrap();
        assert!(out.contains(&0) && out.contains(&255));
    }

    #[test]
    fn pil_rejects_bad_input() {
        assert_eq!(
            pil_resize_bicubic_rgb8(&[0u8; 11], 2, 2, 4, 4),
            Err(ResampleError::LengthMismatch {
                expected: 12,
                actual: 11
            })
        );
        assert!(pil_resize_bicubic_rgb8(&[], 0, 0, 4, 4).is_err());
        assert!(pil_resize_bicubic_rgb8(&[0u8; 12], 2, 2, 4, 0).is_err());
        assert!(matches!(
            pil_resize_bicubic_rgb8(&[0u8; 12], 2, 2, usize::MAX, 2),
            Err(ResampleError::TooLarge { .. })
        ));
        assert!(matches!(
            pil_resize_bicubic_rgb8(&[0u8; 12], 2, 2, i32::MAX as usize, i32::MAX as usize),
            Err(ResampleError::TooLarge { .. })
        ));
    }

    #[test]
    fn center_crop_matches_transformers() {
        // center_crop(test_image_u8(10, 12, 9), (4, 5)) offsets: top = 3, left = 3.
        let img = test_image_u8(10, 12, 9);
        let c = center_crop_rgb8(&img, 12, 10, 5, 4).unwrap();
        for r in 0..4 {
            for x in 0..5 {
                for ch in 0..3 {
                    assert_eq!(
                        c[(r * 5 + x) * 3 + ch],
                        img[((3 + r) * 12 + 3 + x) * 3 + ch]
                    );
                }
            }
        }
        // Padding: a 3×3 image cropped to 6×6 lands at offset ceil(3/2) = 2 on both axes.
        let small = test_image_u8(3, 3, 9);
        let p = center_crop_rgb8(&small, 3, 3, 6, 6).unwrap();
        for y in 0..6 {
            for x in 0..6 {
                let inside = (2..5).contains(&y) && (2..5).contains(&x);
                let want = if inside {
                    small[((y - 2) * 3 + x - 2) * 3]
                } else {
                    0
                };
                assert_eq!(p[(y * 6 + x) * 3], want, "({x},{y})");
            }
        }
        // Mixed: crop on one axis, pad on the other (5×8 image → 8 tall, 6 wide).
        let m = test_image_u8(5, 8, 9);
        let q = center_crop_rgb8(&m, 8, 5, 6, 8).unwrap();
        assert_eq!(q.len(), 6 * 8 * 3);
        assert_eq!(&q[..6 * 3 * 2], &[0u8; 36][..]); // rows 0-1 are padding (ceil(3/2) = 2)
        assert_eq!(q[2 * 6 * 3], m[3]); // row 2 = source row 0, left offset (8-6)//2 = 1
    }

    #[test]
    fn center_crop_rejects_bad_input() {
        assert!(center_crop_rgb8(&[0u8; 12], 2, 2, 0, 1).is_err());
        assert_eq!(
            center_crop_rgb8(&[0u8; 13], 2, 2, 1, 1),
            Err(ResampleError::LengthMismatch {
                expected: 12,
                actual: 13
            })
        );
        assert!(center_crop_rgb8(&[0u8; 12], 2, 2, usize::MAX, 2).is_err());
        // Fits in usize but not in an allocation: an error, not a capacity panic.
        assert!(matches!(
            center_crop_rgb8(&[0u8; 12], 2, 2, 1 << 31, 1 << 31),
            Err(ResampleError::TooLarge { .. })
        ));
    }

    #[test]
    fn shortest_edge_matches_transformers() {
        // get_resize_output_image_size(np.zeros((h, w, 3)), size=s, default_to_square=False)
        // returns (height, width); here (width, height).
        assert_eq!(shortest_edge_size(640, 480, 224).unwrap(), (298, 224));
        assert_eq!(shortest_edge_size(480, 640, 224).unwrap(), (224, 298));
        assert_eq!(shortest_edge_size(500, 333, 224).unwrap(), (336, 224));
        assert_eq!(shortest_edge_size(333, 500, 224).unwrap(), (224, 336));
        assert_eq!(shortest_edge_size(224, 224, 224).unwrap(), (224, 224));
        assert_eq!(shortest_edge_size(1000, 1, 224).unwrap(), (224000, 224));
        assert_eq!(shortest_edge_size(1001, 999, 7).unwrap(), (7, 7));
        assert_eq!(shortest_edge_size(1000, 300, 224).unwrap(), (746, 224));
        assert!(shortest_edge_size(0, 5, 224).is_err());
        assert!(shortest_edge_size(5, 5, 0).is_err());
        assert!(shortest_edge_size(1, usize::MAX, usize::MAX).is_err());
    }

    const AA_32_TO_64_FIRST6: [u32; 6] = [
        0xbf271a40, 0xbed1c9a9, 0x3dd72365, 0x3e8a6ea0, 0x3d4cfb01, 0x3e2d638c,
    ];
    const AA_64_TO_24_FIRST6: [u32; 6] = [
        0x3e180540, 0x3ee45503, 0x3ee4de24, 0x3e0b5dfe, 0xbe3bfd69, 0xbef2aa52,
    ];
    const AA_40X30_TO_17X50_LAST4: [u32; 4] = [0xbed2f282, 0xbf112480, 0xbf172fa9, 0xbf166136];
    // The same three expressions under ATEN_CPU_CAPABILITY=default.
    const DEFAULT_AA_32_TO_64_FIRST6: [u32; 6] = [
        0xbf271a40, 0xbed1c9a9, 0x3dd72366, 0x3e8a6ea0, 0x3d4cfb01, 0x3e2d638b,
    ];
    const DEFAULT_AA_40X30_TO_17X50_LAST4: [u32; 4] =
        [0xbed2f282, 0xbf112480, 0xbf172faa, 0xbf166135];
    const PIL_37X53_FIRST12: [u8; 12] = [0, 154, 56, 0, 150, 52, 61, 141, 34, 163, 127, 10];
    const PIL_64_TO_32W_FIRST12: [u8; 12] =
        [116, 137, 58, 172, 54, 204, 75, 118, 151, 141, 183, 61];
    const PIL_VFIRST_FIRST12: [u8; 12] = [23, 202, 96, 28, 200, 94, 40, 195, 88, 59, 186, 78];
}
