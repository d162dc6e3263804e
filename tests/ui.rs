//! The desktop app driven like a user would, through egui_kittest and AccessKit labels.
//!
//! Every test builds the real app (real worker thread, real engine) on the tiny random-weight
//! model in `tests/fixtures/tiny_unclip`, on the flex CPU device, with its settings and
//! gallery in a fresh temp folder, so no test touches the user's folders or opens a dialog.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use unclip::app::settings::{EndKind, Mode};
use unclip::app::{AppConfig, UnclipApp};
use unclip::device::DevicePref;

type App = Harness<'static, UnclipApp>;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

/// A temp folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("unclip-ui-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file "dropped" on the window.
#[derive(Debug)]
struct DroppedPath(PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_file(h: &mut App, path: PathBuf) {
    h.input_mut().dropped_files.push(Arc::new(DroppedPath(path)));
    h.step();
}

fn config(dir: &Path, model: PathBuf) -> AppConfig {
    AppConfig::with_folders(Some(model), DevicePref::Cpu, dir.join("data"), dir.join("config"))
}

/// The app on the tiny model with few steps (each run takes a fraction of a second).
fn open_app(dir: &Path) -> App {
    let mut h = launch(config(dir, fixture("tiny_unclip")));
    {
        let s = h.state_mut().settings_mut();
        s.prior.steps = 3;
        s.decoder.steps = 3;
        s.super_res_steps = 2;
        s.draft_steps = 2;
    }
    wait_until(&mut h, "the model and the gallery to open", |h| h.state().settled());
    h
}

fn launch(config: AppConfig) -> App {
    let settings = config.read_settings();
    Harness::builder()
        .with_size(egui::Vec2::new(1400.0, 900.0))
        .build_eframe(move |cc| UnclipApp::new(&cc.egui_ctx, config, settings))
}

/// Steps frames until `done`, failing after 20 s with what the banner said.
fn wait_until(h: &mut App, what: &str, mut done: impl FnMut(&App) -> bool) {
    let start = Instant::now();
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}; banner: {:?}",
            h.state().banner_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn idle(h: &App) -> bool {
    !h.state().is_busy()
}

fn type_into(h: &mut App, label: &str, text: &str) {
    h.get_by_label(label).click();
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
}

/// A slider by its label (its number box has the same label).
fn slider<'a>(h: &'a App, label: &'a str) -> egui_kittest::Node<'a> {
    h.get_by_role_and_label(egui::accesskit::Role::Slider, label)
}

/// PNG files in a folder (temp files of a save in progress do not count).
fn pngs_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "png")).count())
        .unwrap_or(0)
}

/// Text diff mode with the test image dropped on the window.
fn text_diff_with_dropped_image(h: &mut App) {
    h.get_by_label("Text diff").click();
    h.step();
    drop_file(h, fixture("test_image.png"));
    wait_until(h, "the dropped image", |h| h.query_by_label("Text-diff image: test_image.png").is_some());
}

fn results(h: &App, containing: &str) -> usize {
    h.query_all_by_label_contains(&format!("Result: {containing}")).count()
}

#[test]
fn typing_a_prompt_and_pressing_generate_adds_a_result_that_survives_a_restart() {
    let dir = TempDir::new("generate");
    let mut h = open_app(dir.path());
    type_into(&mut h, "Prompt", "a red cube");
    assert_eq!(h.get_by_label("Prompt").value().as_deref(), Some("a red cube"));

    h.get_by_label("Generate").click();
    h.step();
    wait_until(&mut h, "a result in the gallery", |h| idle(h) && results(h, "“a red cube”") == 1);
    assert_eq!(h.state().banner_text(), None);
    // Saved on the gallery's own thread: the file appears shortly after the result.
    wait_until(&mut h, "the PNG in the gallery folder", |h| pngs_in(h.state().gallery_dir()) == 1);
    // The new result is shown large in the middle.
    assert!(h.query_by_label_contains("Selected result: “a red cube”").is_some());

    // Quit and start again: the gallery and the prompt are still there.
    drop(h);
    let mut h = open_app(dir.path());
    // Thumbnails are read and decoded on the gallery's thread, a frame or two after start.
    wait_until(&mut h, "the result after a restart", |h| results(h, "“a red cube”") == 1);
    // The gallery's thread lists the folder; the newest result is shown once it arrives.
    wait_until(&mut h, "the newest result on screen", |h| {
        h.query_by_label_contains("Selected result: “a red cube”").is_some()
    });
    assert_eq!(h.get_by_label("Prompt").value().as_deref(), Some("a red cube"));
}

