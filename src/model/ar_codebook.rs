//! The autoregressive prior's token space (the paper's §2.1 and Appendix C): a CLIP image
//! embedding is projected on its principal components, sorted by eigenvalue, and each
//! coordinate is quantised into buckets; the sequence of bucket indices is what the causal
//! transformer predicts. Also the buckets of the z_i·z_t conditioning value. Host-side
//! arithmetic only: fitting on training embeddings, encoding, decoding.

/// PCA basis and quantisation buckets, fitted on training embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    /// Embedding width E.
    pub dim: usize,
    /// Mean embedding, `[E]`.
    pub mean: Vec<f32>,
    /// Kept principal directions, `[K, E]` row-major, largest eigenvalue first.
    pub components: Vec<f32>,
    /// Buckets per coordinate (B).
    pub buckets: usize,
    /// Interior bucket edges per coordinate, `[K, B − 1]`, ascending.
    pub edges: Vec<f32>,
    /// The value each bucket decodes to (the mean of its training values), `[K, B]`.
    pub centres: Vec<f32>,
    /// Interior edges of the z_i·z_t buckets, `[D − 1]`, ascending.
    pub dot_edges: Vec<f32>,
}

/// Which half of the z_i·z_t range a sample is conditioned on. The paper samples with the
/// top half (images that match their caption more closely).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DotHalf {
    High,
    Low,
}

impl Codebook {
    pub fn components_kept(&self) -> usize {
        self.components.len() / self.dim.max(1)
    }

    pub fn dot_buckets(&self) -> usize {
        self.dot_edges.len() + 1
    }

    /// Coordinates of `z` `[E]` on the kept components.
    pub fn project(&self, z: &[f32]) -> Vec<f32> {
        self.components
            .chunks_exact(self.dim)
            .map(|c| c.iter().zip(z).zip(&self.mean).map(|((a, x), m)| a * (x - m)).sum())
            .collect()
    }

    /// The embedding with these coordinates (the dropped components at their mean).
    pub fn reconstruct(&self, coords: &[f32]) -> Vec<f32> {
        let mut z = self.mean.clone();
        for (c, &a) in self.components.chunks_exact(self.dim).zip(coords) {
            for (zi, ci) in z.iter_mut().zip(c) {
                *zi += a * ci;
            }
        }
        z
    }

    /// `z` `[E]` → one bucket index per kept component.
    pub fn encode(&self, z: &[f32]) -> Vec<usize> {
        let b = self.buckets;
        self.project(z)
            .iter()
            .enumerate()
            .map(|(j, &x)| bucket_of(&self.edges[j * (b - 1)..(j + 1) * (b - 1)], x))
            .collect()
    }

    /// Bucket indices → embedding `[E]`; out-of-range indices take the last bucket.
    pub fn decode(&self, tokens: &[usize]) -> Vec<f32> {
        let b = self.buckets;
        let coords: Vec<f32> =
            tokens.iter().enumerate().map(|(j, &t)| self.centres[j * b + t.min(b - 1)]).collect();
        self.reconstruct(&coords)
    }

    /// The bucket of a z_i·z_t cosine.
    pub fn dot_bucket(&self, cosine: f32) -> usize {
        bucket_of(&self.dot_edges, cosine)
    }

    /// A z_i·z_t bucket drawn from one half of the range, from a uniform number in [0, 1).
    pub fn dot_in_half(&self, half: DotHalf, u: f64) -> usize {
        let d = self.dot_buckets();
        match half {
            DotHalf::High => d / 2 + pick(u, d - d / 2),
            DotHalf::Low => pick(u, (d / 2).max(1)),
        }
    }

    /// The embedding of uniformly drawn buckets, one uniform number in [0, 1) per kept
    /// component: the training spread of every component, and nothing of any caption (the
    /// baseline a prior is compared with).
    pub fn random_embedding(&self, u: &[f64]) -> Vec<f32> {
        let tokens: Vec<usize> = u.iter().map(|&x| pick(x, self.buckets)).collect();
        self.decode(&tokens)
    }

