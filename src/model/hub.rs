//! Offline lookup of Hugging Face Hub models in the local hub cache.
//!
//! Anyone who has run diffusers already has unCLIP weights under `~/.cache/huggingface/hub`
//! (from `from_pretrained` or `huggingface-cli download`). This module turns a repo id such as
//! `kakaobrain/karlo-v1-alpha` into that cache's snapshot folder with the same rules as the
//! huggingface_hub library, so those weights are opened in place instead of copied, and lists the
//! unCLIP pipelines found there. It never touches the network: a repo that is not cached is an
//! error that says how to fetch it.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The revision huggingface_hub uses when none is given.
const DEFAULT_REVISION: &str = "main";
/// A model_index.json is a few hundred bytes; anything past this is not one.
const MAX_INDEX_BYTES: u64 = 1 << 20;
/// A ref file holds one commit hash; anything past this is not one.
const MAX_REF_BYTES: u64 = 1 << 10;
/// Longest name accepted as a commit (from a ref file, or as a snapshot folder name).
const MAX_COMMIT_LEN: usize = 128;
/// Longest revision accepted in `org/name@revision`.
const MAX_REVISION_LEN: usize = 256;
/// Bounds the size walk of one snapshot so a strange folder cannot stall the listing.
const MAX_WALK_ENTRIES: usize = 10_000;
/// Bounds the ref and snapshot names gathered for an error message.
const MAX_LISTED: usize = 1_000;

/// What the user named as a model: a folder on disk, or a Hub repo to find in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    Folder(PathBuf),
    Repo { id: String, revision: Option<String> },
}

impl ModelRef {
    /// Paths win over repo ids: `org/name` that exists on disk is that folder. Anything that is
    /// neither stays a folder, so the caller's "not a folder" error still applies.
    pub fn parse(s: &str) -> ModelRef {
        parse_with_home(s, dirs::home_dir())
    }

    /// The folder to open: the path itself, or the repo's snapshot in the cache.
    pub fn folder(&self) -> Result<PathBuf, HubError> {
        match self {
            ModelRef::Folder(path) => Ok(path.clone()),
            ModelRef::Repo { id, revision } => resolve(id, revision.as_deref()),
        }
    }
}

fn parse_with_home(s: &str, home: Option<PathBuf>) -> ModelRef {
    if let Some(expanded) = expand_tilde(s, home.as_deref()) {
        return ModelRef::Folder(expanded);
    }
    let path = Path::new(s);
    let looks_like_path = s.starts_with('.') || s.starts_with('/') || s.starts_with('~');
    if looks_like_path || path.is_absolute() || path.exists() {
        return ModelRef::Folder(path.to_path_buf());
    }
    match parse_repo(s) {
        Some((id, revision)) => ModelRef::Repo { id, revision },
        None => ModelRef::Folder(path.to_path_buf()),
    }
}

/// `~` and `~/rest` become the home folder (as Python's expanduser does); `~user` is left alone.
fn expand_tilde(s: &str, home: Option<&Path>) -> Option<PathBuf> {
    if s == "~" {
        return home.map(Path::to_path_buf);
    }
    let rest = s.strip_prefix("~/")?;
    home.map(|h| h.join(rest))
}

fn parse_repo(s: &str) -> Option<(String, Option<String>)> {
    let (id, revision) = match s.split_once('@') {
        Some((id, revision)) => (id, Some(revision)),
        None => (s, None),
    };
    if !is_repo_id(id) || revision.is_some_and(|r| !is_revision(r)) {
        return None;
    }
    Some((id.to_string(), revision.map(str::to_string)))
}

/// `org/name` with the characters the Hub allows; `..` is refused because the id becomes a path.
fn is_repo_id(id: &str) -> bool {
    let Some((org, name)) = id.split_once('/') else {
        return false;
    };
    is_name_part(org) && is_name_part(name) && !id.contains("..")
}

