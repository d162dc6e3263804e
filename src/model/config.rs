//! `config.json` of each component, with diffusers' / transformers' defaults for the keys
//! that older configs (Karlo's were written by diffusers 0.11) leave out.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::Path;

use super::ModelError;

/// Largest config file read (Karlo's are under 4 KiB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads, parses and range-checks a component's config file, so that no value from it can
/// reach a division, a chunking or an allocation unchecked.
pub fn read_config<T: DeserializeOwned + CheckConfig>(path: &Path) -> Result<T, ModelError> {
    let bad = |message: String| ModelError::Config { path: path.to_path_buf(), message };
    let io = |e: std::io::Error| ModelError::Io { path: path.to_path_buf(), message: e.to_string() };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_CONFIG_BYTES {
        return Err(bad(format!("{len} bytes; a config is at most {MAX_CONFIG_BYTES}")));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let cfg: T = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    cfg.check().map_err(bad)?;
    Ok(cfg)
}

/// The ranges a config's values must lie in before any module is built from it. The bounds
/// are far beyond any released unCLIP (Karlo's widest layer is 1280 channels, 64 px decoder,
/// 256 px super-resolution) and well inside what a desktop can allocate.
pub trait CheckConfig {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

impl CheckConfig for serde_json::Value {}

const MAX_WIDTH: usize = 16_384;
const MAX_LAYERS: usize = 128;
const MAX_PIXELS: usize = 2048;

fn within(name: &str, v: usize, lo: usize, hi: usize) -> Result<(), String> {
    if (lo..=hi).contains(&v) { Ok(()) } else { Err(format!("{name} must be {lo}..={hi}, got {v}")) }
}

fn divides(name: &str, v: usize, by_name: &str, by: usize) -> Result<(), String> {
    if by > 0 && v % by == 0 { Ok(()) } else { Err(format!("{name} ({v}) must be a multiple of {by_name} ({by})")) }
}

fn finite_positive(name: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(format!("{name} must be a positive number, got {v}")) }
}

/// The U-Net checks the decoder and super-resolution share: sizes, channels divisible by
/// the group count, a sample size that survives every downsampling.
fn check_unet(sample_size: Option<usize>, channels: &[usize], groups: usize, in_out: [usize; 2], eps: f64) -> Result<(), String> {
    within("norm_num_groups", groups, 1, 1024)?;
    finite_positive("norm_eps", eps)?;
    within("in_channels", in_out[0], 1, 64)?;
    within("out_channels", in_out[1], 1, 64)?;
    within("number of blocks", channels.len(), 1, 8)?;
    for &c in channels {
        within("block_out_channels", c, 1, MAX_WIDTH)?;
        divides("block_out_channels", c, "norm_num_groups", groups)?;
    }
    if let Some(size) = sample_size {
        within("sample_size", size, 1, MAX_PIXELS)?;
        divides("sample_size", size, "2^(blocks - 1)", 1 << (channels.len() - 1))?;
    }
    Ok(())
}

/// The transformer tower checks the CLIP text and vision configs share:
/// [hidden, intermediate, projection, layers, heads].
fn check_tower([hidden, intermediate, projection, layers, heads]: [usize; 5], eps: f64) -> Result<(), String> {
    within("hidden_size", hidden, 1, MAX_WIDTH)?;
    within("intermediate_size", intermediate, 1, 4 * MAX_WIDTH)?;
    within("projection_dim", projection, 1, MAX_WIDTH)?;
    within("num_hidden_layers", layers, 1, MAX_LAYERS)?;
    within("num_attention_heads", heads, 1, 256)?;
    divides("hidden_size", hidden, "num_attention_heads", heads)?;
    finite_positive("layer_norm_eps", eps)
}

impl CheckConfig for ClipTextConfig {
    fn check(&self) -> Result<(), String> {
        within("vocab_size", self.vocab_size, 1, 1_000_000)?;
        within("max_position_embeddings", self.max_position_embeddings, 2, 4096)?;
        let sizes = [self.hidden_size, self.intermediate_size, self.projection_dim, self.num_hidden_layers, self.num_attention_heads];
        check_tower(sizes, self.layer_norm_eps)
    }
}

impl CheckConfig for ClipVisionConfig {
    fn check(&self) -> Result<(), String> {
        within("num_channels", self.num_channels, 1, 4)?;
        within("image_size", self.image_size, 1, MAX_PIXELS)?;
        within("patch_size", self.patch_size, 1, self.image_size)?;
        let sizes = [self.hidden_size, self.intermediate_size, self.projection_dim, self.num_hidden_layers, self.num_attention_heads];
        check_tower(sizes, self.layer_norm_eps)
    }
}

impl CheckConfig for PriorConfig {
    fn check(&self) -> Result<(), String> {
        within("num_attention_heads", self.num_attention_heads, 1, 256)?;
        within("attention_head_dim", self.attention_head_dim, 1, 1024)?;
        within("num_layers", self.num_layers, 1, MAX_LAYERS)?;
        within("embedding_dim", self.embedding_dim, 1, MAX_WIDTH)?;
        within("num_embeddings", self.num_embeddings, 1, 4096)?;
        within("additional_embeddings", self.additional_embeddings, 0, 64)?;
        within("inner dim (heads × head dim)", self.inner_dim(), 1, MAX_WIDTH)?;
        for (name, v) in [
            ("time_embed_dim", self.time_embed_dim),
            ("embedding_proj_dim", self.embedding_proj_dim),
            ("clip_embed_dim", self.clip_embed_dim),
        ] {
            if let Some(v) = v {
                within(name, v, 1, 4 * MAX_WIDTH)?;
            }
        }
        Ok(())
    }
}

impl CheckConfig for TextProjConfig {
    fn check(&self) -> Result<(), String> {
        within("clip_extra_context_tokens", self.clip_extra_context_tokens, 1, 64)?;
        within("clip_embeddings_dim", self.clip_embeddings_dim, 1, MAX_WIDTH)?;
        within("time_embed_dim", self.time_embed_dim, 1, 4 * MAX_WIDTH)?;
        within("cross_attention_dim", self.cross_attention_dim, 1, MAX_WIDTH)
    }
}

impl CheckConfig for DecoderConfig {
    fn check(&self) -> Result<(), String> {
        let n = self.block_out_channels.len();
        check_unet(self.sample_size, &self.block_out_channels, self.norm_num_groups, [self.in_channels, self.out_channels], self.norm_eps)?;
        for i in 0..n {
            let per = |name: &str, v: Option<usize>, hi: usize| match v {
                Some(v) => within(name, v, 1, hi),
                None => Err(format!("{name} must have one value or one per block ({n})")),
            };
            per("layers_per_block", self.layers_per_block.get(i, n), 16)?;
            per("attention_head_dim", self.attention_head_dim.get(i, n), MAX_WIDTH)?;
            per("cross_attention_dim", self.cross_attention_dim.get(i, n), MAX_WIDTH)?;
            if let Some(h) = &self.num_attention_heads {
                per("num_attention_heads", h.get(i, n), 256)?;
            }
        }
        within("conv_in_kernel", self.conv_in_kernel, 1, 7)?;
        within("conv_out_kernel", self.conv_out_kernel, 1, 7)
    }
}

impl CheckConfig for SuperResConfig {
    fn check(&self) -> Result<(), String> {
        check_unet(self.sample_size, &self.block_out_channels, self.norm_num_groups, [self.in_channels, self.out_channels], self.norm_eps)?;
        within("layers_per_block", self.layers_per_block, 1, 16)?;
        if let Some(d) = self.attention_head_dim {
            within("attention_head_dim", d, 1, MAX_WIDTH)?;
        }
        if let Some(g) = self.attn_norm_num_groups {
            within("attn_norm_num_groups", g, 1, 1024)?;
        }
        Ok(())
    }
}

impl CheckConfig for SchedulerConfig {
    fn check(&self) -> Result<(), String> {
        within("num_train_timesteps", self.num_train_timesteps, 2, 10_000)?;
        finite_positive("clip_sample_range", self.clip_sample_range)
    }
}

impl CheckConfig for ImageProcessorConfig {
    fn check(&self) -> Result<(), String> {
        within("size", self.shortest_edge(), 1, MAX_PIXELS)?;
        let (h, w) = self.crop();
        within("crop height", h, 1, MAX_PIXELS)?;
        within("crop width", w, 1, MAX_PIXELS)?;
        if self.image_mean.len() != 3 || self.image_std.len() != 3 {
            return Err("image_mean and image_std need 3 values".into());
        }
        if self.image_std.iter().any(|v| !(v.is_finite() && *v > 0.0)) || self.image_mean.iter().any(|v| !v.is_finite()) {
            return Err("image_mean must be finite and image_std positive".into());
        }
        finite_positive("rescale_factor", self.rescale_factor)
    }
}

/// A key that diffusers accepts either as one value for every block or as a per-block list.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PerBlock<T> {
    One(T),
    Each(Vec<T>),
}

