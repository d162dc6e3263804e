//! Stage 1: a CLIP for the shapes world — text and image towers with projections, trained
//! with the symmetric contrastive loss and a learned temperature.

use burn::module::{Module, Param};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::data::batch;
use super::run::{Budget, StageRun};
use super::world::World;
use crate::model::clip_text::ClipTextModelWithProjection;
use crate::model::clip_vision::ClipVisionModelWithProjection;
use crate::model::nn::to_vec;
use crate::model::tokenizer::ClipTokenizer;

#[derive(Module, Debug)]
pub struct ClipPair {
    pub text: ClipTextModelWithProjection,
    pub vision: ClipVisionModelWithProjection,
    /// log of the inverse temperature (CLIP starts at 1/0.07).
    pub logit_scale: Param<Tensor<1>>,
}

pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let n = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-8);
    x / n
}

/// Token ids of captions (padded rows).
pub fn tokenize(
    tok: &ClipTokenizer,
    captions: &[String],
) -> Result<(Vec<Vec<u32>>, Vec<Vec<bool>>), String> {
    let mut ids = Vec::with_capacity(captions.len());
    let mut masks = Vec::with_capacity(captions.len());
    for c in captions {
        let t = tok.encode(c).map_err(|e| e.to_string())?;
        ids.push(t.ids);
        masks.push(t.mask);
    }
    Ok((ids, masks))
}

impl ClipPair {
    /// Symmetric InfoNCE over the batch; also returns image→text top-1 accuracy.
    pub fn loss(&self, ids: &[Vec<u32>], images: Tensor<4>) -> Result<(Tensor<1>, f64), String> {
        let device = images.device();
        let b = ids.len();
        let t = l2_normalize(
            self.text
                .forward(ids, &device)
                .map_err(|e| e.to_string())?
                .text_embeds,
        );
        let v = l2_normalize(self.vision.forward(images).map_err(|e| e.to_string())?);
        let scale = self
            .logit_scale
            .val()
            .clamp_max(100f32.ln())
            .exp()
            .reshape([1, 1]);
        let logits = v.matmul(t.transpose()) * scale;
        let eye: Tensor<2> = Tensor::<2>::eye(b, &device);
        let ce = |l: Tensor<2>| (log_softmax(l, 1) * eye.clone()).sum_dim(1).mean().neg();
        let loss = (ce(logits.clone()) + ce(logits.clone().transpose()))
            .div_scalar(2.0)
            .reshape([1]);
        let argmax = to_vec(logits.argmax(1).float());
        let acc = argmax
            .iter()
            .enumerate()
            .filter(|(i, a)| **a as usize == *i)
            .count() as f64
            / b as f64;
        Ok((loss, acc))
    }
}

/// Trains the pair from `start_step`; returns the trained pair and the last accuracy.
pub fn train(
    mut pair: ClipPair,
    tok: &ClipTokenizer,
    world: &World,
    run: &mut StageRun,
    start_step: usize,
    device: &Device,
) -> Result<(ClipPair, f64), String> {
    let budget: Budget = run.budget;
    let mut optim = AdamWConfig::new().with_weight_decay(0.01).init();
    // Mean in-batch retrieval over the last steps (one batch alone is noisy).
    let mut recent: Vec<f64> = Vec::new();
    for step in start_step..budget.steps {
        let data = batch(
            world,
            (step * budget.batch) as u64,
            budget.batch,
            &[32],
            device,
        )?;
        let (ids, _) = tokenize(tok, &data.captions)?;
        let image = data.images.into_iter().next().ok_or("no images")?;
        let (loss, a) = pair.loss(&ids, image)?;
        recent.push(a);
        if recent.len() > 20 {
            recent.remove(0);
        }
        let value = to_vec(loss.clone())[0] as f64;
        if !value.is_finite() {
            return Err(format!("clip: loss became {value} at step {step}"));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &pair);
        pair = optim.step(budget.lr_at(step), pair, grads);
        run.record(step, value);
        if run.should_checkpoint(step) {
            run.checkpoint(&pair, step + 1)?;
        }
    }
    let acc = if recent.is_empty() { 0.0 } else { recent.iter().sum::<f64>() / recent.len() as f64 };
    Ok((pair, acc))
}
