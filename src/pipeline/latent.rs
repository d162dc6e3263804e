//! The latent-space arithmetic of the paper, on plain vectors (embeddings are small).

/// Spherical interpolation between `a` and `b` by `theta` ∈ [0, 1]: the directions move along
/// the great circle, sin((1−θ)Ω)/sin Ω · â + sin(θΩ)/sin Ω · b̂ with Ω the angle from the dot
/// product, and the length moves linearly from ‖a‖ to ‖b‖ (CLIP embeddings in Karlo are not
/// unit length; for unit vectors this is the textbook slerp, and equal θ steps are equal
/// angles either way). Falls back to a linear blend when the vectors are (anti)parallel,
/// where the formula divides by sin Ω ≈ 0.
pub fn slerp(a: &[f32], b: &[f32], theta: f32) -> Vec<f32> {
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return lerp(a, b, theta);
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 / na) * (*y as f64 / nb)).sum();
    let omega = dot.clamp(-1.0, 1.0).acos();
    let s = omega.sin();
    if s.abs() < 1e-6 {
        return lerp(a, b, theta);
    }
    let t = theta as f64;
    let (wa, wb) = (((1.0 - t) * omega).sin() / s, (t * omega).sin() / s);
    let len = (1.0 - t) * na + t * nb;
    a.iter().zip(b).map(|(x, y)| ((wa * *x as f64 / na + wb * *y as f64 / nb) * len) as f32).collect()
}

pub fn lerp(a: &[f32], b: &[f32], theta: f32) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + (y - x) * theta).collect()
}

pub fn norm(a: &[f32]) -> f64 {
    a.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt()
}

pub fn normalize(a: &[f32]) -> Vec<f32> {
    let n = norm(a);
    if n == 0.0 { a.to_vec() } else { a.iter().map(|x| (*x as f64 / n) as f32).collect() }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>() / (na * nb)
}

/// The paper's text diff: z_d = norm(z_t − z_t0), then slerp(ẑ_i, z_d, θ), rescaled to
/// ‖z_i‖ so the decoder sees an embedding of the usual length.
pub fn text_diff(z_i: &[f32], z_t: &[f32], z_t0: &[f32], theta: f32) -> Vec<f32> {
    let diff: Vec<f32> = z_t.iter().zip(z_t0).map(|(t, t0)| t - t0).collect();
    let z_d = normalize(&diff);
    let dir = slerp(&normalize(z_i), &z_d, theta);
    let scale = norm(z_i) / norm(&dir).max(1e-12);
    dir.iter().map(|x| (*x as f64 * scale) as f32).collect()
}
