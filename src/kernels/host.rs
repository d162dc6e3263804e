//! CPU counterparts of the fused kernels, for the flex backend (inference only).
//!
//! Profiling text→image on flex showed attention as the largest cost (38 % on the mid-size
//! fixture): burn's composed attention writes the whole `[b, heads, n, m]` score matrix,
//! reads it back for the softmax (scalar `expf`), and again for the second matmul. Here the
//! scores of a tile of 32 query rows stay in cache between the two products, the
//! exponentials are a vectorisable polynomial, and tiles run in parallel — what PyTorch's
//! fused CPU attention does for diffusers. GroupNorm + conditioning + SiLU is fused the same
//! way (one read, one write of the activation instead of five passes), and 3×3 convolutions
//! skip burn's NHWC + im2col copies.
//!
//! Used only on a plain flex device with f32 tensors; autodiff (training) and other backends
//! keep the burn-ops references, which the tests compare these against.

use std::borrow::Cow;

use burn::backend::DispatchDevice;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use super::AttentionLayout;
use super::group_norm::TimeCond;
use crate::tensor::{tensor_from, to_vec};

/// A plain (non-autodiff) flex device: the only place the host loops can run (they read and
/// write host memory and record no gradients).
pub fn is_plain_flex(device: &Device) -> bool {
    matches!(device.as_dispatch(), DispatchDevice::Flex(_))
}

/// Below this the exponential is returned as exactly 0 (e^−80 ≈ 1.8e-35, far under f32's
/// resolution of a softmax row): a masked key's weight would otherwise sit near f32's smallest
/// normal, and its products with V are subnormal, which x86 computes about a hundred times
/// slower (masked attention ran 4–6× slower than unmasked).
const EXP_CUTOFF: f32 = -80.0;

/// a·b + c, fused where `FUSED` (the multiversioned paths, on CPUs with FMA), else as two
/// roundings (the baseline path, where a fused multiply-add would be a library call).
#[inline(always)]
fn mul_add<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

/// e^x for x ≤ 0 (as after subtracting a row maximum; −∞, NaN and anything below
/// [`EXP_CUTOFF`] give 0): range reduction to r ∈ [−ln2/2, ln2/2] and a degree-6 Taylor
/// polynomial, relative error ≈ 2e-7. Written without calls or branches (the cut-off is a
/// select) so the loops over it vectorise.
#[inline(always)]
fn exp_nonpositive<const FUSED: bool>(x: f32) -> f32 {
    let fma = mul_add::<FUSED>;
    let keep = x >= EXP_CUTOFF;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // The clamp keeps 2^n normal for the bit trick below; `keep` zeroes what it cut off.
    let x = x.max(EXP_CUTOFF).min(0.0);
    // Round to nearest by adding 1.5·2^23: n then sits in the low mantissa bits of `t`, so
    // 2^n is built with integer ops on the bits (a float → int cast would not vectorise).
    const MAGIC: f32 = 12_582_912.0;
    let t = fma(x, LOG2E, MAGIC);
    let n = t - MAGIC;
    let r = fma(-n, LN2_LO, fma(-n, LN2_HI, x));
    // Horner, highest power first: 1/720, then 1/120 … 1.
    let p = [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0].iter().fold(1.0 / 720.0, |acc, &c| fma(acc, r, c));
    let n_int = t.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let y = p * f32::from_bits(((n_int + 127) << 23) as u32);
    if keep { y } else { 0.0 }
}

/// σ(x) through [`exp_nonpositive`] on −|x|, so it never overflows.
#[inline(always)]
fn sigmoid<const FUSED: bool>(x: f32) -> f32 {
    let e = exp_nonpositive::<FUSED>(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 { s } else { 1.0 - s }
}

/// Runs `body` compiled for AVX-512 or AVX2, with FMA, where the CPU has them (the crate
/// itself targets baseline x86-64), else as is. `body` sees a const `FUSED`, true on the FMA
/// paths. Lane counts and the order of every sum are fixed by the code, not by the vector
/// width, so the two FMA paths give the same bits.
macro_rules! multiversion {
    ($body:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn fast512<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn fast<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
                #[allow(dead_code)] // bodies without a multiply-add ignore it
                const FUSED: bool = true;
                // SAFETY: the features were just detected on this CPU.
                unsafe { fast512(|| $body) }
            } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                #[allow(dead_code)] // bodies without a multiply-add ignore it
                const FUSED: bool = true;
                // SAFETY: as above.
                unsafe { fast(|| $body) }
            } else {
                #[allow(dead_code)] // bodies without a multiply-add ignore it
                const FUSED: bool = false;
                $body
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            #[allow(dead_code)]
            const FUSED: bool = false;
            $body
        }
    }};
}

