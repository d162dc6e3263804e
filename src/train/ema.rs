//! An exponential moving average of a trainee's weights, the copy published diffusion recipes
//! sample from (DDPM, improved DDPM, GLIDE, unCLIP). The raw weights keep training; the average
//! is what gets exported. It averages out the step-to-step noise of a small batch, which for an
//! undertrained model is most of what separates a sample from its caption.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

/// About a thousand steps of memory: the low end of the published range (0.999–0.9999),
/// because the shipped model trains for thousands of steps, not millions.
pub const EMA_DECAY: f64 = 0.999;

/// The averaged copy of `M`, on the plain (non-autodiff) device.
pub struct Ema<M: Module> {
    pub shadow: M,
    decay: f64,
    /// Updates since this average was started; the early decay is lower (see [`Ema::rate`]).
    updates: usize,
}

/// Collects a module's float parameters, flattened, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// Blends each parameter toward the collected one: `p ← d·p + (1 − d)·q`.
struct Blend {
    current: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(q) = self.current.next() else {
            return param;
        };
        let d = self.decay;
        param.map(|p| {
            let dims = p.dims();
            p.mul_scalar(d) + q.reshape(dims).mul_scalar(1.0 - d)
        })
    }
}

impl<M: Module> Ema<M> {
    /// Starts the average at the trainee's current weights.
    pub fn new(trainee: &M, decay: f64) -> Self {
        Self { shadow: trainee.valid(), decay, updates: 0 }
    }

    /// Continues an average saved earlier (`shadow` on the plain device).
    pub fn resume(shadow: M, decay: f64) -> Self {
        // Treat a restored average as settled: the warm-up already happened.
        Self { shadow, decay, updates: usize::MAX / 2 }
    }

    /// The warm-up of improved DDPM / timm: min(decay, (1 + n) / (10 + n)), so the first
    /// steps are not frozen to the initial weights.
    fn rate(&self) -> f64 {
        let n = self.updates as f64;
        self.decay.min((1.0 + n) / (10.0 + n))
    }

    /// Moves the average one step toward the trainee.
    pub fn update(&mut self, trainee: &M) {
        let mut collect = Collect(Vec::new());
        trainee.valid().visit(&mut collect);
        let mut blend = Blend { current: collect.0.into_iter(), decay: self.rate() };
        let shadow = std::mem::replace(&mut self.shadow, trainee.valid());
        self.shadow = shadow.map(&mut blend);
        self.updates = self.updates.saturating_add(1);
    }
}
