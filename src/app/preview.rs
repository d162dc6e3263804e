//! The live preview: the x̂₀ estimate each step sends, shown through ONE texture that is
//! updated in place (no texture churn), drawn with nearest filtering so a 64 px base image
//! upscales crisply; plus the progress bar with a per-stage ETA.

use eframe::egui;
use std::time::{Duration, Instant};

use egui::{TextureHandle, TextureOptions, Vec2};

use super::inputs::color_image;
use crate::pipeline::{Picture, Stage};

pub struct Preview {
    texture: Option<TextureHandle>,
    /// The picture now in the texture (kept so it can be saved or inspected after a cancel).
    picture: Option<Picture>,
    pub stage: Option<Stage>,
    pub step: usize,
    pub total: usize,
    stage_started: Instant,
    /// When the first step of this stage finished: the ETA is measured from there, so the
    /// first step's one-off costs (loading weights) do not inflate it.
    first_step_at: Option<Instant>,
    pub job_started: Option<Instant>,
    /// "cancelled", "failed": why the preview is frozen.
    pub frozen: Option<&'static str>,
}

impl Default for Preview {
    fn default() -> Self {
        Self {
            texture: None,
            picture: None,
            stage: None,
            step: 0,
            total: 0,
            stage_started: Instant::now(),
            first_step_at: None,
            job_started: None,
            frozen: None,
        }
    }
}

impl Preview {
    /// A job started: progress resets and the previous job's picture goes (a stale preview
    /// would pass for the new job's); the texture itself is kept for reuse.
    pub fn begin(&mut self) {
        self.picture = None;
        self.stage = None;
        self.step = 0;
        self.total = 0;
        self.first_step_at = None;
        self.job_started = Some(Instant::now());
        self.frozen = None;
    }

    pub fn progress(&mut self, ctx: &egui::Context, stage: Stage, step: usize, total: usize, picture: Option<Picture>) {
        let now = Instant::now();
        if self.stage != Some(stage) {
            self.stage = Some(stage);
            self.stage_started = now;
            self.first_step_at = None;
        }
        if step == 1 || self.first_step_at.is_none() {
            self.first_step_at = Some(now);
        }
        self.step = step;
        self.total = total;
        if let Some(p) = picture {
            self.set_picture(ctx, p);
        }
    }

    fn set_picture(&mut self, ctx: &egui::Context, p: Picture) {
        let image = color_image(&p);
        match &mut self.texture {
            Some(t) => t.set(image, TextureOptions::NEAREST),
            None => self.texture = Some(ctx.load_texture("live-preview", image, TextureOptions::NEAREST)),
        }
        self.picture = Some(p);
    }

    /// The job ended; keep the picture, stop the clock.
    pub fn end(&mut self, why: Option<&'static str>) {
        self.job_started = None;
        self.frozen = why;
    }

    pub fn clear(&mut self) {
        self.picture = None;
        self.frozen = None;
        self.stage = None;
    }

    pub fn picture(&self) -> Option<&Picture> {
        self.picture.as_ref()
    }

    pub fn has_picture(&self) -> bool {
        self.picture.is_some() && self.texture.is_some()
    }

    /// Remaining time of the current stage, from the pace of the steps after the first;
    /// None ("estimating…") until two steps are in.
    pub fn eta(&self, now: Instant) -> Option<Duration> {
        let first = self.first_step_at?;
        if self.step < 2 || self.total == 0 {
            return None;
        }
        let per_step = now.saturating_duration_since(first).as_secs_f64() / (self.step - 1) as f64;
        Some(Duration::from_secs_f64(per_step * (self.total.saturating_sub(self.step)) as f64))
    }

    /// What the progress line says, e.g. "decoder 12/25 · 3 s left".
    pub fn status_text(&self, now: Instant) -> String {
        let Some(stage) = self.stage else { return "starting…".into() };
        let eta = match self.eta(now) {
            Some(d) if self.step < self.total => format!(" · {} left", human(d)),
            Some(_) => String::new(),
            None => " · estimating…".into(),
        };
        format!("{} {}/{}{}", stage.label(), self.step, self.total, eta)
    }

    pub fn fraction(&self) -> f32 {
        if self.total == 0 { 0.0 } else { self.step as f32 / self.total as f32 }
    }

    /// Draws the preview as large as fits, at an integer scale when it is upscaled.
    pub fn show(&self, ui: &mut egui::Ui, max: Vec2) -> Option<egui::Response> {
        let tex = self.texture.as_ref()?;
        let pic = self.picture.as_ref()?;
        let label = match (self.frozen, self.stage) {
            (Some(why), Some(stage)) => {
                format!("Preview ({why} at {} step {}/{})", stage.label(), self.step, self.total)
            }
            (Some(why), None) => format!("Preview ({why})"),
            (None, Some(stage)) => format!("Live preview: {} step {}/{}", stage.label(), self.step, self.total),
            (None, None) => "Live preview".into(),
        };
        let size = fit(Vec2::new(pic.width as f32, pic.height as f32), max);
        Some(ui.add(egui::Image::from_texture((tex.id(), size)).alt_text(label)))
    }
}

/// The largest size for `image` inside `max`: an integer multiple when enlarging (nearest
/// filtering then keeps pixels square), proportional when shrinking.
pub fn fit(image: Vec2, max: Vec2) -> Vec2 {
    if image.x <= 0.0 || image.y <= 0.0 || max.x <= 0.0 || max.y <= 0.0 {
        return Vec2::splat(1.0);
    }
    let scale = (max.x / image.x).min(max.y / image.y);
    let scale = if scale >= 1.0 { scale.floor() } else { scale };
    image * scale
}

pub fn human(d: Duration) -> String {
    let s = d.as_secs_f32();
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.0} min", s / 60.0)
    }
}
