//! Loading a component's weights (safetensors or PyTorch pickles, one file or shards) into a
//! module built from its config. Field names
//! mirror checkpoint keys; the few diffusers keys that name a position inside an
//! `nn.Sequential` are remapped here. Anything missing, left over or mis-shaped is an error
//! naming the key and the file, and the half-loaded module is dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ApplyError, FloatCastAdapter, ModuleAdapter, ModuleSnapshot};
use burn::tensor::DType;

use super::ModelError;

/// Keys whose module position we name as a field instead: (checkpoint, field).
const REMAPS: &[(&str, &str)] = &[(".to_out.0.", ".to_out."), (".ff.net.0.proj.", ".ff.net_0_proj."), (".ff.net.2.", ".ff.net_2.")];

/// A checkpoint key as our module path.
fn field_name(key: &str) -> String {
    REMAPS.iter().fold(key.to_string(), |k, (checkpoint, field)| k.replace(checkpoint, field))
}

/// A component's weights as published: one file or shards, safetensors or PyTorch pickles.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightFiles {
    pub files: Vec<PathBuf>,
    pub format: WeightFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    Safetensors,
    /// torch.save's zip (or legacy) pickle, read without running pickle code.
    Pytorch,
}

/// The file names diffusers (`diffusion_pytorch_model`) and transformers (`model`,
/// `pytorch_model`) write, in diffusers' order of preference: safetensors before pickles,
/// one file before shards. `variant` ("fp16") names the variant files first; without one, an
/// fp16 variant is still taken when it is all a folder has.
fn candidates(dir: &Path, variant: Option<&str>) -> Vec<(PathBuf, WeightFormat, bool)> {
    let transformers = dir.file_name().is_some_and(|n| n == "text_encoder" || n == "image_encoder");
    let (st, pt) = if transformers { ("model", "pytorch_model") } else { ("diffusion_pytorch_model", "diffusion_pytorch_model") };
    let names = |v: Option<&str>| -> Vec<(String, WeightFormat, bool)> {
        let dot = v.map(|v| format!(".{v}")).unwrap_or_default();
        vec![
            (format!("{st}{dot}.safetensors"), WeightFormat::Safetensors, false),
            (format!("{st}.safetensors.index{dot}.json"), WeightFormat::Safetensors, true),
            (format!("{pt}{dot}.bin"), WeightFormat::Pytorch, false),
            (format!("{pt}.bin.index{dot}.json"), WeightFormat::Pytorch, true),
        ]
    };
    let order: Vec<(String, WeightFormat, bool)> = match variant {
        Some(v) => names(Some(v)),
        None => names(None).into_iter().chain(names(Some("fp16"))).collect(),
    };
    order.into_iter().map(|(n, f, index)| (dir.join(n), f, index)).collect()
}

/// The weight files of a component folder (see [`candidates`]). The error names the file
/// that was looked for first, so a missing text encoder says `model.safetensors`.
pub fn weight_files(dir: &Path, variant: Option<&str>) -> Result<WeightFiles, ModelError> {
    let tried = candidates(dir, variant);
    for (path, format, index) in &tried {
        if !path.is_file() {
            continue;
        }
        let files = if *index { shard_files(path)? } else { vec![path.clone()] };
        return Ok(WeightFiles { files, format: *format });
    }
    let first = tried.first().map(|t| t.0.clone()).unwrap_or_else(|| dir.to_path_buf());
    let hint = match variant {
        Some(v) => format!("no {v} variant weights (.{v}.safetensors or .{v}.bin) in this folder"),
        None => "no weights (.safetensors or .bin) in this folder".into(),
    };
    Err(ModelError::MissingFile { path: first, hint })
}

/// Largest shard index read (Karlo-sized indices are ~100 KiB).
const MAX_INDEX_BYTES: u64 = 16 << 20;

