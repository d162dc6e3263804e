//! Incoming messages: worker events, finished file loads, dropped files and shortcuts.

use eframe::egui;
use egui::{Key, Modifiers, TextureOptions};

use super::inputs::{Loaded, Purpose, Slot, SourceImage, color_image};
use super::panels::Action;
use super::queue::Origin;
use super::settings::{EndKind, Mode};
use super::status::ModelState;
use super::worker::Event;
use super::{Banner, Frame, UnclipApp, View};
use crate::recipe::{Operation, Recipe};

impl UnclipApp {
    /// Drains both channels and starts the next job. Called every frame (and while hidden).
    pub(crate) fn pump(&mut self, ctx: &egui::Context) {
        for e in self.worker.poll() {
            self.on_event(ctx, e);
        }
        for l in self.loader.poll() {
            self.on_loaded(ctx, l);
        }
        let listed = self.gallery.is_listed();
        for message in self.gallery.pump() {
            self.error(message);
        }
        // The last session's results arrive from the gallery's thread: show the newest one
        // unless something is on screen already.
        if !listed && self.gallery.is_listed() && self.view == View::Empty {
            self.view = self.gallery.id_at(0).map(View::Result).unwrap_or(View::Empty);
        }
        self.dispatch();
    }

    /// Hands the next job to the worker when it is free.
    pub(crate) fn dispatch(&mut self) {
        let Some(p) = self.queue.take_next() else { return };
        self.queue.start(&p);
        let id = p.ticket.id;
        if !self.worker.send(p.job) {
            self.queue.finish(id);
            self.error("the worker thread is gone; restart the app");
        }
    }

    fn on_event(&mut self, ctx: &egui::Context, e: Event) {
        match e {
            Event::ModelReady { folder, device, is_gpu, generate_off, vary_off, problems, memory, ar_prior } => {
                // The worker reports the folder resolved (absolute, links followed): recipes
                // record it, and the recent list names each folder once.
                if !self.model_is_default {
                    self.settings.model = Some(folder.clone());
                    self.settings.remember_model(&folder.display().to_string());
                }
                self.model_folder = folder;
                self.model = ModelState::Ready { device, is_gpu, generate_off, vary_off, memory, ar_prior };
                if let Some(first) = problems.first() {
                    let more = if problems.len() > 1 { format!(" (and {} more)", problems.len() - 1) } else { String::new() };
                    self.error(format!("this model folder has a problem: {first}{more}"));
                }
            }
            Event::ModelFailed { folder, message } => {
                self.model = ModelState::Failed(message.clone());
                // The message names the folder when the failure is about a file in it.
                let text = if message.contains(&folder.display().to_string()) {
                    format!("cannot open the model: {message}")
                } else {
                    format!("cannot open the model {}: {message}", folder.display())
                };
                self.error(text);
            }
            Event::Started { id } => {
                if self.queue.is_running(id) {
                    self.preview.begin();
                }
            }
            Event::Progress { id, stage, step, total, preview } => {
                if self.queue.is_running(id) {
                    self.preview.progress(ctx, stage, step, total, preview);
                }
            }
            // Notes (a prompt cut to the model's length, stages freed to fit in memory) stay in
            // a banner after the run; the status line is overwritten when it ends.
            Event::Note { text, .. } => {
                self.info(text.clone());
                self.last_status = text;
            }
            Event::Finished { id, pictures, seconds } => {
                let Some(run) = self.queue.finish(id) else { return };
                self.preview.end(None);
                self.last_status = format!("{} done in {seconds:.1} s", run.label);
                self.deliver(ctx, run.op, run.origin, pictures);
            }
            Event::Cancelled { id } => {
                let Some(run) = self.queue.finish(id) else { return };
                if matches!(run.origin, Origin::Frame { draft: true, .. }) {
                    // Superseded by a newer frame request, not stopped by the user.
                    self.preview.end(None);
                } else {
                    self.preview.end(Some("cancelled"));
                    self.last_status = "Cancelled".into();
                    if self.preview.has_picture() {
                        self.view = View::Preview;
                    }
                }
            }
            Event::Failed { id, message } => {
                if self.queue.finish(id).is_some() {
                    self.preview.end(Some("failed"));
                    self.last_status = "Failed".into();
                    self.error(message);
                }
            }
            Event::Crashed { id, message } => {
                if self.queue.finish(id).is_some() {
                    self.preview.end(Some("failed"));
                    self.last_status = "Crashed; engine restarted".into();
                    self.error(message);
                }
            }
        }
    }

    /// Puts a finished job's pictures where they belong.
    fn deliver(&mut self, ctx: &egui::Context, op: Operation, origin: Origin, pictures: Vec<crate::pipeline::Picture>) {
        match origin {
            Origin::Gallery => {
                let model = self.model_name();
                // Last first, so the batch reads in order from the top (and after a restart).
                let mut top = None;
                for (i, pic) in pictures.into_iter().enumerate().rev() {
                    top = Some(self.gallery.add(pic, Recipe::new(model.clone(), i, op.clone())));
                }
                if let Some(id) = top {
                    self.view = View::Result(id);
                }
            }
            Origin::Frame { theta, draft } => {
                let Some(pic) = pictures.into_iter().next() else { return };
                let mode = match op {
                    Operation::TextDiff { .. } => Mode::TextDiff,
                    _ => Mode::Interpolate,
                };
                match self.frames.get_mut(&mode) {
                    Some(f) => {
                        f.texture.set(color_image(&pic), TextureOptions::LINEAR);
                        f.theta = theta;
                        f.draft = draft;
                        f.picture = pic;
                        f.op = op;
                    }
                    None => {
                        let texture =
                            ctx.load_texture(format!("frame-{mode:?}"), color_image(&pic), TextureOptions::LINEAR);
                        self.frames.insert(mode, Frame { theta, draft, picture: pic, texture, op });
                    }
                }
                self.view = View::Frame;
            }
            Origin::Strip { theta } => {
                let Some(pic) = pictures.into_iter().next() else { return };
                if (theta - self.settings.interp.theta).abs() < 1e-4 {
                    // The strip frame at the slider's θ is also the current frame.
                    self.deliver(ctx, op.clone(), Origin::Frame { theta, draft: false }, vec![pic.clone()]);
                }
                let texture = ctx.load_texture(format!("strip-{theta:.3}"), color_image(&pic), TextureOptions::LINEAR);
                self.strip.retain(|f| (f.theta - theta).abs() > 1e-4);
                self.strip.push(Frame { theta, draft: false, picture: pic, texture, op });
                self.strip.sort_by(|a, b| a.theta.total_cmp(&b.theta));
            }
        }
    }

