//! Loading a component's `.safetensors` into a module built from its config. Field names
//! mirror checkpoint keys; the few diffusers keys that name a position inside an
//! `nn.Sequential` are remapped here. Anything missing, left over or mis-shaped is an error
//! naming the key and the file, and the half-loaded module is dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ApplyError, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::DType;

use super::ModelError;

/// Keys whose module position we name as a field instead.
const REMAPS: &[(&str, &str)] = &[
    (r"\.to_out\.0\.", ".to_out."),
    (r"\.ff\.net\.0\.proj\.", ".ff.net_0_proj."),
    (r"\.ff\.net\.2\.", ".ff.net_2."),
];

/// Weight file names diffusers and transformers write, in order of preference.
const WEIGHT_FILES: &[&str] = &["diffusion_pytorch_model.safetensors", "model.safetensors"];
const FP16_FILES: &[&str] = &["diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors"];

/// The safetensors file of a component folder (an fp16 variant when it is the only one).
pub fn weight_file(dir: &Path) -> Result<PathBuf, ModelError> {
    for name in WEIGHT_FILES.iter().chain(FP16_FILES) {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    let has_bin = ["diffusion_pytorch_model.bin", "pytorch_model.bin"].iter().any(|n| dir.join(n).is_file());
    Err(ModelError::MissingFile {
        path: dir.join(WEIGHT_FILES[0]),
        hint: if has_bin {
            "only PyTorch .bin weights are present; convert them to .safetensors (see README)".into()
        } else {
            "no .safetensors weights in this folder".into()
        },
    })
}

/// Checks a weights file's header and extent without loading it.
pub fn check_file(file: &Path) -> Result<(), ModelError> {
    check_header(file).map(|_| ()).map_err(|message| ModelError::Weights { path: file.to_path_buf(), message })
}

/// Loads `file` into `module`, casting every float to `dtype`.
pub fn load_into<M: Module + ModuleSnapshot>(mut module: M, file: &Path, dtype: DType) -> Result<M, ModelError> {
    let bad = |message: String| ModelError::Weights { path: file.to_path_buf(), message };
    // Read the header first: a truncated or non-safetensors file gets a plain message.
    let file_shapes = check_header(file).map_err(bad)?;

    let mut store = SafetensorsStore::from_file(file)
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(dtype)))
        .validate(false)
        .allow_partial(true);
    for (from, to) in REMAPS {
        store = store.with_key_remapping(*from, *to);
    }
    let result = module.load_from(&mut store).map_err(|e| bad(e.to_string()))?;

    if let Some(e) = result.errors.first() {
        let n = result.errors.len();
        let message = match e {
            ApplyError::ShapeMismatch { path, expected, found } => {
                let key = checkpoint_key(path);
                // burn stores Linear weights transposed; report the checkpoint's layout.
                let (expected, found) = match file_shapes.get(&key) {
                    Some(f) if f.iter().rev().eq(found.iter()) && f.as_slice() != found.as_slice() => {
                        (expected.iter().rev().copied().collect::<Vec<_>>(), f.clone())
                    }
                    _ => (expected.to_vec(), found.to_vec()),
                };
                format!("tensor '{key}' has shape {found:?}, the config expects {expected:?} ({n} tensor errors in all)")
            }
            other => format!("{} ({n} tensor errors in all)", torch_names(&other.to_string())),
        };
        return Err(bad(message));
    }
    if let Some((path, _)) = result.missing.first() {
        return Err(bad(format!(
            "missing tensor '{}' ({} missing in all)",
            checkpoint_key(path),
            result.missing.len()
        )));
    }
    // Older transformers checkpoints also saved the `position_ids` buffer, which is derived.
    let unused: Vec<&String> = result.unused.iter().filter(|k| !k.ends_with("position_ids")).collect();
    if let Some(path) = unused.first() {
        return Err(bad(format!(
            "unexpected tensor '{}' ({} unexpected in all): the config does not match these weights",
            path,
            unused.len()
        )));
    }
    Ok(module)
}

/// burn calls norm parameters gamma/beta; users know the checkpoint's weight/bias.
fn torch_names(s: &str) -> String {
    s.replace(".gamma", ".weight").replace(".beta", ".bias")
}

/// A module path as the checkpoint spells it (norm names and `nn.Sequential` positions).
fn checkpoint_key(path: &str) -> String {
    torch_names(path)
        .replace(".to_out.", ".to_out.0.")
        .replace(".ff.net_0_proj.", ".ff.net.0.proj.")
        .replace(".ff.net_2.", ".ff.net.2.")
}

/// Validates the header and returns each tensor's shape as stored.
fn check_header(file: &Path) -> Result<HashMap<String, Vec<usize>>, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let total = f.metadata().map_err(|e| e.to_string())?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| "file is too short to be safetensors".to_string())?;
    let n = u64::from_le_bytes(len);
    if n == 0 || n > 100 * 1024 * 1024 || 8 + n > total {
        return Err("not a safetensors file (bad header length)".into());
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|e| e.to_string())?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| "not a safetensors file (header is not JSON)".to_string())?;
    let entries = json.as_object().ok_or("safetensors header is not an object")?;
    let mut shapes = HashMap::new();
    for (key, info) in entries {
        if key == "__metadata__" {
            continue;
        }
        let end = info
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(|v| v.as_u64())
            .ok_or_else(|| format!("tensor '{key}' has no data offsets"))?;
        if 8 + n + end > total {
            return Err(format!("tensor '{key}' runs past the end of the file (truncated download?)"));
        }
        if let Some(dt) = info.get("dtype").and_then(|d| d.as_str())
            && !matches!(dt, "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "BOOL" | "U8")
        {
            return Err(format!("tensor '{key}' has unsupported dtype {dt}"));
        }
        let shape = info
            .get("shape")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect())
            .unwrap_or_default();
        shapes.insert(key.clone(), shape);
    }
    Ok(shapes)
}