fn is_name_part(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A branch, tag, commit or `refs/pr/N`: `/`-separated names that cannot climb out of `refs/`.
fn is_revision(revision: &str) -> bool {
    !revision.is_empty()
        && revision.len() <= MAX_REVISION_LEN
        && !revision.contains("..")
        && revision.split('/').all(is_name_part)
}

/// What a ref file may contain and what a snapshot folder may be called: one plain name.
fn is_commit_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_COMMIT_LEN && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Everything that can go wrong while finding a repo in the cache, as one-line messages.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "no Hugging Face cache folder: HF_HUB_CACHE and HF_HOME are unset and there is no home folder"
    )]
    NoCacheDir,
    #[error("{id} is not a Hugging Face repo id (expected org/name or org/name@revision)")]
    InvalidId { id: String },
    #[error("{revision:?} is not a valid revision of {id}")]
    InvalidRevision { id: String, revision: String },
    #[error("{id} is not in the Hugging Face cache ({cache}); fetch it with: {fetch}")]
    NotCached { id: String, cache: PathBuf, fetch: String },
    #[error("{id}: revision {revision} is not in the Hugging Face cache ({available}); fetch it with: {fetch}")]
    MissingRevision { id: String, revision: String, available: String, fetch: String },
    #[error("{id}: revision {revision} points at commit {commit}, but {path} is missing; fetch it with: {fetch}")]
    MissingSnapshot { id: String, revision: String, commit: String, path: PathBuf, fetch: String },
    #[error("{path}: not a commit hash: {content:?}")]
    BadRef { path: PathBuf, content: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
}

/// The hub cache folder, found like huggingface_hub does: `HF_HUB_CACHE` (or its older name
/// `HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
/// `~/.cache/huggingface/hub`. `None` only when nothing is set and there is no home folder.
pub fn cache_dir() -> Option<PathBuf> {
    cache_dir_from(|name| std::env::var(name).ok(), dirs::home_dir())
}

/// [`cache_dir`] with the environment passed in, so tests need not change the process's.
fn cache_dir_from(get: impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Option<PathBuf> {
    // Empty counts as unset: `HF_HOME= cmd` should not mean "the current folder".
    let var = |name: &str| get(name).filter(|v| !v.is_empty());
    // huggingface_hub runs expanduser on these, so `HF_HOME=~/hf` works there and must here.
    let expand = |v: String| expand_tilde(&v, home.as_deref()).unwrap_or_else(|| PathBuf::from(v));
    if let Some(v) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return Some(expand(v));
    }
    if let Some(v) = var("HF_HOME") {
        return Some(expand(v).join("hub"));
    }
    if let Some(v) = var("XDG_CACHE_HOME") {
        return Some(expand(v).join("huggingface").join("hub"));
    }
    home.as_deref().map(|h| h.join(".cache").join("huggingface").join("hub"))
}

/// `models--org--name`: the folder huggingface_hub keeps a model repo in.
fn repo_folder(cache: &Path, id: &str) -> PathBuf {
    cache.join(format!("models--{}", id.replace('/', "--")))
}

fn fetch_command(id: &str, revision: Option<&str>) -> String {
    match revision {
        Some(r) => format!("huggingface-cli download {id} --revision {r}"),
        None => format!("huggingface-cli download {id}"),
    }
}

/// The snapshot folder of `id` at `revision` (default `main`) in the default cache.
pub fn resolve(id: &str, revision: Option<&str>) -> Result<PathBuf, HubError> {
    let cache = cache_dir().ok_or(HubError::NoCacheDir)?;
    resolve_in(&cache, id, revision)
}

/// The snapshot folder of `id` at `revision` (default `main`) in `cache`. Its files are symlinks
/// into the repo's `blobs/`, which opening them follows.
pub fn resolve_in(cache: &Path, id: &str, revision: Option<&str>) -> Result<PathBuf, HubError> {
    if !is_repo_id(id) {
        return Err(HubError::InvalidId { id: id.to_string() });
    }
    if let Some(r) = revision.filter(|r| !is_revision(r)) {
        return Err(HubError::InvalidRevision { id: id.to_string(), revision: r.to_string() });
    }
    let repo = repo_folder(cache, id);
    let fetch = fetch_command(id, revision);
    if !repo.is_dir() {
        return Err(HubError::NotCached { id: id.to_string(), cache: cache.to_path_buf(), fetch });
    }
    let rev = revision.unwrap_or(DEFAULT_REVISION);
    let snapshots = repo.join("snapshots");
    // A branch or tag: refs/<revision> holds the commit it pointed at when last downloaded.
    let ref_file = repo.join("refs").join(rev);
    if ref_file.is_file() {
        let commit = read_ref(&ref_file)?;
        let snapshot = snapshots.join(&commit);
        if snapshot.is_dir() {
            return Ok(snapshot);
        }
        return Err(HubError::MissingSnapshot {
            id: id.to_string(),
            revision: rev.to_string(),
            commit,
            path: snapshot,
            fetch,
        });
    }
    // A commit downloaded by hash gets a snapshot but no ref.
    if is_commit_name(rev) {
        let snapshot = snapshots.join(rev);
        if snapshot.is_dir() {
            return Ok(snapshot);
        }
    }
    Err(HubError::MissingRevision {
        id: id.to_string(),
        revision: rev.to_string(),
        available: describe_available(&repo),
        fetch,
    })
}