    /// Fits the basis and buckets on `embeds` (`n` rows of `dim`) and their z_i·z_t values.
    /// Keeps the fewest components that explain `variance` of the total (at least one).
    pub fn fit(
        embeds: &[f32],
        dim: usize,
        variance: f64,
        buckets: usize,
        dots: &[f32],
        dot_buckets: usize,
    ) -> Result<Codebook, String> {
        let n = embeds.len() / dim.max(1);
        if dim == 0 || n < buckets.max(dot_buckets) || embeds.len() != n * dim || dots.len() != n {
            return Err(format!("codebook: {n} embeddings of width {dim} cannot fill {buckets} buckets"));
        }
        if buckets < 2 || dot_buckets < 2 {
            return Err("codebook: at least two buckets are needed".into());
        }
        let mean: Vec<f64> =
            (0..dim).map(|j| embeds.iter().skip(j).step_by(dim).map(|&v| v as f64).sum::<f64>() / n as f64).collect();
        let mut cov = vec![0f64; dim * dim];
        for row in embeds.chunks_exact(dim) {
            for a in 0..dim {
                let da = row[a] as f64 - mean[a];
                for b in a..dim {
                    cov[a * dim + b] += da * (row[b] as f64 - mean[b]);
                }
            }
        }
        for a in 0..dim {
            for b in a..dim {
                let v = cov[a * dim + b] / (n - 1) as f64;
                cov[a * dim + b] = v;
                cov[b * dim + a] = v;
            }
        }
        let (values, vectors) = symmetric_eigen(&cov, dim);
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
        let mut kept = 0;
        let mut acc = 0.0;
        for &i in &order {
            kept += 1;
            acc += values[i].max(0.0);
            if total <= 0.0 || acc >= variance * total {
                break;
            }
        }
        // Eigenvector i is column i of `vectors`.
        let vectors = &vectors;
        let components: Vec<f32> =
            order[..kept].iter().flat_map(|&i| (0..dim).map(move |r| vectors[r * dim + i] as f32)).collect();
        let mut book = Codebook {
            dim,
            mean: mean.iter().map(|&m| m as f32).collect(),
            components,
            buckets,
            edges: Vec::with_capacity(kept * (buckets - 1)),
            centres: Vec::with_capacity(kept * buckets),
            dot_edges: quantile_edges(dots.to_vec(), dot_buckets),
        };
        let coords: Vec<Vec<f32>> = embeds.chunks_exact(dim).map(|z| book.project(z)).collect();
        for j in 0..kept {
            let column: Vec<f32> = coords.iter().map(|c| c[j]).collect();
            let edges = quantile_edges(column.clone(), buckets);
            let mut sum = vec![0f64; buckets];
            let mut count = vec![0usize; buckets];
            for &x in &column {
                let k = bucket_of(&edges, x);
                sum[k] += x as f64;
                count[k] += 1;
            }
            for k in 0..buckets {
                // An empty bucket (repeated values) decodes to the middle of its edges.
                let lo = if k == 0 { edges[0] } else { edges[k - 1] };
                let hi = if k == buckets - 1 { edges[buckets - 2] } else { edges[k] };
                let c = if count[k] > 0 { (sum[k] / count[k] as f64) as f32 } else { 0.5 * (lo + hi) };
                book.centres.push(c);
            }
            book.edges.extend(edges);
        }
        Ok(book)
    }
}

/// One of `n` choices from a uniform number in [0, 1).
fn pick(u: f64, n: usize) -> usize {
    ((u * n as f64) as usize).min(n.saturating_sub(1))
}

/// Index of the bucket `x` falls in, given ascending interior edges (NaN goes to bucket 0).
fn bucket_of(edges: &[f32], x: f32) -> usize {
    edges.partition_point(|&e| e <= x)
}

/// Interior edges that split `values` into `buckets` groups of (nearly) equal count.
fn quantile_edges(mut values: Vec<f32>, buckets: usize) -> Vec<f32> {
    values.sort_by(f32::total_cmp);
    let n = values.len();
    (1..buckets).map(|i| values[(i * n / buckets).min(n - 1)]).collect()
}

