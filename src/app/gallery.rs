//! The gallery: every result, saved as a PNG that carries its recipe, in the data folder.
//! The folder is the database: listing it at start restores the history, and a PNG copied
//! out of it still knows how it was made. Pictures are decoded lazily when first shown, so
//! a history of thousands of files opens instantly.

use eframe::egui;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use egui::{TextureHandle, TextureOptions};

use super::inputs::color_image;
use crate::image_io::{decode_picture, encode_png, read_recipe};
use crate::pipeline::Picture;
use crate::recipe::{Operation, Recipe};

pub struct Entry {
    /// None when saving failed: the picture is kept in memory so nothing is lost.
    pub path: Option<PathBuf>,
    pub recipe: Option<Recipe>,
    pub picture: Option<Picture>,
    /// Why the file could not be shown.
    pub error: Option<String>,
    loaded: bool,
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
                format!("{} to {} at θ {theta:.2}", file_part(a), file_part(b))
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
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() > n { s.chars().take(n).collect::<String>() + "…" } else { s.to_string() }
}

fn file_part(s: &str) -> String {
    match s.strip_prefix(super::settings::PROMPT_PREFIX) {
        Some(p) => format!("“{}”", shorten(p, 30)),
        None => super::inputs::display_name(Path::new(s)),
    }
}

pub struct Gallery {
    dir: PathBuf,
    /// Newest first.
    pub entries: Vec<Entry>,
    seq: u64,
}

impl Gallery {
    /// Lists the folder (creating it if needed); nothing is decoded yet.
    pub fn open(dir: &Path) -> (Self, Option<String>) {
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
        let entries = files
            .into_iter()
            .map(|p| Entry { path: Some(p), recipe: None, picture: None, error: None, loaded: false, texture: None })
            .collect();
        (Self { dir: dir.to_path_buf(), entries, seq: 0 }, warning)
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

    /// Saves a new result and puts it first. On a write error the picture stays in the
    /// gallery (unsaved) and the error is returned for the banner.
    pub fn add(&mut self, picture: Picture, recipe: Recipe) -> Result<(), String> {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        self.seq += 1;
        let path = self.dir.join(format!("{millis:014}-{:04}.png", self.seq % 10_000));
        let saved = encode_png(&picture, Some(&recipe))
            .and_then(|bytes| std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display())));
        let error = saved.as_ref().err().map(|e| format!("not saved: {e}"));
        self.entries.insert(
            0,
            Entry {
                path: saved.is_ok().then_some(path),
                recipe: Some(recipe),
                picture: Some(picture),
                error,
                loaded: true,
                texture: None,
            },
        );
        saved.map_err(|e| format!("a result could not be saved ({e}); it stays in the gallery until you quit"))
    }

    /// Deletes the entry and its file.
    pub fn remove(&mut self, index: usize) -> Result<(), String> {
        if index >= self.entries.len() {
            return Ok(());
        }
        if let Some(path) = &self.entries[index].path
            && let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(format!("{}: {e}", path.display()));
        }
        self.entries.remove(index);
        Ok(())
    }

    /// Reads and decodes an entry's file the first time it is needed.
    pub fn ensure_loaded(&mut self, index: usize) {
        let Some(e) = self.entries.get_mut(index) else { return };
        if e.loaded {
            return;
        }
        e.loaded = true;
        let Some(path) = &e.path else { return };
        match std::fs::read(path) {
            Ok(bytes) => {
                e.recipe = read_recipe(&bytes);
                match decode_picture(&bytes) {
                    Ok(p) => e.picture = Some(p),
                    Err(err) => e.error = Some(err),
                }
            }
            Err(err) => e.error = Some(err.to_string()),
        }
    }

    /// The entry's texture, made on first use.
    pub fn texture(&mut self, ctx: &egui::Context, index: usize) -> Option<TextureHandle> {
        self.ensure_loaded(index);
        let e = self.entries.get_mut(index)?;
        if e.texture.is_none() {
            let pic = e.picture.as_ref()?;
            e.texture =
                Some(ctx.load_texture(format!("gallery-{}", e.name()), color_image(pic), TextureOptions::LINEAR));
        }
        e.texture.clone()
    }

    /// The index of the entry saved at `path`.
    pub fn find(&self, path: &Path) -> Option<usize> {
        self.entries.iter().position(|e| e.path.as_deref() == Some(path))
    }
}