#[test]
fn dropping_an_image_on_the_window_makes_variations_of_it() {
    let dir = TempDir::new("vary");
    let mut h = open_app(dir.path());
    drop_file(&mut h, fixture("test_image.png"));
    wait_until(&mut h, "the dropped image in the source slot", |h| {
        h.query_by_label("Source image: test_image.png").is_some()
    });
    assert_eq!(h.state().settings().mode, Mode::Variations, "dropping an image switches to variations");

    slider(&h, "Number of variations").set_value_accesskit(2.0);
    h.step();
    assert_eq!(h.state().settings().variations, 2);
    h.get_by_label("Make variations").click();
    h.step();
    wait_until(&mut h, "two variations", |h| idle(h) && results(h, "variation of test_image.png") == 2);
    assert_eq!(h.state().gallery_len(), 2);
}

#[test]
fn moving_theta_in_interpolate_changes_the_frame() {
    let dir = TempDir::new("interp");
    let mut h = open_app(dir.path());
    h.get_by_label("Interpolate").click();
    h.step();
    h.get_by_label("Prompt A").click();
    h.step();
    h.get_by_label("Prompt B").click();
    h.step();
    type_into(&mut h, "Text A", "a cat");
    type_into(&mut h, "Text B", "a dog");

    // Setting θ directly (keyboard / screen reader) renders a full-quality frame.
    slider(&h, "θ").set_value_accesskit(0.0);
    h.step();
    wait_until(&mut h, "the frame at θ 0", |h| {
        idle(h) && h.state().frame(Mode::Interpolate).is_some_and(|f| f.0 == 0.0 && !f.1)
    });
    assert!(h.query_by_label("Frame at θ 0.00").is_some());
    let first = h.state().frame(Mode::Interpolate).map(|f| f.2.clone()).expect("frame");

    // Dragging θ: quick draft frames while the button is held, a full frame on release.
    let rect = slider(&h, "θ").rect();
    let (from, to) = (rect.left_center() + egui::vec2(2.0, 0.0), rect.right_center() - egui::vec2(2.0, 0.0));
    h.event(egui::Event::PointerMoved(from));
    h.event(egui::Event::PointerButton {
        pos: from,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Default::default(),
    });
    h.step();
    h.event(egui::Event::PointerMoved(to));
    h.step();
    wait_until(&mut h, "a draft frame while dragging", |h| h.state().frame(Mode::Interpolate).is_some_and(|f| f.1));
    let draft_theta = h.state().frame(Mode::Interpolate).map(|f| f.0).unwrap_or(-1.0);
    assert!(h.query_by_label(&format!("Frame at θ {draft_theta:.2} (draft)")).is_some());
    h.event(egui::Event::PointerButton {
        pos: to,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Default::default(),
    });
    h.step();
    let theta = h.state().settings().interp.theta;
    assert!(theta > 0.9, "the drag moved θ to the right end, got {theta}");
    wait_until(&mut h, "the full frame after release", |h| {
        idle(h) && h.state().frame(Mode::Interpolate).is_some_and(|f| !f.1 && f.0 == theta)
    });
    let last = h.state().frame(Mode::Interpolate).map(|f| f.2.clone()).expect("frame");
    assert_ne!(first.rgb, last.rgb, "a different θ gives a different picture");
    assert!(h.query_by_label(&format!("Frame at θ {theta:.2}")).is_some());
    assert_eq!(h.state().gallery_len(), 0, "scrub frames are not saved unless kept");
}

#[test]
fn applying_a_text_diff_to_a_dropped_image_shows_the_edited_frame() {
    let dir = TempDir::new("textdiff");
    let mut h = open_app(dir.path());
    text_diff_with_dropped_image(&mut h);
    type_into(&mut h, "Towards", "a winter scene");
    slider(&h, "Strength θ").set_value_accesskit(0.4);
    h.step();
    wait_until(&mut h, "the edited frame", |h| idle(h) && h.state().frame(Mode::TextDiff).is_some_and(|f| !f.1));
    assert!(h.query_by_label("Frame at θ 0.40").is_some());
    assert_eq!(h.state().banner_text(), None);
}