/// Reads a file whole unless it is longer than `limit`, in which case `Ok(None)`; also `None`
/// for anything that is not a regular file (a folder or a FIFO would fail or block).
fn read_capped(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    if !fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    let file = fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok(((bytes.len() as u64) <= limit).then_some(bytes))
}

/// The commit a ref file names, refusing anything that could lead outside `snapshots/`.
fn read_ref(path: &Path) -> Result<String, HubError> {
    let io = |e: std::io::Error| HubError::Io { path: path.to_path_buf(), message: e.to_string() };
    let bad = |content: String| HubError::BadRef { path: path.to_path_buf(), content };
    let Some(bytes) = read_capped(path, MAX_REF_BYTES).map_err(io)? else {
        return Err(bad(format!("more than {MAX_REF_BYTES} bytes, or not a file")));
    };
    let text = String::from_utf8_lossy(&bytes);
    let commit = text.trim();
    if is_commit_name(commit) {
        Ok(commit.to_string())
    } else {
        Err(bad(commit.chars().take(60).collect()))
    }
}

/// For the missing-revision message: the refs there are, or else the commits.
fn describe_available(repo: &Path) -> String {
    let refs = list_refs(&repo.join("refs"));
    if !refs.is_empty() {
        return format!("cached refs: {}", refs.join(", "));
    }
    let commits = list_subdirs(&repo.join("snapshots"));
    if commits.is_empty() {
        "nothing of it is cached".to_string()
    } else {
        format!("no refs; cached commits: {}", commits.join(", "))
    }
}

/// Ref names under `refs/`, nested ones (`refs/pr/1`) with their `/`, sorted.
fn list_refs(refs_dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending = vec![(refs_dir.to_path_buf(), String::new())];
    let mut visited = 0usize;
    'walk: while let Some((dir, prefix)) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            visited += 1;
            if visited > MAX_LISTED {
                break 'walk;
            }
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push((entry.path(), format!("{name}/"))),
                Ok(_) => names.push(name),
                Err(_) => {}
            }
        }
    }
    names.sort();
    names
}

/// Names of the folders in `dir` (following symlinks), sorted; empty when unreadable.
fn list_subdirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .take(MAX_LISTED)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Which of the two diffusers unCLIP pipelines a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineKind {
    /// `UnCLIPPipeline`: prior + decoder, generates from text.
    TextToImage,
    /// `UnCLIPImageVariationPipeline`: image encoder + decoder, makes variations of an image.
    ImageVariations,
}

/// An unCLIP pipeline found in the hub cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPipeline {
    /// `org/name`.
    pub id: String,
    /// `main` when found through `refs/main`, else the snapshot's commit hash; either one
    /// resolves back to `path` through [`resolve_in`].
    pub revision: String,
    /// The snapshot folder, to open as a diffusers folder.
    pub path: PathBuf,
    /// Disk space of the files the snapshot uses, each blob counted once.
    pub bytes: u64,
    pub kind: PipelineKind,
}

/// The unCLIP pipelines in the default cache; empty when there is none.
pub fn list_unclip() -> Vec<CachedPipeline> {
    cache_dir().map(|cache| list_unclip_in(&cache)).unwrap_or_default()
}

/// The unCLIP pipelines in `cache`, sorted by id: each repo's `main` snapshot, or every snapshot
/// of a repo that has no usable `refs/main`. Unreadable or odd entries are skipped, never fatal.
pub fn list_unclip_in(cache: &Path) -> Vec<CachedPipeline> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(cache) else {
        return found;
    };
    for entry in entries.flatten() {
        let folder_name = entry.file_name();
        let Some(id) = folder_name.to_str().and_then(repo_id_from_folder) else {
            continue;
        };
        let repo = entry.path();
        if !repo.is_dir() {
            continue;
        }
        for (revision, snapshot) in listed_snapshots(&repo) {
            let Some(kind) = pipeline_kind(&snapshot) else {
                continue;
            };
            let bytes = snapshot_bytes(&snapshot);
            found.push(CachedPipeline { id: id.clone(), revision, path: snapshot, bytes, kind });
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.revision.cmp(&b.revision)));
    found
}

