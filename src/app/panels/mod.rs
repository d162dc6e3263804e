//! The left-hand controls of each mode. Panels only edit settings and return what the user
//! asked for; the app turns actions into jobs. They never see the engine or a tensor.

pub mod controls;
pub mod generate;
pub mod interpolate;
pub mod text_diff;
pub mod variations;

use eframe::egui;
use std::collections::HashMap;

use egui::Vec2;

use super::inputs::{Slot, SourceImage};
use super::status::ModelState;

/// What a panel may read.
pub struct PanelCtx<'a> {
    pub slots: &'a HashMap<Slot, SourceImage>,
    pub model: &'a ModelState,
    /// Slots with a load in flight (show "loading…").
    pub loading: &'a [Slot],
    /// The built-in shapes model is open: show its vocabulary and examples.
    pub builtin: bool,
}

/// What the user asked for (from any part of the window).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Generate,
    Vary,
    /// Render the current mode's frame at its θ; `draft` while a slider is being dragged.
    Frame {
        draft: bool,
    },
    Filmstrip,
    OpenImage(Slot),
    ClearSlot(Slot),
    SwapEnds,
    Cancel,
    /// Show a gallery entry and restore its settings.
    SelectResult(usize),
    /// Put a gallery entry into an input slot (and switch to that slot's mode).
    UseResult(usize, Slot),
    SaveResultAs(usize),
    CopyResult(usize),
    DeleteResult(usize),
    /// Add the current frame to the gallery.
    KeepFrame,
    SaveFrameAs,
    /// Show a filmstrip frame (and move θ there).
    PickStrip(usize),
    OpenModelFolder,
    /// Open a model by folder path or Hugging Face repo id (from the cache list or recents).
    OpenModel(String),
    UseDefaultModel,
    SetDevice(crate::device::DevicePref),
    SetMemory(crate::app::worker::Memory),
    OpenImageDialog,
    /// Side panels back to their default widths.
    ResetLayout,
    /// Fill the current mode's inputs with example pictures and captions (built-in model).
    TryExample,
}

/// An input slot: its thumbnail (or a hint to drop or open one) with Open / Clear buttons.
pub fn slot_view(ui: &mut egui::Ui, ctx: &PanelCtx, slot: Slot, actions: &mut Vec<Action>) {
    ui.group(|ui| {
        ui.set_min_width(ui.available_width());
        match ctx.slots.get(&slot) {
            Some(img) => {
                let size =
                    super::preview::fit(img.texture.size_vec2(), Vec2::new(ui.available_width().min(160.0), 120.0));
                ui.add(egui::Image::from_texture((img.texture.id(), size)).alt_text(format!(
                    "{}: {}",
                    capitalise(slot.title()),
                    img.name
                )));
                ui.label(format!("{} ({}×{})", img.name, img.picture.width, img.picture.height));
            }
            None if ctx.loading.contains(&slot) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("loading…");
                });
            }
            None => {
                ui.weak(format!("No {} — drop a file on the window, open one, or use a result", slot.title()));
            }
        }
        ui.horizontal(|ui| {
            if ui.button(format!("Open {}…", slot.title())).clicked() {
                actions.push(Action::OpenImage(slot));
            }
            if ctx.slots.contains_key(&slot) && ui.button(format!("Clear {}", slot.title())).clicked() {
                actions.push(Action::ClearSlot(slot));
            }
        });
    });
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// With the built-in model: a button that fills the mode's inputs with a worked example.
pub fn try_example(ui: &mut egui::Ui, ctx: &PanelCtx, actions: &mut Vec<Action>) {
    if !ctx.builtin {
        return;
    }
    let r = ui.button("Try an example").on_hover_text("Example pictures and captions the built-in model knows");
    crate::app::ui_map::note(ui, "Try an example", &r);
    if r.clicked() {
        actions.push(Action::TryExample);
    }
}

/// A text box with an accessible label.
pub fn labelled_text(ui: &mut egui::Ui, label: &str, text: &mut String, hint: &str, rows: usize) -> egui::Response {
    let l = ui.label(label);
    let edit = if rows > 1 {
        egui::TextEdit::multiline(text)
            .desired_rows(rows)
            // Enter runs the job; Shift+Enter is the newline.
            .return_key(egui::KeyboardShortcut::new(egui::Modifiers::SHIFT, egui::Key::Enter))
    } else {
        egui::TextEdit::singleline(text)
    };
    let r = ui.add(edit.hint_text(hint.to_string()).desired_width(f32::INFINITY)).labelled_by(l.id);
    crate::app::ui_map::note(ui, label, &r);
    r
}

/// Enter pressed while `r` has focus (without Shift, which makes a newline).
pub fn submitted(ui: &egui::Ui, r: &egui::Response) -> bool {
    (r.has_focus() || r.lost_focus()) && ui.input(|i| i.key_pressed(egui::Key::Enter) && !i.modifiers.shift)
}

/// A θ slider that asks for a draft frame while dragged and a full one when let go (or when
/// set by keyboard or a screen reader, which has no drag).
pub fn theta_slider(
    ui: &mut egui::Ui,
    value: &mut f32,
    range: std::ops::RangeInclusive<f32>,
    label: &str,
    actions: &mut Vec<Action>,
) -> egui::Response {
    let l = ui.label(label);
    let r = ui
        .scope(|ui| {
            // As wide as the panel less the number box, so scrubbing has a fine grain; the
            // label sits on its own line so the row can never be wider than the panel (a row
            // wider than a resizable panel widens it, frame after frame).
            let spacing = ui.spacing();
            let number = spacing.interact_size.x + 2.0 * spacing.item_spacing.x + 8.0;
            ui.spacing_mut().slider_width = (ui.available_width() - number).max(60.0);
            ui.add(egui::Slider::new(value, range).step_by(0.01).fixed_decimals(2)).labelled_by(l.id)
        })
        .inner;
    crate::app::ui_map::note(ui, label, &r);
    if r.drag_stopped() {
        actions.push(Action::Frame { draft: false });
    } else if r.changed() {
        actions.push(Action::Frame { draft: r.dragged() });
    }
    r
}
