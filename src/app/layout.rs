//! Drawing the window. Every function here only reads state and collects [`Action`]s,
//! except for the widgets that edit settings in place.

use eframe::egui;
use std::time::Instant;

use egui::{Align, Align2, Color32, Layout, Sense, Stroke, StrokeKind, Vec2};

use super::panels::{self, Action, PanelCtx, controls};
use super::preview::{fit, human};
use super::queue;
use super::settings::Mode;
use super::status::{ModelState, bytes, resident_bytes};
use super::{UnclipApp, View};
use crate::device::DevicePref;

const THUMB: f32 = 88.0;
/// Each side panel's share of the window: (min width in points, max fraction of the width).
/// The two maxima leave the central view at least a third of the window.
const CONTROLS: (f32, f32) = (240.0, 0.36);
const RESULTS: (f32, f32) = (180.0, 0.30);

/// The widths a side panel may take in a window `width` points wide.
pub fn side_range(width: f32, (min, max_share): (f32, f32)) -> egui::Rangef {
    let max = (width * max_share).max(1.0);
    egui::Rangef::new(min.min(max), max)
}
const STRIP_THUMB: f32 = 72.0;

impl UnclipApp {
    pub(crate) fn layout(&mut self, ui: &mut egui::Ui) -> Vec<Action> {
        let mut actions = Vec::new();
        let mode_before = self.settings.mode;
        egui::Panel::top("top-bar").show(ui, |ui| self.top_bar(ui, &mut actions));
        if self.banner.is_some() {
            egui::Panel::top("banner").show(ui, |ui| self.banner_ui(ui));
        }
        egui::Panel::bottom("status-bar").show(ui, |ui| self.status_bar(ui));
        // Side panels live within fractions of the window, so no widget (a long caption, a wide
        // slider) can push them over the central view, and a width remembered from an older
        // window is clamped when it is loaded.
        let width = ui.available_width();
        let generation = self.settings.layout_generation;
        let (left, right) = (side_range(width, CONTROLS), side_range(width, RESULTS));
        let controls = egui::Panel::left(("controls", generation))
            .resizable(true)
            .default_size(340.0)
            .size_range(left)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().id_salt("controls-scroll").show(ui, |ui| {
                    ui.set_max_width(ui.available_width());
                    self.controls(ui, &mut actions)
                });
            });
        super::ui_map::note(ui, "controls panel", &controls.response);
        let results = egui::Panel::right(("results", generation))
            .resizable(true)
            .default_size(300.0)
            .size_range(right)
            .show(ui, |ui| self.results(ui, &mut actions));
        super::ui_map::note(ui, "results panel", &results.response);
        egui::CentralPanel::default().show(ui, |ui| self.central(ui, &mut actions));
        self.drop_overlay(ui.ctx());
        if self.settings.mode != mode_before
            && matches!(self.settings.mode, Mode::Interpolate | Mode::TextDiff)
            && self.frames.contains_key(&self.settings.mode)
        {
            self.view = View::Frame;
        }
        actions
    }

    fn top_bar(&mut self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        ui.horizontal(|ui| {
            for m in Mode::ALL {
                let r = ui.selectable_value(&mut self.settings.mode, m, m.title());
                super::ui_map::note(ui, m.title(), &r);
            }
            ui.separator();
            if ui.button("Open image…").on_hover_text("Or drop an image file on the window").clicked() {
                actions.push(Action::OpenImageDialog);
            }
            // Stays open while its checkboxes are toggled; the buttons close it themselves.
            let keep_open = egui::containers::menu::MenuConfig::new().close_behavior(egui::PopupCloseBehavior::CloseOnClickOutside);
            egui::containers::menu::MenuButton::new("Model").config(keep_open).ui(ui, |ui| {
                if ui.button("Open model folder…").on_hover_text("Any diffusers-layout unCLIP folder").clicked() {
                    actions.push(Action::OpenModelFolder);
                    ui.close();
                }
                if ui.button("Use the built-in model").clicked() {
                    actions.push(Action::UseDefaultModel);
                    ui.close();
                }
                let cached = self.hub_models.lock().map(|l| l.clone()).unwrap_or_default();
                if !cached.is_empty() {
                    ui.separator();
                    ui.weak("In the Hugging Face cache:");
                    for m in cached {
                        let kind = match m.kind {
                            crate::model::hub::PipelineKind::TextToImage => "text → image",
                            crate::model::hub::PipelineKind::ImageVariations => "image variations",
                        };
                        let label = format!("{} ({kind}, {})", m.id, bytes(m.bytes));
                        if ui.button(label).on_hover_text(m.path.display().to_string()).clicked() {
                            actions.push(Action::OpenModel(m.id.clone()));
                            ui.close();
                        }
                    }
                }
                let recent: Vec<String> = self.settings.recent_models.clone();
                if !recent.is_empty() {
                    ui.separator();
                    ui.weak("Recent:");
                    for r in recent {
                        if ui.button(r.clone()).clicked() {
                            actions.push(Action::OpenModel(r));
                            ui.close();
                        }
                    }
                }
                ui.separator();
                let mut memory = crate::app::worker::Memory {
                    half_precision: self.settings.half_precision,
                    release_stages: self.settings.release_stages,
                };
                let before = memory;
                ui.checkbox(&mut memory.half_precision, "Half precision (f16)")
                    .on_hover_text("Half the weight memory; for GPUs with f16 support. Networks reload on the next run.");
                ui.checkbox(&mut memory.release_stages, "Free memory between stages")
                    .on_hover_text("Load each stage's networks when it starts and free them when it ends: less memory, slower runs.");
                if memory != before {
                    actions.push(Action::SetMemory(memory));
                }
            });
            egui::containers::menu::MenuButton::new("View").ui(ui, |ui| {
                if ui.button("Reset layout").on_hover_text("Side panels back to their default widths").clicked() {
                    actions.push(Action::ResetLayout);
                    ui.close();
                }
            });
            let current = self.device;
            let name = |d: DevicePref| match d {
                DevicePref::Auto => "Auto",
                DevicePref::Cpu => "CPU",
                DevicePref::Gpu => "GPU",
            };
            egui::ComboBox::new("device", "Device").selected_text(name(current)).show_ui(ui, |ui| {
                for d in [DevicePref::Auto, DevicePref::Cpu, DevicePref::Gpu] {
                    if ui.selectable_label(current == d, name(d)).clicked() && d != current {
                        actions.push(Action::SetDevice(d));
                    }
                }
            });
        });
    }

    fn banner_ui(&mut self, ui: &mut egui::Ui) {
        let Some(b) = &self.banner else { return };
        let (mut dismiss, mut restore) = (false, false);
        ui.horizontal(|ui| {
            let color = if b.error { ui.visuals().error_fg_color } else { ui.visuals().hyperlink_color };
            let icon = if b.error { "Error:" } else { "Note:" };
            ui.colored_label(color, format!("{icon} {}", b.text));
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                dismiss = ui.button("Dismiss").clicked();
                if b.recipe.is_some() {
                    restore = ui.button("Restore its settings").clicked();
                }
            });
        });
        if restore {
            self.accept_banner_recipe();
        } else if dismiss {
            self.banner = None;
        }
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.model {
                ModelState::Opening => {
                    ui.spinner();
                    ui.label("Opening the model…");
                }
                ModelState::Ready { device, is_gpu, .. } => {
                    ui.label(format!("Device: {device}")).on_hover_text(if *is_gpu {
                        "GPU (wgpu)"
                    } else {
                        "CPU (flex)"
                    });
                }
                ModelState::Failed(m) => {
                    ui.colored_label(ui.visuals().error_fg_color, "No model").on_hover_text(m.clone());
                }
            }
            ui.separator();
            let model = super::inputs::display_name(&self.model_folder);
            let model = if self.model_is_default { format!("{model} (built-in)") } else { model };
            ui.label(format!("Model: {model}")).on_hover_text(self.model_folder.display().to_string());
            ui.separator();
            let mem = resident_bytes().map(bytes).unwrap_or_else(|| "n/a".into());
            let label = ui.label(format!("Memory: {mem}"));
            match &self.model {
                ModelState::Ready { memory, .. } => {
                    let estimate = memory[self.settings.half_precision as usize];
                    let need = crate::pipeline::budget::gigabytes(estimate.peak(self.settings.release_stages));
                    label.on_hover_text(format!(
                        "Resident memory of this process; a run with the current memory settings needs about {need} \
                         (Model menu: half precision, free memory between stages)"
                    ));
                    ui.label(format!("(needs ≈ {need})"));
                }
                _ => {
                    label.on_hover_text("Resident memory of this process");
                }
            }
            if !self.queue.pending.is_empty() {
                ui.separator();
                ui.label(format!("{} waiting", self.queue.pending.len()));
            }
            ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                ui.label(self.last_status.as_str());
            });
        });
    }

    fn controls(&mut self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        let ctx = PanelCtx { slots: &self.slots, model: &self.model, loading: &self.loading, builtin: self.model_is_default };
        let s = &mut self.settings;
        let mut acts = match s.mode {
            Mode::Generate => panels::generate::show(ui, s, &ctx),
            Mode::Variations => panels::variations::show(ui, s, &ctx),
            Mode::Interpolate => panels::interpolate::show(ui, s, &ctx),
            Mode::TextDiff => panels::text_diff::show(ui, s, &ctx),
        };
        actions.append(&mut acts);
        ui.separator();
        controls::show(ui, s, self.model.has_ar_prior());
    }

    fn results(&mut self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        ui.heading("Queue");
        queue::show(ui, &mut self.queue);
        ui.separator();
        ui.heading(format!("Gallery ({})", self.gallery.len()));
        if self.gallery.is_empty() {
            ui.weak("Results appear here and are kept between launches.");
            return;
        }
        let n = self.gallery.len();
        let gap = ui.spacing().item_spacing;
        let cols = (((ui.available_width() + gap.x) / (THUMB + gap.x)).floor() as usize).max(1);
        let rows = n.div_ceil(cols);
        egui::ScrollArea::vertical().id_salt("gallery").auto_shrink([false, false]).show_rows(
            ui,
            THUMB + gap.y,
            rows,
            |ui, range| {
                for row in range {
                    ui.horizontal(|ui| {
                        for i in row * cols..((row + 1) * cols).min(n) {
                            self.thumbnail(ui, i, actions);
                        }
                    });
                }
            },
        );
    }

    fn thumbnail(&mut self, ui: &mut egui::Ui, i: usize, actions: &mut Vec<Action>) {
        let tex = self.gallery.texture(ui.ctx(), i);
        let Some(entry) = self.gallery.entries.get(i) else { return };
        let label = format!("Result: {}", entry.summary());
        let r = match tex {
            Some(t) => ui.add(
                egui::Image::from_texture((t.id(), fit(t.size_vec2(), Vec2::splat(THUMB))))
                    .sense(Sense::click())
                    .alt_text(label.clone()),
            ),
            None if entry.loading() => ui.add_sized(Vec2::splat(THUMB), egui::Spinner::new()),
            None => ui.add_sized(Vec2::splat(THUMB), egui::Button::new(format!("Unreadable: {}", entry.name())).wrap()),
        };
        // The tooltip does not repeat the "Result:" label, so a hovered thumbnail is still
        // one node for screen readers (and for tests that count results).
        let hover = match &entry.error {
            Some(e) => format!("{}\n{e}", entry.summary()),
            None => format!("{}\nClick: show it and restore its settings. Right-click: more", entry.summary()),
        };
        let r = r.on_hover_text(hover);
        super::ui_map::note(ui, &format!("thumbnail {i}"), &r);
        if self.view == View::Result(entry.id) {
            ui.painter().rect_stroke(
                r.rect.expand(2.0),
                2.0,
                Stroke::new(2.0, ui.visuals().selection.bg_fill),
                StrokeKind::Outside,
            );
        }
        if r.clicked() {
            actions.push(Action::SelectResult(i));
        }
        r.context_menu(|ui| result_menu(ui, i, actions));
    }

    fn central(&mut self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        let now = Instant::now();
        // Scripts wait for "idle" (no job running or queued) before they look at the window.
        if self.queue.running.is_none() && self.queue.pending.is_empty() {
            super::ui_map::note_rect(ui, "idle", ui.max_rect());
        }
        if let Some(run) = &self.queue.running {
            ui.horizontal(|ui| {
                let text = format!("{} — {}", run.label, self.preview.status_text(now));
                let bar_width = (ui.available_width() - 90.0).max(100.0);
                ui.add(egui::ProgressBar::new(self.preview.fraction()).desired_width(bar_width).text(text));
                if ui.button("Cancel").on_hover_text("Stop now (Esc); the last preview is kept").clicked() {
                    actions.push(Action::Cancel);
                }
            });
            ui.weak(format!("running for {}", human(run.since.elapsed())));
        }
        let below =
            if self.settings.mode == Mode::Interpolate && !self.strip.is_empty() { STRIP_THUMB + 60.0 } else { 0.0 };
        let area = Vec2::new(ui.available_width(), (ui.available_height() - below - 110.0).max(64.0));
        let running_frame = self.queue.running.as_ref().map(|r| !matches!(r.origin, super::queue::Origin::Gallery));
        if let Some(frame_job) = running_frame {
            if self.preview.show(ui, area).is_none() {
                // Until the first step of a new frame arrives, the last frame stays up (no
                // flicker while scrubbing).
                if frame_job && self.frames.contains_key(&self.settings.mode) {
                    self.frame_view(ui, area, actions);
                } else {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Starting…");
                    });
                }
            }
        } else {
            match self.view {
                View::Preview => {
                    if self.preview.show(ui, area).is_none() {
                        self.hint(ui);
                    }
                }
                View::Result(id) => match self.gallery.index_of(id) {
                    Some(i) => self.result_view(ui, i, area, actions),
                    None => self.hint(ui),
                },
                View::Frame => self.frame_view(ui, area, actions),
                View::Empty => self.hint(ui),
            }
        }
        if self.settings.mode == Mode::Interpolate && !self.strip.is_empty() {
            ui.separator();
            ui.label("Filmstrip (click a frame to show it):");
            egui::ScrollArea::horizontal().id_salt("strip").show(ui, |ui| {
                ui.horizontal(|ui| {
                    for (k, f) in self.strip.iter().enumerate() {
                        let r = ui.add(
                            egui::Image::from_texture((
                                f.texture.id(),
                                fit(f.texture.size_vec2(), Vec2::splat(STRIP_THUMB)),
                            ))
                            .sense(Sense::click())
                            .alt_text(format!("Filmstrip frame θ {:.2}", f.theta)),
                        );
                        if r.on_hover_text(format!("θ = {:.2}", f.theta)).clicked() {
                            actions.push(Action::PickStrip(k));
                        }
                    }
                });
            });
        }
    }

    fn hint(&self, ui: &mut egui::Ui) {
        ui.centered_and_justified(|ui| {
            ui.weak(match self.settings.mode {
                Mode::Generate => "Type a prompt and press Enter — or drop an image on the window to make variations",
                Mode::Variations => "Drop an image, open one, or right-click a result and choose Use for variations",
                Mode::Interpolate => "Set two ends (images or prompts), then drag θ",
                Mode::TextDiff => "Drop an image, type where to move it, then drag the strength",
            });
        });
    }

    fn result_view(&mut self, ui: &mut egui::Ui, i: usize, area: Vec2, actions: &mut Vec<Action>) {
        let tex = self.gallery.texture(ui.ctx(), i);
        let Some(entry) = self.gallery.entries.get(i) else {
            self.hint(ui);
            return;
        };
        match tex {
            Some(t) => {
                let r = ui.add(
                    egui::Image::from_texture((t.id(), fit(t.size_vec2(), area)))
                        .alt_text(format!("Selected result: {}", entry.summary())),
                );
                super::ui_map::note(ui, "result image", &r);
            }
            None if entry.loading() => {
                ui.spinner();
            }
            None => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    entry.error.clone().unwrap_or_else(|| "not readable".into()),
                );
            }
        }
        if let Some(e) = &entry.error {
            ui.colored_label(ui.visuals().warn_fg_color, e);
        }
        if let Some(r) = &entry.recipe {
            // The bundled UI font has no arrows; the recipe text uses "→".
            let text = r.parameters_text().replace('→', "->");
            ui.add(egui::Label::new(egui::RichText::new(text).weak()).wrap());
        }
        ui.horizontal_wrapped(|ui| result_buttons(ui, i, actions));
    }

    fn frame_view(&mut self, ui: &mut egui::Ui, area: Vec2, actions: &mut Vec<Action>) {
        let Some(f) = self.frames.get(&self.settings.mode) else {
            self.hint(ui);
            return;
        };
        let label = format!("Frame at θ {:.2}{}", f.theta, if f.draft { " (draft)" } else { "" });
        let r = ui.add(egui::Image::from_texture((f.texture.id(), fit(f.texture.size_vec2(), area))).alt_text(label.clone()));
        super::ui_map::note(ui, "frame image", &r);
        ui.label(format!("θ = {:.2}{}", f.theta, if f.draft { " · quick draft, full quality follows" } else { "" }));
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!f.draft, egui::Button::new("Keep frame"))
                .on_hover_text("Add it to the gallery")
                .clicked()
            {
                actions.push(Action::KeepFrame);
            }
            if ui.button("Save frame as…").clicked() {
                actions.push(Action::SaveFrameAs);
            }
        });
    }

    /// A translucent hint while files are dragged over the window.
    fn drop_overlay(&self, ctx: &egui::Context) {
        let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
        if !hovering {
            return;
        }
        let target = match self.settings.mode {
            Mode::Generate | Mode::Variations => "to make variations (a PNG made by unclip restores its settings)",
            Mode::Interpolate => "as image A / B",
            Mode::TextDiff => "as the text-diff image",
        };
        let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop-overlay")));
        let rect = ctx.content_rect();
        painter.rect_filled(rect, 0.0, Color32::from_black_alpha(160));
        painter.text(
            rect.center(),
            Align2::CENTER_CENTER,
            format!("Drop {target}"),
            egui::FontId::proportional(22.0),
            Color32::WHITE,
        );
    }
}