#[test]
fn cancelling_a_run_with_escape_or_the_button_keeps_the_last_preview() {
    let dir = TempDir::new("cancel");
    let mut h = open_app(dir.path());
    // A long decoder run, so there is time to cancel in the middle of it.
    h.state_mut().settings_mut().decoder.steps = 250;
    type_into(&mut h, "Prompt", "a long run");

    for how in ["escape", "button"] {
        h.get_by_label("Generate").click();
        h.step();
        wait_until(&mut h, "a live preview", |h| h.query_by_label_contains("Live preview: decoder").is_some());
        match how {
            "escape" => h.key_press(egui::Key::Escape),
            _ => h.get_by_label("Cancel").click(),
        }
        h.step();
        wait_until(&mut h, "the job to end", idle);
        assert!(h.query_by_label_contains("Preview (cancelled at decoder step").is_some(), "cancel by {how}");
        assert!(h.state().preview_picture().is_some());
        assert_eq!(h.state().gallery_len(), 0, "a cancelled run saves nothing");
        assert_eq!(h.state().banner_text(), None, "cancelling is not an error");
    }
}

#[test]
fn clicking_a_result_or_dropping_its_png_restores_its_settings() {
    let dir = TempDir::new("restore");
    let mut h = open_app(dir.path());
    type_into(&mut h, "Prompt", "a blue sphere");
    let seed = h.state().settings().seed;
    // Enter in the prompt box generates.
    h.key_press(egui::Key::Enter);
    h.step();
    wait_until(&mut h, "the result", |h| idle(h) && results(h, "“a blue sphere”") == 1);
    assert_eq!(h.state().settings().seed, seed, "the seed field shows the seed of the result");

    // Change things, then click the result.
    h.state_mut().settings_mut().prompt = "something else".into();
    h.state_mut().settings_mut().decoder.guidance = 2.5;
    h.get_by_label("Interpolate").click();
    h.step();
    h.get_by_label_contains("Result: “a blue sphere”").click();
    h.step();
    h.step();
    let s = h.state().settings();
    assert_eq!(s.mode, Mode::Generate);
    assert_eq!(s.prompt, "a blue sphere");
    assert_eq!(s.seed, seed);
    assert_eq!(s.decoder.guidance, 8.0);
    assert_eq!(h.get_by_label("Prompt").value().as_deref(), Some("a blue sphere"));

    // Dropping the saved PNG on the window restores the same recipe.
    h.state_mut().settings_mut().prompt = "something else".into();
    h.step();
    wait_until(&mut h, "the PNG in the gallery folder", |h| pngs_in(h.state().gallery_dir()) == 1);
    let png = std::fs::read_dir(h.state().gallery_dir()).expect("gallery").flatten().next().expect("a png").path();
    drop_file(&mut h, png);
    wait_until(&mut h, "the recipe restored from the PNG", |h| h.state().settings().prompt == "a blue sphere");
    assert!(h.query_by_label_contains("Restored the settings of").is_some());
}

#[test]
fn dropping_a_non_image_file_shows_an_error_and_the_app_keeps_working() {
    let dir = TempDir::new("errors");
    let mut h = open_app(dir.path());
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a picture").expect("write");
    drop_file(&mut h, notes);
    wait_until(&mut h, "an error banner", |h| h.state().banner_text().is_some());
    assert!(h.query_by_label_contains("notes.txt: not an image").is_some());

    // A broken PNG is refused the same way.
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\n garbage").expect("write");
    drop_file(&mut h, broken);
    wait_until(&mut h, "a second error", |h| h.state().banner_text().is_some_and(|b| b.starts_with("broken.png")));

    // So is an image too large to decode (only its header is real: 20000×20000 px).
    let huge = dir.path().join("huge.png");
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 20_000, 20_000);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().expect("png header");
        // An empty data chunk: decoders read the size before they need any pixels.
        w.write_chunk(png::chunk::IDAT, &[]).expect("png chunk");
    }
    std::fs::write(&huge, bytes).expect("write");
    drop_file(&mut h, huge);
    wait_until(&mut h, "the too-large error", |h| h.state().banner_text().is_some_and(|b| b.starts_with("huge.png")));
    assert!(h.query_by_label_contains("image is too large").is_some(), "{:?}", h.state().banner_text());

    // A crash inside the worker is reported and the engine comes back.
    h.state_mut().queue_fault();
    wait_until(&mut h, "the crash banner", |h| h.state().banner_text().is_some_and(|b| b.contains("internal error")));
    h.get_by_label("Dismiss").click();
    h.step();
    assert_eq!(h.state().banner_text(), None);

    // …and the app still makes pictures.
    type_into(&mut h, "Prompt", "still working");
    h.get_by_label("Generate").click();
    h.step();
    wait_until(&mut h, "a result after the errors", |h| idle(h) && results(h, "“still working”") == 1);
}

