//! Input images: the slots the operations read from, and a loader that reads and decodes
//! dropped or opened files on a short-lived thread, so a large JPEG never stalls a frame.

use eframe::egui;
use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender, unbounded};
use egui::{ColorImage, TextureHandle, TextureOptions};

use crate::image_io::{decode_picture, read_recipe};
use crate::pipeline::Picture;
use crate::recipe::Recipe;

/// Where an input image goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    VarySource,
    InterpA,
    InterpB,
    TextDiffSource,
}

impl Slot {
    pub fn title(self) -> &'static str {
        match self {
            Slot::VarySource => "source image",
            Slot::InterpA => "image A",
            Slot::InterpB => "image B",
            Slot::TextDiffSource => "text-diff image",
        }
    }
}

/// An image in a slot, with the texture that shows it.
pub struct SourceImage {
    /// File name for the UI.
    pub name: String,
    /// Where it came from (recorded in recipes so they can be re-run).
    pub path: Option<PathBuf>,
    pub picture: Picture,
    pub texture: TextureHandle,
}

impl SourceImage {
    pub fn new(ctx: &egui::Context, name: String, path: Option<PathBuf>, picture: Picture) -> Self {
        let texture = ctx.load_texture(format!("source-{name}"), color_image(&picture), TextureOptions::LINEAR);
        Self { name, path, picture, texture }
    }

    /// The string a recipe records for this image.
    pub fn recipe_source(&self) -> String {
        self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| self.name.clone())
    }
}

pub fn color_image(p: &Picture) -> ColorImage {
    if p.rgb.len() == p.width * p.height * 3 {
        ColorImage::from_rgb([p.width, p.height], &p.rgb)
    } else {
        // Never expected; a blank picture is better than a panic in the paint path.
        ColorImage::new([1, 1], vec![egui::Color32::BLACK])
    }
}

/// What a load request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Put the image into this slot.
    Slot(Slot),
    /// A file dropped on the window: restore its recipe if it has one, else use it in `Slot`.
    Dropped(Slot),
    /// An input a restored recipe or the last session named: put it into the slot if it still
    /// opens, skip it quietly if it is gone (the loader thread finds out, not the UI thread).
    Reopen(Slot),
}

/// The outcome of one load request.
pub struct Loaded {
    pub purpose: Purpose,
    pub name: String,
    pub path: Option<PathBuf>,
    pub result: Result<(Picture, Option<Recipe>), String>,
}

/// Reads files off the UI thread; results come back through `poll`.
pub struct Loader {
    tx: Sender<Loaded>,
    rx: Receiver<Loaded>,
    ctx: egui::Context,
}

impl Loader {
    pub fn new(ctx: egui::Context) -> Self {
        let (tx, rx) = unbounded();
        Self { tx, rx, ctx }
    }

    /// Loads a file from disk.
    pub fn load_path(&self, path: PathBuf, purpose: Purpose) {
        let read = {
            let path = path.clone();
            move || std::fs::read(&path).map_err(|e| e.to_string())
        };
        self.spawn(display_name(&path), Some(path), purpose, read);
    }

    /// Loads a file dropped on the window (its bytes come from the platform's handle).
    pub fn load_dropped(&self, file: egui::DroppedFileHandle, purpose: Purpose) {
        let path = file.path().to_path_buf();
        let has_path = !path.as_os_str().is_empty();
        self.spawn(display_name(&path), has_path.then_some(path), purpose, move || file.bytes());
    }

    fn spawn(
        &self,
        name: String,
        path: Option<PathBuf>,
        purpose: Purpose,
        read: impl FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
    ) {
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new().name("unclip-load".into()).spawn({
            let name = name.clone();
            let path = path.clone();
            move || {
                let result = read_and_decode(read);
                let _ = tx.send(Loaded { purpose, name, path, result });
                ctx.request_repaint();
            }
        });
        if let Err(e) = spawned {
            let _ = self.tx.send(Loaded { purpose, name, path, result: Err(format!("cannot start a loader: {e}")) });
        }
    }

    pub fn poll(&self) -> Vec<Loaded> {
        self.rx.try_iter().collect()
    }
}

/// The file size limit is checked by `decode_picture`'s dimension limits; bytes over this
/// are refused before decoding at all.
const MAX_BYTES: usize = 512 * 1024 * 1024;

fn read_and_decode(read: impl FnOnce() -> Result<Vec<u8>, String>) -> Result<(Picture, Option<Recipe>), String> {
    let bytes = read().map_err(|e| format!("cannot read: {e}"))?;
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if bytes.len() > MAX_BYTES {
        return Err(format!("the file is too large ({} MB)", bytes.len() / (1024 * 1024)));
    }
    let picture = decode_picture(&bytes)?;
    Ok((picture, read_recipe(&bytes)))
}

pub fn display_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| path.display().to_string())
}