impl<T: Clone> PerBlock<T> {
    /// The value for block `i` of `n`, or `None` when a list has the wrong length.
    pub fn get(&self, i: usize, n: usize) -> Option<T> {
        match self {
            PerBlock::One(v) => Some(v.clone()),
            PerBlock::Each(v) if v.len() == n => v.get(i).cloned(),
            PerBlock::Each(_) => None,
        }
    }
}

fn default_quick_gelu() -> String {
    "quick_gelu".into()
}
fn eps_1e5() -> f64 {
    1e-5
}

/// transformers `CLIPTextConfig` (nested under `text_config` in a full CLIPConfig).
#[derive(Debug, Clone, Deserialize)]
pub struct ClipTextConfig {
    #[serde(default = "clip_text_vocab")]
    pub vocab_size: usize,
    #[serde(default = "clip_text_hidden")]
    pub hidden_size: usize,
    #[serde(default = "clip_text_intermediate")]
    pub intermediate_size: usize,
    #[serde(default = "clip_text_hidden")]
    pub projection_dim: usize,
    #[serde(default = "twelve")]
    pub num_hidden_layers: usize,
    #[serde(default = "eight")]
    pub num_attention_heads: usize,
    #[serde(default = "seventy_seven")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "eps_1e5")]
    pub layer_norm_eps: f64,
    #[serde(default = "clip_eos")]
    pub eos_token_id: i64,
}
fn clip_text_vocab() -> usize {
    49408
}
fn clip_text_hidden() -> usize {
    512
}
fn clip_text_intermediate() -> usize {
    2048
}
fn twelve() -> usize {
    12
}
fn eight() -> usize {
    8
}
fn seventy_seven() -> usize {
    77
}
fn clip_eos() -> i64 {
    49407
}