/// `models--org--name` back to `org/name`; datasets, spaces and stray files give `None`.
pub fn repo_id_from_folder(name: &str) -> Option<String> {
    let rest = name.strip_prefix("models--")?;
    // The Hub forbids `--` in org names, so the first one is the separator.
    let (org, model) = rest.split_once("--")?;
    let id = format!("{org}/{model}");
    is_repo_id(&id).then_some(id)
}

/// (revision, snapshot folder) pairs worth looking at in one repo folder.
fn listed_snapshots(repo: &Path) -> Vec<(String, PathBuf)> {
    let snapshots = repo.join("snapshots");
    if let Ok(commit) = read_ref(&repo.join("refs").join(DEFAULT_REVISION)) {
        let snapshot = snapshots.join(&commit);
        if snapshot.is_dir() {
            return vec![(DEFAULT_REVISION.to_string(), snapshot)];
        }
    }
    list_subdirs(&snapshots)
        .into_iter()
        .filter(|name| is_commit_name(name))
        .map(|name| {
            let path = snapshots.join(&name);
            (name, path)
        })
        .collect()
}

/// The pipeline class named by the snapshot's model_index.json, if it is an unCLIP one.
fn pipeline_kind(snapshot: &Path) -> Option<PipelineKind> {
    let bytes = read_capped(&snapshot.join("model_index.json"), MAX_INDEX_BYTES).ok()??;
    let index: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match index.get("_class_name")?.as_str()? {
        "UnCLIPPipeline" => Some(PipelineKind::TextToImage),
        "UnCLIPImageVariationPipeline" => Some(PipelineKind::ImageVariations),
        _ => None,
    }
}