    fn on_loaded(&mut self, ctx: &egui::Context, l: Loaded) {
        let slot = match l.purpose {
            Purpose::Slot(s) | Purpose::Dropped(s) | Purpose::Reopen(s) => s,
        };
        self.loading.retain(|s| *s != slot);
        let (picture, recipe) = match l.result {
            Ok(ok) => ok,
            Err(_) if matches!(l.purpose, Purpose::Reopen(_)) => return,
            Err(e) => {
                self.error(format!("{}: {e}", l.name));
                return;
            }
        };
        if let (Purpose::Dropped(_), Some(recipe)) = (l.purpose, &recipe)
            && self.settings.mode == Mode::Generate
        {
            // A picture made by this app, dropped on the text-to-image tab: restore it.
            self.restore(recipe.clone());
            self.info(format!("Restored the settings of {}", l.name));
            return;
        }
        let offer = match l.purpose {
            Purpose::Dropped(_) => recipe,
            Purpose::Slot(_) | Purpose::Reopen(_) => None,
        };
        self.set_slot(slot, SourceImage::new(ctx, l.name.clone(), l.path, picture));
        if slot == Slot::VarySource && self.settings.mode == Mode::Generate {
            self.settings.mode = Mode::Variations;
        }
        if let Some(recipe) = offer {
            self.banner = Some(Banner {
                text: format!("{} was made by unclip; its settings can be restored", l.name),
                error: false,
                recipe: Some(recipe),
            });
        }
    }

    /// Restores a recipe's settings and re-opens its source images.
    pub(crate) fn restore(&mut self, recipe: Recipe) {
        for (slot, path) in self.settings.restore(&recipe.operation) {
            self.loading.push(slot);
            self.loader.load_path(path, Purpose::Reopen(slot));
        }
    }

    /// Files dropped on the window this frame go to the current mode's slots.
    pub(crate) fn take_drops(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for (k, file) in dropped.into_iter().enumerate() {
            let slot = self.slot_for_incoming(k);
            self.loading.push(slot);
            self.loader.load_dropped(file, Purpose::Dropped(slot));
        }
    }

    /// Images given on the command line: one opens variations, two an interpolation (more
    /// than two: the first two). They load as dropped files do.
    pub(crate) fn open_files(&mut self, files: &[std::path::PathBuf]) {
        match files.len() {
            0 => return,
            1 => self.settings.mode = Mode::Variations,
            _ => {
                self.settings.mode = Mode::Interpolate;
                // Both ends are replaced, so A must count as free.
                self.slots.remove(&Slot::InterpA);
                self.loading.retain(|s| *s != Slot::InterpA);
            }
        }
        for (k, path) in files.iter().take(2).enumerate() {
            let slot = self.slot_for_incoming(k);
            self.loading.push(slot);
            self.loader.load_path(path.clone(), Purpose::Dropped(slot));
        }
    }

    /// The slot the `k`-th of a batch of incoming files fills in the current mode.
    fn slot_for_incoming(&mut self, k: usize) -> Slot {
        match self.settings.mode {
            Mode::Generate | Mode::Variations => Slot::VarySource,
            Mode::TextDiff => Slot::TextDiffSource,
            Mode::Interpolate => {
                // The first file fills A if it is free, anything else goes to B.
                let a_free = !self.slots.contains_key(&Slot::InterpA) && !self.loading.contains(&Slot::InterpA);
                if k == 0 && a_free {
                    self.settings.interp.a_kind = EndKind::Image;
                    Slot::InterpA
                } else {
                    self.settings.interp.b_kind = EndKind::Image;
                    Slot::InterpB
                }
            }
        }
    }

    /// Esc cancels the running job; Ctrl+Enter runs the current mode's main action.
    pub(crate) fn shortcuts(&mut self, ctx: &egui::Context) {
        if self.queue.running.is_some() && ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Escape)) {
            self.act(ctx, Action::Cancel);
        }
        if ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::Enter)) {
            let a = match self.settings.mode {
                Mode::Generate => Action::Generate,
                Mode::Variations => Action::Vary,
                Mode::Interpolate | Mode::TextDiff => Action::Frame { draft: false },
            };
            self.act(ctx, a);
        }
        // Ctrl+Q (Cmd+Q): quit like any desktop app; settings and the window state are saved.
        if ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::Q)) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    /// Restores the recipe offered by the banner.
    pub(crate) fn accept_banner_recipe(&mut self) {
        if let Some(recipe) = self.banner.take().and_then(|b| b.recipe) {
            self.restore(recipe);
            self.info("Settings restored");
        }
    }
}