/// transformers `CLIPVisionConfig`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClipVisionConfig {
    #[serde(default = "clip_vision_hidden")]
    pub hidden_size: usize,
    #[serde(default = "clip_vision_intermediate")]
    pub intermediate_size: usize,
    #[serde(default = "clip_text_hidden")]
    pub projection_dim: usize,
    #[serde(default = "twelve")]
    pub num_hidden_layers: usize,
    #[serde(default = "twelve")]
    pub num_attention_heads: usize,
    #[serde(default = "three")]
    pub num_channels: usize,
    #[serde(default = "clip_image_size")]
    pub image_size: usize,
    #[serde(default = "clip_patch")]
    pub patch_size: usize,
    #[serde(default = "default_quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "eps_1e5")]
    pub layer_norm_eps: f64,
    /// Only used to initialise weights for training.
    #[serde(default = "initializer_range")]
    pub initializer_range: f64,
}
fn initializer_range() -> f64 {
    0.02
}
fn clip_vision_hidden() -> usize {
    768
}
fn clip_vision_intermediate() -> usize {
    3072
}
fn three() -> usize {
    3
}
fn clip_image_size() -> usize {
    224
}
fn clip_patch() -> usize {
    32
}

/// diffusers `PriorTransformer`; defaults are Karlo's.
#[derive(Debug, Clone, Deserialize)]
pub struct PriorConfig {
    #[serde(default = "thirty_two")]
    pub num_attention_heads: usize,
    #[serde(default = "sixty_four")]
    pub attention_head_dim: usize,
    #[serde(default = "twenty")]
    pub num_layers: usize,
    #[serde(default = "clip_vision_hidden")]
    pub embedding_dim: usize,
    #[serde(default = "seventy_seven")]
    pub num_embeddings: usize,
    #[serde(default = "four")]
    pub additional_embeddings: usize,
    #[serde(default = "silu")]
    pub time_embed_act_fn: String,
    pub norm_in_type: Option<String>,
    pub embedding_proj_norm_type: Option<String>,
    #[serde(default = "linear")]
    pub encoder_hid_proj_type: Option<String>,
    #[serde(default = "prd")]
    pub added_emb_type: Option<String>,
    pub time_embed_dim: Option<usize>,
    pub embedding_proj_dim: Option<usize>,
    pub clip_embed_dim: Option<usize>,
}
fn thirty_two() -> usize {
    32
}
fn sixty_four() -> usize {
    64
}
fn twenty() -> usize {
    20
}
fn four() -> usize {
    4
}
fn silu() -> String {
    "silu".into()
}
fn linear() -> Option<String> {
    Some("linear".into())
}
fn prd() -> Option<String> {
    Some("prd".into())
}

impl PriorConfig {
    pub fn inner_dim(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }
    pub fn time_embed_dim(&self) -> usize {
        self.time_embed_dim.unwrap_or(self.inner_dim())
    }
    pub fn embedding_proj_dim(&self) -> usize {
        self.embedding_proj_dim.unwrap_or(self.embedding_dim)
    }
    pub fn clip_embed_dim(&self) -> usize {
        self.clip_embed_dim.unwrap_or(self.embedding_dim)
    }
}