#[test]
fn opening_a_folder_that_is_not_a_model_says_what_is_missing() {
    let dir = TempDir::new("badmodel");
    let empty = dir.path().join("not-a-model");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let mut h = launch(config(dir.path(), empty));
    wait_until(&mut h, "the model error", |h| h.state().banner_text().is_some());
    let text = h.state().banner_text().unwrap_or_default().to_string();
    assert!(text.contains("not an unCLIP model folder: missing"), "{text}");
    assert!(h.query_by_label_contains("No model").is_some());
    assert!(!h.state().model_ready());
}

#[test]
fn choosing_half_precision_in_the_model_menu_keeps_generating_and_is_remembered() {
    let dir = TempDir::new("half");
    let mut h = open_app(dir.path());
    h.get_by_label("Model").click();
    h.run();
    h.get_by_label("Half precision (f16)").click();
    h.run();
    h.get_by_label("Free memory between stages").click();
    h.run();
    assert!(h.state().settings().half_precision && h.state().settings().release_stages);

    type_into(&mut h, "Prompt", "a blue cross");
    h.get_by_label("Generate").click();
    h.step();
    wait_until(&mut h, "an f16 result", |h| idle(h) && results(h, "“a blue cross”") == 1);
    assert_eq!(h.state().banner_text(), None, "no error from the f16 run");

    drop(h);
    let h = open_app(dir.path());
    assert!(h.state().settings().half_precision, "the choice survives a restart");
}

#[test]
fn launching_with_dtype_and_release_stages_flags_ticks_the_memory_boxes() {
    let dir = TempDir::new("flags");
    let mut cfg = config(dir.path(), fixture("tiny_unclip"));
    cfg.flags.half_precision = Some(true);
    cfg.flags.release_stages = true;
    let h = launch(cfg);
    assert!(h.state().settings().half_precision, "--dtype f16 ticks Half precision");
    assert!(h.state().settings().release_stages, "--release-stages ticks Free memory between stages");
    drop(h);
    // `--dtype f32` unticks it again.
    let mut cfg = config(dir.path(), fixture("tiny_unclip"));
    cfg.flags.half_precision = Some(false);
    let h = launch(cfg);
    assert!(!h.state().settings().half_precision);
}

#[test]
fn a_prompt_longer_than_the_model_reads_says_so_after_the_run() {
    let dir = TempDir::new("long-prompt");
    let mut h = open_app(dir.path());
    let long = "a red star ".repeat(30);
    type_into(&mut h, "Prompt", long.trim());
    // Enter in the prompt box (the box has just grown, so the button is moving this frame).
    h.key_press(egui::Key::Enter);
    h.step();
    wait_until(&mut h, "the result", |h| idle(h) && h.state().gallery_len() == 1);
    let banner = h.state().banner_text().unwrap_or_default().to_string();
    assert!(banner.contains("the end was cut"), "the note stays after the run: {banner:?}");
}

#[test]
fn the_seed_field_shows_the_seed_of_the_result_and_the_next_run_draws_a_new_one() {
    let dir = TempDir::new("seeds");
    let mut h = open_app(dir.path());
    h.state_mut().settings_mut().seed = 1234;
    type_into(&mut h, "Prompt", "a red circle");
    h.key_press(egui::Key::Enter);
    h.step();
    wait_until(&mut h, "the first result", |h| idle(h) && results(h, "“a red circle”") == 1);
    assert_eq!(h.state().settings().seed, 1234, "a typed seed is used as it is and stays shown");
    assert_eq!(results(&h, "“a red circle” seed 1234"), 1, "the recipe names the seed in the field");

    // Unlocked: the next run replaces the used seed, and the field shows the new one.
    h.get_by_label("Generate").click();
    h.step();
    wait_until(&mut h, "the second result", |h| idle(h) && results(h, "“a red circle”") == 2);
    let second = h.state().settings().seed;
    assert_ne!(second, 1234, "an unlocked seed is replaced when the next run starts");
    assert_eq!(results(&h, &format!("“a red circle” seed {second}")), 1, "the field shows the newest result's seed");

    // Locked: every run keeps it.
    h.state_mut().settings_mut().lock_seed = true;
    h.get_by_label("Generate").click();
    h.step();
    wait_until(&mut h, "the third result", |h| idle(h) && results(h, "“a red circle”") == 3);
    assert_eq!(h.state().settings().seed, second);
}

