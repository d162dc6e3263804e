//! The desktop app (eframe/egui). The UI thread only draws and routes messages: the engine
//! lives on the worker thread (`worker`), files are decoded on loader threads (`inputs`), and
//! the UI never waits for either.
//!
//! Layout: mode tabs and menus on top, the mode's controls on the left, the queue and the
//! gallery on the right, the preview / selected result in the middle, a status bar below.

pub mod gallery;
pub mod inputs;
pub mod panels;
pub mod preview;
pub mod queue;
pub mod settings;
pub mod status;
pub mod ui_map;
pub mod worker;

mod events;
mod examples;
mod jobs;
mod layout;

use eframe::egui;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui::TextureHandle;

use crate::device::DevicePref;
use panels::Action;
use crate::pipeline::Picture;
use crate::recipe::{Operation, Recipe};
use gallery::Gallery;
use inputs::{Loader, Purpose, Slot, SourceImage};
use preview::Preview;
use queue::Queue;
use settings::{Mode, Settings};
use status::ModelState;
use worker::Worker;

/// Where the app keeps things, and what the command line forced.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// A model folder from `--model` (None: the one in the settings, else the shipped one).
    pub model: Option<PathBuf>,
    /// `--device`; `Auto` defers to the setting.
    pub device: DevicePref,
    /// The gallery lives in `data_dir/gallery`.
    pub data_dir: PathBuf,
    /// `settings.json` lives here.
    pub config_dir: PathBuf,
    /// The rest of the command line.
    pub flags: LaunchFlags,
    /// The shipped model's folder, found before the window opens (finding it looks at the disk).
    pub builtin_model: PathBuf,
}

impl AppConfig {
    /// The user's folders (`~/.local/share/unclip`, `~/.config/unclip` on Linux).
    pub fn for_user(model: Option<PathBuf>, device: DevicePref) -> Result<Self, String> {
        let data = dirs::data_dir().ok_or("no data folder on this system (HOME unset?)")?;
        let config = dirs::config_dir().unwrap_or_else(|| data.clone());
        Ok(Self::with_folders(model, device, data.join("unclip"), config.join("unclip")))
    }

    /// The gallery under `data_dir`, settings under `config_dir`; no launch flags.
    pub fn with_folders(model: Option<PathBuf>, device: DevicePref, data_dir: PathBuf, config_dir: PathBuf) -> Self {
        Self {
            model,
            device,
            data_dir,
            config_dir,
            flags: LaunchFlags::default(),
            builtin_model: crate::model::folder::default_model_dir(),
        }
    }

    /// Reads `settings.json` (defaults and a warning when it is missing or broken). Called
    /// before the window opens, so the UI thread never reads it.
    pub fn read_settings(&self) -> (Settings, Option<String>) {
        Settings::load(&self.config_dir.join("settings.json"))
    }
}

/// What the command line says besides the model and device.
#[derive(Debug, Clone, Default)]
pub struct LaunchFlags {
    /// `--smoke PROMPT`: generate once as soon as the model is ready, then close the window
    /// a few seconds after the result (CI's end-to-end run of the real binary).
    pub smoke: Option<String>,
    /// Images named on the command line (as a file manager's "Open with" passes them): one
    /// becomes the variations source, two the interpolation ends.
    pub open: Vec<PathBuf>,
    /// `--dtype` when given: ticks or unticks Memory → Half precision, as the user would.
    pub half_precision: Option<bool>,
    /// `--release-stages`: ticks Memory → Free memory between stages.
    pub release_stages: bool,
}

/// Opens the app window; returns when it is closed.
pub fn run(model: Option<PathBuf>, device: DevicePref, flags: LaunchFlags) -> Result<(), String> {
    let mut config = AppConfig::for_user(model, device)?;
    if flags.smoke.is_some() {
        // A smoke run must not touch the user's folders.
        let dir = std::env::temp_dir().join(format!("unclip-smoke-{}", std::process::id()));
        config.data_dir = dir.join("data");
        config.config_dir = dir.join("config");
    }
    config.flags = flags;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("unclip")
            .with_app_id("unclip")
            .with_inner_size([1320.0, 840.0])
            .with_min_inner_size([900.0, 560.0])
            .with_drag_and_drop(true)
            .with_icon(window_icon()),
        ..Default::default()
    };
    let settings = config.read_settings();
    eframe::run_native("unclip", options, Box::new(move |cc| Ok(Box::new(UnclipApp::new(&cc.egui_ctx, config, settings)))))
        .map_err(|e| format!("cannot open the window: {e}"))
}

