//! A diffusers-layout unCLIP folder: which components it has, and loading each one.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::DType;

use super::clip_text::ClipTextModelWithProjection;
use super::clip_vision::ClipVisionModelWithProjection;
use super::config::{self, ImageProcessorConfig, SchedulerConfig};
use super::ar_prior::ArPrior;
use super::prior::PriorTransformer;
use super::text_proj::UnCLIPTextProjModel;
use super::tokenizer::ClipTokenizer;
use super::unet::{self, UNet};
use super::weights::{WeightFiles, check_files, load_into, weight_files};
use super::ModelError;

/// Components each operation needs.
pub const TEXT_TO_IMAGE: &[&str] = &[
    "tokenizer",
    "text_encoder",
    "prior",
    "prior_scheduler",
    "text_proj",
    "decoder",
    "decoder_scheduler",
];
pub const VARIATIONS: &[&str] =
    &["tokenizer", "text_encoder", "image_encoder", "feature_extractor", "text_proj", "decoder", "decoder_scheduler"];
/// Optional: without them the result stays at the decoder's resolution.
pub const SUPER_RES: &[&str] = &["super_res_first", "super_res_last", "super_res_scheduler"];

#[derive(Debug, Clone)]
pub struct ModelFolder {
    pub root: PathBuf,
    /// Where the image encoder and feature extractor come from when `root` has none: Karlo's
    /// text→image repository ships no image encoder, its image-variations repository does
    /// (with the same decoder), so a text→image folder borrows them to offer all operations.
    pub image_side: Option<PathBuf>,
    /// A weight variant to load ("fp16": `*.fp16.safetensors` / `*.fp16.bin`), as diffusers'
    /// `variant=`; None takes the plain files (or an fp16 variant when it is all there is).
    pub variant: Option<String>,
}

/// Components a text→image folder may borrow from its image-variations sibling.
const IMAGE_SIDE: &[&str] = &["image_encoder", "feature_extractor"];

impl ModelFolder {
    /// Opens a folder; fails with the list of missing parts when it cannot even generate
    /// from text or make variations.
    /// `root` may also be a Hugging Face repo id (`org/name`, `org/name@revision`), found
    /// offline in the hub cache as huggingface_hub lays it out.
    pub fn open(root: &Path) -> Result<Self, ModelError> {
        let resolved;
        let root = match root.to_str().map(super::hub::ModelRef::parse) {
            Some(r @ super::hub::ModelRef::Repo { .. }) => {
                resolved = r.folder().map_err(|e| ModelError::Input(e.to_string()))?;
                resolved.as_path()
            }
            _ => root,
        };
        if !root.is_dir() {
            return Err(ModelError::Io { path: root.to_path_buf(), message: "not a folder".into() });
        }
        let mut folder = Self { root: root.to_path_buf(), image_side: None, variant: None };
        if IMAGE_SIDE.iter().any(|c| !folder.has(c)) {
            folder.image_side = variations_sibling(root).filter(|side| IMAGE_SIDE.iter().all(|c| side.join(c).is_dir()));
        }
        let t2i = folder.missing(TEXT_TO_IMAGE);
        let var = folder.missing(VARIATIONS);
        if !t2i.is_empty() && !var.is_empty() {
            let mut all: Vec<&str> = t2i.iter().chain(var.iter()).copied().collect();
            all.sort();
            all.dedup();
            return Err(ModelError::MissingFile {
                path: root.to_path_buf(),
                hint: format!("not an unCLIP model folder: missing {}", all.join(", ")),
            });
        }
        Ok(folder)
    }

