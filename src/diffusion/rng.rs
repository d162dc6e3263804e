//! Bit-exact reproduction of PyTorch's CPU `torch.Generator` + `torch.randn` for float32.
//!
//! What torch does (read from ATen, checked against torch 2.15 on CPU):
//!
//! * The engine is a plain 32-bit MT19937. `manual_seed(s)` keeps the full `u64` as the
//!   reported seed but only `s & 0xffff_ffff` enters the state, so seeds `s` and
//!   `s + 2^32` give the same stream. Seeding also drops any cached normal sample.
//! * A float32 tensor with `numel >= 16` (contiguous) takes the "normal_fill" path:
//!   every element first receives a 24-bit uniform `(u32 & 0xff_ffff) * 2^-24`, then each
//!   full block of 16 is turned into normals by Box–Muller over the pairs `(j, j + 8)`.
//!   If `numel % 16 != 0`, the last 16 elements are overwritten with 16 *fresh* uniforms
//!   and transformed again (so a tail is not a prefix of a longer draw).
//! * A tensor with `numel < 16` draws each element from `normal_distribution<double>`:
//!   two 53-bit uniforms from `random64()` (high word drawn first), Box–Muller in f64 with
//!   `log1p`, returning `r cos θ` and caching `r sin θ` *in the generator*. The cached
//!   value survives across calls: the next small draw consumes it before touching the
//!   engine, while the `>= 16` path neither uses nor clears it.
//! * The Box–Muller arithmetic of the `>= 16` path depends on which CPU kernel torch
//!   dispatches to. `normal_stub` is registered with `REGISTER_NO_AVX512_DISPATCH`, so an
//!   AVX-512 CPU still runs the AVX2 kernel:
//!   - `AVX2` (every x86-64 CPU with AVX2, AVX-512 ones included): 8-wide Cephes
//!     polynomials (`log256_ps`, `sincos256_ps` from avx_mathfun.h) that GCC compiles with
//!     FMA contraction; θ is an f32 product with 2π rounded to f32. → [`BoxMuller::Avx2`],
//!     the default.
//!   - `DEFAULT` (x86 without AVX2, or `ATEN_CPU_CAPABILITY=default`; by the source also
//!     most non-x86 builds, not checked here): scalar f32 code with libm
//!     `logf`/`cosf`/`sinf`; θ is formed in f64 and rounded to f32. → [`BoxMuller::Scalar`].
//!
//! The two kernels differ by up to a few e-6 absolute, so pick the one matching the
//! machine that produced the reference.
//!
//! The scalar kernel calls the platform libm exactly as torch does; on Linux/glibc the
//! results match bit for bit. On other platforms the libm may differ from the one torch
//! was linked against.
//!
//! Errors: the only impossible input is a shape whose element count overflows or cannot
//! be held by a `Vec<f32>`; that is reported as [`RngError`], never a panic.

use std::fmt;

/// Which Box–Muller kernel of torch's `normal_fill` to reproduce (only matters for
/// tensors with at least 16 elements).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BoxMuller {
    /// torch on any x86-64 CPU with AVX2 (AVX-512 CPUs included): Cephes-style f32
    /// polynomials with fused multiply-adds. This is what stock torch uses on almost every
    /// desktop and server CPU.
    #[default]
    Avx2,
    /// torch CPU capability `DEFAULT` (no AVX2, or `ATEN_CPU_CAPABILITY=default`): scalar
    /// libm `logf`/`cosf`/`sinf`. Bit-exact only where Rust and torch share the libm (glibc).
    Scalar,
}

/// Invalid request to the generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RngError {
    /// The product of the shape overflows `usize` or exceeds what a `Vec<f32>` can hold.
    TooLarge { shape: Vec<usize> },
}

impl fmt::Display for RngError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RngError::TooLarge { shape } => {
                write!(f, "randn shape {shape:?} has too many elements to allocate")
            }
        }
    }
}

impl std::error::Error for RngError {}

