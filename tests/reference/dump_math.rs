//! Prints the Rust side of every case in check_math.py, in the same line format, so the
//! two can be compared bit for bit. Not a cargo target (it lives in a subdirectory of
//! tests/); build it by hand:
//!
//!     rustc --edition 2024 -O tests/reference/dump_math.rs -o target/dump_math
//!     target/dump_math > target/rust_dump.txt
//!     python tests/reference/check_math.py all --compare target/rust_dump.txt
//!
//!     target/dump_math default > target/rust_dump_default.txt
//!     ATEN_CPU_CAPABILITY=default python tests/reference/check_math.py all \
//!         --compare target/rust_dump_default.txt

#[path = "../../src/imaging/resample.rs"]
#[allow(dead_code)]
mod resample;
#[path = "../../src/diffusion/rng.rs"]
#[allow(dead_code)]
mod rng;
#[path = "../../src/diffusion/schedule.rs"]
#[allow(dead_code)]
mod schedule;

use resample::TorchCpuKernel;
use rng::{BoxMuller, TorchGenerator};

fn hex(v: &[f32]) -> String {
    v.iter()
        .map(|x| format!("{:08x}", x.to_bits()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ints<T: ToString>(v: &[T]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// check_math.py `test_image_f32`.
fn test_image_f32(c: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
    (0..(c * h * w) as u64)
        .map(|idx| {
            let (ch, y, x) = (
                idx as usize / (h * w),
                (idx as usize / w) % h,
                idx as usize % w,
            );
            let noise = ((idx * 2_654_435_761 + seed * 97) % (1 << 32)) as f64 / 4_294_967_296.0;
            let smooth = (0.3 * x as f64 + 0.2 * y as f64 + ch as f64).sin() * 0.5;
            (smooth + noise - 0.5) as f32
        })
        .collect()
}

/// check_math.py `test_image_u8` (interleaved RGB).
fn test_image_u8(h: usize, w: usize, seed: u64) -> Vec<u8> {
    (0..(h * w * 3) as u64)
        .map(|idx| (((idx * 2_654_435_761 + seed * 97) % (1 << 32)) >> 24) as u8)
        .collect()
}

/// check_math.py `structured_u8`: gradients plus a 4-pixel checkerboard.
fn structured_u8(h: usize, w: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            v.push((x * 255 / (w - 1).max(1)) as u8);
            v.push((y * 255 / (h - 1).max(1)) as u8);
            v.push(if (x / 4 + y / 4) % 2 == 0 { 255 } else { 0 });
        }
    }
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let default_cap = std::env::args().nth(1).as_deref() == Some("default");
    let (bm, aa) = if default_cap {
        (BoxMuller::Scalar, TorchCpuKernel::Default)
    } else {
        (BoxMuller::Avx2, TorchCpuKernel::Avx)
    };

    // rng
    let shapes: [&[usize]; 9] = [
        &[1],
        &[7],
        &[15],
        &[16],
        &[17],
        &[2, 32],
        &[1, 3, 8, 8],
        &[3, 100],
        &[1, 3, 64, 64],
    ];
    for seed in [0u64, 42, (1 << 32) + 5] {
        for sh in shapes {
            let v = TorchGenerator::with_kernel(seed, bm).randn(sh)?;
            println!(
                "randn_seed{seed}_{} {}",
                ints(sh).replace(' ', "x"),
                hex(&v)
            );
        }
        let mut g = TorchGenerator::with_kernel(seed, bm);
        let seq: [&[usize]; 6] = [&[2, 32], &[5], &[1, 3, 8, 8], &[3], &[1], &[20]];
        for (i, sh) in seq.iter().enumerate() {
            println!("seq_seed{seed}_{i} {}", hex(&g.randn(sh)?));
        }
    }

    // schedule
    for t in [1000usize, 64, 1] {
        let betas = schedule::squaredcos_cap_v2_betas(t);
        println!("betas_T{t} {}", hex(&betas));
        println!(
            "alphas_cumprod_T{t} {}",
            hex(&schedule::alphas_cumprod(&betas))
        );
    }
    for n in [2usize, 7, 25, 50, 1000] {
        println!(
            "timesteps_T1000_n{n} {}",
            ints(&schedule::unclip_timesteps(1000, n)?)
        );
    }
    println!(
        "timesteps_T10_n4 {}",
        ints(&schedule::unclip_timesteps(10, 4)?)
    );

    // resample
    let aa_cases = [
        (3, 32, 32, 64, 64, 1),
        (3, 32, 32, 48, 48, 2),
        (3, 64, 64, 24, 24, 3),
        (3, 64, 64, 256, 256, 4),
        (2, 40, 30, 17, 50, 5),
        (1, 9, 13, 9, 5, 6),
    ];
    for (c, h, w, oh, ow, seed) in aa_cases {
        let x = test_image_f32(c, h, w, seed);
        let y = resample::resize_bicubic_antialias_with(&x, c, h, w, oh, ow, aa)?;
        println!("aa_{c}x{h}x{w}_to_{oh}x{ow} {}", hex(&y));
    }
    let pil_rand = [
        (37, 53, 224, 160, 1),
        (300, 400, 224, 298, 2),
        (64, 64, 64, 32, 3),
        (50, 20, 13, 77, 4),
    ];
    for (h, w, oh, ow, seed) in pil_rand {
        let y = resample::pil_resize_bicubic_rgb8(&test_image_u8(h, w, seed), w, h, ow, oh)?;
        println!("pil_rand_{h}x{w}_to_{oh}x{ow} {}", ints(&y));
    }
    for (h, w, oh, ow) in [(100, 150, 224, 336), (480, 640, 224, 298), (33, 33, 20, 20)] {
        let y = resample::pil_resize_bicubic_rgb8(&structured_u8(h, w), w, h, ow, oh)?;
        println!("pil_struct_{h}x{w}_to_{oh}x{ow} {}", ints(&y));
    }
    for (h, w, ch, cw) in [
        (10, 12, 4, 5),
        (7, 9, 4, 4),
        (5, 8, 8, 6),
        (3, 3, 6, 6),
        (224, 298, 224, 224),
    ] {
        let y = resample::center_crop_rgb8(&test_image_u8(h, w, 9), w, h, cw, ch)?;
        println!("crop_{h}x{w}_to_{ch}x{cw} {}", ints(&y));
    }
    let short = [
        (480, 640, 224),
        (640, 480, 224),
        (333, 500, 224),
        (500, 333, 224),
        (224, 224, 224),
        (1, 1000, 224),
        (999, 1001, 7),
        (300, 1000, 224),
    ];
    for (h, w, s) in short {
        let (ow, oh) = resample::shortest_edge_size(w, h, s)?;
        println!("short_{w}x{h}_s{s} {ow} {oh}");
    }
    Ok(())
}
