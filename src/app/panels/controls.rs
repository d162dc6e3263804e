//! The knobs shared by all modes: per-stage steps / guidance / sampler / η, super-resolution
//! steps, and the two seeds with lock and reroll.

use crate::app::settings::{Mode, SAMPLERS, Settings, random_seed};
use crate::pipeline::{PriorKind, Sampler, StageParams};
use eframe::egui;

/// One diffusion stage's settings; `name` prefixes every label ("Prior steps", …) so each
/// control has a distinct accessible name.
pub fn stage(ui: &mut egui::Ui, name: &str, p: &mut StageParams, max_guidance: f32, with_sampler: bool) {
    ui.add(egui::Slider::new(&mut p.steps, 1..=250).logarithmic(true).text(format!("{name} steps")));
    ui.add(egui::Slider::new(&mut p.guidance, 1.0..=max_guidance).step_by(0.5).text(format!("{name} guidance")))
        .on_hover_text("Classifier-free guidance: higher follows the text more closely; 1 turns it off");
    if with_sampler {
        sampler(ui, name, p);
    }
}

/// Sampler choice and its η (η only matters for DDIM).
pub fn sampler(ui: &mut egui::Ui, name: &str, p: &mut StageParams) {
    ui.horizontal(|ui| {
        let current = SAMPLERS.iter().find(|(s, _)| *s == p.sampler).map(|(_, l)| *l).unwrap_or("?");
        egui::ComboBox::new(format!("{name}-sampler"), format!("{name} sampler")).selected_text(current).show_ui(
            ui,
            |ui| {
                for (s, l) in SAMPLERS {
                    ui.selectable_value(&mut p.sampler, s, l);
                }
            },
        );
    });
    ui.add_enabled(
        p.sampler == Sampler::Ddim,
        egui::Slider::new(&mut p.eta, 0.0..=1.0).step_by(0.05).text(format!("{name} η")),
    )
    .on_hover_text("DDIM η: 0 is deterministic (smooth interpolations), 1 is as noisy as DDPM")
    .on_disabled_hover_text("η applies to the DDIM sampler");
}

/// A seed field with a reroll button and a lock. The field shows the seed of the last run;
/// a seed typed or rerolled here is marked unused, so the next run takes it as it is.
fn seed_row(ui: &mut egui::Ui, label: &str, seed: &mut u64, lock: &mut bool, used: &mut bool) {
    ui.horizontal_wrapped(|ui| {
        let l = ui.label(label);
        if ui.add(egui::DragValue::new(seed).speed(1.0)).labelled_by(l.id).changed() {
            *used = false;
        }
        if ui.button(format!("Reroll {}", label.to_lowercase())).on_hover_text("Draw a new random seed for the next run").clicked() {
            *seed = random_seed();
            *used = false;
        }
        ui.checkbox(lock, format!("Lock {}", label.to_lowercase()))
            .on_hover_text("Locked: every run uses this seed. Unlocked: each new run draws a new seed");
    });
}

pub fn seeds(ui: &mut egui::Ui, s: &mut Settings) {
    seed_row(ui, "Seed", &mut s.seed, &mut s.lock_seed, &mut s.seed_used);
    ui.checkbox(&mut s.separate_decoder_seed, "Separate decoder seed")
        .on_hover_text("Keep the composition (prior seed) and reroll the details (decoder seed), or the reverse");
    if s.separate_decoder_seed {
        seed_row(ui, "Decoder seed", &mut s.decoder_seed, &mut s.lock_decoder_seed, &mut s.decoder_seed_used);
    }
}

/// The prior choice (the paper's two priors) and the autoregressive prior's knobs. Shown
/// when the model has both priors, or when the settings still ask for one it lacks (so the
/// user can switch back).
fn prior(ui: &mut egui::Ui, s: &mut Settings, ar_available: bool) {
    if ar_available || s.prior_kind == PriorKind::Autoregressive {
        let label = |k: PriorKind| match k {
            PriorKind::Diffusion => "Diffusion",
            PriorKind::Autoregressive => "Autoregressive",
        };
        egui::ComboBox::new("prior-kind", "Prior").selected_text(label(s.prior_kind)).show_ui(ui, |ui| {
            for k in [PriorKind::Diffusion, PriorKind::Autoregressive] {
                ui.selectable_value(&mut s.prior_kind, k, label(k));
            }
        })
        .response
        .on_hover_text(
            "Diffusion: denoises the image embedding (what diffusers ships). Autoregressive: predicts it \
             as a sequence of quantised principal components (the paper's second prior)",
        );
        if !ar_available && s.prior_kind == PriorKind::Autoregressive {
            ui.colored_label(ui.visuals().warn_fg_color, "This model has no autoregressive prior");
        }
    }
    if s.prior_kind == PriorKind::Autoregressive {
        ui.add(egui::Slider::new(&mut s.prior.guidance, 1.0..=20.0).step_by(0.5).text("Prior guidance"))
            .on_hover_text("Classifier-free guidance on the token logits: higher follows the text more closely");
        ui.add(egui::Slider::new(&mut s.temperature, 0.1..=2.0).step_by(0.05).text("Prior temperature"))
            .on_hover_text("Below 1: more typical embeddings, less variety; above 1: more variety");
    } else {
        stage(ui, "Prior", &mut s.prior, 20.0, true);
    }
}

/// The collapsible "Settings" block under each mode's own controls.
pub fn show(ui: &mut egui::Ui, s: &mut Settings, ar_prior: bool) {
    egui::CollapsingHeader::new("Sampling settings").default_open(true).show(ui, |ui| {
        let prompt_end = |k| k == crate::app::settings::EndKind::Prompt;
        match s.mode {
            Mode::Generate => {
                prior(ui, s, ar_prior);
                ui.separator();
            }
            // Prompt ends of an interpolation are sampled by the diffusion prior.
            Mode::Interpolate if prompt_end(s.interp.a_kind) || prompt_end(s.interp.b_kind) => {
                stage(ui, "Prior", &mut s.prior, 20.0, true);
                ui.separator();
            }
            _ => {}
        }
        // Variations shows the decoder's sampler and η in its own panel.
        let mode = s.mode;
        stage(ui, "Decoder", &mut s.decoder, 20.0, mode != Mode::Variations);
        ui.add(egui::Slider::new(&mut s.super_res_steps, 0..=50).text("Super-res steps"))
            .on_hover_text("0 skips super-resolution (base resolution only)");
        if matches!(s.mode, Mode::Interpolate | Mode::TextDiff) {
            ui.add(egui::Slider::new(&mut s.draft_steps, 1..=50).text("Draft steps"))
                .on_hover_text("Decoder steps of the quick frames shown while the θ slider moves");
        }
        ui.separator();
        seeds(ui, s);
    });
}