const MT_N: usize = 624;
const MT_M: usize = 397;

/// 32-bit Mersenne Twister, same recurrence and tempering as `at::mt19937`.
#[derive(Clone)]
struct Mt19937 {
    state: [u32; MT_N],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u64) -> Self {
        let mut state = [0u32; MT_N];
        // torch keeps the u64 seed for reporting but only the low word seeds the state.
        state[0] = seed as u32;
        for i in 1..MT_N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        // index == N means "regenerate before the first output", like torch's left_ = 1.
        Mt19937 { state, index: MT_N }
    }

    fn regenerate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..MT_N {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % MT_N] & LOWER);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            self.state[i] = self.state[(i + MT_M) % MT_N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= MT_N {
            self.regenerate();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }
}

/// `torch.Generator(device="cpu")` restricted to what `torch.randn(..., dtype=float32)` uses.
#[derive(Clone)]
pub struct TorchGenerator {
    seed: u64,
    engine: Mt19937,
    /// Second Box–Muller output of the small-tensor path, kept between calls as torch does.
    cached_normal: Option<f64>,
    kernel: BoxMuller,
}

impl fmt::Debug for TorchGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TorchGenerator")
            .field("seed", &self.seed)
            .field("kernel", &self.kernel)
            .field("cached_normal", &self.cached_normal)
            .finish_non_exhaustive()
    }
}

impl TorchGenerator {
    /// `torch.Generator().manual_seed(seed)`, reproducing torch's AVX2 Box–Muller kernel
    /// (the one stock torch runs on x86-64 CPUs with AVX2 or AVX-512).
    pub fn new(seed: u64) -> Self {
        Self::with_kernel(seed, BoxMuller::Avx2)
    }

    /// Same as [`TorchGenerator::new`] but with an explicit Box–Muller kernel.
    pub fn with_kernel(seed: u64, kernel: BoxMuller) -> Self {
        TorchGenerator {
            seed,
            engine: Mt19937::new(seed),
            cached_normal: None,
            kernel,
        }
    }