/// Independent partial sums per reduction: one AVX-512 vector, two AVX2 ones.
const LANES: usize = 16;

/// Σ f(x) with [`LANES`] independent partial sums, so the loop vectorises (a single running
/// sum is a serial dependency the compiler may not reorder).
#[inline(always)]
fn lane_sum_by(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn lane_sum(x: &[f32]) -> f32 {
    lane_sum_by(x, |v| v)
}

/// max x, vectorised like [`lane_sum`].
#[inline(always)]
fn lane_max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    // A plain comparison (one vector max; `f32::max`'s NaN rule costs a compare and a blend
    // per vector): a NaN never wins it, as `f32::max` would also ignore it.
    let larger = |a: f32, v: f32| if v > a { v } else { a };
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, larger);
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = larger(*a, v);
        }
    }
    acc.iter().copied().fold(tail, larger)
}

/// softmax(q·kᵀ/√d + bias)·v over `[b, heads, n, d]` × `[b, heads, m, d]`, `bias`
/// broadcasting to `[b, heads, n, m]`; `None` where this path does not apply.
pub fn attention(q: &Tensor<4>, k: &Tensor<4>, v: &Tensor<4>, bias: Option<&Tensor<4>>) -> Option<Tensor<4>> {
    let device = q.device();
    if !is_plain_flex(&device) || [Some(q), Some(k), Some(v), bias].into_iter().flatten().any(|t| t.dtype() != DType::F32) {
        return None;
    }
    let AttentionLayout { heads: h, n, m, d, bias_strides, .. } = AttentionLayout::of(q, k, v, bias)?;
    if d == 0 || m == 0 || n == 0 {
        return None;
    }
    let bias = bias.zip(bias_strides).map(|(t, strides)| (to_vec(t.clone()), strides));
    let scale = (d as f32).powf(-0.5);
    let held = [host_tensor(q), host_tensor(k), host_tensor(v)];
    let (qv, kv, vv) = (values(q, &held[0]), values(k, &held[1]), values(v, &held[2]));
    let mut out = vec![0f32; qv.len()];
    // One (batch, head) slab per outer task, tiles of query rows inside: each tile's scores
    // ([TILE, m]: 0.5 MB at 1024 keys) stay in cache between the two products. Each tile
    // packs K and V again, so taller tiles pay where heads are narrow: 128 rows against 32,
    // `bench kernels`, two runs: mid fixture (8 wide) 5.1–5.3 vs 5.8–6.6 ms, Karlo's decoder
    // (64 wide) 20.7–21.4 vs 23.0–25.5 ms.
    const TILE: usize = 128;
    out.par_chunks_mut(n * d).enumerate().for_each(|(bh_index, slab_out)| {
        let (bi, hi) = (bh_index / h, bh_index % h);
        let keys = &kv[bh_index * m * d..(bh_index + 1) * m * d];
        let values = &vv[bh_index * m * d..(bh_index + 1) * m * d];
        let queries = &qv[bh_index * n * d..(bh_index + 1) * n * d];
        slab_out.par_chunks_mut(TILE * d).enumerate().for_each(|(tile, o)| {
            let rows = o.len() / d;
            let first = tile * TILE;
            let mut scores = vec![0f32; rows * m];
            // scores = scale · Q_tile · Kᵀ (K is [m, d] row-major, read transposed by strides).
            // SAFETY: every pointer/stride pair addresses inside its slice: Q_tile rows·d,
            // K m·d, scores rows·m.
            unsafe {
                gemm::gemm(
                    rows, m, d,
                    scores.as_mut_ptr(), 1, m as isize, false,
                    queries[first * d..].as_ptr(), 1, d as isize,
                    keys.as_ptr(), d as isize, 1,
                    0.0, scale, false, false, false, gemm::Parallelism::None,
                );
            }
            let mut norms = [0f32; TILE];
            for (r, (row, norm)) in scores.chunks_exact_mut(m).zip(norms.iter_mut()).enumerate() {
                if let Some((data, [sb, sh, sn])) = &bias {
                    let start = bi * sb + hi * sh + (first + r) * sn;
                    for (s, b) in row.iter_mut().zip(&data[start..start + m]) {
                        *s += b;
                    }
                }
                *norm = multiversion!(softmax_unnormalised::<FUSED>(row));
            }
            // out = P · V.
            super::product::product_into(o, &scores, values, [rows, m, d]);
            for (line, &norm) in o.chunks_exact_mut(d).zip(&norms) {
                for x in line {
                    *x *= norm;
                }
            }
        });
    });
    Some(tensor_from(out, q.dims(), &device))
}

