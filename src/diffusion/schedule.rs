//! Noise-schedule arithmetic of diffusers' `UnCLIPScheduler` (no tensors).
//!
//! Parity notes (checked against diffusers 0.33.1 / torch 2.15 on CPU):
//! * Betas come from `betas_for_alpha_bar` in Python `float` (f64) arithmetic,
//!   `min(1 - ᾱ(t2)/ᾱ(t1), 0.999)` with ᾱ(t) = cos²(((t + 0.008)/1.008)·π/2), and are then
//!   stored as float32. The square is Python's `** 2`, i.e. libm `pow(x, 2.0)`, mirrored
//!   with `powf(2.0)` (glibc gives exactly `x * x` here: no beta differs for any T ≤ 2000).
//! * `alphas = 1.0 - betas` is a float32 subtraction; `torch.cumprod` on CPU accumulates
//!   in f64 (`acc_type<float>`) and rounds each running product to float32.
//! * `set_timesteps(n)` uses `step_ratio = (T - 1)/(n - 1)` and numpy's `round`, which
//!   rounds half to even (n = 7 gives 832 and 166, not 833 and 167).
//!
//! Errors: `unclip_timesteps` rejects `n < 2` (diffusers divides by zero at n = 1), `n > T`
//! (the list would repeat timesteps) and T > 2^32. The other functions accept any input:
//! an empty schedule is simply empty.

use std::fmt;

/// Clamp on each beta used by diffusers' `betas_for_alpha_bar`.
const MAX_BETA: f64 = 0.999;

/// Upper bound on T accepted by [`unclip_timesteps`].
const MAX_TRAIN_TIMESTEPS: u64 = 1 << 32;

/// Invalid request for an inference timestep list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// Fewer than two inference steps: the UnCLIP spacing `(T - 1)/(n - 1)` needs n ≥ 2.
    TooFewInferenceSteps { num_inference_steps: usize },
    /// More inference steps than training timesteps (also covers T = 0).
    TooManyInferenceSteps {
        num_inference_steps: usize,
        num_train_timesteps: usize,
    },
    /// T above 2^32: beyond any real schedule, and where the f64 spacing would stop being
    /// exact on integers.
    TooManyTrainTimesteps { num_train_timesteps: usize },
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::TooFewInferenceSteps {
                num_inference_steps,
            } => write!(
                f,
                "UnCLIP scheduling needs at least 2 inference steps, got {num_inference_steps}"
            ),
            ScheduleError::TooManyInferenceSteps {
                num_inference_steps,
                num_train_timesteps,
            } => {
                write!(
                    f,
                    "{num_inference_steps} inference steps exceed the {num_train_timesteps} \
                     training timesteps"
                )
            }
            ScheduleError::TooManyTrainTimesteps {
                num_train_timesteps,
            } => {
                write!(
                    f,
                    "{num_train_timesteps} training timesteps is more than 2^32"
                )
            }
        }
    }
}

impl std::error::Error for ScheduleError {}

/// ᾱ(t) of the cosine schedule, evaluated with the same operation order as diffusers.
fn cosine_alpha_bar(t: f64) -> f64 {
    ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
        .cos()
        .powf(2.0)
}

/// `betas_for_alpha_bar(T, max_beta=0.999, "cosine")` as used by the "squaredcos_cap_v2"
/// schedule, cast to f32 like `torch.tensor(betas, dtype=torch.float32)`.
pub fn squaredcos_cap_v2_betas(num_train_timesteps: usize) -> Vec<f32> {
    let n = num_train_timesteps as f64;
    (0..num_train_timesteps)
        .map(|i| {
            let t1 = i as f64 / n;
            let t2 = (i + 1) as f64 / n;
            let beta = 1.0 - cosine_alpha_bar(t2) / cosine_alpha_bar(t1);
            // Python's min(a, b) keeps `a` unless b < a.
            let beta = if MAX_BETA < beta { MAX_BETA } else { beta };
            beta as f32
        })
        .collect()
}

/// ᾱ at `t` from a cumulative-product table, or 1 before the first timestep (`None`: the
/// clean image).
pub fn alpha_bar_at(alphas_cumprod: &[f32], t: Option<usize>) -> f32 {
    t.map(|t| alphas_cumprod[t]).unwrap_or(1.0)
}