/// Total size of the files a snapshot's entries point to. Snapshot entries are symlinks into
/// `blobs/`, and identical files share one blob, so each target is counted once.
fn snapshot_bytes(snapshot: &Path) -> u64 {
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut total: u64 = 0;
    let mut visited = 0usize;
    let mut pending = vec![snapshot.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            visited += 1;
            if visited > MAX_WALK_ENTRIES {
                return total;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            // Only real subfolders are walked: a symlinked folder could loop.
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            // Follows the link; a dangling one (an interrupted download) is skipped.
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let target = fs::canonicalize(&path).unwrap_or(path);
            if seen.insert(target) {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    // The fixtures need symlinks; elsewhere only the parse and location tests run.
    #![cfg_attr(not(unix), allow(dead_code))]

    use super::*;

    const KARLO: &str = "kakaobrain/karlo-v1-alpha";
    const VARIATIONS: &str = "fusing/karlo-image-variations-diffusers";
    const MAIN_SHA: &str = "4b8a3e6c2d1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b";
    const OLD_SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const VAR_SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";
    const PRIOR_CONFIG: &str = r#"{"_class_name": "PriorTransformer", "num_layers": 20}"#;

    fn index(class: &str) -> String {
        format!(r#"{{"_class_name": "{class}", "_diffusers_version": "0.17.0.dev0"}}"#)
    }

    /// A fake environment for `cache_dir_from`.
    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name: &str| -> Option<String> { owned.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()) }
    }

    /// A fresh folder under the system temp folder, removed when dropped (also when a test fails).
    #[cfg(unix)]
    struct TempDir(PathBuf);

    #[cfg(unix)]
    impl TempDir {
        fn new() -> Self {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let dir = std::env::temp_dir().join(format!("unclip-hub-test-{}-{n}-{nanos}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    #[cfg(unix)]
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Content-addressed like the real cache, so equal files share one blob.
    #[cfg(unix)]
    fn blob_name(content: &str) -> String {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut hasher = DefaultHasher::new();
        content.hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    /// Lays out `files` (path inside the snapshot, content) the way huggingface_hub does: the
    /// content in `blobs/<hash>`, the snapshot entry a relative symlink to it.
    #[cfg(unix)]
    fn add_snapshot(cache: &Path, id: &str, commit: &str, files: &[(&str, &str)]) -> PathBuf {
        let repo = repo_folder(cache, id);
        let blobs = repo.join("blobs");
        let snapshot = repo.join("snapshots").join(commit);
        fs::create_dir_all(&blobs).unwrap();
        fs::create_dir_all(&snapshot).unwrap();
        for (name, content) in files {
            fs::write(blobs.join(blob_name(content)), content).unwrap();
            let link = snapshot.join(name);
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            // From snapshots/<sha>/[sub/]file back up to the repo folder.
            let mut target = PathBuf::new();
            for _ in 0..Path::new(name).components().count() + 1 {
                target.push("..");
            }
            target.push("blobs");
            target.push(blob_name(content));
            std::os::unix::fs::symlink(&target, &link).unwrap();
        }
        snapshot
    }

    #[cfg(unix)]
    fn set_ref(cache: &Path, id: &str, name: &str, content: &str) {
        let file = repo_folder(cache, id).join("refs").join(name);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, content).unwrap();
    }

    /// Karlo with `main` at MAIN_SHA, the tag `v1.0` at OLD_SHA.
    #[cfg(unix)]
    fn karlo_cache(cache: &Path) -> (PathBuf, PathBuf) {
        let t2i = index("UnCLIPPipeline");
        let files = [("model_index.json", t2i.as_str()), ("prior/config.json", PRIOR_CONFIG)];
        let main = add_snapshot(cache, KARLO, MAIN_SHA, &files);
        let old = add_snapshot(cache, KARLO, OLD_SHA, &files[..1]);
        // huggingface_hub writes refs without a newline; a hand-edited one may have one.
        set_ref(cache, KARLO, "main", &format!("{MAIN_SHA}\n"));
        set_ref(cache, KARLO, "v1.0", OLD_SHA);
        (main, old)
    }

    #[cfg(unix)]
    #[test]
    fn a_repo_id_resolves_to_its_main_snapshot_through_refs() {
        let tmp = TempDir::new();
        let cache = &tmp.0;
        let (main, old) = karlo_cache(cache);

        assert_eq!(resolve_in(cache, KARLO, None).unwrap(), main);
        assert_eq!(resolve_in(cache, KARLO, Some("main")).unwrap(), main);
        assert_eq!(resolve_in(cache, KARLO, Some("v1.0")).unwrap(), old);
        // The snapshot opens like a plain folder: its symlinks lead to the blobs.
        assert_eq!(fs::read_to_string(main.join("prior/config.json")).unwrap(), PRIOR_CONFIG);
    }

    #[cfg(unix)]
    #[test]
    fn a_revision_given_as_a_commit_sha_resolves_without_a_ref() {
        let tmp = TempDir::new();
        let cache = &tmp.0;
        let t2i = index("UnCLIPPipeline");
        add_snapshot(cache, KARLO, MAIN_SHA, &[("model_index.json", t2i.as_str())]);
        set_ref(cache, KARLO, "main", MAIN_SHA);
        let pinned = add_snapshot(cache, KARLO, OLD_SHA, &[("model_index.json", t2i.as_str())]);

        assert_eq!(resolve_in(cache, KARLO, Some(OLD_SHA)).unwrap(), pinned);
        let absent = resolve_in(cache, KARLO, Some(VAR_SHA));
        assert!(matches!(absent, Err(HubError::MissingRevision { .. })), "{absent:?}");
    }

    #[cfg(unix)]
    #[test]
    fn an_uncached_repo_says_how_to_fetch_it() {
        let tmp = TempDir::new();
        let cache = &tmp.0;

        let message = resolve_in(cache, KARLO, None).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "kakaobrain/karlo-v1-alpha is not in the Hugging Face cache ({}); \
                 fetch it with: huggingface-cli download kakaobrain/karlo-v1-alpha",
                cache.display()
            )
        );
        let message = resolve_in(cache, KARLO, Some("v2")).unwrap_err().to_string();
        assert!(message.ends_with("huggingface-cli download kakaobrain/karlo-v1-alpha --revision v2"), "{message}");
        // A cache folder that does not exist at all is the same case.
        let message = resolve_in(&cache.join("absent"), KARLO, None).unwrap_err().to_string();
        assert!(message.contains("huggingface-cli download kakaobrain/karlo-v1-alpha"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn a_missing_revision_is_named_with_the_refs_that_exist() {
        let tmp = TempDir::new();
        let cache = &tmp.0;
        karlo_cache(cache);

        let message = resolve_in(cache, KARLO, Some("v9")).unwrap_err().to_string();
        assert_eq!(
            message,
            "kakaobrain/karlo-v1-alpha: revision v9 is not in the Hugging Face cache (cached refs: main, v1.0); \
             fetch it with: huggingface-cli download kakaobrain/karlo-v1-alpha --revision v9"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_ref_or_revision_that_could_leave_the_repo_is_refused() {
        let tmp = TempDir::new();
        let cache = &tmp.0;
        karlo_cache(cache);
        set_ref(cache, KARLO, "evil", "../../../../etc");
        set_ref(cache, KARLO, "empty", "\n");

        let evil = resolve_in(cache, KARLO, Some("evil"));
        assert!(matches!(evil, Err(HubError::BadRef { .. })), "{evil:?}");
        let empty = resolve_in(cache, KARLO, Some("empty"));
        assert!(matches!(empty, Err(HubError::BadRef { .. })), "{empty:?}");
        let climbing = resolve_in(cache, KARLO, Some("../refs"));
        assert!(matches!(climbing, Err(HubError::InvalidRevision { .. })), "{climbing:?}");
        let bad_id = resolve_in(cache, "kakaobrain/../etc", None);
        assert!(matches!(bad_id, Err(HubError::InvalidId { .. })), "{bad_id:?}");
    }

    #[test]
    fn the_cache_location_follows_hf_hub_cache_then_hf_home_then_home() {
        let home = || Some(PathBuf::from("/home/u"));
        let all = [
            ("HF_HUB_CACHE", "/fast/hub"),
            ("HUGGINGFACE_HUB_CACHE", "/legacy/hub"),
            ("HF_HOME", "/data/hf"),
            ("XDG_CACHE_HOME", "/xdg"),
        ];
        assert_eq!(cache_dir_from(env_of(&all), home()), Some(PathBuf::from("/fast/hub")));
        assert_eq!(cache_dir_from(env_of(&all[1..]), home()), Some(PathBuf::from("/legacy/hub")));
        assert_eq!(cache_dir_from(env_of(&all[2..]), home()), Some(PathBuf::from("/data/hf/hub")));
        assert_eq!(cache_dir_from(env_of(&all[3..]), home()), Some(PathBuf::from("/xdg/huggingface/hub")));
        assert_eq!(cache_dir_from(env_of(&[]), home()), Some(PathBuf::from("/home/u/.cache/huggingface/hub")));
        // Set but empty is unset.
        let empty = [("HF_HUB_CACHE", ""), ("HF_HOME", "/data/hf")];
        assert_eq!(cache_dir_from(env_of(&empty), home()), Some(PathBuf::from("/data/hf/hub")));
        // `~` is expanded as huggingface_hub's expanduser does.
        let tilde = [("HF_HOME", "~/hf")];
        assert_eq!(cache_dir_from(env_of(&tilde), home()), Some(PathBuf::from("/home/u/hf/hub")));
        assert_eq!(cache_dir_from(env_of(&[]), None), None);
        assert_eq!(cache_dir_from(env_of(&all[2..]), None), Some(PathBuf::from("/data/hf/hub")));
    }

    #[cfg(unix)]
    #[test]
    fn listing_finds_unclip_pipelines_with_their_size_and_skips_others() {
        let tmp = TempDir::new();
        let cache = &tmp.0;
        let t2i = index("UnCLIPPipeline");
        // Two configs with equal content share a blob and count once.
        let main = add_snapshot(
            cache,
            KARLO,
            MAIN_SHA,
            &[
                ("model_index.json", t2i.as_str()),
                ("prior/config.json", PRIOR_CONFIG),
                ("decoder/config.json", PRIOR_CONFIG),
            ],
        );
        set_ref(cache, KARLO, "main", MAIN_SHA);
        // An older snapshot is neither listed nor counted while refs/main exists.
        let big = "x".repeat(5000);
        add_snapshot(cache, KARLO, OLD_SHA, &[("model_index.json", t2i.as_str()), ("prior/big.bin", big.as_str())]);
        // A dangling link (interrupted download) is ignored.
        std::os::unix::fs::symlink("../../../blobs/gone", main.join("prior/weights.safetensors")).unwrap();

        // No refs at all: the snapshot is listed under its commit.
        let var_index = index("UnCLIPImageVariationPipeline");
        let encoder = r#"{"hidden_size": 1024}"#;
        let var = add_snapshot(
            cache,
            VARIATIONS,
            VAR_SHA,
            &[("model_index.json", var_index.as_str()), ("image_encoder/config.json", encoder)],
        );

        // Other pipelines, broken and oversized indexes, datasets and stray files are skipped.
        let sd = index("StableDiffusionPipeline");
        add_snapshot(cache, "stabilityai/stable-diffusion-2-1", MAIN_SHA, &[("model_index.json", sd.as_str())]);
        add_snapshot(cache, "broken/json", MAIN_SHA, &[("model_index.json", "{\"_class_name\": \"UnCLIPPipe")]);
        let huge = format!("{{\"_class_name\": \"UnCLIPPipeline\"{}}}", " ".repeat(1 << 20));
        add_snapshot(cache, "huge/index", MAIN_SHA, &[("model_index.json", huge.as_str())]);
        add_snapshot(cache, "no/index", MAIN_SHA, &[("prior/config.json", PRIOR_CONFIG)]);
        fs::create_dir_all(cache.join("datasets--kakaobrain--coyo/snapshots")).unwrap();
        fs::create_dir_all(cache.join(".locks/models--kakaobrain--karlo-v1-alpha")).unwrap();
        fs::write(cache.join("version.txt"), "1").unwrap();
        fs::write(cache.join("models--stray--file"), "not a folder").unwrap();

        let found = list_unclip_in(cache);
        let ids: Vec<&str> = found.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, [VARIATIONS, KARLO]);

        let variations = &found[0];
        assert_eq!(variations.kind, PipelineKind::ImageVariations);
        assert_eq!(variations.revision, VAR_SHA);
        assert_eq!(variations.path, var);
        assert_eq!(variations.bytes, (var_index.len() + encoder.len()) as u64);

        let karlo = &found[1];
        assert_eq!(karlo.kind, PipelineKind::TextToImage);
        assert_eq!(karlo.revision, "main");
        assert_eq!(karlo.path, main);
        assert_eq!(karlo.bytes, (t2i.len() + PRIOR_CONFIG.len()) as u64);

        // Each listed revision resolves back to the listed folder.
        for pipeline in &found {
            assert_eq!(resolve_in(cache, &pipeline.id, Some(pipeline.revision.as_str())).unwrap(), pipeline.path);
        }
        assert!(list_unclip_in(&cache.join("absent")).is_empty());
    }

    #[test]
    fn parse_tells_repo_ids_from_folders() {
        let repo = |id: &str, revision: Option<&str>| ModelRef::Repo {
            id: id.to_string(),
            revision: revision.map(str::to_string),
        };
        assert_eq!(ModelRef::parse(KARLO), repo(KARLO, None));
        assert_eq!(ModelRef::parse("kakaobrain/karlo-v1-alpha@main"), repo(KARLO, Some("main")));
        assert_eq!(ModelRef::parse("fusing/karlo_v2.1@refs/pr/3"), repo("fusing/karlo_v2.1", Some("refs/pr/3")));
        assert_eq!(ModelRef::parse(&format!("{KARLO}@{OLD_SHA}")), repo(KARLO, Some(OLD_SHA)));

        for folder in [
            "./karlo",
            "../models/karlo",
            "/opt/models/karlo",
            "karlo",
            "models/kakaobrain/karlo",
            "org/..",
            "org/na me",
            "org/name@",
            "org/name@../x",
            "~user/karlo",
            "",
        ] {
            assert_eq!(ModelRef::parse(folder), ModelRef::Folder(PathBuf::from(folder)), "{folder:?}");
        }

        // An existing relative folder wins over an id (cargo runs tests from the crate root).
        assert!(Path::new("src/model").is_dir());
        assert_eq!(ModelRef::parse("src/model"), ModelRef::Folder(PathBuf::from("src/model")));

        let home = Some(PathBuf::from("/home/u"));
        let expanded = ModelRef::Folder(PathBuf::from("/home/u/models/karlo"));
        assert_eq!(parse_with_home("~/models/karlo", home.clone()), expanded);
        assert_eq!(parse_with_home("~", home), ModelRef::Folder(PathBuf::from("/home/u")));
    }
}