/// diffusers `UnCLIPTextProjModel`.
#[derive(Debug, Clone, Deserialize)]
pub struct TextProjConfig {
    #[serde(default = "four")]
    pub clip_extra_context_tokens: usize,
    #[serde(default = "clip_vision_hidden")]
    pub clip_embeddings_dim: usize,
    pub time_embed_dim: usize,
    pub cross_attention_dim: usize,
}

/// diffusers `UNet2DConditionModel`, the subset the unCLIP decoder uses.
#[derive(Debug, Clone, Deserialize)]
pub struct DecoderConfig {
    pub sample_size: Option<usize>,
    #[serde(default = "four")]
    pub in_channels: usize,
    #[serde(default = "four")]
    pub out_channels: usize,
    #[serde(default = "unet_cond_down")]
    pub down_block_types: Vec<String>,
    #[serde(default = "unet_cond_mid")]
    pub mid_block_type: Option<String>,
    #[serde(default = "unet_cond_up")]
    pub up_block_types: Vec<String>,
    #[serde(default = "unet_cond_channels")]
    pub block_out_channels: Vec<usize>,
    #[serde(default = "layers_two")]
    pub layers_per_block: PerBlock<usize>,
    #[serde(default = "cross_1280")]
    pub cross_attention_dim: PerBlock<usize>,
    #[serde(default = "head_dim_8")]
    pub attention_head_dim: PerBlock<usize>,
    pub num_attention_heads: Option<PerBlock<usize>>,
    #[serde(default = "truthy")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: usize,
    #[serde(default = "groups_32")]
    pub norm_num_groups: usize,
    #[serde(default = "eps_1e5")]
    pub norm_eps: f64,
    #[serde(default = "silu")]
    pub act_fn: String,
    pub class_embed_type: Option<String>,
    #[serde(default = "default_shift")]
    pub resnet_time_scale_shift: String,
    #[serde(default)]
    pub resnet_skip_time_act: bool,
    #[serde(default = "one_f")]
    pub resnet_out_scale_factor: f64,
    #[serde(default)]
    pub only_cross_attention: PerBlockBool,
    pub encoder_hid_dim: Option<usize>,
    pub encoder_hid_dim_type: Option<String>,
    pub addition_embed_type: Option<String>,
    pub time_embedding_act_fn: Option<String>,
    pub cross_attention_norm: Option<String>,
    #[serde(default)]
    pub class_embeddings_concat: bool,
    #[serde(default = "three")]
    pub conv_in_kernel: usize,
    #[serde(default = "three")]
    pub conv_out_kernel: usize,
    pub time_embedding_dim: Option<usize>,
}

/// `only_cross_attention` is a bool or a per-block list of bools.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(transparent)]
pub struct PerBlockBool(pub Option<PerBlock<bool>>);

impl PerBlockBool {
    pub fn any(&self) -> bool {
        match &self.0 {
            None => false,
            Some(PerBlock::One(b)) => *b,
            Some(PerBlock::Each(v)) => v.iter().any(|b| *b),
        }
    }
}

fn unet_cond_down() -> Vec<String> {
    vec![
        "CrossAttnDownBlock2D".into(),
        "CrossAttnDownBlock2D".into(),
        "CrossAttnDownBlock2D".into(),
        "DownBlock2D".into(),
    ]
}
fn unet_cond_mid() -> Option<String> {
    Some("UNetMidBlock2DCrossAttn".into())
}
fn unet_cond_up() -> Vec<String> {
    vec![
        "UpBlock2D".into(),
        "CrossAttnUpBlock2D".into(),
        "CrossAttnUpBlock2D".into(),
        "CrossAttnUpBlock2D".into(),
    ]
}
fn unet_cond_channels() -> Vec<usize> {
    vec![320, 640, 1280, 1280]
}
fn layers_two() -> PerBlock<usize> {
    PerBlock::One(2)
}
fn cross_1280() -> PerBlock<usize> {
    PerBlock::One(1280)
}
fn head_dim_8() -> PerBlock<usize> {
    PerBlock::One(8)
}
fn truthy() -> bool {
    true
}
fn groups_32() -> usize {
    32
}
fn default_shift() -> String {
    "default".into()
}
fn one_f() -> f64 {
    1.0
}