/// `torch.cumprod(1.0 - betas, dim=0)` on CPU: f32 alphas, f64 running product, each
/// element rounded to f32.
pub fn alphas_cumprod(betas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    betas
        .iter()
        .map(|&beta| {
            acc *= (1.0f32 - beta) as f64;
            acc as f32
        })
        .collect()
}

/// `UnCLIPScheduler.set_timesteps(n).timesteps` for `num_train_timesteps = T`:
/// `round_half_even(i · (T - 1)/(n - 1))` for i in 0..n, in descending order.
pub fn unclip_timesteps(
    num_train_timesteps: usize,
    num_inference_steps: usize,
) -> Result<Vec<usize>, ScheduleError> {
    if num_inference_steps < 2 {
        return Err(ScheduleError::TooFewInferenceSteps {
            num_inference_steps,
        });
    }
    if num_train_timesteps as u64 > MAX_TRAIN_TIMESTEPS {
        return Err(ScheduleError::TooManyTrainTimesteps {
            num_train_timesteps,
        });
    }
    if num_inference_steps > num_train_timesteps {
        return Err(ScheduleError::TooManyInferenceSteps {
            num_inference_steps,
            num_train_timesteps,
        });
    }
    let step_ratio = (num_train_timesteps - 1) as f64 / (num_inference_steps - 1) as f64;
    // Each value lies in [0, T - 1], so the cast back to usize is exact.
    Ok((0..num_inference_steps)
        .rev()
        .map(|i| (i as f64 * step_ratio).round_ties_even() as usize)
        .collect())
}

