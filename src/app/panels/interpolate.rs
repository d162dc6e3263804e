//! Interpolation: two endpoints (images or prompts), a θ slider that scrubs live, and a
//! filmstrip of evenly spaced frames.

use super::{Action, PanelCtx, labelled_text, slot_view, submitted, theta_slider};
use crate::app::inputs::Slot;
use crate::app::settings::{EndKind, Settings};
use crate::pipeline::StartLatent;
use eframe::egui;

pub fn show(ui: &mut egui::Ui, s: &mut Settings, ctx: &PanelCtx) -> Vec<Action> {
    let mut actions = Vec::new();
    super::try_example(ui, ctx, &mut actions);
    for (name, slot) in [("A", Slot::InterpA), ("B", Slot::InterpB)] {
        let (kind, prompt) = match slot {
            Slot::InterpA => (&mut s.interp.a_kind, &mut s.interp.a_prompt),
            _ => (&mut s.interp.b_kind, &mut s.interp.b_prompt),
        };
        ui.horizontal(|ui| {
            ui.strong(format!("End {name}:"));
            ui.radio_value(kind, EndKind::Image, format!("Image {name}"));
            ui.radio_value(kind, EndKind::Prompt, format!("Prompt {name}"));
        });
        match kind {
            EndKind::Image => slot_view(ui, ctx, slot, &mut actions),
            EndKind::Prompt => {
                let hint = match (ctx.builtin, name) { (true, "A") => "an orange circle", (true, _) => "a red star", (false, "A") => "a photo of a cat", _ => "a photo of a dog" };
                let r = labelled_text(ui, &format!("Text {name}"), prompt, hint, 1);
                if submitted(ui, &r) {
                    actions.push(Action::Frame { draft: false });
                }
            }
        }
    }
    if ui.button("Swap A and B").clicked() {
        actions.push(Action::SwapEnds);
    }
    ui.separator();
    let both_images = s.interp.a_kind == EndKind::Image && s.interp.b_kind == EndKind::Image;
    ui.horizontal(|ui| {
        ui.label("Start latent:");
        ui.radio_value(&mut s.interp.start, StartLatent::Fixed, "Fixed noise")
            .on_hover_text("One random x_T for every θ (the paper's Figure 4)");
        ui.add_enabled_ui(both_images, |ui| {
            ui.radio_value(&mut s.interp.start, StartLatent::Inverted, "Inverted")
                .on_hover_text(format!(
                    "DDIM-inverted latents of both images: the ends reconstruct the inputs \
                     (decoder guidance at most {})",
                    crate::pipeline::MAX_INVERTED_GUIDANCE
                ))
                .on_disabled_hover_text("Needs two images");
        });
    });
    if !both_images && s.interp.start == StartLatent::Inverted {
        s.interp.start = StartLatent::Fixed;
    }
    let ready = ends_ready(s, ctx);
    ui.add_enabled_ui(ready, |ui| {
        theta_slider(ui, &mut s.interp.theta, 0.0..=1.0, "θ", &mut actions)
            .on_hover_text("Drag to scrub: quick frames while dragging, full quality on release");
        if ui.button("Render frame").clicked() {
            actions.push(Action::Frame { draft: false });
        }
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut s.interp.frames, 2..=16).text("Frames"));
            let r = ui.button("Render filmstrip");
            crate::app::ui_map::note(ui, "Render filmstrip", &r);
            if r.clicked() {
                actions.push(Action::Filmstrip);
            }
        });
    });
    if !ready {
        ui.weak("Set both ends (two images, two prompts, or one of each)");
    }
    actions
}

/// Both endpoints are set.
pub fn ends_ready(s: &Settings, ctx: &PanelCtx) -> bool {
    let end = |kind: EndKind, prompt: &str, slot: Slot| match kind {
        EndKind::Image => ctx.slots.contains_key(&slot),
        EndKind::Prompt => !prompt.trim().is_empty(),
    };
    end(s.interp.a_kind, &s.interp.a_prompt, Slot::InterpA) && end(s.interp.b_kind, &s.interp.b_prompt, Slot::InterpB)
}