/// The unnormalised softmax of a row in place — e^(s − max), with the polynomial
/// exponential — returning 1 / Σ. The exponentials are summed in the pass that writes them,
/// and the caller scales the d-wide product P·V by it instead of the m-wide row.
#[inline(always)]
fn softmax_unnormalised<const FUSED: bool>(row: &mut [f32]) -> f32 {
    let max = lane_max(row);
    let max = if max.is_finite() { max } else { 0.0 };
    let mut acc = [0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (a, s) in acc.iter_mut().zip(c.iter_mut()) {
            *s = exp_nonpositive::<FUSED>(*s - max);
            *a += *s;
        }
    }
    let mut tail = 0f32;
    for s in chunks.into_remainder() {
        *s = exp_nonpositive::<FUSED>(*s - max);
        tail += *s;
    }
    1.0 / (acc.iter().sum::<f32>() + tail)
}

/// silu(GN(x) ⊙ cond) in one pass per (batch, group), as `shaders/group_norm_silu.wgsl`
/// computes it; `None` where this path does not apply.
pub fn group_norm_silu(norm: &GroupNorm, x: &Tensor<4>, cond: &TimeCond) -> Option<Tensor<4>> {
    let device = x.device();
    let (gamma, beta) = (norm.gamma.as_ref()?, norm.beta.as_ref()?);
    let [b, c, hgt, wid] = x.dims();
    let groups = norm.num_groups;
    if !is_plain_flex(&device) || x.dtype() != DType::F32 || !norm.affine || c != norm.num_channels || groups == 0 || c % groups != 0 {
        return None;
    }
    let (add, scale_shift) = match cond {
        TimeCond::None => (None, None),
        TimeCond::Add(t) if t.dims() == [b, c, 1, 1] => (Some(to_vec(t.clone())), None),
        TimeCond::ScaleShift(t) if t.dims() == [b, 2 * c, 1, 1] => (None, Some(to_vec(t.clone()))),
        _ => return None,
    };
    let (gamma, beta) = (to_vec(gamma.val()), to_vec(beta.val()));
    let xt = host_tensor(x);
    let xv = values(x, &xt);
    let (hw, per_group) = (hgt * wid, c / groups);
    let eps = norm.epsilon as f64;
    let mut out = vec![0f32; xv.len()];
    out.par_chunks_mut(per_group * hw).enumerate().for_each(|(bg, dst)| {
        let (bi, g) = (bg / groups, bg % groups);
        let src = &xv[bg * per_group * hw..(bg + 1) * per_group * hw];
        let channel = |j: usize| g * per_group + j;
        let added = |j: usize| add.as_ref().map_or(0.0, |a| a[bi * c + channel(j)]);
        let count = (per_group * hw) as f64;
        // Two passes (mean, then squared deviations), each plane's partial sums in f64.
        let mean = src.chunks_exact(hw).enumerate().map(|(j, p)| multiversion!(lane_sum(p)) as f64 + added(j) as f64 * hw as f64).sum::<f64>() / count;
        let var = src
            .chunks_exact(hw)
            .enumerate()
            .map(|(j, p)| {
                let centre = (mean - added(j) as f64) as f32;
                multiversion!(lane_sum_by(p, |x| (x - centre) * (x - centre))) as f64
            })
            .sum::<f64>()
            / count;
        let inv = 1.0 / (var + eps).sqrt();
        for (j, (plane, o)) in src.chunks_exact(hw).zip(dst.chunks_exact_mut(hw)).enumerate() {
            let ch = channel(j);
            // act(((x + a) − mean)·inv·γ + β), then scale/shift, folded into x·mul + off.
            let mut mul = inv as f32 * gamma[ch];
            let mut off = beta[ch] - ((mean as f32) - added(j)) * mul;
            if let Some(ss) = &scale_shift {
                let (s, t) = (ss[bi * 2 * c + ch], ss[bi * 2 * c + c + ch]);
                mul *= 1.0 + s;
                off = off * (1.0 + s) + t;
            }
            multiversion!(for (y, &x) in o.iter_mut().zip(plane) {
                let z = x * mul + off;
                *y = z * sigmoid::<FUSED>(z);
            });
        }
    });
    Some(tensor_from(out, [b, c, hgt, wid], &device))
}

