//! Where the main widgets are on screen, for scripts that drive the real window
//! (`.ci/journeys` clicks them with xdotool). Off unless `UNCLIP_UI_MAP=<file>` is set; then
//! each frame's labelled rectangles are handed to a writer thread, which replaces the file
//! (atomically) at most a few times a second. The UI thread itself never touches the disk.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use eframe::egui;

/// Label → [left, top, right, bottom] in window points.
type Map = BTreeMap<String, [f32; 4]>;

struct Writer {
    tx: Sender<Map>,
}

fn writer() -> Option<&'static Writer> {
    static WRITER: OnceLock<Option<Writer>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let path = PathBuf::from(std::env::var_os("UNCLIP_UI_MAP")?);
            let (tx, rx) = bounded::<Map>(1);
            std::thread::Builder::new()
                .name("ui-map".into())
                .spawn(move || {
                    for map in rx {
                        let text = serde_json::to_string_pretty(&map).unwrap_or_default();
                        let _ = crate::files::write_atomic(&path, text.as_bytes());
                    }
                })
                .ok()?;
            Some(Writer { tx })
        })
        .as_ref()
}

#[derive(Clone, Default)]
struct Pass(Map);

/// Records `r` under `label` for this frame (nothing when no map is asked for).
pub fn note(ui: &egui::Ui, label: &str, r: &egui::Response) {
    note_rect(ui, label, r.rect);
}

/// Records a rectangle under `label` (visible part only).
pub fn note_rect(ui: &egui::Ui, label: &str, rect: egui::Rect) {
    if writer().is_none() || !rect.is_positive() {
        return;
    }
    let rect = rect.intersect(ui.clip_rect());
    if !rect.is_positive() {
        return;
    }
    let v = [rect.left(), rect.top(), rect.right(), rect.bottom()];
    ui.ctx().data_mut(|d| d.get_temp_mut_or_default::<Pass>(egui::Id::NULL).0.insert(label.to_string(), v));
}

/// At the end of a frame: hands the frame's map to the writer (at most every 200 ms) and
/// starts the next frame's map empty, so widgets that disappear leave the map.
pub fn end_frame(ctx: &egui::Context) {
    let Some(w) = writer() else { return };
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let mut map = ctx.data_mut(|d| std::mem::take(&mut d.get_temp_mut_or_default::<Pass>(egui::Id::NULL).0));
    // A frame counter, so a script can tell a fresh map from one written before its click.
    map.insert("_frame".into(), [ctx.cumulative_pass_nr() as f32, 0.0, 0.0, 0.0]);
    // Keep frames coming while a script waits on the file.
    ctx.request_repaint_after(Duration::from_millis(250));
    let Ok(mut last) = LAST.lock() else { return };
    if last.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) {
        return;
    }
    // A full channel means the writer is still busy with the previous map: skip this one.
    if w.tx.try_send(map).is_ok() {
        *last = Some(Instant::now());
    }
}
