//! Stage 1: a CLIP for the shapes world — text and image towers with projections, trained
//! with the symmetric contrastive loss and a learned temperature.

use burn::module::{Module, Param};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::log_softmax;

use super::data::contrastive_batch;
use super::run::{Budget, StageRun};
use super::world::{Colour, Mentioned, Position, Scene, Shape, Size, World};
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

/// One learned direction per class of each attribute of the world (shape, colour,
/// background, size, position), shared by both towers and trained beside the contrastive
/// loss; not exported. Each unit embedding is read out by cosine against its attribute's
/// directions, images for every attribute, captions for those they state.
///
/// Why: contrastive batches are separated by colour, background and shape long before
/// placement matters, and where an object sits is a relation between patches (the object
/// against its background, both drawn from the same colours), which a small ViT finds only
/// under a strong signal. A linear read-out of the raw embedding (the earlier probe) was
/// met by components too small to matter: the shipped CLIP's image embeddings of one object
/// at nine places had cosine ≥ 0.997. With the shared directions the image tower learns
/// position in a few hundred steps, and the two towers agree on it, which zero-shot needs.
#[derive(Module, Debug)]
pub struct AttributePrototypes {
    /// `[classes of all attributes, embed_dim]`, in `ATTRIBUTES` order.
    pub directions: Param<Tensor<2>>,
}

/// Classes per attribute, in the prototypes' order.
const ATTRIBUTES: [usize; 5] = [Shape::ALL.len(), Colour::ALL.len(), Colour::ALL.len(), Size::ALL.len(), Position::ALL.len()];

/// Cosine → logit: a fixed temperature, so the embedding itself has to carry each attribute
/// by a sizeable angle (a learnt one would let it scale tiny components up instead).
const PROTOTYPE_SCALE: f64 = 10.0;

/// Per attribute, the class of a row, or `None` where the caption does not state it.
pub type AttributeLabels = [Option<usize>; 5];

/// Every attribute of a scene (what its picture shows).
pub fn scene_labels(sc: &Scene) -> AttributeLabels {
    stated_labels(&Mentioned {
        shape: Some(sc.shape),
        colour: Some(sc.colour),
        background: Some(sc.background),
        size: Some(sc.size),
        position: Some(sc.position),
    })
}

/// The attributes a caption states.
pub fn stated_labels(m: &Mentioned) -> AttributeLabels {
    [
        m.shape.map(|v| class_of(&Shape::ALL, &v)),
        m.colour.map(|v| class_of(&Colour::ALL, &v)),
        m.background.map(|v| class_of(&Colour::ALL, &v)),
        m.size.map(|v| class_of(&Size::ALL, &v)),
        m.position.map(|v| class_of(&Position::ALL, &v)),
    ]
}

impl AttributePrototypes {
    pub fn init(embed_dim: usize, device: &Device) -> Self {
        let n = ATTRIBUTES.iter().sum();
        Self { directions: Param::from_tensor(Tensor::random([n, embed_dim], Distribution::Normal(0.0, 1.0), device)) }
    }

    /// Mean over attributes of the cross-entropy of `unit` rows (L2-normalised embeddings)
    /// read out against the attribute's directions; each attribute averages over the rows
    /// that have a label, and one with no labelled row adds nothing.
    pub fn loss(&self, unit: Tensor<2>, labels: &[AttributeLabels]) -> Tensor<1> {
        let device = unit.device();
        let b = labels.len();
        let logits = unit.matmul(l2_normalize(self.directions.val()).transpose()).mul_scalar(PROTOTYPE_SCALE);
        let mut total: Tensor<1> = Tensor::zeros([1], &device);
        let mut offset = 0;
        for (k, &n) in ATTRIBUTES.iter().enumerate() {
            let mut onehot = vec![0f32; b * n];
            let mut rows = 0usize;
            for (r, l) in labels.iter().enumerate() {
                if let Some(class) = l[k].filter(|&c| c < n) {
                    onehot[r * n + class] = 1.0;
                    rows += 1;
                }
            }
            if rows > 0 {
                let target = tensor_from(onehot, [b, n], &device);
                let ce = (log_softmax(logits.clone().narrow(1, offset, n), 1) * target)
                    .sum()
                    .div_scalar(rows as f64)
                    .neg()
                    .reshape([1]);
                total = total + ce;
            }
            offset += n;
        }
        total.div_scalar(ATTRIBUTES.len() as f64)
    }
}

