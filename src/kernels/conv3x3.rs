//! 3×3, stride-1, padding-1 convolutions on the host (every resnet conv of the UNets), in
//! one of three forms chosen by width:
//!
//! - **direct**: nine shifted matrix products on the zero-padded NCHW input, so there is no
//!   im2col buffer and no NHWC round trip: the output is computed on the padded width
//!   (W + 2 columns per row, the last two discarded), which makes each tap's input a plain
//!   strided view;
//! - **unfolded**: the same nine views copied into one band for a single product, for the
//!   input convs, whose few channels make the nine products too short;
//! - **Winograd's F(2×2, 3×3)**: each 2×2 block of outputs needs a 4×4 patch of input; in
//!   the transformed domain the convolution becomes 16 independent channel-mixing products,
//!   one per position of the 4×4 transform — 16 multiply-adds per 2×2 outputs and channel
//!   pair instead of 36, so 2.25× less arithmetic. The transforms only use ±1 and ½, exact in
//!   binary, so they add only the rounding of a few additions per value (the larger
//!   F(4×4, 3×3) needs ¼, ⅙ and 1/24 and loses more in f32). They write four times the input,
//!   which only pays where the products are long: wide layers.

use rayon::prelude::*;

/// Transformed-domain positions per tile (4 × 4).
const TAPS: usize = 16;

/// Floats of transformed input per task's band (16 × channels × tiles, 2 MB): on the
/// [2, 192, 64, 64] case, 2¹⁸ / 2¹⁹ / 2²¹ gave 19.4 / 17.3 / 21.0 ms — big enough for long
/// products, small enough to stay near the cache.
const BAND_FLOATS: usize = 1 << 19;

/// U = G g Gᵀ for every filter, laid out [o][tap][i] so that each tap's matrix is a strided
/// [co, ci] view and the filters transform in parallel.
fn transform_filters(w: &[f32], co: usize, ci: usize) -> Vec<f32> {
    let mut u = vec![0f32; co * TAPS * ci];
    // G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], applied to a length-3 vector.
    let g = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    u.par_chunks_mut(TAPS * ci).enumerate().for_each(|(o, filt)| {
        for i in 0..ci {
            let k = &w[(o * ci + i) * 9..(o * ci + i) * 9 + 9];
            let cols = [g(k[0], k[3], k[6]), g(k[1], k[4], k[7]), g(k[2], k[5], k[8])];
            for r in 0..4 {
                let row = g(cols[0][r], cols[1][r], cols[2][r]);
                for (c, v) in row.into_iter().enumerate() {
                    filt[(r * 4 + c) * ci + i] = v;
                }
            }
        }
    });
    u
}

/// Bᵀ d B's 1-D step: Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
#[inline(always)]
fn input_step(d: [f32; 4]) -> [f32; 4] {
    [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]
}

/// Aᵀ m A's 1-D step: Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].
#[inline(always)]
fn output_step(m: [f32; 4]) -> [f32; 2] {
    [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]
}