/// The files a sharded checkpoint's `*.index.json` names in its `weight_map`, each a plain
/// file name in the same folder.
fn shard_files(index: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let bad = |message: String| ModelError::Weights { path: index.to_path_buf(), message };
    let len = std::fs::metadata(index).map_err(|e| bad(e.to_string()))?.len();
    if len > MAX_INDEX_BYTES {
        return Err(bad(format!("index of {len} bytes is too large")));
    }
    let text = std::fs::read_to_string(index).map_err(|e| bad(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let map = json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| bad("no weight_map".into()))?;
    let mut names: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Err(bad("weight_map names no files".into()));
    }
    let dir = index.parent().unwrap_or(Path::new("."));
    names
        .into_iter()
        .map(|n| {
            if n.is_empty() || n.contains(['/', '\\']) || n == ".." {
                return Err(bad(format!("shard name '{n}' is not a file name in this folder")));
            }
            let p = dir.join(n);
            if p.is_file() { Ok(p) } else { Err(ModelError::MissingFile { path: p, hint: "a shard named by the index is missing".into() }) }
        })
        .collect()
}

/// Checks every weights file's header and extent without loading it.
pub fn check_files(w: &WeightFiles) -> Result<(), ModelError> {
    for file in &w.files {
        let checked = match w.format {
            WeightFormat::Safetensors => check_header(file).map(|_| ()),
            WeightFormat::Pytorch => check_pickle(file),
        };
        checked.map_err(|message| ModelError::Weights { path: file.clone(), message })?;
    }
    Ok(())
}

/// How many values a component's weights hold, from the safetensors headers (exact) or, for
/// PyTorch pickles, from the file sizes (2 bytes a value for an fp16 variant, else 4).
pub fn value_count(w: &WeightFiles, variant: Option<&str>) -> Result<u64, ModelError> {
    let mut total = 0u64;
    for file in &w.files {
        let bad = |message: String| ModelError::Weights { path: file.clone(), message };
        total += match w.format {
            WeightFormat::Safetensors => read_header(file)
                .map_err(bad)?
                .values()
                .map(|e| e.shape.iter().map(|&d| d as u64).product::<u64>())
                .sum::<u64>(),
            WeightFormat::Pytorch => {
                let bytes = std::fs::metadata(file).map_err(|e| bad(e.to_string()))?.len();
                bytes / if variant.is_some_and(|v| v.contains("16")) { 2 } else { 4 }
            }
        };
    }
    Ok(total)
}

/// A torch.save file starts as a zip archive (torch ≥ 1.6) or a pickle stream (protocol 2+).
fn check_pickle(file: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(file).map_err(|e| e.to_string())?;
    f.read_exact(&mut head).map_err(|_| "file is too short to be a PyTorch checkpoint".to_string())?;
    if head == *b"PK\x03\x04" || head[0] == 0x80 {
        Ok(())
    } else {
        Err("not a PyTorch checkpoint (neither a zip archive nor a pickle)".into())
    }
}