    /// Components (of `needed`) whose folder or files are absent.
    pub fn missing<'a>(&self, needed: &[&'a str]) -> Vec<&'a str> {
        needed.iter().copied().filter(|c| !self.has(c)).collect()
    }

    /// A component's folder: in `root`, or borrowed from the image side (see `image_side`).
    pub fn dir(&self, component: &str) -> PathBuf {
        let own = self.root.join(component);
        match &self.image_side {
            Some(side) if IMAGE_SIDE.contains(&component) && !own.is_dir() => side.join(component),
            _ => own,
        }
    }

    pub fn has(&self, component: &str) -> bool {
        let dir = self.dir(component);
        match component {
            "tokenizer" => dir.join("tokenizer.json").is_file() || dir.join("vocab.json").is_file(),
            "feature_extractor" => dir.join("preprocessor_config.json").is_file(),
            c if c.ends_with("scheduler") => dir.join("scheduler_config.json").is_file(),
            _ => dir.join("config.json").is_file(),
        }
    }

    /// Why text→image is off for this folder (None: it is on), for the app to show.
    pub fn why_no_text_to_image(&self) -> Option<String> {
        let missing = self.missing(TEXT_TO_IMAGE);
        match missing.as_slice() {
            [] => None,
            ["prior"] | ["prior", "prior_scheduler"] | ["prior_scheduler"] => {
                Some("this model has no prior; text → image needs kakaobrain/karlo-v1-alpha".into())
            }
            m => Some(format!("this model lacks {}; text → image is off", m.join(", "))),
        }
    }

    /// Why variations, interpolation and text diffs are off (None: they are on).
    pub fn why_no_image_operations(&self) -> Option<String> {
        let missing = self.missing(VARIATIONS);
        match missing.as_slice() {
            [] => None,
            m if m.iter().all(|c| IMAGE_SIDE.contains(c)) => Some(
                "this model has no image encoder; image operations need kakaobrain/karlo-v1-alpha-image-variations \
                 in the hub cache (or a <folder>-image-variations beside it)"
                    .into(),
            ),
            m => Some(format!("this model lacks {}; image operations are off", m.join(", "))),
        }
    }

    pub fn can_generate(&self) -> bool {
        self.missing(TEXT_TO_IMAGE).is_empty()
    }
    pub fn can_vary(&self) -> bool {
        self.missing(VARIATIONS).is_empty()
    }
    pub fn has_super_res(&self) -> bool {
        self.missing(SUPER_RES).is_empty()
    }

    fn config_path(&self, component: &str) -> PathBuf {
        self.dir(component).join("config.json")
    }

    fn weights(&self, component: &str) -> Result<WeightFiles, ModelError> {
        weight_files(&self.dir(component), self.variant.as_deref())
    }

    /// How many weight values `component` holds (None when the folder has no such part).
    pub fn value_count(&self, component: &str) -> Option<u64> {
        let w = self.weights(component).ok()?;
        super::weights::value_count(&w, self.variant.as_deref()).ok()
    }

    pub fn tokenizer(&self) -> Result<ClipTokenizer, ModelError> {
        ClipTokenizer::from_folder(&self.dir("tokenizer"))
    }

    pub fn scheduler(&self, component: &str) -> Result<SchedulerConfig, ModelError> {
        config::read_config(&self.dir(component).join("scheduler_config.json"))
    }

    pub fn image_processor(&self) -> Result<ImageProcessorConfig, ModelError> {
        config::read_config(&self.dir("feature_extractor").join("preprocessor_config.json"))
    }

    pub fn text_encoder(&self, device: &Device, dtype: DType) -> Result<ClipTextModelWithProjection, ModelError> {
        let cfg = config::read_config(&self.config_path("text_encoder"))?;
        load_into(ClipTextModelWithProjection::init(&cfg, device)?, &self.weights("text_encoder")?, dtype)
    }

    pub fn image_encoder(&self, device: &Device, dtype: DType) -> Result<ClipVisionModelWithProjection, ModelError> {
        let cfg = config::read_config(&self.config_path("image_encoder"))?;
        load_into(ClipVisionModelWithProjection::init(&cfg, device)?, &self.weights("image_encoder")?, dtype)
    }

    pub fn prior(&self, device: &Device, dtype: DType) -> Result<PriorTransformer, ModelError> {
        let cfg = config::read_config(&self.config_path("prior"))?;
        load_into(PriorTransformer::init(&cfg, device)?, &self.weights("prior")?, dtype)
    }

    /// Whether the folder also has the autoregressive prior (`ar_prior/`, this project's own
    /// component; diffusers ignores it).
    pub fn has_ar_prior(&self) -> bool {
        self.root.join("ar_prior").join("config.json").is_file()
    }

    pub fn ar_prior(&self, device: &Device, dtype: DType) -> Result<ArPrior, ModelError> {
        let cfg: super::ar_prior::ArPriorConfig = config::read_config(&self.config_path("ar_prior"))?;
        let weights = self.weights("ar_prior")?;
        let stored = super::weights::value_count(&weights, self.variant.as_deref())?;
        if stored != cfg.value_count() {
            return Err(ModelError::Config {
                path: self.config_path("ar_prior"),
                message: format!("describes {} weight values, the weights file holds {stored}", cfg.value_count()),
            });
        }
        load_into(ArPrior::init(&cfg, device)?, &weights, dtype)
    }

    pub fn text_proj(&self, device: &Device, dtype: DType) -> Result<UnCLIPTextProjModel, ModelError> {
        let cfg = config::read_config(&self.config_path("text_proj"))?;
        load_into(UnCLIPTextProjModel::init(&cfg, device), &self.weights("text_proj")?, dtype)
    }

    pub fn decoder(&self, device: &Device, dtype: DType) -> Result<UNet, ModelError> {
        let cfg = config::read_config(&self.config_path("decoder"))?;
        load_into(unet::decoder::init(&cfg, device)?, &self.weights("decoder")?, dtype)
    }

    /// `component` is `super_res_first` or `super_res_last`.
    pub fn super_res(&self, component: &str, device: &Device, dtype: DType) -> Result<UNet, ModelError> {
        let cfg = config::read_config(&self.config_path(component))?;
        load_into(unet::super_res::init(&cfg, device)?, &self.weights(component)?, dtype)
    }

    /// Problems that would only surface on first use: configs that do not parse and weight
    /// files whose header is broken or truncated, one line each (empty when all is well).
    pub fn validate(&self) -> Vec<String> {
        use super::config::{ClipTextConfig, ClipVisionConfig, DecoderConfig, PriorConfig, SuperResConfig, TextProjConfig};
        fn parse<T: serde::de::DeserializeOwned + config::CheckConfig>(p: &Path) -> Option<String> {
            config::read_config::<T>(p).err().map(|e| e.to_string())
        }
        let mut problems = Vec::new();
        let checks: [(&str, fn(&Path) -> Option<String>); 8] = [
            ("text_encoder", parse::<ClipTextConfig>),
            ("image_encoder", parse::<ClipVisionConfig>),
            ("prior", parse::<PriorConfig>),
            ("text_proj", parse::<TextProjConfig>),
            ("decoder", parse::<DecoderConfig>),
            ("super_res_first", parse::<SuperResConfig>),
            ("super_res_last", parse::<SuperResConfig>),
            ("feature_extractor", |p: &Path| {
                parse::<ImageProcessorConfig>(&p.parent().unwrap_or(p).join("preprocessor_config.json"))
            }),
        ];
        for (component, check) in checks {
            if !self.has(component) {
                continue;
            }
            if let Some(e) = check(&self.config_path(component)) {
                problems.push(e);
            }
            if component != "feature_extractor"
                && let Err(e) = self.weights(component).and_then(|w| check_files(&w))
            {
                problems.push(e.to_string());
            }
        }
        for s in ["prior_scheduler", "decoder_scheduler", "super_res_scheduler"] {
            if self.has(s)
                && let Err(e) = self.scheduler(s)
            {
                problems.push(e.to_string());
            }
        }
        if self.has("tokenizer")
            && let Err(e) = self.tokenizer()
        {
            problems.push(e.to_string());
        }
        problems
    }

    /// `sample_size` of a component's config, if it states one.
    pub fn sample_size(&self, component: &str) -> Option<usize> {
        let v: serde_json::Value = config::read_config(&self.config_path(component)).ok()?;
        v.get("sample_size").and_then(|s| s.as_u64()).map(|s| s as usize)
    }
}