/// Eigen-decomposition of a symmetric `n × n` matrix by cyclic Jacobi rotations: returns the
/// eigenvalues and the eigenvectors as the columns of an `n × n` row-major matrix. Jacobi is
/// slow for large `n` but exact to rounding, and the embeddings here are at most a few
/// thousand wide.
fn symmetric_eigen(m: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec();
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..n).flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q))).map(|(p, q)| a[p * n + q].powi(2)).sum();
        if off.sqrt() <= 1e-14 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A ← Jᵀ A J, applied to rows and columns p, q.
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Correlated Gaussian-ish data with a known spectrum (a few strong directions).
    fn data(n: usize, dim: usize) -> (Vec<f32>, Vec<f32>) {
        let mut s = 0x1234_5678_u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut rows = Vec::with_capacity(n * dim);
        let mut dots = Vec::with_capacity(n);
        for _ in 0..n {
            let a = [next() * 4.0, next() * 2.0, next() * 1.0];
            for j in 0..dim {
                let v = a[0] * ((j as f64) * 0.3).sin() + a[1] * ((j as f64) * 0.7).cos() + a[2] * (j % 3) as f64 + 0.01 * next();
                rows.push(v as f32 + 0.5);
            }
            dots.push(next() as f32);
        }
        (rows, dots)
    }

    #[test]
    fn pca_with_every_component_reconstructs_an_embedding_exactly() {
        let (rows, dots) = data(600, 12);
        let book = Codebook::fit(&rows, 12, 1.0, 16, &dots, 8).unwrap();
        assert_eq!(book.components_kept(), 12);
        for z in rows.chunks_exact(12).take(50) {
            let back = book.reconstruct(&book.project(z));
            for (a, b) in z.iter().zip(&back) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn pca_keeps_the_strong_directions_and_drops_only_the_noise() {
        let (rows, dots) = data(600, 12);
        let book = Codebook::fit(&rows, 12, 0.999, 16, &dots, 8).unwrap();
        // Three directions carry the data; the noise is 1e-2 of the smallest.
        assert_eq!(book.components_kept(), 3);
        let worst = rows
            .chunks_exact(12)
            .map(|z| z.iter().zip(book.reconstruct(&book.project(z))).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max))
            .fold(0f32, f32::max);
        assert!(worst < 0.05, "round trip error {worst}");
        // The components are orthonormal.
        let c = &book.components;
        for i in 0..3 {
            for j in 0..3 {
                let d: f32 = (0..12).map(|k| c[i * 12 + k] * c[j * 12 + k]).sum();
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn a_quantised_coordinate_decodes_within_its_bucket() {
        let (rows, dots) = data(2000, 12);
        let book = Codebook::fit(&rows, 12, 1.0, 32, &dots, 8).unwrap();
        let b = book.buckets;
        for z in rows.chunks_exact(12).take(200) {
            let tokens = book.encode(z);
            let coords = book.project(z);
            for (j, (&t, &x)) in tokens.iter().zip(&coords).enumerate() {
                assert!(t < b);
                let edges = &book.edges[j * (b - 1)..(j + 1) * (b - 1)];
                let c = book.centres[j * b + t];
                // The value and its bucket's centre lie between the same two edges.
                if t > 0 {
                    assert!(x >= edges[t - 1] && c >= edges[t - 1], "bucket {t}: {x} / {c} below {}", edges[t - 1]);
                }
                if t < b - 1 {
                    assert!(x < edges[t] && c <= edges[t], "bucket {t}: {x} / {c} above {}", edges[t]);
                }
            }
        }
        // Equal-count buckets: each holds about 1/B of the training values.
        let counts = rows.chunks_exact(12).fold(vec![0usize; b], |mut acc, z| {
            acc[book.encode(z)[0]] += 1;
            acc
        });
        assert!(counts.iter().all(|&c| c > 2000 / b / 2), "{counts:?}");
    }

    #[test]
    fn dot_product_halves_cover_the_top_and_bottom_buckets() {
        let (rows, dots) = data(600, 12);
        let book = Codebook::fit(&rows, 12, 1.0, 16, &dots, 8).unwrap();
        assert_eq!(book.dot_in_half(DotHalf::High, 0.0), 4);
        assert_eq!(book.dot_in_half(DotHalf::High, 0.9999), 7);
        assert_eq!(book.dot_in_half(DotHalf::Low, 0.9999), 3);
        assert!(book.dot_bucket(f32::INFINITY) == 7 && book.dot_bucket(f32::NEG_INFINITY) == 0);
    }

    #[test]
    fn too_few_embeddings_for_the_buckets_is_an_error() {
        let (rows, dots) = data(10, 12);
        assert!(Codebook::fit(&rows, 12, 1.0, 16, &dots, 8).is_err());
    }
}