    /// `g.manual_seed(seed)`: restarts the stream and forgets the cached normal.
    pub fn manual_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.engine = Mt19937::new(seed);
        self.cached_normal = None;
    }

    /// `g.initial_seed()`: the full 64-bit seed, even though only 32 bits are used.
    pub fn initial_seed(&self) -> u64 {
        self.seed
    }

    /// The Box–Muller kernel this generator reproduces.
    pub fn kernel(&self) -> BoxMuller {
        self.kernel
    }

    /// `torch.randn(shape, generator=g)` (float32, CPU), row-major.
    /// An empty dimension gives an empty vector and consumes nothing, like torch.
    pub fn randn(&mut self, shape: &[usize]) -> Result<Vec<f32>, RngError> {
        let numel = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= MAX_ELEMS)
            .ok_or_else(|| RngError::TooLarge {
                shape: shape.to_vec(),
            })?;
        Ok(self.draw(numel))
    }

    /// A uniform number in [0, 1) with 53 random bits, from the same stream (for sampling
    /// tokens; no diffusers path draws these, so they follow no torch formula).
    pub fn uniform(&mut self) -> f64 {
        let hi = (self.engine.next_u32() >> 5) as u64;
        let lo = (self.engine.next_u32() >> 6) as u64;
        ((hi << 26) | lo) as f64 / (1u64 << 53) as f64
    }

    /// `torch.randn(n, generator=g)`: a 1-D draw of `n` float32 normals.
    pub fn randn_n(&mut self, n: usize) -> Result<Vec<f32>, RngError> {
        if n > MAX_ELEMS {
            return Err(RngError::TooLarge { shape: vec![n] });
        }
        Ok(self.draw(n))
    }

    fn draw(&mut self, numel: usize) -> Vec<f32> {
        if numel >= 16 {
            self.normal_fill(numel)
        } else {
            self.normal_small(numel)
        }
    }

    /// 24-bit uniform in [0, 1): torch's `uniform_real_distribution<float>(0, 1)`.
    fn uniform_f32(&mut self) -> f32 {
        (self.engine.next_u32() & 0x00ff_ffff) as f32 * (1.0 / 16_777_216.0)
    }

    /// 53-bit uniform in [0, 1) from `random64()`, whose first draw is the high word.
    fn uniform_f64(&mut self) -> f64 {
        let hi = self.engine.next_u32() as u64;
        let lo = self.engine.next_u32() as u64;
        (((hi << 32) | lo) & ((1u64 << 53) - 1)) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `normal_distribution<double>(0, 1)` then a cast to f32, one element at a time.
    fn normal_small(&mut self, numel: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(numel);
        for _ in 0..numel {
            let z = match self.cached_normal.take() {
                Some(z) => z,
                None => {
                    let u1 = self.uniform_f64();
                    let u2 = self.uniform_f64();
                    let r = (-2.0 * (-u2).ln_1p()).sqrt();
                    let theta = 2.0 * std::f64::consts::PI * u1;
                    self.cached_normal = Some(r * theta.sin());
                    r * theta.cos()
                }
            };
            // torch applies `z * std + mean` with std = 1, mean = 0; `+ 0.0` keeps its
            // -0.0 → +0.0 behaviour.
            out.push((z + 0.0) as f32);
        }
        out
    }

    /// torch's `normal_fill`: all uniforms first, Box–Muller per block of 16, tail redraw.
    fn normal_fill(&mut self, numel: usize) -> Vec<f32> {
        let mut data: Vec<f32> = (0..numel).map(|_| self.uniform_f32()).collect();
        let kernel = self.kernel;
        for block in data.chunks_exact_mut(16) {
            box_muller_16(block, kernel);
        }
        if !numel.is_multiple_of(16) {
            let tail = &mut data[numel - 16..];
            for v in tail.iter_mut() {
                *v = self.uniform_f32();
            }
            box_muller_16(tail, kernel);
        }
        data
    }
}

/// Largest element count a `Vec<f32>` may hold without a capacity-overflow panic.
const MAX_ELEMS: usize = isize::MAX as usize / std::mem::size_of::<f32>();

/// Box–Muller on 16 uniforms in place: `d[j]` gives the radius, `d[j + 8]` the angle.
fn box_muller_16(d: &mut [f32], kernel: BoxMuller) {
    debug_assert_eq!(d.len(), 16);
    for j in 0..8 {
        let u1 = 1.0f32 - d[j]; // [0, 1) -> (0, 1] so the log is finite
        let u2 = d[j + 8];
        let (c, s, radius) = match kernel {
            BoxMuller::Scalar => {
                let radius = (-2.0f32 * u1.ln()).sqrt();
                // `2.0f * pi<double> * u2` is evaluated in f64 and only then narrowed.
                let theta = ((2.0f64 * std::f64::consts::PI) * u2 as f64) as f32;
                (theta.cos(), theta.sin(), radius)
            }
            BoxMuller::Avx2 => {
                let radius = (-2.0f32 * cephes_logf(u1)).sqrt();
                // Here 2π is first rounded to f32 (`_mm256_set1_ps`), then an f32 product.
                let theta = (2.0f64 * std::f64::consts::PI) as f32 * u2;
                let (s, c) = cephes_sincosf(theta);
                (c, s, radius)
            }
        };
        // `fma(n, std, mean)` with std = 1, mean = 0 is `n + 0.0` (turns -0.0 into +0.0).
        d[j] = radius * c + 0.0;
        d[j + 8] = radius * s + 0.0;
    }
}

