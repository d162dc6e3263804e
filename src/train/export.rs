//! Writing trained components as a diffusers folder that both this app and diffusers'
//! UnCLIPPipeline / UnCLIPImageVariationPipeline load unchanged.

use std::path::Path;

use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use serde_json::{Value, json};

/// Our field names → the checkpoint's `nn.Sequential` positions (the inverse of the loader's).
const TO_DIFFUSERS: &[(&str, &str)] = &[
    (r"\.to_out\.(weight|bias)$", ".to_out.0.$1"),
    (r"\.ff\.net_0_proj\.", ".ff.net.0.proj."),
    (r"\.ff\.net_2\.", ".ff.net.2."),
];

pub fn write_json(path: &Path, v: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    crate::files::write_atomic(path, (text + "\n").as_bytes())
}

/// Saves one component: `config.json` (or `scheduler_config.json`) and its weights.
pub fn save_component<M: Module + ModuleSnapshot>(
    out: &Path,
    component: &str,
    module: &M,
    config: &Value,
    transformers: bool,
) -> Result<(), String> {
    let dir = out.join(component);
    write_json(&dir.join("config.json"), config)?;
    let file = dir.join(if transformers {
        "model.safetensors"
    } else {
        "diffusion_pytorch_model.safetensors"
    });
    let mut store = SafetensorsStore::from_file(&file)
        .with_to_adapter(BurnToPyTorchAdapter)
        .overwrite(true)
        .metadata("format", "pt");
    for (from, to) in TO_DIFFUSERS {
        store = store.with_key_remapping(*from, *to);
    }
    module
        .save_into(&mut store)
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// `model_index.json` listing the components of both unCLIP pipelines, so that
/// `UnCLIPPipeline` and `UnCLIPImageVariationPipeline` each load what they need.
pub fn model_index() -> Value {
    json!({
        "_class_name": "UnCLIPPipeline",
        "_diffusers_version": "0.33.1",
        "decoder": ["diffusers", "UNet2DConditionModel"],
        "decoder_scheduler": ["diffusers", "UnCLIPScheduler"],
        "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
        "prior": ["diffusers", "PriorTransformer"],
        "prior_scheduler": ["diffusers", "UnCLIPScheduler"],
        "super_res_first": ["diffusers", "UNet2DModel"],
        "super_res_last": ["diffusers", "UNet2DModel"],
        "super_res_scheduler": ["diffusers", "UnCLIPScheduler"],
        "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
        "text_proj": ["unclip", "UnCLIPTextProjModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
    })
}
