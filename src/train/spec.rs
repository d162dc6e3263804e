//! The shapes model's architecture, as the diffusers/transformers `config.json` of each
//! component. The same JSON is parsed into our configs for training and written on export,
//! so what is trained is exactly what diffusers loads.

use serde_json::{Value, json};

use super::tokenizer_files::TokenizerInfo;
use crate::model::config::SchedulerConfig;

/// Sizes of every component.
#[derive(Debug, Clone)]
pub struct Spec {
    pub context: usize,
    pub clip_width: usize,
    pub clip_layers: usize,
    pub clip_heads: usize,
    pub embed_dim: usize,
    pub image_size: usize,
    pub patch: usize,
    pub prior_heads: usize,
    pub prior_head_dim: usize,
    pub prior_layers: usize,
    pub cross_dim: usize,
    pub decoder_channels: Vec<usize>,
    pub decoder_head_dim: usize,
    pub groups: usize,
    pub sr_channels: Vec<usize>,
    pub sr_size: usize,
}

impl Spec {
    /// The shipped model (full recipe).
    pub fn full() -> Self {
        Self {
            context: 77,
            clip_width: 64,
            clip_layers: 3,
            clip_heads: 4,
            embed_dim: 64,
            image_size: 32,
            patch: 4,
            prior_heads: 4,
            prior_head_dim: 32,
            prior_layers: 4,
            cross_dim: 128,
            decoder_channels: vec![32, 64, 96],
            decoder_head_dim: 32,
            groups: 8,
            sr_channels: vec![32, 64],
            sr_size: 64,
        }
    }

    /// A smaller model for the quick recipe (minutes, for tests and smoke runs).
    pub fn quick() -> Self {
        Self {
            clip_width: 32,
            clip_layers: 2,
            clip_heads: 2,
            embed_dim: 32,
            prior_heads: 2,
            prior_head_dim: 16,
            prior_layers: 2,
            cross_dim: 32,
            decoder_channels: vec![16, 32],
            decoder_head_dim: 16,
            sr_channels: vec![16, 32],
            ..Self::full()
        }
    }

    pub fn text_encoder(&self, tok: &TokenizerInfo) -> Value {
        self.clip_tower(json!({
            "architectures": ["CLIPTextModelWithProjection"],
            "model_type": "clip_text_model",
            "max_position_embeddings": self.context,
            "vocab_size": tok.vocab_size,
            "bos_token_id": tok.bos_id, "eos_token_id": tok.eos_id, "pad_token_id": tok.eos_id,
        }))
    }

    pub fn image_encoder(&self) -> Value {
        self.clip_tower(json!({
            "architectures": ["CLIPVisionModelWithProjection"],
            "model_type": "clip_vision_model",
            "image_size": self.image_size, "patch_size": self.patch, "num_channels": 3,
        }))
    }

    /// `own` plus what the text and vision towers' configs share (one width, depth, head
    /// count and projection for both).
    fn clip_tower(&self, mut own: Value) -> Value {
        let shared = json!({
            "attention_dropout": 0.0, "dropout": 0.0, "initializer_factor": 1.0, "initializer_range": 0.02,
            "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
            "hidden_size": self.clip_width, "intermediate_size": 4 * self.clip_width,
            "num_attention_heads": self.clip_heads, "num_hidden_layers": self.clip_layers,
            "projection_dim": self.embed_dim,
            "torch_dtype": "float32", "transformers_version": "4.51.3",
        });
        if let (Some(own), Value::Object(shared)) = (own.as_object_mut(), shared) {
            own.extend(shared);
        }
        own
    }

    pub fn feature_extractor(&self) -> Value {
        json!({
            "crop_size": {"height": self.image_size, "width": self.image_size},
            "do_center_crop": true, "do_convert_rgb": true, "do_normalize": true, "do_rescale": true,
            "do_resize": true,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "image_processor_type": "CLIPImageProcessor",
            "resample": 3, "rescale_factor": 1.0 / 255.0,
            "size": {"shortest_edge": self.image_size},
        })
    }

