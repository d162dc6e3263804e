//! Stage 1: a CLIP for the shapes world — text and image towers with projections, trained
//! with the symmetric contrastive loss and a learned temperature.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use super::data::contrastive_batch;
use super::run::{Budget, StageRun};
use super::world::{Colour, Position, Scene, Shape, Size, World};
use crate::model::clip_text::ClipTextModelWithProjection;
use crate::model::clip_vision::ClipVisionModelWithProjection;
use crate::model::nn::{tensor_from, to_vec};
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

/// Linear read-outs of the image embedding, one per attribute of the world (shape, colour,
/// background, size, position), trained beside the contrastive loss and not exported.
/// Contrastive batches let CLIP get by on colour and background alone: the embedding then
/// carries no shape (zero-shot shape at chance), and the decoder cannot draw what the
/// embedding does not hold. The read-outs make every attribute linearly present.
#[derive(Module, Debug)]
pub struct AttributeProbe {
    pub head: Linear,
}

/// Classes per attribute, in the probe's output order.
const ATTRIBUTES: [usize; 5] = [Shape::ALL.len(), Colour::ALL.len(), Colour::ALL.len(), Size::ALL.len(), Position::ALL.len()];

impl AttributeProbe {
    pub fn init(embed_dim: usize, device: &Device) -> Self {
        Self { head: LinearConfig::new(embed_dim, ATTRIBUTES.iter().sum()).init(device) }
    }

    /// Mean cross-entropy of the five read-outs against the scenes' attributes.
    pub fn loss(&self, image_embeds: Tensor<2>, scenes: &[Scene]) -> Tensor<1> {
        let device = image_embeds.device();
        let b = scenes.len();
        let logits = self.head.forward(image_embeds);
        let mut total: Option<Tensor<1>> = None;
        let mut offset = 0;
        for (k, &n) in ATTRIBUTES.iter().enumerate() {
            let mut onehot = vec![0f32; b * n];
            for (r, sc) in scenes.iter().enumerate() {
                let class = match k {
                    0 => class_of(&Shape::ALL, &sc.shape),
                    1 => class_of(&Colour::ALL, &sc.colour),
                    2 => class_of(&Colour::ALL, &sc.background),
                    3 => class_of(&Size::ALL, &sc.size),
                    _ => class_of(&Position::ALL, &sc.position),
                };
                onehot[r * n + class] = 1.0;
            }
            let target = tensor_from(onehot, [b, n], &device);
            let ce = (log_softmax(logits.clone().narrow(1, offset, n), 1) * target)
                .sum_dim(1)
                .mean()
                .neg()
                .reshape([1]);
            total = Some(match total {
                Some(t) => t + ce,
                None => ce,
            });
            offset += n;
        }
        total.map(|t| t.div_scalar(ATTRIBUTES.len() as f64)).unwrap_or_else(|| Tensor::zeros([1], &device))
    }
}

/// Index of `v` in `all` (the attribute's class number).
fn class_of<T: PartialEq>(all: &[T], v: &T) -> usize {
    all.iter().position(|x| x == v).unwrap_or(0)
}

/// What the CLIP stage optimises; only `pair` is checkpointed and exported (the probe
/// re-learns in a few steps after a resume).
#[derive(Module, Debug)]
pub struct ClipTrainee {
    pub pair: ClipPair,
    pub probe: AttributeProbe,
}

impl ClipPair {
    /// Symmetric InfoNCE over the batch; also returns image→text top-1 accuracy and the
    /// (unnormalised) image embeddings.
    pub fn loss(&self, ids: &[Vec<u32>], images: Tensor<4>) -> Result<(Tensor<1>, f64, Tensor<2>), String> {
        let device = images.device();
        let b = ids.len();
        let t = l2_normalize(
            self.text
                .forward(ids, &device)
                .map_err(|e| e.to_string())?
                .text_embeds,
        );
        let raw = self.vision.forward(images).map_err(|e| e.to_string())?;
        let v = l2_normalize(raw.clone());
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
        Ok((loss, acc, raw))
    }
}

/// Trains the pair from `start_step`; returns the trained pair and the last accuracy.
pub fn train(
    mut trainee: ClipTrainee,
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
        let data = contrastive_batch(world, step, budget.batch, device)?;
        let (ids, _) = tokenize(tok, &data.captions)?;
        let image = data.images.into_iter().next().ok_or("no images")?;
        let (contrastive, a, embeds) = trainee.pair.loss(&ids, image)?;
        let scenes: Vec<Scene> = data.samples.iter().map(|s| s.scene).collect();
        let loss = contrastive + trainee.probe.loss(embeds, &scenes);
        recent.push(a);
        if recent.len() > 20 {
            recent.remove(0);
        }
        let value = to_vec(loss.clone())[0] as f64;
        if !value.is_finite() {
            return Err(format!("clip: loss became {value} at step {step}"));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &trainee);
        trainee = optim.step(budget.lr_at(step), trainee, grads);
        run.record(step, value);
        if run.should_checkpoint(step) {
            run.checkpoint(&trainee.pair, None, step + 1)?;
        }
    }
    let acc = if recent.is_empty() { 0.0 } else { recent.iter().sum::<f64>() / recent.len() as f64 };
    Ok((trainee.pair, acc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::world::Split;

    #[test]
    fn attribute_readouts_start_at_uniform_and_learn_from_an_embedding_that_holds_the_attributes() {
        let device = Device::flex().autodiff();
        let world = World::new(5);
        let scenes: Vec<Scene> = (0..32).map(|i| world.sample(i, Split::Train).scene).collect();
        // An "embedding" that is the one-hot attributes themselves.
        let mut rows = Vec::new();
        for sc in &scenes {
            let mut r = vec![0f32; 32];
            r[sc.shape as usize] = 1.0;
            r[5 + sc.colour as usize] = 1.0;
            r[13 + sc.background as usize] = 1.0;
            r[21 + sc.size as usize] = 1.0;
            r[23 + sc.position as usize] = 1.0;
            rows.extend(r);
        }
        let x = tensor_from(rows, [32, 32], &device);
        let mut probe = AttributeProbe::init(32, &device);
        let zero = |t: Tensor<2>| Param::from_tensor(t.zeros_like());
        probe.head.weight = zero(probe.head.weight.val());
        probe.head.bias = probe.head.bias.map(|b| Param::from_tensor(b.val().zeros_like()));
        let uniform: f64 = ATTRIBUTES.iter().map(|&n| (n as f64).ln()).sum::<f64>() / ATTRIBUTES.len() as f64;
        let first = to_vec(probe.loss(x.clone(), &scenes))[0] as f64;
        assert!((first - uniform).abs() < 1e-5, "{first} vs {uniform}");
        let mut optim = AdamWConfig::new().init();
        for _ in 0..200 {
            let loss = probe.loss(x.clone(), &scenes);
            let grads = GradientsParams::from_grads(loss.backward(), &probe);
            probe = optim.step(5e-2, probe, grads);
        }
        let last = to_vec(probe.loss(x, &scenes))[0] as f64;
        assert!(last < 0.1 * uniform, "read-outs did not learn: {first} → {last}");
    }
}
