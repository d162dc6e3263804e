//! Moving pictures between the host and tensors: [-1, 1] NCHW tensors ↔ RGB8, resampling,
//! and CLIP's image preprocessing.

use burn::prelude::*;

use super::PipelineError;
use crate::tensor::Picture;
pub use crate::tensor::{strip, to_pictures, to_preview};
use crate::imaging::resample::{center_crop_rgb8, pil_resize_bicubic_rgb8, resize_bicubic_antialias, shortest_edge_size};
use crate::model::config::ImageProcessorConfig;
use crate::model::nn::{tensor_from, to_vec};

/// Antialiased bicubic resize of every image in a batch (PyTorch's `antialias=True` path,
/// which the super-resolution stage's conditioning image goes through).
pub fn resize_batch(x: Tensor<4>, out_h: usize, out_w: usize) -> Result<Tensor<4>, PipelineError> {
    let [b, c, h, w] = x.dims();
    if (h, w) == (out_h, out_w) {
        return Ok(x);
    }
    let device = x.device();
    let v = to_vec(x);
    let mut out = Vec::with_capacity(b * c * out_h * out_w);
    for img in v.chunks(c * h * w) {
        out.extend(resize_bicubic_antialias(img, c, h, w, out_h, out_w).map_err(|e| PipelineError::Input(e.to_string()))?);
    }
    Ok(tensor_from(out, [b, c, out_h, out_w], &device))
}

/// A picture as a `[1, 3, size, size]` tensor in [-1, 1], squashed to a square with the
/// antialiased bicubic filter (what the decoder sees when an image is inverted).
pub fn picture_to_tensor(p: &Picture, size: usize, device: &Device) -> Result<Tensor<4>, PipelineError> {
    let (w, h) = (p.width, p.height);
    let mut planar = vec![0f32; 3 * w * h];
    for (i, px) in p.rgb.chunks(3).enumerate() {
        for c in 0..3 {
            planar[c * w * h + i] = px[c] as f32 / 127.5 - 1.0;
        }
    }
    let out = resize_bicubic_antialias(&planar, 3, h, w, size, size).map_err(|e| PipelineError::Input(e.to_string()))?;
    Ok(tensor_from(out, [1, 3, size, size], device))
}

/// transformers `CLIPImageProcessor`: shortest-edge bicubic resize (Pillow's), centre crop,
/// rescale and normalise → `[1, 3, crop_h, crop_w]`.
pub fn clip_pixel_values(p: &Picture, cfg: &ImageProcessorConfig, device: &Device) -> Result<Tensor<4>, PipelineError> {
    let (mut w, mut h, mut rgb) = (p.width, p.height, p.rgb.clone());
    if cfg.do_resize {
        let (nw, nh) = shortest_edge_size(w, h, cfg.shortest_edge()).map_err(|e| PipelineError::Input(e.to_string()))?;
        rgb = pil_resize_bicubic_rgb8(&rgb, w, h, nw, nh).map_err(|e| PipelineError::Input(e.to_string()))?;
        (w, h) = (nw, nh);
    }
    let (ch, cw) = cfg.crop();
    if cfg.do_center_crop {
        rgb = center_crop_rgb8(&rgb, w, h, cw, ch).map_err(|e| PipelineError::Input(e.to_string()))?;
        (w, h) = (cw, ch);
    }
    let mut planar = vec![0f32; 3 * w * h];
    for (i, px) in rgb.chunks(3).enumerate() {
        for c in 0..3 {
            let mut v = px[c] as f64;
            if cfg.do_rescale {
                v *= cfg.rescale_factor;
            }
            if cfg.do_normalize {
                let mean = cfg.image_mean.get(c).copied().unwrap_or(0.0);
                let std = cfg.image_std.get(c).copied().unwrap_or(1.0);
                v = (v - mean) / std;
            }
            planar[c * w * h + i] = v as f32;
        }
    }
    Ok(tensor_from(planar, [1, 3, h, w], device))
}