#[test]
fn dragging_the_text_diff_strength_with_long_captions_keeps_the_side_panels_in_bounds() {
    let dir = TempDir::new("layout");
    let mut h = open_app(dir.path());
    text_diff_with_dropped_image(&mut h);
    type_into(&mut h, "Towards", "a large blue triangle on a pale yellow background");
    type_into(&mut h, "From (optional)", "a small red star in the top-left on a blue background");
    // Drag the strength slider across its track over many frames, as a hand does.
    let track = slider(&h, "Strength θ").rect();
    let y = track.center().y;
    h.hover_at(egui::pos2(track.left() + 2.0, y));
    h.step();
    h.drag_at(egui::pos2(track.left() + 2.0, y));
    h.step();
    for k in 0..=40 {
        h.hover_at(egui::pos2(track.left() + track.width() * k as f32 / 40.0, y));
        h.step();
    }
    h.drop_at(egui::pos2(track.right(), y));
    h.step();
    wait_until(&mut h, "the text-diff frames to finish", idle);
    let window = 1400.0;
    let after = slider(&h, "Strength θ").rect();
    assert!(after.right() <= window * 0.36, "controls grew to {:.0} of {window} points", after.right());
    assert!((after.width() - track.width()).abs() < 1.0, "the slider changed width: {track:?} → {after:?}");
    // The central view and the gallery are still on screen.
    let gallery = h.get_by_label_contains("Gallery (").rect();
    assert!(gallery.left() >= window * 0.6, "the results panel starts at {:.0}", gallery.left());
    let frame = h.get_by_label_contains("Frame at θ").rect();
    assert!(frame.width() >= window * 0.25, "the central view is {:.0} points wide", frame.width());
}

#[test]
fn opening_the_app_with_two_images_sets_up_an_interpolation_between_them() {
    // What a file manager's "Open with unclip" does with two selected pictures.
    let dir = TempDir::new("open-two");
    let other = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets").join("samples").join("src-blue-circle.png");
    let mut config = config(dir.path(), fixture("tiny_unclip"));
    config.flags.open = vec![fixture("test_image.png"), other];
    let mut h = launch(config);
    wait_until(&mut h, "both ends loaded", |h| {
        h.query_by_label("Image A: test_image.png").is_some() && h.query_by_label("Image B: src-blue-circle.png").is_some()
    });
    assert_eq!(h.state().settings().mode, Mode::Interpolate);
    assert_eq!(h.state().settings().interp.a_kind, EndKind::Image);
    assert_eq!(h.state().settings().interp.b_kind, EndKind::Image);
}

#[test]
fn choosing_the_autoregressive_prior_in_sampling_settings_generates_with_it() {
    let dir = TempDir::new("ar-prior");
    // The tiny fixture has only the diffusion prior: no choice is offered.
    let h = open_app(dir.path());
    assert!(h.query_by_label("Prior").is_none(), "no prior choice without an autoregressive prior");
    drop(h);

    // The built-in model has both.
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets").join("model");
    let mut h = launch(config(dir.path(), shipped));
    {
        let s = h.state_mut().settings_mut();
        s.decoder.steps = 3;
        s.super_res_steps = 0;
    }
    wait_until(&mut h, "the built-in model and the gallery to open", |h| h.state().settled());
    let prior_steps = |h: &App| h.query_by_role_and_label(egui::accesskit::Role::Slider, "Prior steps").is_some();
    assert!(prior_steps(&h));
    h.get_by_label("Prior").click();
    h.run();
    h.get_by_label("Autoregressive").click();
    h.run();
    assert_eq!(h.state().settings().prior_kind, unclip::pipeline::PriorKind::Autoregressive);
    // Its own knobs replace the diffusion prior's steps and sampler.
    assert!(!prior_steps(&h));
    slider(&h, "Prior temperature").set_value_accesskit(0.7);
    h.run();
    assert_eq!(h.state().settings().temperature, 0.7);

    type_into(&mut h, "Prompt", "a green star");
    h.get_by_label("Generate").click();
    h.step();
    wait_until(&mut h, "a result from the autoregressive prior", |h| idle(h) && results(h, "“a green star”") == 1);
    assert_eq!(h.state().banner_text(), None);
    wait_until(&mut h, "the PNG in the gallery folder", |h| pngs_in(h.state().gallery_dir()) == 1);
    let png = std::fs::read_dir(h.state().gallery_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .unwrap();
    let recipe = unclip::image_io::read_recipe(&std::fs::read(png).unwrap()).expect("recipe");
    match recipe.operation {
        unclip::recipe::Operation::Generate(p) => {
            assert_eq!((p.prior_kind, p.temperature), (unclip::pipeline::PriorKind::Autoregressive, 0.7))
        }
        other => panic!("wrong operation {other:?}"),
    }
}
