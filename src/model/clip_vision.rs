//! transformers `CLIPVisionModelWithProjection` (`image_encoder/`).

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::clip_encoder::{ClipEncoder, EncoderShape};
use super::config::ClipVisionConfig;
use super::ModelError;

#[derive(Module, Debug)]
pub struct ClipVisionEmbeddings {
    pub class_embedding: Param<Tensor<1>>,
    pub patch_embedding: Conv2d,
    pub position_embedding: Embedding,
}

#[derive(Module, Debug)]
pub struct ClipVisionTransformer {
    pub embeddings: ClipVisionEmbeddings,
    /// The spelling is transformers' own.
    pub pre_layrnorm: LayerNorm,
    pub encoder: ClipEncoder,
    pub post_layernorm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct ClipVisionModelWithProjection {
    pub vision_model: ClipVisionTransformer,
    pub visual_projection: Linear,
    #[module(skip)]
    pub config: ClipVisionConfig,
}

impl ClipVisionModelWithProjection {
    pub fn init(config: &ClipVisionConfig, device: &Device) -> Result<Self, ModelError> {
        let c = config;
        let sizes = [c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads];
        let shape = EncoderShape::of("image_encoder", sizes, c.layer_norm_eps, &c.hidden_act)?;
        if c.patch_size == 0 || c.image_size % c.patch_size != 0 {
            return Err(ModelError::unsupported("image_encoder", "image_size not a multiple of patch_size"));
        }
        let patches = (c.image_size / c.patch_size).pow(2);
        Ok(Self {
            vision_model: ClipVisionTransformer {
                embeddings: ClipVisionEmbeddings {
                    class_embedding: Param::from_tensor(Tensor::zeros([c.hidden_size], device)),
                    patch_embedding: Conv2dConfig::new([c.num_channels, c.hidden_size], [c.patch_size, c.patch_size])
                        .with_stride([c.patch_size, c.patch_size])
                        .with_bias(false)
                        .init(device),
                    // transformers' initialisation (std = initializer_range). burn's default
                    // N(0, 1) codes outweigh the patch contents after the first LayerNorm, and
                    // a small tower then takes far longer to learn where and what anything is.
                    position_embedding: EmbeddingConfig::new(patches + 1, c.hidden_size)
                        .with_initializer(Initializer::Normal { mean: 0.0, std: c.initializer_range })
                        .init(device),
                },
                pre_layrnorm: LayerNormConfig::new(c.hidden_size).with_epsilon(c.layer_norm_eps).init(device),
                encoder: ClipEncoder::init(shape, device),
                post_layernorm: LayerNormConfig::new(c.hidden_size).with_epsilon(c.layer_norm_eps).init(device),
            },
            visual_projection: LinearConfig::new(c.hidden_size, c.projection_dim).with_bias(false).init(device),
            config: config.clone(),
        })
    }

    /// `pixel_values` `[batch, 3, size, size]` (already preprocessed) → `image_embeds`
    /// `[batch, projection_dim]`, the projected class token, not normalised.
    pub fn forward(&self, pixel_values: Tensor<4>) -> Result<Tensor<2>, ModelError> {
        let [b, c, h, w] = pixel_values.dims();
        let s = self.config.image_size;
        if c != self.config.num_channels || h != s || w != s {
            return Err(ModelError::Input(format!(
                "pixel values are {c}×{h}×{w}, the image encoder expects {}×{s}×{s}",
                self.config.num_channels
            )));
        }
        let device = pixel_values.device();
        let e = &self.vision_model.embeddings;
        let pixel_values = pixel_values.cast(e.patch_embedding.weight.val().dtype());
        let patches = e.patch_embedding.forward(pixel_values); // [b, d, gh, gw]
        let [_, d, gh, gw] = patches.dims();
        let patches = patches.reshape([b, d, gh * gw]).swap_dims(1, 2);
        let cls = e.class_embedding.val().reshape([1, 1, d]).repeat_dim(0, b);
        let tokens = Tensor::cat(vec![cls, patches], 1);
        let n = gh * gw + 1;
        let pos_ids = Tensor::<2, Int>::from_data(TensorData::new((0..n as i64).collect::<Vec<_>>(), [1, n]), &device);
        let x = tokens + e.position_embedding.forward(pos_ids);
        let x = self.vision_model.pre_layrnorm.forward(x);
        let x = self.vision_model.encoder.forward(x, None);
        let cls_out = x.narrow(1, 0, 1).reshape([b, d]);
        let pooled = self.vision_model.post_layernorm.forward(cls_out);
        Ok(self.visual_projection.forward(pooled).cast(burn::tensor::DType::F32))
    }
}
