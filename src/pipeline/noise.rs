//! Where a run's Gaussian noise comes from: a PyTorch-compatible generator (so a seed gives
//! diffusers' picture), or tensors supplied by the caller (fixtures, GPU parity).

use std::collections::VecDeque;

use burn::prelude::*;

use super::PipelineError;
use crate::diffusion::rng::TorchGenerator;
use crate::model::nn::tensor_from;

pub enum Noise {
    Torch(TorchGenerator),
    Supplied(VecDeque<Vec<f32>>),
}

impl Noise {
    pub fn seeded(seed: u64) -> Self {
        Noise::Torch(TorchGenerator::new(seed))
    }

    pub fn draw<const D: usize>(&mut self, shape: [usize; D], device: &Device) -> Result<Tensor<D>, PipelineError> {
        let n: usize = shape.iter().product();
        let values = match self {
            Noise::Torch(g) => g.randn(&shape).map_err(|e| PipelineError::Input(format!("noise: {e:?}")))?,
            Noise::Supplied(q) => {
                let v = q.pop_front().ok_or_else(|| PipelineError::Input("supplied noise ran out".into()))?;
                if v.len() != n {
                    return Err(PipelineError::Input(format!("supplied noise has {} values, {n} needed", v.len())));
                }
                v
            }
        };
        Ok(tensor_from(values, shape, device))
    }

    /// `n` uniform numbers in [0, 1) (the autoregressive prior's token draws).
    pub fn uniform(&mut self, n: usize) -> Result<Vec<f64>, PipelineError> {
        match self {
            Noise::Torch(g) => Ok((0..n).map(|_| g.uniform()).collect()),
            Noise::Supplied(_) => Err(PipelineError::Input("supplied noise has no uniform stream".into())),
        }
    }
}