/// A 3×3, stride-1, padding-1 convolution (every resnet conv of the UNets) on the NCHW
/// input, direct or by Winograd's F(2×2, 3×3) ([`super::conv3x3`]). `None` where this path
/// does not apply.
pub fn conv3x3(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let device = x.device();
    let weight = conv.weight.val();
    let [co, ci, kh, kw] = weight.dims();
    let [b, c, h, w] = x.dims();
    let padded_one = matches!(conv.padding, PaddingConfig2d::Explicit(1, 1, 1, 1) | PaddingConfig2d::Same);
    if !is_plain_flex(&device)
        || x.dtype() != DType::F32
        || weight.dtype() != DType::F32
        || [kh, kw] != [3, 3]
        || conv.stride != [1, 1]
        || conv.dilation != [1, 1]
        || conv.groups != 1
        || !padded_one
        || c != ci
        || h == 0
        || w == 0
    {
        return None;
    }
    let bias = conv.bias.as_ref().map(|p| to_vec(p.val()));
    let (wt, xt) = (host_tensor(&weight), host_tensor(x));
    let out = super::conv3x3::conv3x3(&values(x, &xt), &values(&weight, &wt), bias.as_deref(), [b, c, h, w], co);
    Some(tensor_from(out, [b, co, h, w], &device))
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7 in exact arithmetic; 4.1e-7
/// measured in f32 with the polynomial exponential): no calls, so loops over it vectorise
/// (libm's `erff` is a call per value).
#[inline(always)]
fn erf<const FUSED: bool>(x: f32) -> f32 {
    let fma = mul_add::<FUSED>;
    let a = x.abs();
    let t = 1.0 / fma(0.327_591_1, a, 1.0);
    let poly = [-1.453_152, 1.421_413_8, -0.284_496_74, 0.254_829_6].iter().fold(1.061_405_4, |acc, &c| fma(acc, t, c)) * t;
    let y = 1.0 - poly * exp_nonpositive::<FUSED>(-(a * a));
    y.copysign(x)
}

/// Exact (erf) GELU, x·½(1 + erf(x/√2)), in one pass: burn's form is five operations, each a
/// pass and a buffer, around libm's scalar `erff` (3 % of the shipped model's samples).
pub fn gelu_erf<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    let device = x.device();
    if !is_plain_flex(&device) || x.dtype() != DType::F32 {
        return None;
    }
    let held = host_tensor(x);
    let src = values(x, &held);
    let mut out = vec![0f32; src.len()];
    out.par_chunks_mut(1 << 14).zip(src.par_chunks(1 << 14)).for_each(|(dst, part)| {
        multiversion!(for (y, &v) in dst.iter_mut().zip(part) {
            *y = 0.5 * v * (1.0 + erf::<FUSED>(v * std::f32::consts::FRAC_1_SQRT_2));
        })
    });
    Some(tensor_from(out, x.dims(), &device))
}

/// Nearest-neighbour ×2 (the up-sampling resnets), one pass per plane: burn's expand and
/// reshape went through its generic strided iterator, about 4 % of the shipped model's time.
pub fn upsample_nearest2x(x: &Tensor<4>) -> Option<Tensor<4>> {
    let device = x.device();
    let [b, c, h, w] = x.dims();
    if !is_plain_flex(&device) || x.dtype() != DType::F32 || h == 0 || w == 0 {
        return None;
    }
    let held = host_tensor(x);
    let src = values(x, &held);
    let mut out = vec![0f32; b * c * 4 * h * w];
    out.par_chunks_mut(4 * h * w).zip(src.par_chunks(h * w)).for_each(|(dst, plane)| {
        for (rows, line) in dst.chunks_exact_mut(4 * w).zip(plane.chunks_exact(w)) {
            let (top, bottom) = rows.split_at_mut(2 * w);
            for (pair, &v) in top.chunks_exact_mut(2).zip(line) {
                pair.fill(v);
            }
            bottom.copy_from_slice(top);
        }
    });
    Some(tensor_from(out, [b, c, 2 * h, 2 * w], &device))
}

