//! diffusers `UnCLIPTextProjModel` (`text_proj/`): turns the CLIP image embedding and the
//! caption encoding into the decoder's conditioning (additive time embedding + context tokens).

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::config::TextProjConfig;

#[derive(Module, Debug)]
pub struct UnCLIPTextProjModel {
    /// The image embedding the unconditional branch of classifier-free guidance uses.
    pub learned_classifier_free_guidance_embeddings: Param<Tensor<1>>,
    pub embedding_proj: Linear,
    pub clip_image_embeddings_project_to_time_embeddings: Linear,
    pub clip_extra_context_tokens_proj: Linear,
    pub encoder_hidden_states_proj: Linear,
    pub text_encoder_hidden_states_norm: LayerNorm,
    #[module(skip)]
    pub config: TextProjConfig,
}

/// The decoder's conditioning.
pub struct DecoderConditioning {
    /// `[b, extra + seq, cross_attention_dim]`: the CLIP tokens, then the text tokens.
    pub encoder_hidden_states: Tensor<3>,
    /// `[b, time_embed_dim]`, added to the decoder's timestep embedding.
    pub additive_clip_time_embeddings: Tensor<2>,
}

impl UnCLIPTextProjModel {
    pub fn init(config: &TextProjConfig, device: &Device) -> Self {
        let c = config;
        let e = c.clip_embeddings_dim;
        Self {
            learned_classifier_free_guidance_embeddings: Param::from_tensor(Tensor::zeros([e], device)),
            embedding_proj: LinearConfig::new(e, c.time_embed_dim).init(device),
            clip_image_embeddings_project_to_time_embeddings: LinearConfig::new(e, c.time_embed_dim).init(device),
            clip_extra_context_tokens_proj: LinearConfig::new(e, c.clip_extra_context_tokens * c.cross_attention_dim)
                .init(device),
            encoder_hidden_states_proj: LinearConfig::new(e, c.cross_attention_dim).init(device),
            text_encoder_hidden_states_norm: LayerNormConfig::new(c.cross_attention_dim).init(device),
            config: config.clone(),
        }
    }

    /// The decoder's attention mask: the extra CLIP tokens are always visible, then each
    /// caption's own padding mask.
    pub fn context_mask(&self, text_masks: &[Vec<bool>]) -> Vec<Vec<bool>> {
        let extra = self.config.clip_extra_context_tokens;
        text_masks.iter().map(|m| std::iter::repeat_n(true, extra).chain(m.iter().copied()).collect()).collect()
    }

    /// With `guidance`, the learned null embedding is prepended to `image_embeddings` (the
    /// unconditional half comes first), so `prompt_embeds` and `text_hidden` must already hold
    /// `[uncond; cond]` rows.
    pub fn forward(
        &self,
        image_embeddings: Tensor<2>,
        prompt_embeds: Tensor<2>,
        text_hidden: Tensor<3>,
        guidance: bool,
    ) -> DecoderConditioning {
        let [n, e] = image_embeddings.dims();
        // Inputs in the weights' dtype, outputs back in f32 (see `UNet::forward_timesteps`).
        let dtype = self.embedding_proj.weight.val().dtype();
        let (image_embeddings, prompt_embeds, text_hidden) = (image_embeddings.cast(dtype), prompt_embeds.cast(dtype), text_hidden.cast(dtype));
        let image_embeddings = if guidance {
            let null = self.learned_classifier_free_guidance_embeddings.val().reshape([1, e]).repeat_dim(0, n);
            Tensor::cat(vec![null, image_embeddings], 0)
        } else {
            image_embeddings
        };
        let b = image_embeddings.dims()[0];
        let additive = self.clip_image_embeddings_project_to_time_embeddings.forward(image_embeddings.clone())
            + self.embedding_proj.forward(prompt_embeds);

        // The projection's output is laid out channel-major: token k of channel c sits at
        // c·extra + k, so reshape to [b, C, extra] and swap.
        let extra = self.config.clip_extra_context_tokens;
        let cross = self.config.cross_attention_dim;
        let clip_tokens = self
            .clip_extra_context_tokens_proj
            .forward(image_embeddings)
            .reshape([b, cross, extra])
            .swap_dims(1, 2);
        let text = self.text_encoder_hidden_states_norm.forward(self.encoder_hidden_states_proj.forward(text_hidden));
        DecoderConditioning {
            encoder_hidden_states: Tensor::cat(vec![clip_tokens, text], 1).cast(burn::tensor::DType::F32),
            additive_clip_time_embeddings: additive.cast(burn::tensor::DType::F32),
        }
    }
}