/// One image's band of tile rows `ty0..ty1`: returns its outputs as [co][rows][w], rows
/// being the band's output rows that fall inside the image.
#[allow(clippy::too_many_arguments)]
fn band(
    padded: &[f32],
    u: &[f32],
    bias: Option<&[f32]>,
    (co, ci, h, w): (usize, usize, usize, usize),
    (ph, pw, tiles_x): (usize, usize, usize),
    (ty0, ty1): (usize, usize),
) -> Vec<f32> {
    let tb = (ty1 - ty0) * tiles_x;
    // V[tap][i][t]: the transformed 4×4 patch of every tile and channel.
    let mut v = vec![0f32; TAPS * ci * tb];
    // Row-wise so that every loop runs over a row of tiles: the column step (Bᵀ d) on four
    // whole padded rows, then the row step on each result, writing runs of `tiles_x`.
    let mut e = vec![0f32; 4 * pw];
    for i in 0..ci {
        let plane = &padded[i * ph * pw..(i + 1) * ph * pw];
        for ty in ty0..ty1 {
            let row = |r: usize| &plane[(2 * ty + r) * pw..(2 * ty + r + 1) * pw];
            let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3));
            let (e01, e23) = e.split_at_mut(2 * pw);
            let (e0, e1) = e01.split_at_mut(pw);
            let (e2, e3) = e23.split_at_mut(pw);
            for x in 0..pw {
                [e0[x], e1[x], e2[x], e3[x]] = input_step([d0[x], d1[x], d2[x], d3[x]]);
            }
            let t0 = (ty - ty0) * tiles_x;
            for (r, er) in e.chunks_exact(pw).enumerate() {
                let at = |c: usize| ((r * 4 + c) * ci + i) * tb + t0;
                let (v01, v23) = v.split_at_mut(at(2));
                let (v0, v1) = v01.split_at_mut(at(1));
                let (v2, v3) = v23.split_at_mut(at(3) - at(2));
                let (v0, v1, v2, v3) =
                    (&mut v0[at(0)..at(0) + tiles_x], &mut v1[..tiles_x], &mut v2[..tiles_x], &mut v3[..tiles_x]);
                for tx in 0..tiles_x {
                    let q = &er[2 * tx..2 * tx + 4];
                    [v0[tx], v1[tx], v2[tx], v3[tx]] = input_step([q[0], q[1], q[2], q[3]]);
                }
            }
        }
    }
    let mut m = vec![0f32; TAPS * co * tb];
    for tap in 0..TAPS {
        // SAFETY: U[tap] is read at o·16·ci + tap·ci + i < co·16·ci; V[tap] at
        // (tap·ci + i)·tb + t < 16·ci·tb; M[tap] written at (tap·co + o)·tb + t < 16·co·tb.
        unsafe {
            gemm::gemm(
                co, tb, ci,
                m.as_mut_ptr().add(tap * co * tb), 1, tb as isize, false,
                u.as_ptr().add(tap * ci), 1, (TAPS * ci) as isize,
                v.as_ptr().add(tap * ci * tb), 1, tb as isize,
                0.0, 1.0, false, false, false, gemm::Parallelism::None,
            );
        }
    }
    // Y = Aᵀ M A, 2×2 outputs per tile, plus the bias; rows and columns past the image
    // (odd sizes) are dropped.
    let y0 = 2 * ty0;
    let rows = (2 * ty1).min(h) - y0;
    let mut out = vec![0f32; co * rows * w];
    // Row-wise again: the column step (Aᵀ m) on runs of `tiles_x` products, then the row
    // step writes two output rows.
    let mut p = vec![0f32; 8 * tiles_x];
    for (o, dst) in out.chunks_exact_mut(rows * w).enumerate() {
        let b0 = bias.map_or(0.0, |b| b[o]);
        for ty in ty0..ty1 {
            let t0 = (ty - ty0) * tiles_x;
            let run = |tap: usize| &m[(tap * co + o) * tb + t0..(tap * co + o) * tb + t0 + tiles_x];
            // p[(r·4 + c)·tiles_x + tx]: output row r of the tile, transform column c.
            for c in 0..4 {
                let (m0, m1, m2, m3) = (run(c), run(4 + c), run(8 + c), run(12 + c));
                let (lo, hi) = p.split_at_mut(4 * tiles_x);
                let (p0, p1) = (&mut lo[c * tiles_x..(c + 1) * tiles_x], &mut hi[c * tiles_x..(c + 1) * tiles_x]);
                for tx in 0..tiles_x {
                    [p0[tx], p1[tx]] = output_step([m0[tx], m1[tx], m2[tx], m3[tx]]);
                }
            }
            for r in 0..2 {
                let y = 2 * ty + r;
                if y >= h {
                    continue;
                }
                let q = &p[r * 4 * tiles_x..(r + 1) * 4 * tiles_x];
                let (q0, q1, q2, q3) = (&q[..tiles_x], &q[tiles_x..2 * tiles_x], &q[2 * tiles_x..3 * tiles_x], &q[3 * tiles_x..]);
                let line = &mut dst[(y - y0) * w..(y - y0 + 1) * w];
                for tx in 0..w / 2 {
                    let [a, b] = output_step([q0[tx], q1[tx], q2[tx], q3[tx]]);
                    line[2 * tx] = a + b0;
                    line[2 * tx + 1] = b + b0;
                }
                if w % 2 == 1 {
                    let tx = w / 2;
                    line[2 * tx] = output_step([q0[tx], q1[tx], q2[tx], q3[tx]])[0] + b0;
                }
            }
        }
    }
    out
}