/// The window's icon: the packages' 64 px icon, compiled in (the desktop entry's theme icon
/// covers menus; this covers the task bar of a binary run from anywhere).
fn window_icon() -> egui::IconData {
    eframe::icon_data::from_png_bytes(include_bytes!("../../dist/icons/unclip-64.png")).unwrap_or_default()
}

/// A one-line message above the main area.
pub(crate) struct Banner {
    pub text: String,
    pub error: bool,
    /// A dropped PNG's recipe the user may restore with one click.
    pub recipe: Option<Recipe>,
}

/// The current frame of an interpolation or text diff (one per mode, one texture each).
pub(crate) struct Frame {
    pub theta: f32,
    pub draft: bool,
    pub picture: Picture,
    pub texture: TextureHandle,
    pub op: Operation,
}

/// What the middle area shows when no job is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Empty,
    /// The kept preview of a cancelled or failed job.
    Preview,
    /// A gallery entry by its id (stable while new results arrive on top).
    Result(u64),
    /// The current mode's frame.
    Frame,
}

pub struct UnclipApp {
    settings: Settings,
    settings_path: PathBuf,
    /// What is on disk, to write only when something changed.
    saved: Settings,
    last_save_check: Instant,

    worker: Worker,
    loader: Loader,
    queue: Queue,
    gallery: Gallery,
    preview: Preview,
    model: ModelState,
    /// The device in use: `--device` when given (not persisted), else the setting.
    device: DevicePref,
    model_folder: PathBuf,
    model_is_default: bool,
    builtin_model: PathBuf,

    slots: HashMap<Slot, SourceImage>,
    loading: Vec<Slot>,
    frames: HashMap<Mode, Frame>,
    strip: Vec<Frame>,
    view: View,
    banner: Option<Banner>,
    /// The last thing that happened ("done in 1.2 s"), for the status bar.
    last_status: String,
    smoke: Option<Smoke>,
    /// unCLIP pipelines in the Hugging Face cache, listed once on a background thread (the
    /// cache walk reads the disk; the UI thread never does).
    hub_models: Arc<Mutex<Vec<crate::model::hub::CachedPipeline>>>,
    /// Writes settings.json off the UI thread.
    settings_writer: crate::files::BackgroundWriter,
    /// "Save as…" encodes and writes here.
    exports: crate::files::BackgroundWriter,
}

/// Progress of a `--smoke` run.
struct Smoke {
    prompt: String,
    queued: bool,
    done_at: Option<Instant>,
}