    pub fn prior(&self) -> Value {
        json!({
            "_class_name": "PriorTransformer", "_diffusers_version": "0.33.1",
            "num_attention_heads": self.prior_heads, "attention_head_dim": self.prior_head_dim,
            "num_layers": self.prior_layers, "embedding_dim": self.embed_dim,
            "num_embeddings": self.context, "additional_embeddings": 4, "dropout": 0.0,
            "time_embed_act_fn": "silu", "norm_in_type": null, "embedding_proj_norm_type": null,
            "encoder_hid_proj_type": "linear", "added_emb_type": "prd",
            "time_embed_dim": null, "embedding_proj_dim": null, "clip_embed_dim": null,
        })
    }

    pub fn time_embed_dim(&self) -> usize {
        4 * self.decoder_channels[0]
    }

    pub fn text_proj(&self) -> Value {
        json!({
            "_class_name": "UnCLIPTextProjModel", "_diffusers_version": "0.33.1",
            "clip_extra_context_tokens": 4, "clip_embeddings_dim": self.embed_dim,
            "time_embed_dim": self.time_embed_dim(), "cross_attention_dim": self.cross_dim,
        })
    }

    pub fn decoder(&self) -> Value {
        let n = self.decoder_channels.len();
        let down: Vec<&str> = (0..n)
            .map(|i| {
                if i == 0 {
                    "ResnetDownsampleBlock2D"
                } else {
                    "SimpleCrossAttnDownBlock2D"
                }
            })
            .collect();
        let up: Vec<&str> = (0..n)
            .map(|i| {
                if i + 1 == n {
                    "ResnetUpsampleBlock2D"
                } else {
                    "SimpleCrossAttnUpBlock2D"
                }
            })
            .collect();
        json!({
            "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.33.1",
            "sample_size": self.image_size, "in_channels": 3, "out_channels": 6,
            "down_block_types": down, "mid_block_type": "UNetMidBlock2DSimpleCrossAttn", "up_block_types": up,
            "block_out_channels": self.decoder_channels, "layers_per_block": 1,
            "cross_attention_dim": self.cross_dim, "attention_head_dim": self.decoder_head_dim,
            "class_embed_type": "identity", "resnet_time_scale_shift": "scale_shift",
            "norm_num_groups": self.groups, "norm_eps": 1e-5, "act_fn": "silu",
            "flip_sin_to_cos": true, "freq_shift": 0, "center_input_sample": false,
            "only_cross_attention": false, "upcast_attention": false, "use_linear_projection": false,
            "dual_cross_attention": false, "downsample_padding": 1, "mid_block_scale_factor": 1,
            "dropout": 0.0, "conv_in_kernel": 3, "conv_out_kernel": 3,
            "time_embedding_type": "positional", "resnet_skip_time_act": false, "resnet_out_scale_factor": 1.0,
        })
    }

    fn super_res(&self, sample_size: Option<usize>) -> Value {
        let n = self.sr_channels.len();
        json!({
            "_class_name": "UNet2DModel", "_diffusers_version": "0.33.1",
            "sample_size": sample_size, "in_channels": 6, "out_channels": 3,
            "down_block_types": vec!["ResnetDownsampleBlock2D"; n], "up_block_types": vec!["ResnetUpsampleBlock2D"; n],
            "mid_block_type": "UNetMidBlock2D", "add_attention": false,
            "block_out_channels": self.sr_channels, "layers_per_block": 1,
            "attention_head_dim": 8, "norm_num_groups": self.groups, "norm_eps": 1e-5, "act_fn": "silu",
            "resnet_time_scale_shift": "default", "time_embedding_type": "positional",
            "flip_sin_to_cos": true, "freq_shift": 0, "center_input_sample": false,
            "downsample_padding": 1, "mid_block_scale_factor": 1, "dropout": 0.0,
        })
    }

    pub fn super_res_first(&self) -> Value {
        self.super_res(Some(self.sr_size))
    }

    /// Karlo's last stage states no sample size; diffusers takes it from the first.
    pub fn super_res_last(&self) -> Value {
        self.super_res(None)
    }

    /// `scheduler_config.json`: the config we read back, plus diffusers' class markers.
    pub fn scheduler(variance: &str, prediction: &str, clip_range: f64) -> Value {
        let mut v = serde_json::to_value(SchedulerConfig::unclip(variance, prediction, clip_range)).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("_class_name".into(), json!("UnCLIPScheduler"));
            o.insert("_diffusers_version".into(), json!("0.33.1"));
        }
        v
    }
}