/// Loads a component's weights (every shard) into `module`, casting every float to `dtype`.
/// Each tensor must be found once, with the shape the config implies; anything missing, left
/// over or mis-shaped is an error naming the key and the file.
pub fn load_into<M: Module + ModuleSnapshot>(mut module: M, weights: &WeightFiles, dtype: DType) -> Result<M, ModelError> {
    let mut applied: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut missing: Vec<String> = Vec::new();
    for file in &weights.files {
        let bad = |message: String| ModelError::Weights { path: file.to_path_buf(), message };
        // The file's shapes as stored (safetensors only), for messages in the checkpoint's layout.
        let (tensors, file_shapes) = match weights.format {
            WeightFormat::Safetensors => {
                // Read the header first: a truncated or non-safetensors file gets a plain message.
                let entries = read_header(file).map_err(bad)?;
                let shapes = entries.iter().map(|(k, e)| (k.clone(), e.shape.clone())).collect();
                (deferred_tensors(file, entries).map_err(bad)?, shapes)
            }
            WeightFormat::Pytorch => {
                check_pickle(file).map_err(bad)?;
                (pickle_tensors(file).map_err(bad)?, HashMap::new())
            }
        };
        let adapter = super::torch_layout::TorchLayout.chain(FloatCastAdapter::to(dtype));
        let result = module.apply(tensors, None, Some(Box::new(adapter)), true);
        tensor_errors(&result, &file_shapes).map_err(bad)?;
        // Older transformers checkpoints also saved the `position_ids` buffer, which is derived.
        let unused: Vec<&String> = result.unused.iter().filter(|k| !k.ends_with("position_ids")).collect();
        if let Some(path) = unused.first() {
            return Err(bad(format!(
                "unexpected tensor '{}' ({} unexpected in all): the config does not match these weights",
                // A name from the file may hold any character; the message stays one line.
                path.escape_debug(),
                unused.len()
            )));
        }
        applied.extend(result.applied);
        missing = result.missing.into_iter().map(|(path, _)| path).collect();
    }
    // A shard loads part of the module: what no file supplied is missing.
    let missing: Vec<&String> = missing.iter().filter(|p| !applied.contains(*p)).collect();
    if let Some(path) = missing.first() {
        let file = weights.files.first().cloned().unwrap_or_default();
        return Err(ModelError::Weights {
            path: file,
            message: format!("missing tensor '{}' ({} missing in all)", checkpoint_key(path), missing.len()),
        });
    }
    Ok(module)
}

/// The tensors of a safetensors file, each read from disk (`pread`) only when it is applied
/// and dropped after: loading holds the model plus one tensor, not a mapping of the whole
/// file beside it (Karlo's prior alone is 4.1 GB).
fn deferred_tensors(file: &Path, entries: HashMap<String, Entry>) -> Result<Vec<burn::store::burn_pack::Tensor>, String> {
    use burn::store::burn_pack::Error as PackError;
    use burn::tensor::TensorData;
    use std::io::{Read, Seek, SeekFrom};
    let mut out = Vec::with_capacity(entries.len());
    for (key, e) in entries {
        let dtype = match e.dtype.as_str() {
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "F64" => DType::F64,
            "I64" => DType::I64,
            "I32" => DType::I32,
            // No unCLIP network has bool parameters; keep the bytes as they are.
            _ => DType::U8,
        };
        let numel: usize = e.shape.iter().product();
        let len = (e.end - e.start) as usize;
        if numel.checked_mul(dtype.size()) != Some(len) {
            return Err(format!("tensor '{key}' holds {len} bytes, its shape {:?} needs {}", e.shape, numel * dtype.size()));
        }
        let name = field_name(&key);
        let (path, start, shape) = (file.to_path_buf(), e.start, e.shape.clone());
        out.push(burn::store::bridge::deferred(name, dtype, shape.clone().into(), None, move || {
            let io = |err: std::io::Error| PackError::IoError(format!("{}: {err}", path.display()));
            let mut f = std::fs::File::open(&path).map_err(io)?;
            f.seek(SeekFrom::Start(start)).map_err(io)?;
            // Float weights are read straight into a buffer of their own type: a byte buffer
            // would be copied once more to align it (a second pass over Karlo's 14 GB).
            fn typed<E: burn::tensor::Element + bytemuck::Pod>(f: &mut std::fs::File, n: usize, shape: &[usize]) -> std::io::Result<TensorData> {
                let mut v = vec![E::zeroed(); n];
                f.read_exact(bytemuck::cast_slice_mut(&mut v))?;
                Ok(TensorData::new(v, shape.to_vec()))
            }
            match dtype {
                DType::F32 => typed::<f32>(&mut f, numel, &shape).map_err(io),
                DType::F16 => typed::<half::f16>(&mut f, numel, &shape).map_err(io),
                DType::BF16 => typed::<half::bf16>(&mut f, numel, &shape).map_err(io),
                _ => {
                    let mut bytes = vec![0u8; len];
                    f.read_exact(&mut bytes).map_err(io)?;
                    Ok(TensorData::from_bytes_vec(bytes, shape.clone(), dtype))
                }
            }
        }));
    }
    Ok(out)
}