/// Pairs each timestep with the next one in the list (`None` after the last), i.e. the
/// (t, t_prev) transitions of a sampling loop. Walk the pairs backwards for DDIM
/// inversion so both directions use the same transitions.
pub fn ddim_pairs(timesteps: &[usize]) -> Vec<(usize, Option<usize>)> {
    timesteps
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, timesteps.get(i + 1).copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fixture data from diffusers 0.33.1 + torch 2.15.0 (CPU), printed as float32 bit
    // patterns by tests/reference/check_math.py:
    //   s = UnCLIPScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2")
    //   s.betas.view(torch.int32), s.alphas_cumprod.view(torch.int32)

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn betas_t1000_match_diffusers() {
        let b = squaredcos_cap_v2_betas(1000);
        assert_eq!(b.len(), 1000);
        // s.betas[:4], s.betas[500], s.betas[-2:] for T = 1000
        assert_eq!(
            bits(&b[..4]),
            vec![0x382d2899, 0x38418854, 0x3855e847, 0x386a4876]
        );
        assert_eq!(b[500].to_bits(), BETA_T1000_500);
        assert_eq!(bits(&b[998..]), BETA_T1000_LAST2.to_vec());
        // The cap binds at the very end of the cosine schedule.
        assert_eq!(b[999], 0.999f32);
    }

    #[test]
    fn alphas_cumprod_t1000_match_torch() {
        let a = alphas_cumprod(&squaredcos_cap_v2_betas(1000));
        // s.alphas_cumprod[:4], [500], [-2:] for T = 1000
        assert_eq!(
            bits(&a[..4]),
            vec![0x3f7ffd4b, 0x3f7ffa45, 0x3f7ff6ed, 0x3f7ff344]
        );
        assert_eq!(a[500].to_bits(), ACP_T1000_500);
        assert_eq!(bits(&a[998..]), ACP_T1000_LAST2.to_vec());
    }

    #[test]
    fn small_schedules_match_diffusers() {
        // T = 1: a single capped-or-not beta; T = 64: first values.
        assert_eq!(bits(&squaredcos_cap_v2_betas(1)), vec![0x3f7fbe77]);
        assert_eq!(
            bits(&alphas_cumprod(&squaredcos_cap_v2_betas(1))),
            vec![0x3a831200]
        );
        let b64 = squaredcos_cap_v2_betas(64);
        assert_eq!(bits(&b64[..3]), vec![0x3a9d3a30, 0x3b1c4bbc, 0x3b6a123e]);
        let a64 = alphas_cumprod(&b64);
        assert_eq!(bits(&a64[..3]), vec![0x3f7fb163, 0x3f7f1547, 0x3f7e2c0c]);
    }

    #[test]
    fn cumprod_accumulates_in_f64() {
        // A running product in f32 would drift; the f64 one rounds each prefix once.
        let betas = vec![1e-4f32; 5000];
        let got = alphas_cumprod(&betas);
        let alpha = (1.0f32 - 1e-4f32) as f64;
        let mut p = 1.0f64;
        for (i, g) in got.iter().enumerate() {
            p *= alpha;
            assert_eq!(*g, p as f32, "index {i}");
        }
        assert!(alphas_cumprod(&[]).is_empty());
        assert!(squaredcos_cap_v2_betas(0).is_empty());
    }

    #[test]
    fn timesteps_match_diffusers() {
        // UnCLIPScheduler(num_train_timesteps=1000).set_timesteps(n); .timesteps.tolist()
        assert_eq!(unclip_timesteps(1000, 2).unwrap(), vec![999, 0]);
        assert_eq!(
            unclip_timesteps(1000, 7).unwrap(),
            vec![999, 832, 666, 500, 333, 166, 0]
        );
        assert_eq!(
            unclip_timesteps(1000, 25).unwrap(),
            vec![
                999, 957, 916, 874, 832, 791, 749, 708, 666, 624, 583, 541, 500, 458, 416, 375,
                333, 291, 250, 208, 166, 125, 83, 42, 0
            ]
        );
        assert_eq!(unclip_timesteps(1000, 50).unwrap(), T1000_N50.to_vec());
        let all = unclip_timesteps(1000, 1000).unwrap();
        assert_eq!(all, (0..1000).rev().collect::<Vec<_>>());
        // UnCLIPScheduler(num_train_timesteps=10).set_timesteps(4)
        assert_eq!(unclip_timesteps(10, 4).unwrap(), vec![9, 6, 3, 0]);
    }

    #[test]
    fn timesteps_are_strictly_decreasing_for_all_valid_n() {
        for t in [2usize, 3, 17, 1000] {
            for n in 2..=t {
                let ts = unclip_timesteps(t, n).unwrap();
                assert_eq!(ts.len(), n);
                assert_eq!((ts[0], ts[n - 1]), (t - 1, 0));
                assert!(ts.windows(2).all(|w| w[0] > w[1]), "T={t} n={n}");
            }
        }
    }

    #[test]
    fn timesteps_reject_bad_counts() {
        assert_eq!(
            unclip_timesteps(1000, 0),
            Err(ScheduleError::TooFewInferenceSteps {
                num_inference_steps: 0
            })
        );
        assert_eq!(
            unclip_timesteps(1000, 1),
            Err(ScheduleError::TooFewInferenceSteps {
                num_inference_steps: 1
            })
        );
        assert_eq!(
            unclip_timesteps(1000, 1001),
            Err(ScheduleError::TooManyInferenceSteps {
                num_inference_steps: 1001,
                num_train_timesteps: 1000
            })
        );
        assert!(unclip_timesteps(0, 2).is_err());
        assert_eq!(
            unclip_timesteps(usize::MAX, usize::MAX),
            Err(ScheduleError::TooManyTrainTimesteps {
                num_train_timesteps: usize::MAX
            })
        );
        let msg = unclip_timesteps(5, 1).unwrap_err().to_string();
        assert!(msg.contains("at least 2"), "{msg}");
    }

    #[test]
    fn ddim_pairs_link_consecutive_steps() {
        assert_eq!(
            ddim_pairs(&[999, 500, 0]),
            vec![(999, Some(500)), (500, Some(0)), (0, None)]
        );
        assert_eq!(ddim_pairs(&[7]), vec![(7, None)]);
        assert!(ddim_pairs(&[]).is_empty());
        // Inversion walks the same transitions in reverse.
        let inv: Vec<_> = ddim_pairs(&[999, 500, 0]).into_iter().rev().collect();
        assert_eq!(inv[0], (0, None));
        assert_eq!(inv[2], (999, Some(500)));
    }

    const BETA_T1000_500: u32 = 0x3b4ecfb8;
    const BETA_T1000_LAST2: [u32; 2] = [0x3f3ffff6, 0x3f7fbe77];
    const ACP_T1000_500: u32 = 0x3efc0cc9;
    const ACP_T1000_LAST2: [u32; 2] = [0x3622fde3, 0x3126e6c2];
    // UnCLIPScheduler(num_train_timesteps=1000).set_timesteps(50); .timesteps.tolist()
    const T1000_N50: [usize; 50] = [
        999, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754, 734, 714, 693, 673, 652,
        632, 612, 591, 571, 550, 530, 510, 489, 469, 449, 428, 408, 387, 367, 347, 326, 306, 285,
        265, 245, 224, 204, 183, 163, 143, 122, 102, 82, 61, 41, 20, 0,
    ];
}
