//! Training batches from the procedural world: pictures as [-1, 1] tensors and captions.

use burn::prelude::*;

use super::world::{Sample, Split, World, render};
use crate::model::nn::tensor_from;

pub struct Batch {
    pub samples: Vec<Sample>,
    pub captions: Vec<String>,
    /// `[b, 3, size, size]` in [-1, 1], one entry per requested size.
    pub images: Vec<Tensor<4>>,
}

/// RGB8 → planar [-1, 1].
pub fn planar(rgb: &[u8], size: usize) -> Vec<f32> {
    let n = size * size;
    let mut out = vec![0f32; 3 * n];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * n + i] = px[c] as f32 / 127.5 - 1.0;
        }
    }
    out
}

/// Samples `start..start+b` of the training split, rendered at each of `sizes`.
pub fn batch(
    world: &World,
    start: u64,
    b: usize,
    sizes: &[usize],
    device: &Device,
) -> Result<Batch, String> {
    let samples: Vec<Sample> = (0..b as u64)
        .map(|i| world.sample(start + i, Split::Train))
        .collect();
    render_batch(samples, sizes, device)
}

/// CLIP's batches: half independent samples, half groups of four siblings that differ only
/// in shape and placement (`World::siblings`), so the contrastive loss cannot be met by
/// colour and background alone.
pub fn contrastive_batch(world: &World, step: usize, b: usize, device: &Device) -> Result<Batch, String> {
    const GROUP: usize = 4;
    let groups = b / 2 / GROUP;
    let free = b - groups * GROUP;
    let mut samples: Vec<Sample> = (0..free)
        .map(|i| world.sample((step * b + i) as u64, Split::Train))
        .collect();
    for g in 0..groups {
        samples.extend(world.siblings((step * groups + g) as u64, GROUP, Split::Train));
    }
    render_batch(samples, &[32], device)
}

/// Renders `samples` at each of `sizes`.
pub fn render_batch(samples: Vec<Sample>, sizes: &[usize], device: &Device) -> Result<Batch, String> {
    let b = samples.len();
    let mut images = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let mut v = Vec::with_capacity(b * 3 * size * size);
        for s in &samples {
            v.extend(planar(&render(&s.scene, size)?, size));
        }
        images.push(tensor_from(v, [b, 3, size, size], device));
    }
    let captions = samples.iter().map(|s| s.caption.clone()).collect();
    Ok(Batch {
        samples,
        captions,
        images,
    })
}