/// One lane of `log256_ps` (Cephes logf as vectorised by avx_mathfun.h), with the
/// multiply-adds GCC fuses when it compiles torch's AVX2 kernels. Only positive finite
/// inputs occur here (u1 ∈ (0, 1]). Constants are spelled as in avx_mathfun.h.
#[allow(clippy::excessive_precision)]
fn cephes_logf(x: f32) -> f32 {
    const SQRTHF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const P: [f32; 9] = [
        7.037_683_629_2e-2,
        -1.151_461_031_0e-1,
        1.167_699_874_0e-1,
        -1.242_014_084_6e-1,
        1.424_932_278_7e-1,
        -1.666_805_766_5e-1,
        2.000_071_476_5e-1,
        -2.499_999_399_3e-1,
        3.333_333_117_4e-1,
    ];
    const Q1: f32 = -2.121_944_40e-4;
    const Q2: f32 = 0.693_359_375;

    let x = x.max(f32::MIN_POSITIVE); // flush denormals like `_mm256_max_ps(x, min_norm_pos)`
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32 - 0x7f) as f32 + 1.0;
    // Keep the mantissa and force the exponent of 0.5: m ∈ [0.5, 1).
    let m = f32::from_bits((bits & !0x7f80_0000) | 0.5f32.to_bits());
    let below = m < SQRTHF;
    let mut x = m - 1.0;
    if below {
        e -= 1.0;
        x += m;
    } else {
        x += 0.0;
    }
    let z = x * x;
    let mut y = P[0].mul_add(x, P[1]);
    for &p in &P[2..] {
        y = y.mul_add(x, p);
    }
    y *= x;
    // GCC fuses in statement order: `y * z` absorbs the following add of `e * q1`,
    // then `z * 0.5` is subtracted with a fused negative multiply-add.
    y = y.mul_add(z, e * Q1);
    y = (-z).mul_add(0.5, y);
    e.mul_add(Q2, x + y)
}