/// Where Winograd's form is the faster (best of 7 on 2 cores, direct ÷ Winograd time):
/// 320–640 channels on grids of 32 px and up gain 1.6–1.7× (320 at 64 and 128 px: 1.6×),
/// 192 channels at 64 px 1.35× (at 32 px two runs disagreed: 0.84× and 1.53×); at 32–160
/// channels it loses (0.7–0.96×), as it does on small grids, where transforming the weights
/// is not paid back (1280 channels at 8 px: 0.44×; 960 at 16 px: 1.05×).
const WINOGRAD_CHANNELS: usize = 192;
const WINOGRAD_TILES: usize = 256;

/// Where the unfolded form is the faster (best of 15 on 2 cores, direct ÷ unfolded time):
/// only on the images' own channels, where the nine products are shortest — 3 → 32 at 32 px
/// 1.17×, 6 → 32 at 64 px 1.08×, 3 → 320 at 64 px 2.1×. From 8 channels up copying the band
/// costs more than it saves (0.8–0.9× at 8–16 channels, 0.6–0.93× at 32–256).
const UNFOLD_CHANNELS: usize = 6;

/// y = conv3x3(x) + bias with stride 1 and zero padding 1. `x` is [b, ci, h, w] and `weight`
/// [co, ci, 3, 3], both row-major; returns [b, co, h, w].
pub fn conv3x3(x: &[f32], weight: &[f32], bias: Option<&[f32]>, dims: [usize; 4], co: usize) -> Vec<f32> {
    let [b, ci, h, w] = dims;
    let tiles = b * h.div_ceil(2) * w.div_ceil(2);
    if ci.min(co) >= WINOGRAD_CHANNELS && tiles >= WINOGRAD_TILES {
        winograd(x, weight, bias, dims, co)
    } else if ci <= UNFOLD_CHANNELS {
        unfolded(x, weight, bias, dims, co)
    } else {
        direct(x, weight, bias, dims, co)
    }
}

/// Copies of each image with `ph − h − 1` zero rows below, `pw − w − 1` zero columns on the
/// right and one of each above and on the left.
fn pad(x: &[f32], [b, ci, h, w]: [usize; 4], (ph, pw): (usize, usize)) -> Vec<Vec<f32>> {
    (0..b)
        .into_par_iter()
        .map(|bi| {
            let mut padded = vec![0f32; ci * ph * pw];
            let image = &x[bi * ci * h * w..(bi + 1) * ci * h * w];
            for (plane, src) in padded.chunks_exact_mut(ph * pw).zip(image.chunks_exact(h * w)) {
                for (y, row) in src.chunks_exact(w).enumerate() {
                    plane[(y + 1) * pw + 1..(y + 1) * pw + 1 + w].copy_from_slice(row);
                }
            }
            padded
        })
        .collect()
}

fn direct(x: &[f32], weight: &[f32], bias: Option<&[f32]>, [b, ci, h, w]: [usize; 4], co: usize) -> Vec<f32> {
    let pw = w + 2;
    on_padded_grid(x, bias, [b, ci, h, w], co, usize::MAX, |image, s0, len| {
        // acc[o, p − s0] = Σ_tap Σ_i W[o, i, ky, kx] · padded[i, p + ky·pw + kx].
        let mut acc = vec![0f32; co * len];
        for tap in 0..9 {
            let (ky, kx) = (tap / 3, tap % 3);
            // SAFETY: W is read at o·ci·9 + i·9 + tap < co·ci·9; the image at
            // i·ph·pw + ky·pw + kx + p with p < span, which stays below ci·ph·pw; acc at
            // o·len + (p − s0) < co·len.
            unsafe {
                gemm::gemm(
                    co, len, ci,
                    acc.as_mut_ptr(), 1, len as isize, tap > 0,
                    weight.as_ptr().add(tap), 9, (ci * 9) as isize,
                    image.as_ptr().add(s0 + ky * pw + kx), 1, ((h + 2) * pw) as isize,
                    1.0, 1.0, false, false, false, gemm::Parallelism::None,
                );
            }
        }
        acc
    })
}