fn result_buttons(ui: &mut egui::Ui, i: usize, actions: &mut Vec<Action>) {
    use super::inputs::Slot;
    if ui.button("Save as…").clicked() {
        actions.push(Action::SaveResultAs(i));
    }
    if ui.button("Copy image").clicked() {
        actions.push(Action::CopyResult(i));
    }
    for (label, slot) in [
        ("Use for variations", Slot::VarySource),
        ("Use as image A", Slot::InterpA),
        ("Use as image B", Slot::InterpB),
        ("Use for text diff", Slot::TextDiffSource),
    ] {
        let r = ui.button(label);
        super::ui_map::note(ui, label, &r);
        if r.clicked() {
            actions.push(Action::UseResult(i, slot));
        }
    }
    if ui.button("Delete").on_hover_text("Delete the file from the gallery folder").clicked() {
        actions.push(Action::DeleteResult(i));
    }
}

fn result_menu(ui: &mut egui::Ui, i: usize, actions: &mut Vec<Action>) {
    let before = actions.len();
    result_buttons(ui, i, actions);
    if actions.len() > before {
        ui.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_side_panels_together_always_leave_the_central_view_a_third() {
        for width in [600.0, 900.0, 1320.0, 2560.0, 7680.0] {
            let (l, r) = (side_range(width, CONTROLS), side_range(width, RESULTS));
            assert!(l.min <= l.max && r.min <= r.max, "{width}: {l:?} {r:?}");
            assert!(width - l.max - r.max >= width / 3.0, "{width}: {l:?} {r:?}");
        }
    }
}