/// One lane of `sincos256_ps` (Cephes sinf/cosf), returning `(sin, cos)`, with GCC's FMA
/// contraction. Valid for the arguments used here (0 ≤ θ < 2π). Constants are spelled
/// as in avx_mathfun.h.
#[allow(clippy::excessive_precision)]
fn cephes_sincosf(theta: f32) -> (f32, f32) {
    const FOPI: f32 = 1.273_239_544_735_16; // 4 / π
    const DP1: f32 = -0.785_156_25;
    const DP2: f32 = -2.418_756_484_985_351_562_5e-4;
    const DP3: f32 = -3.774_894_977_445_941_08e-8;
    const SIN_P: [f32; 3] = [-1.951_529_589_1e-4, 8.332_160_873_6e-3, -1.666_665_461_1e-1];
    const COS_P: [f32; 3] = [
        2.443_315_711_809_948e-5,
        -1.388_731_625_493_765e-3,
        4.166_664_568_298_827e-2,
    ];
    const SIGN: u32 = 0x8000_0000;

    let mut sign_sin = theta.to_bits() & SIGN;
    let x = theta.abs();
    // Octant index rounded up to even, as Cephes does; truncation matches cvttps.
    let j = (((x * FOPI) as i32).wrapping_add(1)) & !1;
    let y = j as f32;
    sign_sin ^= ((j & 4) as u32) << 29;
    let use_sin_poly = (j & 2) == 0;
    let sign_cos = ((!(j.wrapping_sub(2)) & 4) as u32) << 29;

    // Extended-precision reduction x - y·π/4 in three fused steps.
    let x = y.mul_add(DP3, y.mul_add(DP2, y.mul_add(DP1, x)));
    let z = x * x;

    let mut yc = COS_P[0].mul_add(z, COS_P[1]);
    yc = yc.mul_add(z, COS_P[2]);
    yc *= z;
    yc = yc.mul_add(z, -(z * 0.5));
    yc += 1.0;

    let mut ys = SIN_P[0].mul_add(z, SIN_P[1]);
    ys = ys.mul_add(z, SIN_P[2]);
    ys *= z;
    ys = ys.mul_add(x, x);

    // The vector code selects with bit masks and adds +0.0 to the unselected side.
    let (s, c) = if use_sin_poly {
        (0.0 + ys, yc + 0.0)
    } else {
        (yc + 0.0, 0.0 + ys)
    };
    (
        f32::from_bits(s.to_bits() ^ sign_sin),
        f32::from_bits(c.to_bits() ^ sign_cos),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn mt19937_matches_reference_stream() {
        // Reference MT19937 (Matsumoto & Nishimura, init_genrand(5489)): the 10000th
        // output is 4123659995, as required by C++ std::mt19937.
        let mut mt = Mt19937::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = mt.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
        // First output for seed 5489 from the same reference.
        assert_eq!(Mt19937::new(5489).next_u32(), 3_499_211_612);
    }

    #[test]
    fn seed_uses_low_32_bits_but_reports_full_seed() {
        let mut a = TorchGenerator::new(5);
        let mut b = TorchGenerator::new((1u64 << 32) + 5);
        assert_eq!(
            bits(&a.randn(&[40]).unwrap()),
            bits(&b.randn(&[40]).unwrap())
        );
        assert_eq!(b.initial_seed(), (1u64 << 32) + 5);
    }

    // Expected values below are fixture data from PyTorch 2.15.0+cu132 on CPU (an AVX-512
    // x86-64 machine, glibc), printed as float32 bit patterns with
    //   t.contiguous().view(torch.int32)
    // where G(s) = torch.Generator().manual_seed(s). Default capability uses the AVX2
    // kernel; the SCALAR_* values were printed with ATEN_CPU_CAPABILITY=default.

    #[test]
    fn randn_16_matches_torch() {
        // torch.randn(16, generator=G(0))
        assert_eq!(
            bits(&TorchGenerator::new(0).randn(&[16]).unwrap()),
            SEED0_16.to_vec()
        );
        // torch.randn(16, generator=G(2**32 + 5))
        let big = TorchGenerator::new((1u64 << 32) + 5).randn(&[16]).unwrap();
        assert_eq!(bits(&big), BIG_SEED_16.to_vec());
    }

    #[test]
    fn randn_small_and_tail_match_torch() {
        // torch.randn(7, generator=G(0)): the f64 path, identical for both kernels.
        assert_eq!(
            bits(&TorchGenerator::new(0).randn(&[7]).unwrap()),
            SEED0_7.to_vec()
        );
        let scalar7 = TorchGenerator::with_kernel(0, BoxMuller::Scalar)
            .randn(&[7])
            .unwrap();
        assert_eq!(bits(&scalar7), SEED0_7.to_vec());
        // torch.randn(17, generator=G(0)): 17 uniforms, then the last 16 are redrawn, so
        // only element 0 comes from the first transform.
        assert_eq!(
            bits(&TorchGenerator::new(0).randn(&[17]).unwrap()),
            SEED0_17.to_vec()
        );
        assert_eq!(SEED0_17[0], SEED0_16[0]);
    }

    #[test]
    fn randn_seed42_4d_matches_torch() {
        // torch.randn(1, 3, 8, 8, generator=G(42)).reshape(-1)[:8]
        let got = TorchGenerator::new(42).randn(&[1, 3, 8, 8]).unwrap();
        assert_eq!(got.len(), 192);
        assert_eq!(bits(&got[..8]), SEED42_1388_FIRST8.to_vec());
    }

    #[test]
    fn scalar_kernel_matches_torch_default_capability() {
        // ATEN_CPU_CAPABILITY=default: torch.randn(16 or 17, generator=G(0))
        let k = BoxMuller::Scalar;
        assert_eq!(
            bits(&TorchGenerator::with_kernel(0, k).randn(&[16]).unwrap()),
            SCALAR_SEED0_16.to_vec()
        );
        assert_eq!(
            bits(&TorchGenerator::with_kernel(0, k).randn(&[17]).unwrap()),
            SCALAR_SEED0_17.to_vec()
        );
    }

    #[test]
    fn consecutive_draws_continue_stream_and_cache() {
        // g = G(0); torch.randn(2, 32, generator=g); a = torch.randn(5, generator=g)
        // b = torch.randn(1, 3, 8, 8, generator=g).reshape(-1)[:4]; c = torch.randn(3, generator=g)
        // The 5-draw leaves one cached normal, which the 3-draw returns first.
        let mut g = TorchGenerator::new(0);
        let _ = g.randn(&[2, 32]).unwrap();
        assert_eq!(bits(&g.randn(&[5]).unwrap()), SEQ0_SECOND_5.to_vec());
        let block = g.randn(&[1, 3, 8, 8]).unwrap();
        assert_eq!(bits(&block[..4]), SEQ0_THIRD_FIRST4.to_vec());
        assert_eq!(bits(&g.randn(&[3]).unwrap()), SEQ0_FOURTH_3.to_vec());
    }

    #[test]
    fn small_path_caches_second_normal() {
        // randn(1) twice equals randn(2) once: the second value comes from the cache.
        let mut a = TorchGenerator::new(123);
        let x = a.randn(&[1]).unwrap();
        let y = a.randn(&[1]).unwrap();
        let both = TorchGenerator::new(123).randn(&[2]).unwrap();
        assert_eq!(bits(&[x[0], y[0]]), bits(&both));
        // Reseeding drops the cache.
        let mut c = TorchGenerator::new(9);
        let _ = c.randn(&[1]).unwrap();
        c.manual_seed(123);
        assert_eq!(bits(&c.randn(&[2]).unwrap()), bits(&both));
    }

    #[test]
    fn large_path_leaves_cache_untouched() {
        // A >= 16 draw between two small draws does not consume the cached value.
        let mut g = TorchGenerator::new(7);
        let first = g.randn(&[1]).unwrap();
        let _ = g.randn(&[16]).unwrap();
        let second = g.randn(&[1]).unwrap();
        let pair = TorchGenerator::new(7).randn(&[2]).unwrap();
        assert_eq!(bits(&[first[0], second[0]]), bits(&pair));
    }

    #[test]
    fn shapes_and_errors() {
        let mut g = TorchGenerator::new(0);
        assert_eq!(g.randn(&[]).unwrap().len(), 1); // a 0-d tensor has one element
        assert!(g.randn(&[3, 0, 2]).unwrap().is_empty());
        assert_eq!(g.randn_n(0).unwrap().len(), 0);
        assert_eq!(g.randn(&[3, 100]).unwrap().len(), 300);
        assert!(matches!(
            g.randn(&[usize::MAX, 2]),
            Err(RngError::TooLarge { .. })
        ));
        assert!(g.randn_n(usize::MAX).is_err());
        // Errors are reported before anything is drawn.
        let mut h = TorchGenerator::new(0);
        let _ = h.randn(&[usize::MAX, 2]);
        assert_eq!(bits(&h.randn(&[16]).unwrap()), SEED0_16.to_vec());
    }

    #[test]
    fn randn_shape_equals_randn_n() {
        let a = TorchGenerator::new(3).randn(&[1, 3, 8, 8]).unwrap();
        let b = TorchGenerator::new(3).randn_n(192).unwrap();
        assert_eq!(bits(&a), bits(&b));
    }

    #[test]
    fn normals_look_normal() {
        for kernel in [BoxMuller::Scalar, BoxMuller::Avx2] {
            let v = TorchGenerator::with_kernel(1, kernel)
                .randn_n(200_000)
                .unwrap();
            let n = v.len() as f64;
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            assert!(mean.abs() < 0.01, "{kernel:?} mean {mean}");
            assert!((var - 1.0).abs() < 0.01, "{kernel:?} var {var}");
            assert!(v.iter().all(|x| x.is_finite()));
        }
    }

    #[test]
    fn cephes_functions_are_accurate() {
        // The AVX2 kernel's approximations should stay within a few ulp of libm.
        for i in 1..=10_000u32 {
            let u = i as f32 / 10_000.0;
            let l = cephes_logf(u);
            assert!(
                (l - u.ln()).abs() <= 4.0 * f32::EPSILON * u.ln().abs().max(1e-3),
                "log {u}"
            );
            let t = u * std::f32::consts::TAU;
            let (s, c) = cephes_sincosf(t);
            assert!((s - t.sin()).abs() < 2e-7, "sin {t}");
            assert!((c - t.cos()).abs() < 2e-7, "cos {t}");
        }
    }

    // ---- fixture data (producing expressions in the comments of the tests above) ----
    const SEED0_16: [u32; 16] = [
        0xbf901b85, 0xbf93808a, 0xbe804bd6, 0xbede255d, 0x3f594515, 0x3f312783, 0xbea1cc6d,
        0xc0075fc1, 0x3ea50138, 0xbfa1b4f4, 0x3eb330ff, 0x3e9dc3bb, 0x3df56f77, 0x3f9e6b93,
        0x3f8ef28e, 0xbe7d367c,
    ];
    const BIG_SEED_16: [u32; 16] = [
        0x3febd177, 0x3f04d5ca, 0xbfdb203d, 0xbfd9c6cc, 0x40013e2b, 0xbe8987d5, 0xbe05dacf,
        0xbfb7fd2d, 0x3ec812c6, 0xbc9b6247, 0xbfad24dc, 0xbf3b16e0, 0x3f7ce879, 0xbed6bca3,
        0xbf15bbbc, 0xbf48471d,
    ];
    const SEED0_7: [u32; 7] = [
        0x3fc53f5c, 0xbe963c50, 0xc00b7149, 0x3f1184b6, 0xbf8ad1a1, 0xbfb3052d, 0x3ece837a,
    ];
    const SEED0_17: [u32; 17] = [
        0xbf901b85, 0xbfd91446, 0x3f111004, 0x3f4b235d, 0x3f194d8b, 0xbfc70d5b, 0xbeaec6ca,
        0x3fed2f4e, 0x3eefaa55, 0xbf15e32b, 0xbe318eeb, 0x3e3be1a4, 0x3fb1d6c0, 0x3fcb0d00,
        0x3f72409c, 0xbf57fb33, 0x3f6e8c30,
    ];
    const SEED42_1388_FIRST8: [u32; 8] = [
        0x3ff6a529, 0x3fbe5f53, 0x3f669567, 0xc006c0db, 0x3f2dacd5, 0xbf9e0591, 0xbd306786,
        0xbfcd65ba,
    ];
    const SEQ0_SECOND_5: [u32; 5] = [0x3e449a5b, 0x3f0af310, 0xc00e007b, 0x3e84999f, 0xbf83cd48];
    const SEQ0_THIRD_FIRST4: [u32; 4] = [0xbf9013b7, 0xbea24d93, 0xbf8bd600, 0xbdae7a59];
    const SEQ0_FOURTH_3: [u32; 3] = [0xbf0031b4, 0xbde7bc20, 0x3eed1cf3];
    const SCALAR_SEED0_16: [u32; 16] = [
        0xbf901b85, 0xbf93808a, 0xbe804bd6, 0xbede255e, 0x3f594515, 0x3f312784, 0xbea1cc6d,
        0xc0075fc2, 0x3ea50138, 0xbfa1b4f4, 0x3eb330ff, 0x3e9dc3ba, 0x3df56f77, 0x3f9e6b93,
        0x3f8ef28e, 0xbe7d365a,
    ];
    const SCALAR_SEED0_17: [u32; 17] = [
        0xbf901b85, 0xbfd91447, 0x3f111002, 0x3f4b235e, 0x3f194d8b, 0xbfc70d5b, 0xbeaec6c7,
        0x3fed2f4e, 0x3eefaa55, 0xbf15e324, 0xbe318efd, 0x3e3be1a3, 0x3fb1d6c0, 0x3fcb0d01,
        0x3f72409c, 0xbf57fb34, 0x3f6e8c31,
    ];
}
