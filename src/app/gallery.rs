//! The gallery: every result, saved as a PNG that carries its recipe, in the data folder.
//! The folder is the database: listing it at start restores the history, and a PNG copied
//! out of it still knows how it was made. Files are encoded, written, read, decoded and
//! deleted on the gallery's own thread, so painting never waits on the disk; pictures are
//! decoded when first shown, so a history of thousands of files opens instantly. Entries
//! have stable ids: new results go on top without changing what an id names.

use eframe::egui;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, unbounded};
use egui::{TextureHandle, TextureOptions};

use super::inputs::color_image;
use crate::image_io::{decode_picture, encode_png, read_recipe};
use crate::pipeline::Picture;
use crate::recipe::{Operation, Recipe};

/// Whether an entry's file has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    NotAsked,
    Pending,
    Done,
}

pub struct Entry {
    /// Stable for the life of the app (positions change as results arrive).
    pub id: u64,
    /// None when saving failed: the picture is kept in memory so nothing is lost.
    pub path: Option<PathBuf>,
    pub recipe: Option<Recipe>,
    pub picture: Option<Picture>,
    /// Why the file could not be shown.
    pub error: Option<String>,
    load: Load,
    texture: Option<TextureHandle>,
}

impl Entry {
    /// A short description (the accessible label and the hover text).
    pub fn summary(&self) -> String {
        match self.recipe.as_ref().map(|r| &r.operation) {
            Some(Operation::Generate(g)) => format!("“{}” seed {}", shorten(&g.prompt, 60), g.seeds.prior),
            Some(Operation::Variations { source, params }) => {
                format!("variation of {} seed {}", file_part(source), params.seed)
            }
            Some(Operation::Interpolate { a, b, theta, .. }) => {
                format!("{} to {} at θ {theta:.2}", end_part(a), end_part(b))
            }
            Some(Operation::TextDiff { to, theta, .. }) => {
                format!("text diff toward “{}” θ {theta:.2}", shorten(to, 40))
            }
            None => self.path.as_deref().map(super::inputs::display_name).unwrap_or_else(|| "picture".into()),
        }
    }

    pub fn name(&self) -> String {
        self.path.as_deref().map(super::inputs::display_name).unwrap_or_else(|| "unsaved picture".into())
    }

    /// The file is still being read.
    pub fn loading(&self) -> bool {
        self.load == Load::Pending
    }
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() > n { s.chars().take(n).collect::<String>() + "…" } else { s.to_string() }
}

fn file_part(s: &str) -> String {
    super::inputs::display_name(Path::new(s))
}

fn end_part(e: &crate::pipeline::ops::Endpoint<String>) -> String {
    match e {
        crate::pipeline::ops::Endpoint::Prompt(p) => format!("“{}”", shorten(p, 30)),
        crate::pipeline::ops::Endpoint::Image(path) => file_part(path),
    }
}

/// Work for the gallery's thread.
enum Work {
    Save { id: u64, path: PathBuf, picture: Picture, recipe: Recipe },
    Load { id: u64, path: PathBuf },
    Delete { path: PathBuf },
}

/// What the gallery's thread reports.
enum Reply {
    /// The folder's pictures, newest first (the thread's first reply).
    Listed { files: Vec<PathBuf>, warning: Option<String> },
    Saved { id: u64, error: Option<String> },
    Loaded { id: u64, recipe: Option<Recipe>, picture: Result<Picture, String> },
    Deleted { path: PathBuf, error: Option<String> },
}

