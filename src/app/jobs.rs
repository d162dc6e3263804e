//! Turning the user's actions into queued jobs (with the recipe their pictures will carry),
//! and the file-dialog actions.

use eframe::egui;
use std::path::PathBuf;

use super::inputs::{Purpose, Slot, SourceImage};
use super::panels::Action;
use super::queue::{Origin, Pending};
use super::settings::{EndKind, Mode};
use super::worker::Job;
use super::{UnclipApp, View};
use crate::pipeline::ops::Endpoint;
use crate::pipeline::{Picture, Request, StartLatent};
use crate::recipe::Recipe;

/// An input image with the name its recipe records.
type Named = (Picture, String);

const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "PNG"];

impl UnclipApp {
    pub(crate) fn act(&mut self, ctx: &egui::Context, a: Action) {
        match a {
            Action::Generate => self.queue_generate(),
            Action::Vary => self.queue_vary(),
            Action::Frame { draft } => self.request_frame(draft),
            Action::Filmstrip => self.queue_filmstrip(),
            Action::Cancel => {
                if self.queue.cancel_running() {
                    self.last_status = "Cancelling…".into();
                }
            }
            Action::OpenImage(slot) => {
                if let Some(path) = pick_image() {
                    self.loading.push(slot);
                    self.loader.load_path(path, Purpose::Slot(slot));
                }
            }
            Action::OpenImageDialog => {
                let slot = match self.settings.mode {
                    Mode::Generate | Mode::Variations => Slot::VarySource,
                    Mode::Interpolate if !self.slots.contains_key(&Slot::InterpA) => Slot::InterpA,
                    Mode::Interpolate => Slot::InterpB,
                    Mode::TextDiff => Slot::TextDiffSource,
                };
                self.act(ctx, Action::OpenImage(slot));
                if slot == Slot::VarySource {
                    self.settings.mode = Mode::Variations;
                }
            }
            Action::ClearSlot(slot) => self.clear_slot(slot),
            Action::TryExample => self.try_example(ctx),
            Action::ResetLayout => {
                self.settings.layout_generation = self.settings.layout_generation.wrapping_add(1);
                self.last_status = "Layout reset".into();
            }
            Action::SwapEnds => {
                let a = self.slots.remove(&Slot::InterpA);
                let b = self.slots.remove(&Slot::InterpB);
                for (slot, img) in [(Slot::InterpA, b), (Slot::InterpB, a)] {
                    match img {
                        Some(img) => self.set_slot(slot, img),
                        None => self.clear_slot(slot),
                    }
                }
                let i = &mut self.settings.interp;
                std::mem::swap(&mut i.a_kind, &mut i.b_kind);
                std::mem::swap(&mut i.a_prompt, &mut i.b_prompt);
                self.strip.clear();
            }
            Action::SelectResult(i) => {
                self.gallery.ensure_loaded(i);
                if let Some(id) = self.gallery.id_at(i) {
                    self.view = View::Result(id);
                }
                if let Some(recipe) = self.gallery.entries.get(i).and_then(|e| e.recipe.clone()) {
                    self.restore(recipe);
                }
            }
            Action::UseResult(i, slot) => {
                self.gallery.ensure_loaded(i);
                let Some(e) = self.gallery.entries.get(i) else { return };
                let Some(pic) = e.picture.clone() else { return };
                let img = SourceImage::new(ctx, e.name(), e.path.clone(), pic);
                self.set_slot(slot, img);
                self.settings.mode = match slot {
                    Slot::VarySource => Mode::Variations,
                    Slot::InterpA | Slot::InterpB => {
                        match slot {
                            Slot::InterpA => self.settings.interp.a_kind = EndKind::Image,
                            _ => self.settings.interp.b_kind = EndKind::Image,
                        }
                        Mode::Interpolate
                    }
                    Slot::TextDiffSource => Mode::TextDiff,
                };
            }
            Action::SaveResultAs(i) => {
                self.gallery.ensure_loaded(i);
                let item =
                    self.gallery.entries.get(i).and_then(|e| Some((e.picture.clone()?, e.recipe.clone(), e.name())));
                if let Some((pic, recipe, name)) = item {
                    self.save_as(&pic, recipe.as_ref(), &name);
                }
            }
            Action::CopyResult(i) => {
                self.gallery.ensure_loaded(i);
                if let Some(pic) = self.gallery.entries.get(i).and_then(|e| e.picture.as_ref()) {
                    ctx.copy_image(super::inputs::color_image(pic));
                    self.last_status = "Image copied".into();
                }
            }
            Action::DeleteResult(i) => {
                if self.gallery.id_at(i).is_some_and(|id| self.view == View::Result(id)) {
                    self.view = View::Empty;
                }
                self.gallery.remove(i);
            }
            Action::KeepFrame => {
                let model = self.model_name();
                if let Some(f) = self.frames.get(&self.settings.mode) {
                    let (pic, op) = (f.picture.clone(), f.op.clone());
                    self.gallery.add(pic, Recipe::new(model, 0, op));
                    self.last_status = "Frame added to the gallery".into();
                }
            }
            Action::SaveFrameAs => {
                let model = self.model_name();
                if let Some(f) = self.frames.get(&self.settings.mode) {
                    let (pic, recipe) = (f.picture.clone(), Recipe::new(model, 0, f.op.clone()));
                    self.save_as(&pic, Some(&recipe), "frame.png");
                }
            }
            Action::PickStrip(i) => {
                if let Some(f) = self.strip.get(i) {
                    let (theta, pic, op) = (f.theta, f.picture.clone(), f.op.clone());
                    self.settings.interp.theta = theta;
                    let texture = ctx.load_texture(
                        "frame-Interpolate",
                        super::inputs::color_image(&pic),
                        egui::TextureOptions::LINEAR,
                    );
                    self.frames
                        .insert(Mode::Interpolate, super::Frame { theta, draft: false, picture: pic, texture, op });
                    self.view = View::Frame;
                }
            }
            Action::OpenModelFolder => {
                if let Some(folder) = rfd::FileDialog::new().set_title("Open a diffusers unCLIP folder").pick_folder() {
                    self.open_model(folder, false);
                }
            }
            Action::UseDefaultModel => self.open_model(self.builtin_model.clone(), true),
            Action::OpenModel(reference) => self.open_model(PathBuf::from(reference), false),
            Action::SetDevice(d) => {
                self.device = d;
                self.settings.device = d;
                self.model = super::status::ModelState::Opening;
                self.worker.send(Job::SetDevice(d));
            }
            Action::SetMemory(m) => {
                self.settings.half_precision = m.half_precision;
                self.settings.release_stages = m.release_stages;
                self.worker.send(Job::SetMemory(m));
            }
        }
    }