impl UnclipApp {
    /// Builds the app around `ctx` with the settings [`AppConfig::read_settings`] read; starts
    /// the worker and opens the model in the background.
    pub fn new(ctx: &egui::Context, config: AppConfig, loaded: (Settings, Option<String>)) -> Self {
        let settings_path = config.config_dir.join("settings.json");
        let (mut settings, settings_warning) = loaded;
        // Flags change the settings as ticking the boxes would, so they are saved like that.
        let saved = settings.clone();
        if let Some(half) = config.flags.half_precision {
            settings.half_precision = half;
        }
        settings.release_stages |= config.flags.release_stages;
        let (gallery, gallery_warning) = Gallery::open(&config.data_dir.join("gallery"), Some(ctx.clone()));
        let model_folder =
            config.model.clone().or_else(|| settings.model.clone()).unwrap_or_else(|| config.builtin_model.clone());
        let model_is_default = model_folder == config.builtin_model;
        let device = if config.device == DevicePref::Auto { settings.device } else { config.device };

        let worker = Worker::spawn(ctx.clone());
        worker.send(worker::Job::SetMemory(worker::Memory {
            half_precision: settings.half_precision,
            release_stages: settings.release_stages,
        }));
        worker.send(worker::Job::OpenModel { folder: model_folder.clone(), device });
        let loader = Loader::new(ctx.clone());

        let mut app = Self {
            saved,
            settings,
            settings_path,
            last_save_check: Instant::now(),
            worker,
            loader,
            queue: Queue::default(),
            gallery,
            preview: Preview::default(),
            model: ModelState::Opening,
            device,
            model_folder,
            model_is_default,
            builtin_model: config.builtin_model.clone(),
            slots: HashMap::new(),
            loading: Vec::new(),
            frames: HashMap::new(),
            strip: Vec::new(),
            view: View::Empty,
            banner: None,
            last_status: String::new(),
            smoke: config.flags.smoke.clone().map(|prompt| Smoke { prompt, queued: false, done_at: None }),
            hub_models: Arc::new(Mutex::new(Vec::new())),
            settings_writer: crate::files::BackgroundWriter::new("settings-writer"),
            exports: crate::files::BackgroundWriter::new("export-writer"),
        };
        {
            let (list, ctx) = (app.hub_models.clone(), ctx.clone());
            let _ = std::thread::Builder::new().name("hub-cache".into()).spawn(move || {
                let found = crate::model::hub::list_unclip();
                if let Ok(mut l) = list.lock() {
                    *l = found;
                }
                ctx.request_repaint();
            });
        }
        if let Some(w) = settings_warning.or(gallery_warning) {
            app.error(w);
        }
        // Re-open the input images of the last session that still exist.
        for slot in [Slot::VarySource, Slot::InterpA, Slot::InterpB, Slot::TextDiffSource] {
            if let Some(path) = app.slot_path(slot).clone() {
                app.loading.push(slot);
                app.loader.load_path(path, Purpose::Reopen(slot));
            }
        }
        app.open_files(&config.flags.open);
        app
    }

    // --- Read access for tests and tools -------------------------------------------------

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    pub fn gallery_len(&self) -> usize {
        self.gallery.len()
    }

    pub fn gallery_dir(&self) -> &Path {
        self.gallery.dir()
    }

    /// The picture in the live preview (kept after a cancel).
    pub fn preview_picture(&self) -> Option<&Picture> {
        self.preview.picture()
    }

    /// The current frame of interpolation or text diff, with its θ and whether it is a draft.
    pub fn frame(&self, mode: Mode) -> Option<(f32, bool, &Picture)> {
        self.frames.get(&mode).map(|f| (f.theta, f.draft, &f.picture))
    }

    pub fn banner_text(&self) -> Option<&str> {
        self.banner.as_ref().map(|b| b.text.as_str())
    }

    /// A job is running or waiting.
    pub fn is_busy(&self) -> bool {
        self.queue.busy()
    }

    pub fn model_ready(&self) -> bool {
        matches!(self.model, ModelState::Ready { .. })
    }

    /// The model is open and the gallery's listing has arrived: nothing more comes by itself.
    pub fn settled(&self) -> bool {
        self.model_ready() && self.gallery.is_listed()
    }

    /// Queues a job that panics in the worker (tests the crash recovery).
    #[doc(hidden)]
    pub fn queue_fault(&mut self) {
        let ticket = self.queue.ticket();
        self.queue.push(queue::Pending {
            job: worker::Job::Panic { ticket: ticket.clone() },
            ticket,
            label: "fault injection".into(),
            op: Operation::Generate(Default::default()),
            origin: queue::Origin::Gallery,
        });
    }

    // --- Small shared helpers -----------------------------------------------------------

    pub(crate) fn error(&mut self, text: impl Into<String>) {
        let text = worker::one_line(&text.into());
        eprintln!("unclip: {text}");
        self.banner = Some(Banner { text, error: true, recipe: None });
    }

    pub(crate) fn info(&mut self, text: impl Into<String>) {
        self.banner = Some(Banner { text: text.into(), error: false, recipe: None });
    }

