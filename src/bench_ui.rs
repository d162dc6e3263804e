//! `unclip bench ui`: how the window's thread fares while the worker generates on the CPU.
//! The real app (real worker, real engine) runs headless in egui_kittest's harness, a frame
//! every 5 ms as a busy window would be asked for; each frame's UI pass (layout, events,
//! textures) is timed. Reported: frame-time percentiles while a generation runs (and idle, as
//! the baseline of the same run), the time from Enter to the first live preview, and from Esc
//! to the cancel notice. Painting is the GPU driver's work and is not in these numbers.

use std::path::Path;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::app::{AppConfig, UnclipApp};
use crate::device::DevicePref;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (percentile(v, 0.5), percentile(v, 0.99), v.last().copied().unwrap_or(0.0))
}

/// Runs the measurement on `model` (a folder or repo id) and returns a Markdown table.
pub fn run_ui(model: &Path, prompt: &str, images: usize) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("unclip-bench-ui-{}", std::process::id()));
    let config = AppConfig::with_folders(Some(model.to_path_buf()), DevicePref::Cpu, dir.join("data"), dir.join("config"));
    let settings = config.read_settings();
    let mut h: Harness<'static, UnclipApp> = Harness::builder()
        .with_size(egui::Vec2::new(1320.0, 840.0))
        .build_eframe(move |cc| UnclipApp::new(&cc.egui_ctx, config, settings));
    let frame = |h: &mut Harness<'static, UnclipApp>| {
        let t = Instant::now();
        h.step();
        let d = t.elapsed().as_secs_f64() * 1000.0;
        std::thread::sleep(Duration::from_millis(5));
        d
    };
    let wait = |h: &mut Harness<'static, UnclipApp>, what: &str, done: &dyn Fn(&Harness<'static, UnclipApp>) -> bool| {
        let start = Instant::now();
        let mut times = Vec::new();
        while !done(h) {
            times.push(frame(h));
            if start.elapsed() > Duration::from_secs(300) {
                return Err(format!("timed out waiting for {what}"));
            }
        }
        Ok((start.elapsed(), times))
    };
    // The model opens; then a second of idle frames as the baseline.
    wait(&mut h, "the model", &|h| h.query_by_label("Generate").is_some() && !h.state().is_busy())?;
    let mut idle: Vec<f64> = (0..200).map(|_| frame(&mut h)).collect();

    {
        let s = h.state_mut().settings_mut();
        s.prompt = prompt.to_string();
        s.num_images = images;
    }
    // A warm-up run (weights loaded, caches filled), then the measured one.
    let mut busy = Vec::new();
    let mut first_preview = Vec::new();
    for round in 0..2 {
        let clicked = Instant::now();
        h.get_by_label("Generate").click();
        // The last run's preview stays until the new job starts: wait for it to go first.
        let (_, mut t) = wait(&mut h, "the job to start", &|h| h.state().preview_picture().is_none())?;
        let (_, mut more) = wait(&mut h, "the first preview", &|h| h.state().preview_picture().is_some())?;
        let to_preview = clicked.elapsed();
        t.append(&mut more);
        let (_, mut rest) = wait(&mut h, "the result", &|h| !h.state().is_busy())?;
        if round == 1 {
            first_preview.push(to_preview.as_secs_f64() * 1000.0);
            busy.append(&mut t);
            busy.append(&mut rest);
        }
    }
    // Esc during a long run (16 images, so it is still going): time until the app says it
    // stopped and shows the kept preview.
    h.state_mut().settings_mut().num_images = 16;
    h.get_by_label("Generate").click();
    wait(&mut h, "the job to start", &|h| h.state().preview_picture().is_none())?;
    wait(&mut h, "a preview to cancel", &|h| h.state().preview_picture().is_some())?;
    // The Generate button keeps keyboard focus after the click, and Esc would first drop that
    // focus (egui's rule); a user who presses Esc has typically clicked elsewhere.
    if let Some(id) = h.ctx.memory(|m| m.focused()) {
        h.ctx.memory_mut(|m| m.surrender_focus(id));
    }
    let t = Instant::now();
    h.key_press(egui::Key::Escape);
    wait(&mut h, "the run to stop", &|h| !h.state().is_busy())?;
    let cancel_ms = t.elapsed().as_secs_f64() * 1000.0;
    for _ in 0..3 {
        frame(&mut h);
    }
    if h.query_by_label_contains("cancelled").is_none() {
        return Err("the run finished before Esc took effect; nothing was cancelled".into());
    }
    drop(h);
    let _ = std::fs::remove_dir_all(&dir);

    let (i50, i99, imax) = ms(&mut idle);
    let (b50, b99, bmax) = ms(&mut busy);
    Ok(format!(
        "| UI frame time (ms) | p50 | p99 | max | frames |\n|---|---|---|---|---|\n\
         | idle (baseline) | {i50:.2} | {i99:.2} | {imax:.2} | {} |\n\
         | while generating ({images} image(s)) | {b50:.2} | {b99:.2} | {bmax:.2} | {} |\n\
         | ratio while generating / idle | {:.2}× | {:.2}× | | |\n\n\
         time to the first preview: {:.0} ms; Esc to the cancel notice: {cancel_ms:.0} ms",
        idle.len(),
        busy.len(),
        b50 / i50.max(1e-9),
        b99 / i99.max(1e-9),
        first_preview.first().copied().unwrap_or(0.0),
    ))
}