    /// Example inputs for the current mode, drawn from the built-in model's world: a red
    /// star to vary, an orange circle and a red star to interpolate, a red star to turn blue.
    fn try_example(&mut self, ctx: &egui::Context) {
        use crate::train::world::{Colour, Shape};
        let put = |app: &mut Self, slot: Slot, name: &str, shape: Shape, colour: Colour, background: Colour| {
            match super::examples::picture(shape, colour, background) {
                Some(pic) => app.set_slot(slot, SourceImage::new(ctx, name.to_string(), None, pic)),
                None => app.error("the example picture could not be drawn"),
            }
        };
        match self.settings.mode {
            Mode::Generate => self.settings.prompt = super::panels::generate::EXAMPLES[0].to_string(),
            Mode::Variations => put(self, Slot::VarySource, "a red star", Shape::Star, Colour::Red, Colour::Blue),
            Mode::Interpolate => {
                put(self, Slot::InterpA, "an orange circle", Shape::Circle, Colour::Orange, Colour::White);
                put(self, Slot::InterpB, "a red star", Shape::Star, Colour::Red, Colour::White);
                self.settings.interp.a_kind = EndKind::Image;
                self.settings.interp.b_kind = EndKind::Image;
            }
            Mode::TextDiff => {
                put(self, Slot::TextDiffSource, "a red star", Shape::Star, Colour::Red, Colour::White);
                self.settings.text_diff.to = "a blue star".into();
                self.settings.text_diff.from = "a red star".into();
            }
        }
    }

    fn open_model(&mut self, folder: PathBuf, is_default: bool) {
        // The worker resolves the folder (a disk call) and reports it when the model is open;
        // only then does it go into the recent list.
        self.settings.model = (!is_default).then(|| folder.clone());
        self.model_is_default = is_default;
        self.model_folder = folder.clone();
        self.model = super::status::ModelState::Opening;
        self.worker.send(Job::OpenModel { folder, device: self.device });
    }

    fn save_as(&mut self, pic: &crate::pipeline::Picture, recipe: Option<&Recipe>, name: &str) {
        let Some(path) = rfd::FileDialog::new().add_filter("PNG image", &["png"]).set_file_name(name).save_file()
        else {
            return;
        };
        // Encoded and written on the export thread; `poll_exports` reports how it ended.
        let (pic, recipe) = (pic.clone(), recipe.cloned());
        if !self.exports.write_with(&path, move || crate::image_io::encode_png(&pic, recipe.as_ref())) {
            self.error("not saved: the export thread is gone");
        }
    }

    /// Reports finished "Save as…" writes.
    pub(crate) fn poll_exports(&mut self) {
        for (path, result) in self.exports.finished() {
            match result {
                Ok(()) => self.last_status = format!("Saved {}", path.display()),
                Err(e) => self.error(format!("{} not saved: {e}", path.display())),
            }
        }
    }

    fn queue_generate(&mut self) {
        if !self.model.can_generate() {
            self.error(self.model.why_not_generate());
            return;
        }
        if self.settings.prompt.trim().is_empty() {
            self.error("type a prompt first");
            return;
        }
        self.settings.seeds_for_next_run();
        let params = self.settings.generate_params();
        // The CLI's rules, before anything is queued (a restored recipe may break them).
        if let Err(e) = params.validate() {
            self.error(e);
            return;
        }
        let label = format!("“{}” ×{}", short(&params.prompt), params.num_images);
        let pending = self.pending(label, Request::Generate(params), Origin::Gallery);
        self.queue.push(pending);
    }