/// The direct form as one product per piece: the nine shifted views are copied one under
/// the other into a [9·ci, len] band, and the filters reordered to [co, 9·ci] to match. With
/// an image's 3–6 channels the direct form's nine products are only that long, each
/// re-reading and re-writing the whole accumulator; one product 9·ci long does that once.
/// From about 8 channels the band's copy costs more than that saves (`UNFOLD_CHANNELS`).
fn unfolded(x: &[f32], weight: &[f32], bias: Option<&[f32]>, [b, ci, h, w]: [usize; 4], co: usize) -> Vec<f32> {
    let (pw, plane) = (w + 2, (h + 2) * (w + 2));
    let k = 9 * ci;
    // filters[o, tap·ci + i] = W[o, i, tap].
    let mut filters = vec![0f32; co * k];
    filters.par_chunks_mut(k).zip(weight.par_chunks(k)).for_each(|(dst, src)| {
        for (i, taps) in src.chunks_exact(9).enumerate() {
            for (tap, &v) in taps.iter().enumerate() {
                dst[tap * ci + i] = v;
            }
        }
    });
    on_padded_grid(x, bias, [b, ci, h, w], co, (BAND_FLOATS / k).max(64), |image, s0, len| {
        let mut band = vec![0f32; k * len];
        for (row, dst) in band.chunks_exact_mut(len).enumerate() {
            let (tap, i) = (row / ci, row % ci);
            let from = i * plane + s0 + (tap / 3) * pw + tap % 3;
            dst.copy_from_slice(&image[from..from + len]);
        }
        let mut acc = vec![0f32; co * len];
        super::product::product_into(&mut acc, &filters, &band, [co, k, len]);
        acc
    })
}

/// The shared frame of the direct forms: zero-pads each image, computes outputs on the
/// padded width (W + 2 columns per row, the last two discarded, so each tap's input is a
/// plain shifted view) in pieces of at most `max_len` positions, with `product(padded image,
/// start, len) → [co, len]`, and scatters the valid columns with the bias added.
fn on_padded_grid(
    x: &[f32],
    bias: Option<&[f32]>,
    [b, ci, h, w]: [usize; 4],
    co: usize,
    max_len: usize,
    product: impl Fn(&[f32], usize, usize) -> Vec<f32> + Sync,
) -> Vec<f32> {
    let (pw, ph) = (w + 2, h + 2);
    // Valid outputs on the padded grid: rows 0..h, columns 0..w of each (w + 2)-wide row.
    let span = h * pw - 2;
    // Tasks: (image, piece of the padded grid). With fewer images than threads each image's
    // grid is cut into pieces, one per spare thread, so every core has work without gemm's
    // own nested split (which cost a single 64 px image about 3× the time of two 32 px ones).
    let threads = rayon::current_num_threads().max(1);
    let pieces = if b < threads { threads.div_ceil(b) } else { 1 }.max(span.div_ceil(max_len.max(1)));
    let piece_len = span.div_ceil(pieces);
    let tasks: Vec<(usize, usize, usize)> = (0..b)
        .flat_map(|bi| (0..pieces).map(move |k| (bi, k * piece_len, ((k + 1) * piece_len).min(span))))
        .filter(|(_, s0, s1)| s0 < s1)
        .collect();
    let padded = pad(x, [b, ci, h, w], (ph, pw));
    let accs: Vec<Vec<f32>> = tasks.par_iter().map(|&(bi, s0, s1)| product(&padded[bi], s0, s1 - s0)).collect();
    // Scatter the valid columns (x < w of each padded row) of every piece, adding the bias.
    let mut out = vec![0f32; b * co * h * w];
    out.par_chunks_mut(co * h * w).enumerate().for_each(|(bi, dst)| {
        for (&(_, s0, s1), acc) in tasks.iter().zip(&accs).filter(|((t, _, _), _)| *t == bi) {
            let len = s1 - s0;
            for (o, (plane, src)) in dst.chunks_exact_mut(h * w).zip(acc.chunks_exact(len)).enumerate() {
                let b0 = bias.map_or(0.0, |v| v[o]);
                // Row by row: the piece's part of padded row y is columns a..e, of which
                // those below w are outputs.
                for y in s0 / pw..=(s1 - 1) / pw {
                    let (a, e) = (s0.max(y * pw) - y * pw, (s1 - y * pw).min(w));
                    if a >= e {
                        continue;
                    }
                    let from = y * pw + a - s0;
                    for (d, s) in plane[y * w + a..y * w + e].iter_mut().zip(&src[from..from + e - a]) {
                        *d = s + b0;
                    }
                }
            }
        }
    });
    out
}