/// Index of `v` in `all` (the attribute's class number).
fn class_of<T: PartialEq>(all: &[T], v: &T) -> usize {
    all.iter().position(|x| x == v).unwrap_or(0)
}

/// What the CLIP stage optimises; only `pair` is checkpointed and exported (the
/// prototypes re-learn in a few steps after a resume).
#[derive(Module, Debug)]
pub struct ClipTrainee {
    pub pair: ClipPair,
    pub prototypes: AttributePrototypes,
}

impl ClipPair {
    /// Symmetric InfoNCE over the batch; also returns image→text top-1 accuracy and the
    /// unit image and text embeddings.
    pub fn loss(&self, ids: &[Vec<u32>], images: Tensor<4>) -> Result<(Tensor<1>, f64, Tensor<2>, Tensor<2>), String> {
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
        let logits = v.clone().matmul(t.clone().transpose()) * scale;
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
        Ok((loss, acc, v, t))
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
        let (contrastive, a, v, t) = trainee.pair.loss(&ids, image)?;
        let shown: Vec<AttributeLabels> = data.samples.iter().map(|s| scene_labels(&s.scene)).collect();
        let stated: Vec<AttributeLabels> = data.samples.iter().map(|s| stated_labels(&s.mentioned)).collect();
        let loss = contrastive + trainee.prototypes.loss(v, &shown) + trainee.prototypes.loss(t, &stated);
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

    /// One-hot attribute blocks, L2-normalised: an embedding that holds every attribute.
    fn attribute_rows(scenes: &[Scene]) -> Tensor<2> {
        let mut rows = Vec::new();
        for sc in scenes {
            let mut r = vec![0f32; 32];
            r[sc.shape as usize] = 1.0;
            r[5 + sc.colour as usize] = 1.0;
            r[13 + sc.background as usize] = 1.0;
            r[21 + sc.size as usize] = 1.0;
            r[23 + sc.position as usize] = 1.0;
            rows.extend(r);
        }
        l2_normalize(tensor_from(rows, [scenes.len(), 32], &Device::flex().autodiff()))
    }

    #[test]
    fn attribute_prototypes_learn_every_attribute_from_an_embedding_that_holds_them() {
        let device = Device::flex().autodiff();
        let world = World::new(5);
        let scenes: Vec<Scene> = (0..32).map(|i| world.sample(i, Split::Train).scene).collect();
        let labels: Vec<AttributeLabels> = scenes.iter().map(scene_labels).collect();
        let x = attribute_rows(&scenes);
        let mut protos = AttributePrototypes::init(32, &device);
        let first = to_vec(protos.loss(x.clone(), &labels))[0] as f64;
        let mut optim = AdamWConfig::new().init();
        for _ in 0..200 {
            let loss = protos.loss(x.clone(), &labels);
            let grads = GradientsParams::from_grads(loss.backward(), &protos);
            protos = optim.step(5e-2, protos, grads);
        }
        let last = to_vec(protos.loss(x, &labels))[0] as f64;
        // Each row's best cosine is 1/√5 (five attributes share the unit vector): a logit
        // margin of 10/√5 ≈ 4.5, i.e. a cross-entropy of about 0.09 per attribute.
        assert!(last < 0.15 && last < 0.2 * first, "prototypes did not learn: {first} → {last}");
    }

    #[test]
    fn a_caption_adds_loss_only_for_the_attributes_it_states() {
        let device = Device::flex().autodiff();
        let world = World::new(5);
        let scenes: Vec<Scene> = (0..8).map(|i| world.sample(i, Split::Train).scene).collect();
        let x = attribute_rows(&scenes);
        let protos = AttributePrototypes::init(32, &device);
        let silent: Vec<AttributeLabels> = vec![[None; 5]; scenes.len()];
        assert_eq!(to_vec(protos.loss(x.clone(), &silent))[0], 0.0);
        // Stating only the shape: the loss is the shape read-out's alone, a fifth of it.
        let shape_only: Vec<AttributeLabels> =
            scenes.iter().map(|sc| [scene_labels(sc)[0], None, None, None, None]).collect();
        let all: Vec<AttributeLabels> = scenes.iter().map(scene_labels).collect();
        let (one, every) = (to_vec(protos.loss(x.clone(), &shape_only))[0], to_vec(protos.loss(x, &all))[0]);
        assert!(one > 0.0 && one < every, "shape only {one}, all {every}");
        assert!(stated_labels(&world.sample(3, Split::Train).mentioned)[0].is_some(), "every caption states the shape");
    }
}
