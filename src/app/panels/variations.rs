//! Variations: one source image, N decodes of its CLIP embedding with new noise.

use super::{Action, PanelCtx, controls, slot_view};
use crate::app::inputs::Slot;
use crate::app::settings::Settings;
use eframe::egui;

pub fn show(ui: &mut egui::Ui, s: &mut Settings, ctx: &PanelCtx) -> Vec<Action> {
    let mut actions = Vec::new();
    super::try_example(ui, ctx, &mut actions);
    slot_view(ui, ctx, Slot::VarySource, &mut actions);
    ui.add(egui::Slider::new(&mut s.variations, 1..=16).text("Number of variations"));
    controls::sampler(ui, "Decoder", &mut s.decoder);
    let has = ctx.slots.contains_key(&Slot::VarySource);
    let can = ctx.model.can_vary();
    let b = ui.add_enabled(has && can, egui::Button::new("Make variations"));
    let b = if can {
        b.on_disabled_hover_text("Drop or open an image first")
    } else {
        b.on_disabled_hover_text(ctx.model.why_not_vary())
    };
    if !can && !matches!(ctx.model, crate::app::status::ModelState::Opening) {
        ui.add(egui::Label::new(egui::RichText::new(ctx.model.why_not_vary()).weak()).wrap());
    }
    crate::app::ui_map::note(ui, "Make variations", &b);
    if b.clicked() {
        actions.push(Action::Vary);
    }
    actions
}