/// The folder's PNGs, newest first (creating the folder if needed).
fn list(dir: &Path) -> (Vec<PathBuf>, Option<String>) {
    let mut warning = None;
    if let Err(e) = std::fs::create_dir_all(dir) {
        warning = Some(format!("gallery folder {} unusable: {e}", dir.display()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")) && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    // Names start with a zero-padded timestamp, so name order is time order.
    files.sort();
    files.reverse();
    (files, warning)
}

fn serve(dir: PathBuf, requests: Receiver<Work>, replies: Sender<Reply>, ctx: Option<egui::Context>) {
    let (files, warning) = list(&dir);
    if replies.send(Reply::Listed { files, warning }).is_err() {
        return;
    }
    if let Some(ctx) = &ctx {
        ctx.request_repaint();
    }
    for r in requests {
        let reply = match r {
            Work::Save { id, path, picture, recipe } => {
                let saved = encode_png(&picture, Some(&recipe)).and_then(|bytes| crate::files::write_atomic(&path, &bytes));
                Reply::Saved { id, error: saved.err() }
            }
            Work::Load { id, path } => match std::fs::read(&path) {
                Ok(bytes) => Reply::Loaded { id, recipe: read_recipe(&bytes), picture: decode_picture(&bytes) },
                Err(e) => Reply::Loaded { id, recipe: None, picture: Err(e.to_string()) },
            },
            Work::Delete { path } => {
                let error = match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Some(format!("{}: {e}", path.display())),
                    _ => None,
                };
                Reply::Deleted { path, error }
            }
        };
        if replies.send(reply).is_err() {
            return;
        }
        if let Some(ctx) = &ctx {
            ctx.request_repaint();
        }
    }
}

pub struct Gallery {
    dir: PathBuf,
    /// Newest first.
    pub entries: Vec<Entry>,
    seq: u64,
    next_id: u64,
    requests: Sender<Work>,
    replies: Receiver<Reply>,
    /// Joined on drop, so saves still queued finish before the app exits.
    thread: Option<std::thread::JoinHandle<()>>,
    /// The folder's listing has arrived.
    listed: bool,
}

impl Drop for Gallery {
    fn drop(&mut self) {
        // Disconnect the request channel (the thread ends when it has drained it), then wait.
        let (dead, _) = unbounded();
        drop(std::mem::replace(&mut self.requests, dead));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Gallery {
    /// Starts the gallery's thread, which lists the folder (creating it if needed) and reports
    /// it through [`Gallery::pump`]; nothing is decoded yet. `ctx` is woken when the thread
    /// finishes something.
    pub fn open(dir: &Path, ctx: Option<egui::Context>) -> (Self, Option<String>) {
        let mut warning = None;
        let (requests, inbox) = unbounded();
        let (outbox, replies) = unbounded();
        let folder = dir.to_path_buf();
        let thread = match std::thread::Builder::new()
            .name("gallery-io".into())
            .spawn(move || serve(folder, inbox, outbox, ctx))
        {
            Ok(t) => Some(t),
            Err(e) => {
                warning = Some(format!("the gallery cannot start its file thread: {e}"));
                None
            }
        };
        let entries = Vec::new();
        (Self { dir: dir.to_path_buf(), entries, seq: 0, next_id: 0, requests, replies, thread, listed: false }, warning)
    }

    /// Whether the last session's results have been listed.
    pub fn is_listed(&self) -> bool {
        self.listed
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The current position of the entry with `id`.
    pub fn index_of(&self, id: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }

    pub fn id_at(&self, index: usize) -> Option<u64> {
        self.entries.get(index).map(|e| e.id)
    }

    /// Takes what the gallery's thread has finished; returns messages for the banner.
    pub fn pump(&mut self) -> Vec<String> {
        let mut messages = Vec::new();
        while let Ok(r) = self.replies.try_recv() {
            match r {
                Reply::Listed { files, warning } => {
                    messages.extend(warning);
                    // Older than anything made since the app started: they go below it.
                    for path in files {
                        let id = self.next_id;
                        self.next_id += 1;
                        self.entries.push(Entry {
                            id,
                            path: Some(path),
                            recipe: None,
                            picture: None,
                            error: None,
                            load: Load::NotAsked,
                            texture: None,
                        });
                    }
                    self.listed = true;
                }
                Reply::Saved { id, error: Some(e) } => {
                    if let Some(entry) = self.entries.iter_mut().find(|x| x.id == id) {
                        entry.path = None;
                        entry.error = Some(format!("not saved: {e}"));
                    }
                    messages.push(format!("a result could not be saved ({e}); it stays in the gallery until you quit"));
                }
                Reply::Saved { .. } => {}
                Reply::Loaded { id, recipe, picture } => {
                    if let Some(entry) = self.entries.iter_mut().find(|x| x.id == id) {
                        entry.load = Load::Done;
                        entry.recipe = recipe;
                        match picture {
                            Ok(p) => entry.picture = Some(p),
                            Err(e) => entry.error = Some(e),
                        }
                    }
                }
                Reply::Deleted { path, error } => {
                    if let Some(e) = error {
                        messages.push(format!("not deleted: {e}"));
                    } else {
                        self.entries.retain(|x| x.path.as_deref() != Some(path.as_path()));
                    }
                }
            }
        }
        messages
    }

    /// Puts a new result on top and has it saved in the background. A failed save keeps the
    /// picture in the gallery (unsaved) and says so through [`Gallery::pump`].
    pub fn add(&mut self, picture: Picture, recipe: Recipe) -> u64 {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        self.seq += 1;
        let path = self.dir.join(format!("{millis:014}-{:04}.png", self.seq % 10_000));
        let id = self.next_id;
        self.next_id += 1;
        let request = Work::Save { id, path: path.clone(), picture: picture.clone(), recipe: recipe.clone() };
        let sent = self.requests.send(request).is_ok();
        self.entries.insert(
            0,
            Entry {
                id,
                path: sent.then_some(path),
                recipe: Some(recipe),
                picture: Some(picture),
                error: (!sent).then(|| "not saved: the gallery's file thread is gone".to_string()),
                load: Load::Done,
                texture: None,
            },
        );
        id
    }

    /// Deletes the entry's file (in the background) and then the entry; an unsaved entry
    /// goes at once.
    pub fn remove(&mut self, index: usize) {
        let Some(e) = self.entries.get(index) else { return };
        match e.path.clone() {
            Some(path) => {
                let _ = self.requests.send(Work::Delete { path });
            }
            None => {
                self.entries.remove(index);
            }
        }
    }

    /// Asks for an entry's file to be read, the first time it is needed.
    pub fn ensure_loaded(&mut self, index: usize) {
        let Some(e) = self.entries.get_mut(index) else { return };
        if e.load != Load::NotAsked {
            return;
        }
        match &e.path {
            Some(path) => {
                e.load = Load::Pending;
                if self.requests.send(Work::Load { id: e.id, path: path.clone() }).is_err() {
                    e.load = Load::Done;
                    e.error = Some("the gallery's file thread is gone".into());
                }
            }
            None => e.load = Load::Done,
        }
    }

    /// The entry's texture, made once its picture is decoded (None until then).
    pub fn texture(&mut self, ctx: &egui::Context, index: usize) -> Option<TextureHandle> {
        self.ensure_loaded(index);
        let e = self.entries.get_mut(index)?;
        if e.texture.is_none() {
            let pic = e.picture.as_ref()?;
            e.texture =
                Some(ctx.load_texture(format!("gallery-{}", e.id), color_image(pic), TextureOptions::LINEAR));
        }
        e.texture.clone()
    }

    /// The index of the entry saved at `path`.
    pub fn find(&self, path: &Path) -> Option<usize> {
        self.entries.iter().position(|e| e.path.as_deref() == Some(path))
    }
}