    /// The model as recipes name it.
    pub(crate) fn model_name(&self) -> String {
        if self.model_is_default { "default".into() } else { self.model_folder.display().to_string() }
    }

    fn slot_path(&mut self, slot: Slot) -> &mut Option<PathBuf> {
        match slot {
            Slot::VarySource => &mut self.settings.vary_source,
            Slot::InterpA => &mut self.settings.interp_a,
            Slot::InterpB => &mut self.settings.interp_b,
            Slot::TextDiffSource => &mut self.settings.text_diff_source,
        }
    }

    pub(crate) fn set_slot(&mut self, slot: Slot, image: SourceImage) {
        *self.slot_path(slot) = image.path.clone();
        self.loading.retain(|s| *s != slot);
        self.slots.insert(slot, image);
    }

    pub(crate) fn clear_slot(&mut self, slot: Slot) {
        *self.slot_path(slot) = None;
        self.slots.remove(&slot);
    }

    /// Writes the settings when they changed (checked at most every 2 s while running).
    fn save_settings(&mut self, force: bool) {
        if !force && self.last_save_check.elapsed() < Duration::from_secs(2) {
            return;
        }
        self.last_save_check = Instant::now();
        for e in self.settings_writer.errors() {
            if force {
                eprintln!("unclip: settings not saved: {e}");
            } else {
                self.error(format!("settings not saved: {e}"));
            }
        }
        if self.settings != self.saved {
            // Written on the writer's thread; `saved` is updated either way so a failing
            // disk is reported once, not every 2 s.
            match self.settings.to_json() {
                Ok(json) => {
                    self.settings_writer.write(&self.settings_path, json);
                }
                Err(e) => self.error(format!("settings not saved: {e}")),
            }
            self.saved = self.settings.clone();
        }
    }
}

impl UnclipApp {
    /// `--smoke`: one generation, a gallery PNG, then close (the exit code tells CI).
    fn drive_smoke(&mut self, ctx: &egui::Context) {
        let Some(mut smoke) = self.smoke.take() else { return };
        if !smoke.queued && self.model_ready() {
            self.settings.prompt = smoke.prompt.clone();
            self.act(ctx, Action::Generate);
            smoke.queued = true;
            eprintln!("smoke: generating {:?}", smoke.prompt);
        }
        if smoke.queued && smoke.done_at.is_none() && !self.is_busy() && self.gallery_len() > 0 {
            eprintln!("smoke: result saved in {}", self.gallery_dir().display());
            smoke.done_at = Some(Instant::now());
        }
        if let Some(t) = smoke.done_at {
            // Leave time for a screenshot of the result.
            if t.elapsed() > Duration::from_secs(4) {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
        if let Some(banner) = self.banner.as_ref().filter(|b| b.error) {
            eprintln!("smoke: error banner: {}", banner.text);
            std::process::exit(1);
        }
        ctx.request_repaint_after(Duration::from_millis(200));
        self.smoke = Some(smoke);
    }
}

impl eframe::App for UnclipApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.pump(ctx);
        self.drive_smoke(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.shortcuts(ui.ctx());
        self.take_drops(ui.ctx());
        let actions = self.layout(ui);
        ui_map::end_frame(ui.ctx());
        for a in actions {
            self.act(ui.ctx(), a);
        }
        // Jobs queued by this frame's clicks start now rather than on the next event.
        self.dispatch();
        if self.queue.running.is_some() {
            // Keeps the ETA ticking between progress events.
            ui.ctx().request_repaint_after(Duration::from_millis(250));
        }
        self.save_settings(false);
        self.poll_exports();
    }

    fn save(&mut self, _storage: &mut dyn eframe::Storage) {
        // Settings go to our own JSON file (readable, and shared with tests' temp dirs).
        self.save_settings(true);
    }
}

impl Drop for UnclipApp {
    fn drop(&mut self) {
        // Stop work promptly so the worker's join (in its Drop) returns within one network call.
        self.queue.clear();
        self.queue.cancel_running();
        self.save_settings(true);
    }
}