/// The image-variations folder that belongs with a text→image folder, if there is one: in
/// the hub cache, `models--org--name-image-variations` beside `models--org--name` (its
/// `main` snapshot); elsewhere a folder named `<name>-image-variations` beside `<name>`.
pub fn variations_sibling(root: &Path) -> Option<PathBuf> {
    // …/models--org--name/snapshots/<sha>
    let snapshots = root.parent()?;
    let repo = snapshots.parent()?;
    if snapshots.file_name()? == "snapshots"
        && let Some(id) = repo.file_name().and_then(|n| n.to_str()).and_then(super::hub::repo_id_from_folder)
    {
        return super::hub::resolve_in(repo.parent()?, &format!("{id}-image-variations"), None).ok();
    }
    let name = root.file_name()?.to_str()?;
    let side = root.with_file_name(format!("{name}-image-variations"));
    side.is_dir().then_some(side)
}

/// The shipped model: `$UNCLIP_MODEL` (taken as is, even when missing, so a wrong value gets
/// an error rather than another model), else the first of [`model_search_path`] that is a
/// folder, else the source tree's (where `cargo run` finds it).
pub fn default_model_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("UNCLIP_MODEL") {
        return PathBuf::from(p);
    }
    let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
    model_search_path(exe_dir.as_deref())
        .into_iter()
        .find(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets").join("model"))
}

/// Where an installed binary looks for its model, in order: `../share/unclip/model` beside
/// the binary (a package unpacked anywhere), the system package's `/usr/share/unclip/model`,
/// and `assets/model` beside the binary (the tarball).
pub fn model_search_path(exe_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(prefix) = exe_dir.and_then(Path::parent) {
        out.push(prefix.join("share").join("unclip").join("model"));
    }
    out.push(PathBuf::from("/usr/share/unclip/model"));
    if let Some(dir) = exe_dir {
        out.push(dir.join("assets").join("model"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_installed_binary_looks_beside_itself_then_in_the_system_then_in_its_folder() {
        let path = model_search_path(Some(Path::new("/opt/x/bin")));
        assert_eq!(
            path,
            vec![
                PathBuf::from("/opt/x/share/unclip/model"),
                PathBuf::from("/usr/share/unclip/model"),
                PathBuf::from("/opt/x/bin/assets/model"),
            ]
        );
        assert_eq!(model_search_path(None), vec![PathBuf::from("/usr/share/unclip/model")]);
    }
}