/// The tensors of a torch.save checkpoint (burn-store's reader: zip or legacy pickle, parsed
/// without running pickle code), named as our fields.
#[cfg(feature = "pytorch-bin")]
fn pickle_tensors(file: &Path) -> Result<Vec<burn::store::burn_pack::Tensor>, String> {
    use burn::store::{ModuleStore, PytorchStore};
    // Index remapping off: diffusers' `nn.Sequential` gaps (ff.net.0 / ff.net.2) are named by
    // REMAPS, not renumbered.
    let mut store = PytorchStore::from_file(file).map_indices_contiguous(false).validate(false).allow_partial(true);
    let tensors = store.get_all_tensors().map_err(|e| e.to_string())?;
    Ok(tensors
        .values()
        .map(|t| {
            let mut t = t.clone();
            t.name = field_name(&t.name);
            t
        })
        .collect())
}

#[cfg(not(feature = "pytorch-bin"))]
fn pickle_tensors(_: &Path) -> Result<Vec<burn::store::burn_pack::Tensor>, String> {
    Err("this build reads no PyTorch .bin files (built without the pytorch-bin feature)".into())
}

/// The first tensor error of a load, in the checkpoint's names and layout.
fn tensor_errors(result: &burn::store::ApplyResult, file_shapes: &HashMap<String, Vec<usize>>) -> Result<(), String> {
    let Some(e) = result.errors.first() else { return Ok(()) };
    let n = result.errors.len();
    Err(match e {
        ApplyError::ShapeMismatch { path, expected, found } => {
            let key = checkpoint_key(path);
            // burn stores Linear weights transposed; report the checkpoint's layout.
            let (expected, found) = match file_shapes.get(&key) {
                Some(f) if f.iter().rev().eq(found.iter()) && f.as_slice() != found.as_slice() => {
                    (expected.iter().rev().copied().collect::<Vec<_>>(), f.clone())
                }
                _ => (expected.to_vec(), found.to_vec()),
            };
            format!("tensor '{}' has shape {found:?}, the config expects {expected:?} ({n} tensor errors in all)", key.escape_debug())
        }
        other => format!("{} ({n} tensor errors in all)", torch_names(&other.to_string()).escape_debug()),
    })
}

/// burn calls norm parameters gamma/beta; users know the checkpoint's weight/bias.
fn torch_names(s: &str) -> String {
    s.replace(".gamma", ".weight").replace(".beta", ".bias")
}

/// A module path as the checkpoint spells it (norm names and `nn.Sequential` positions).
fn checkpoint_key(path: &str) -> String {
    REMAPS.iter().fold(torch_names(path), |k, (checkpoint, field)| k.replace(field, checkpoint))
}

/// One tensor of a safetensors file, as its header describes it.
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

/// Validates the header and returns each tensor's shape as stored.
fn check_header(file: &Path) -> Result<HashMap<String, Vec<usize>>, String> {
    Ok(read_header(file)?.into_iter().map(|(k, e)| (k, e.shape)).collect())
}

/// Validates the header (its length, JSON, dtypes, every tensor inside the file) and returns
/// the tensors it names.
fn read_header(file: &Path) -> Result<HashMap<String, Entry>, String> {
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
        let offset = |i: usize| info.get("data_offsets").and_then(|o| o.get(i)).and_then(|v| v.as_u64());
        let (Some(begin), Some(end)) = (offset(0), offset(1)) else {
            return Err(format!("tensor '{key}' has no data offsets"));
        };
        if begin > end || 8 + n + end > total {
            return Err(format!("tensor '{key}' runs past the end of the file (truncated download?)"));
        }
        let dtype = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("F32").to_string();
        if !matches!(dtype.as_str(), "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "BOOL" | "U8") {
            return Err(format!("tensor '{key}' has unsupported dtype {dtype}"));
        }
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect())
            .unwrap_or_default();
        shapes.insert(key.clone(), Entry { dtype, shape, start: 8 + n + begin, end: 8 + n + end });
    }
    Ok(shapes)
}