/// 2×2 average pooling with stride 2, odd trailing rows and columns dropped; the sums in
/// the order the burn-op form adds them ((a + b) + (c + d), then × ¼), so both give the
/// same bits.
pub fn avg_pool2x(x: &Tensor<4>) -> Option<Tensor<4>> {
    let device = x.device();
    let [b, c, h, w] = x.dims();
    let (h2, w2) = (h / 2, w / 2);
    if !is_plain_flex(&device) || x.dtype() != DType::F32 || h2 == 0 || w2 == 0 {
        return None;
    }
    let held = host_tensor(x);
    let src = values(x, &held);
    let mut out = vec![0f32; b * c * h2 * w2];
    out.par_chunks_mut(h2 * w2).zip(src.par_chunks(h * w)).for_each(|(dst, plane)| {
        for (y, line) in dst.chunks_exact_mut(w2).enumerate() {
            let (r0, r1) = (&plane[2 * y * w..2 * y * w + w], &plane[(2 * y + 1) * w..(2 * y + 2) * w]);
            for (xx, d) in line.iter_mut().enumerate() {
                *d = ((r0[2 * xx] + r0[2 * xx + 1]) + (r1[2 * xx] + r1[2 * xx + 1])) * 0.25;
            }
        }
    });
    Some(tensor_from(out, [b, c, h2, w2], &device))
}

/// The flex tensor behind `x`, to read its values in place. Reading a tensor out through
/// burn copies it whenever it is shared — a layer's weight always is — into a new buffer,
/// and again to align that: at Karlo's size a 2560 → 1280-channel conv copied 118 MB of
/// weights per call, and the fresh pages' zeroing and faults were a fifth of the decoder's time.
fn host_tensor<const D: usize>(x: &Tensor<D>) -> Option<burn::backend::flex::FlexTensor> {
    x.clone().try_into_primitive::<burn::backend::Flex>().ok()
}

/// `x`'s f32 values: borrowed from `held` where they are contiguous there, else read out (a
/// copy).
fn values<'a, const D: usize>(x: &Tensor<D>, held: &'a Option<burn::backend::flex::FlexTensor>) -> Cow<'a, [f32]> {
    match held.as_ref().and_then(|t| t.as_slice::<f32>()) {
        Some(v) => Cow::Borrowed(v),
        None => Cow::Owned(to_vec(x.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::{erf, exp_nonpositive};

    #[test]
    fn the_polynomial_exp_matches_libm_over_the_softmax_range_fused_or_not() {
        fn check(exp: fn(f32) -> f32) {
            let mut worst = 0f32;
            for i in 0..=80_000 {
                let x = -(i as f32) / 1000.0;
                let rel = (exp(x) - x.exp()).abs() / x.exp();
                worst = worst.max(rel);
            }
            assert!(worst < 1e-6, "relative error {worst}");
            // Masked keys (−∞, or diffusers' −10 000 bias) and NaN weigh exactly nothing.
            for x in [f32::NEG_INFINITY, -10_000.0, -80.5, f32::NAN] {
                assert_eq!(exp(x), 0.0, "e^{x}");
            }
        }
        check(exp_nonpositive::<true>);
        check(exp_nonpositive::<false>);
    }

    #[test]
    fn a_masked_key_gets_exactly_zero_weight_never_a_subnormal_one() {
        let mut row = vec![0.5, -1.0, -10_000.0, f32::NEG_INFINITY, 0.25, -90.0, f32::NAN];
        let norm = super::softmax_unnormalised::<false>(&mut row);
        row.iter_mut().for_each(|p| *p *= norm);
        assert!(row.iter().all(|p| *p == 0.0 || p.is_normal()), "{row:?}");
        assert_eq!(&row[2..4], &[0.0, 0.0]);
        assert_eq!(row[5], 0.0);
        assert_eq!(row[6], 0.0, "a NaN score weighs nothing");
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "sum {sum}");
    }

    /// erf in f64 from its Maclaurin series (beyond |x| = 4 it is ±1 to within 1.6e-8).
    fn erf_series(x: f64) -> f64 {
        if x.abs() > 4.0 {
            return x.signum();
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn the_polynomial_erf_matches_the_series_everywhere_fused_or_not() {
        for erf in [erf::<true>, erf::<false>] {
            let mut worst = 0f64;
            for i in -12_000..=12_000 {
                let x = i as f32 / 1000.0;
                worst = worst.max((erf(x) as f64 - erf_series(x as f64)).abs());
            }
            // The formula's own 1.5e-7 plus the f32 exponential's and the arithmetic's rounding
            // (measured 4.1e-7); a wrong coefficient is off by 1e-3 or more.
            assert!(worst < 5e-7, "absolute error {worst}");
            assert_eq!(erf(f32::INFINITY), 1.0);
            assert_eq!(erf(f32::NEG_INFINITY), -1.0);
            assert!(erf(f32::NAN).is_nan());
        }
    }
}
