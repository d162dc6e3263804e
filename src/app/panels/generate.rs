//! Text → image: the prompt, how many images, best-of. With the built-in model, what it
//! knows and prompts it draws well, since it only knows a small world of shapes.

use super::{Action, PanelCtx, labelled_text, submitted};
use crate::app::settings::Settings;
use eframe::egui;

/// Prompts the built-in model draws well (seen colour–shape pairs), one click each.
pub const EXAMPLES: [&str; 4] = [
    "a small red star on a blue background",
    "a large yellow circle in the center",
    "a green triangle on a white background",
    "a purple cross in the bottom right",
];

/// What the built-in model's captions contain, in one line.
pub const BUILTIN_KNOWS: &str =
    "The built-in model knows 5 shapes, 8 colours, 2 sizes, 9 positions and background colours.";

pub fn show(ui: &mut egui::Ui, s: &mut Settings, ctx: &PanelCtx) -> Vec<Action> {
    let mut actions = Vec::new();
    let hint = if ctx.builtin { EXAMPLES[0] } else { "a corgi playing a flame-throwing trumpet" };
    let r = labelled_text(ui, "Prompt", &mut s.prompt, hint, 3);
    if submitted(ui, &r) && !s.prompt.trim().is_empty() {
        actions.push(Action::Generate);
    }
    if ctx.builtin {
        builtin_help(ui, s);
    }
    ui.add(egui::Slider::new(&mut s.num_images, 1..=16).text("Images"));
    ui.add(egui::Slider::new(&mut s.best_of, 1..=8).text("Best of"))
        .on_hover_text("Sample this many embeddings per image and keep the one closest to the prompt (slower)");
    let can = ctx.model.can_generate();
    let ready = can && !s.prompt.trim().is_empty();
    let b = ui
        .add_enabled(ready, egui::Button::new("Generate"))
        .on_hover_text("Enter in the prompt box, or Ctrl+Enter anywhere; adds to the queue when busy");
    let b = if can { b.on_disabled_hover_text("Type a prompt first") } else { b.on_disabled_hover_text(ctx.model.why_not_generate()) };
    crate::app::ui_map::note(ui, "Generate", &b);
    if b.clicked() {
        actions.push(Action::Generate);
    }
    if !can && !matches!(ctx.model, crate::app::status::ModelState::Opening) {
        ui.add(egui::Label::new(egui::RichText::new(ctx.model.why_not_generate()).weak()).wrap());
    }
    actions
}

/// The built-in model's vocabulary line, a note on words it never saw, and example prompts.
fn builtin_help(ui: &mut egui::Ui, s: &mut Settings) {
    ui.add(egui::Label::new(egui::RichText::new(BUILTIN_KNOWS).weak()).wrap());
    let unknown = crate::train::world::unknown_words(&s.prompt);
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(3).map(String::as_str).collect();
        ui.add(
            egui::Label::new(
                egui::RichText::new(format!(
                    "The built-in model never saw “{}”: it knows shapes, colours, sizes, positions and backgrounds; open Karlo for any prompt.",
                    shown.join("”, “")
                ))
                .color(ui.visuals().warn_fg_color),
            )
            .wrap(),
        );
    }
    ui.horizontal_wrapped(|ui| {
        ui.weak("Try:");
        for e in EXAMPLES {
            if ui.small_button(e).on_hover_text("Use this prompt").clicked() {
                s.prompt = e.to_string();
            }
        }
    });
}