    fn queue_vary(&mut self) {
        let Some(src) = self.slots.get(&Slot::VarySource) else {
            self.error("drop or open an image to make variations of");
            return;
        };
        self.settings.seeds_for_next_run();
        let params = self.settings.decode_params(self.settings.variations);
        if let Err(e) = params.validate() {
            self.error(e);
            return;
        }
        let label = format!("variations of {} ×{}", src.name, params.num_images);
        let request = Request::Variations { source: (src.picture.clone(), src.recipe_source()), params };
        let pending = self.pending(label, request, Origin::Gallery);
        self.queue.push(pending);
    }

    /// A queue entry for `request`, whose images carry the names their recipe records: the
    /// worker gets the pictures, the recipe the names.
    fn pending(&mut self, label: String, request: Request<Named>, origin: Origin) -> Pending {
        let ticket = self.queue.ticket();
        let (request, op) = request.split();
        Pending { ticket: ticket.clone(), label, job: Job::Run { ticket, request }, op, origin }
    }

    /// The request of the current mode's frame at θ, with its queue label; None (and a
    /// banner) when an input is missing.
    fn frame_request(&mut self, theta: f32, draft: bool) -> Option<(Request<Named>, String)> {
        let params = if draft { self.settings.draft_params() } else { self.settings.decode_params(1) };
        if let Err(e) = params.validate() {
            self.error(e);
            return None;
        }
        match self.settings.mode {
            Mode::Interpolate => {
                let a = self.endpoint(Slot::InterpA)?;
                let b = self.endpoint(Slot::InterpB)?;
                let start = self.settings.interp.start;
                let start = if matches!((&a, &b), (Endpoint::Image(_), Endpoint::Image(_))) {
                    start
                } else {
                    StartLatent::Fixed
                };
                let label = format!("interpolation θ {theta:.2}{}", if draft { " (draft)" } else { "" });
                Some((Request::Interpolate { a, b, theta, start, params }, label))
            }
            Mode::TextDiff => {
                let Some(src) = self.slots.get(&Slot::TextDiffSource) else {
                    self.error("drop or open an image for the text diff");
                    return None;
                };
                let t = &self.settings.text_diff;
                if t.to.trim().is_empty() {
                    self.error("type the caption to move toward");
                    return None;
                }
                let request = Request::TextDiff {
                    source: (src.picture.clone(), src.recipe_source()),
                    to: t.to.trim().to_string(),
                    from: t.from.trim().to_string(),
                    theta,
                    params,
                };
                let label = format!("text diff θ {theta:.2}{}", if draft { " (draft)" } else { "" });
                Some((request, label))
            }
            Mode::Generate | Mode::Variations => None,
        }
    }

    /// An interpolation end, an image carrying the name its recipe records.
    fn endpoint(&mut self, slot: Slot) -> Option<Endpoint<Named>> {
        let (kind, prompt) = match slot {
            Slot::InterpA => (self.settings.interp.a_kind, self.settings.interp.a_prompt.trim().to_string()),
            _ => (self.settings.interp.b_kind, self.settings.interp.b_prompt.trim().to_string()),
        };
        let name = if slot == Slot::InterpA { "A" } else { "B" };
        match kind {
            EndKind::Prompt if !prompt.is_empty() => Some(Endpoint::Prompt(prompt)),
            EndKind::Prompt => {
                self.error(format!("type prompt {name} first"));
                None
            }
            EndKind::Image => match self.slots.get(&slot) {
                Some(img) => Some(Endpoint::Image((img.picture.clone(), img.recipe_source()))),
                None => {
                    self.error(format!("drop or open image {name} first"));
                    None
                }
            },
        }
    }

    /// The θ slider moved (draft) or settled (full quality). The newest request replaces
    /// any older waiting one; a full request also cancels a running draft, whose result
    /// would be stale anyway.
    fn request_frame(&mut self, draft: bool) {
        let theta = match self.settings.mode {
            Mode::Interpolate => self.settings.interp.theta,
            Mode::TextDiff => self.settings.text_diff.theta,
            _ => return,
        };
        let Some((request, label)) = self.frame_request(theta, draft) else { return };
        let pending = self.pending(label, request, Origin::Frame { theta, draft });
        self.queue.set_live(pending);
        if !draft && self.queue.running_is_draft() {
            self.queue.cancel_running();
        }
    }

    fn queue_filmstrip(&mut self) {
        let n = self.settings.interp.frames.clamp(2, 32);
        self.strip.clear();
        for k in 0..n {
            let theta = k as f32 / (n - 1) as f32;
            let Some((request, _)) = self.frame_request(theta, false) else { return };
            let label = format!("filmstrip frame {}/{n} (θ {theta:.2})", k + 1);
            let pending = self.pending(label, request, Origin::Strip { theta });
            self.queue.push(pending);
        }
    }
}

fn pick_image() -> Option<PathBuf> {
    rfd::FileDialog::new().set_title("Open an image").add_filter("Images", &IMAGE_EXTENSIONS).pick_file()
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 { s.chars().take(40).collect::<String>() + "…" } else { s.to_string() }
}