/// diffusers `UNet2DModel` (the super-resolution stages).
#[derive(Debug, Clone, Deserialize)]
pub struct SuperResConfig {
    pub sample_size: Option<usize>,
    #[serde(default = "three")]
    pub in_channels: usize,
    #[serde(default = "three")]
    pub out_channels: usize,
    #[serde(default)]
    pub center_input_sample: bool,
    #[serde(default = "positional")]
    pub time_embedding_type: String,
    pub time_embedding_dim: Option<usize>,
    #[serde(default)]
    pub freq_shift: usize,
    #[serde(default = "truthy")]
    pub flip_sin_to_cos: bool,
    #[serde(default = "unet2d_down")]
    pub down_block_types: Vec<String>,
    #[serde(default = "unet2d_mid")]
    pub mid_block_type: Option<String>,
    #[serde(default = "unet2d_up")]
    pub up_block_types: Vec<String>,
    #[serde(default = "unet2d_channels")]
    pub block_out_channels: Vec<usize>,
    #[serde(default = "two")]
    pub layers_per_block: usize,
    #[serde(default = "one_f")]
    pub mid_block_scale_factor: f64,
    #[serde(default = "silu")]
    pub act_fn: String,
    pub attention_head_dim: Option<usize>,
    #[serde(default = "groups_32")]
    pub norm_num_groups: usize,
    pub attn_norm_num_groups: Option<usize>,
    #[serde(default = "eps_1e5")]
    pub norm_eps: f64,
    #[serde(default = "default_shift")]
    pub resnet_time_scale_shift: String,
    #[serde(default = "truthy")]
    pub add_attention: bool,
    pub class_embed_type: Option<String>,
}
fn positional() -> String {
    "positional".into()
}
fn unet2d_down() -> Vec<String> {
    vec![
        "DownBlock2D".into(),
        "AttnDownBlock2D".into(),
        "AttnDownBlock2D".into(),
        "AttnDownBlock2D".into(),
    ]
}
fn unet2d_mid() -> Option<String> {
    Some("UNetMidBlock2D".into())
}
fn unet2d_up() -> Vec<String> {
    vec![
        "AttnUpBlock2D".into(),
        "AttnUpBlock2D".into(),
        "AttnUpBlock2D".into(),
        "UpBlock2D".into(),
    ]
}
fn unet2d_channels() -> Vec<usize> {
    vec![224, 448, 672, 896]
}
fn two() -> usize {
    2
}

/// The scheduler's config belongs to the diffusion layer (which must not depend on the
/// model layer); it is read here like every other config.
pub use crate::diffusion::config::SchedulerConfig;

/// transformers `CLIPImageProcessor` (`feature_extractor/preprocessor_config.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct ImageProcessorConfig {
    #[serde(default = "truthy")]
    pub do_resize: bool,
    #[serde(default)]
    pub size: Option<SizeSpec>,
    #[serde(default = "truthy")]
    pub do_center_crop: bool,
    #[serde(default)]
    pub crop_size: Option<SizeSpec>,
    #[serde(default = "truthy")]
    pub do_rescale: bool,
    #[serde(default = "rescale_255")]
    pub rescale_factor: f64,
    #[serde(default = "truthy")]
    pub do_normalize: bool,
    #[serde(default = "openai_mean")]
    pub image_mean: Vec<f64>,
    #[serde(default = "openai_std")]
    pub image_std: Vec<f64>,
    #[serde(default = "bicubic")]
    pub resample: u32,
}
fn rescale_255() -> f64 {
    1.0 / 255.0
}
fn openai_mean() -> Vec<f64> {
    vec![0.48145466, 0.4578275, 0.40821073]
}
fn openai_std() -> Vec<f64> {
    vec![0.26862954, 0.26130258, 0.27577711]
}
fn bicubic() -> u32 {
    3
}

/// `size` / `crop_size`: an int (old configs) or a dict.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeSpec {
    Square(usize),
    ShortestEdge { shortest_edge: usize },
    HeightWidth { height: usize, width: usize },
}

impl ImageProcessorConfig {
    /// Shortest edge after resizing (CLIP default 224).
    pub fn shortest_edge(&self) -> usize {
        match self.size {
            Some(SizeSpec::Square(s)) | Some(SizeSpec::ShortestEdge { shortest_edge: s }) => s,
            Some(SizeSpec::HeightWidth { height, width }) => height.min(width),
            None => 224,
        }
    }
    /// (height, width) of the centre crop.
    pub fn crop(&self) -> (usize, usize) {
        match self.crop_size {
            Some(SizeSpec::Square(s)) | Some(SizeSpec::ShortestEdge { shortest_edge: s }) => (s, s),
            Some(SizeSpec::HeightWidth { height, width }) => (height, width),
            None => (224, 224),
        }
    }
}