fn winograd(x: &[f32], weight: &[f32], bias: Option<&[f32]>, [b, ci, h, w]: [usize; 4], co: usize) -> Vec<f32> {
    let (tiles_y, tiles_x) = (h.div_ceil(2), w.div_ceil(2));
    // Padding 1 on the top and left; on the bottom and right up to whole tiles plus 1.
    let (ph, pw) = (2 * tiles_y + 2, 2 * tiles_x + 2);
    let u = transform_filters(weight, co, ci);
    let padded = pad(x, [b, ci, h, w], (ph, pw));
    // Bands of tile rows: small enough to stay near the cache, and at least one per thread.
    let threads = rayon::current_num_threads().max(1);
    let by_size = (BAND_FLOATS / (TAPS * ci.max(co) * tiles_x).max(1)).clamp(1, tiles_y);
    let by_threads = tiles_y.div_ceil(threads.div_ceil(b)).max(1);
    let band_rows = by_size.min(by_threads);
    let tasks: Vec<(usize, usize, usize)> = (0..b)
        .flat_map(|bi| (0..tiles_y.div_ceil(band_rows)).map(move |k| (bi, k * band_rows, ((k + 1) * band_rows).min(tiles_y))))
        .collect();
    let bands: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(bi, ty0, ty1)| band(&padded[bi], &u, bias, (co, ci, h, w), (ph, pw, tiles_x), (ty0, ty1)))
        .collect();
    // Each band holds rows 2·ty0.. of every output plane of its image.
    let mut out = vec![0f32; b * co * h * w];
    out.par_chunks_mut(co * h * w).enumerate().for_each(|(bi, dst)| {
        for (&(_, ty0, _), src) in tasks.iter().zip(&bands).filter(|((t, _, _), _)| *t == bi) {
            let y0 = 2 * ty0;
            let rows = src.len() / (co * w);
            for (plane, part) in dst.chunks_exact_mut(h * w).zip(src.chunks_exact(rows * w)) {
                plane[y0 * w..(y0 + rows) * w].copy_from_slice(part);
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::{direct, unfolded, winograd};

    /// The definition, summed in f64.
    fn definition(x: &[f32], k: &[f32], bias: &[f32], [b, ci, h, w]: [usize; 4], co: usize) -> Vec<f64> {
        let mut out = vec![0f64; b * co * h * w];
        for bi in 0..b {
            for o in 0..co {
                for y in 0..h {
                    for xx in 0..w {
                        let mut s = bias[o] as f64;
                        for i in 0..ci {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (sy, sx) = (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                                    if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                                        continue;
                                    }
                                    let xv = x[((bi * ci + i) * h + sy as usize) * w + sx as usize] as f64;
                                    s += xv * k[((o * ci + i) * 3 + ky) * 3 + kx] as f64;
                                }
                            }
                        }
                        out[((bi * co + o) * h + y) * w + xx] = s;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    #[test]
    fn every_conv_form_equals_the_definition_at_odd_and_even_sizes() {
        for (b, ci, co, h, w) in [(1, 1, 1, 1, 1), (2, 3, 5, 7, 4), (1, 8, 4, 5, 9), (3, 16, 8, 12, 12)] {
            let x = values(b * ci * h * w, 7);
            let k = values(co * ci * 9, 11);
            let bias = values(co, 3);
            let want = definition(&x, &k, &bias, [b, ci, h, w], co);
            let forms = [
                ("direct", direct(&x, &k, Some(&bias), [b, ci, h, w], co)),
                ("unfolded", unfolded(&x, &k, Some(&bias), [b, ci, h, w], co)),
                ("winograd", winograd(&x, &k, Some(&bias), [b, ci, h, w], co)),
            ];
            for (form, got) in forms {
            // Each output sums 9·ci products of values ≤ 1; f32 rounding of such a sum stays
            // far below 1e-4 of its size.
            let tol = 1e-5 * (9 * ci) as f64;
            for (g, e) in got.iter().zip(&want) {
                    assert!((*g as f64 - e).abs() <= tol, "{form} [{b},{ci},{co},{h},{w}]: {g} vs {e}");
                }
            }
        }
    }
}
