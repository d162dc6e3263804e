//! Text diffs: push an image toward a caption by θ, live like interpolation.

use super::{Action, PanelCtx, labelled_text, slot_view, submitted, theta_slider};
use crate::app::inputs::Slot;
use crate::app::settings::Settings;
use eframe::egui;

pub fn show(ui: &mut egui::Ui, s: &mut Settings, ctx: &PanelCtx) -> Vec<Action> {
    let mut actions = Vec::new();
    super::try_example(ui, ctx, &mut actions);
    slot_view(ui, ctx, Slot::TextDiffSource, &mut actions);
    let to = labelled_text(ui, "Towards", &mut s.text_diff.to, if ctx.builtin { "a blue star" } else { "a winter scene" }, 1);
    let from = labelled_text(ui, "From (optional)", &mut s.text_diff.from, "a caption of the image, or empty", 1);
    let ready = ctx.slots.contains_key(&Slot::TextDiffSource) && !s.text_diff.to.trim().is_empty();
    if ready && (submitted(ui, &to) || submitted(ui, &from)) {
        actions.push(Action::Frame { draft: false });
    }
    ui.add_enabled_ui(ready, |ui| {
        theta_slider(ui, &mut s.text_diff.theta, 0.0..=1.0, "Strength θ", &mut actions)
            .on_hover_text("0–0.5 edits the image; toward 1 the caption takes over");
        let r = ui.button("Apply text diff");
        crate::app::ui_map::note(ui, "Apply text diff", &r);
        if r.clicked() {
            actions.push(Action::Frame { draft: false });
        }
    });
    if !ready {
        ui.weak("Needs an image and a caption to move toward");
    }
    actions
}
