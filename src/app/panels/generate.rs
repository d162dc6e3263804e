//! Text → image: the prompt, how many images, best-of.

use super::{Action, PanelCtx, labelled_text, submitted};
use crate::app::settings::Settings;
use eframe::egui;

pub fn show(ui: &mut egui::Ui, s: &mut Settings, ctx: &PanelCtx) -> Vec<Action> {
    let mut actions = Vec::new();
    let r = labelled_text(ui, "Prompt", &mut s.prompt, "a corgi playing a flame-throwing trumpet", 3);
    if submitted(ui, &r) && !s.prompt.trim().is_empty() {
        actions.push(Action::Generate);
    }
    ui.add(egui::Slider::new(&mut s.num_images, 1..=16).text("Images"));
    ui.add(egui::Slider::new(&mut s.best_of, 1..=8).text("Best of"))
        .on_hover_text("Sample this many embeddings per image and keep the one closest to the prompt (slower)");
    let can = ctx.model.can_generate();
    let ready = can && !s.prompt.trim().is_empty();
    let b = ui
        .add_enabled(ready, egui::Button::new("Generate"))
        .on_hover_text("Enter in the prompt box, or Ctrl+Enter anywhere; adds to the queue when busy");
    let b = if can {
        b.on_disabled_hover_text("Type a prompt first")
    } else {
        b.on_disabled_hover_text("The open model cannot make images from text")
    };
    if b.clicked() {
        actions.push(Action::Generate);
    }
    actions
}
