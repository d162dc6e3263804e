//! The worker thread: the only owner of the engine (and so of every tensor). The UI sends
//! it one [`Job`] at a time over a channel and reads [`Event`]s back; it never waits for it.
//!
//! Why one thread and one engine: the engine caches prompt encodings, image embeddings and
//! inversions, which is what makes scrubbing a θ slider cheap; a second engine would double
//! the memory and lose those caches.

use eframe::egui;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::device::{DevicePref, choose};
use crate::pipeline::{
    Control, Engine, Picture, PipelineError, Progress, Request, Stage,
    budget::MemoryEstimate,
};

pub type JobId = u64;

/// A job's identity and its own cancel flag. A flag per job (not one shared flag) means a
/// Cancel pressed just before the worker picks a job up can never leak into the next one.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: JobId,
    pub cancel: Arc<AtomicBool>,
}

impl Ticket {
    pub fn new(id: JobId) -> Self {
        Self { id, cancel: Arc::new(AtomicBool::new(false)) }
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Everything the UI can ask of the worker.
#[derive(Debug)]
pub enum Job {
    /// Open a diffusers unCLIP folder on a device (components load on first use).
    OpenModel {
        folder: PathBuf,
        device: DevicePref,
    },
    /// Re-open the current folder on another device.
    SetDevice(DevicePref),
    /// Memory settings: network precision (components reload on next use when it changes)
    /// and whether each stage's networks are freed when it ends.
    SetMemory(Memory),
    /// Run an operation; its pictures come back as `Event::Done`.
    Run {
        ticket: Ticket,
        request: Request,
    },
    /// Fault injection: panics inside the job guard, to exercise the recovery path (tests).
    #[doc(hidden)]
    Panic {
        ticket: Ticket,
    },
    /// Leave the loop (sent when the app closes).
    Shutdown,
}

impl Job {
    pub fn ticket(&self) -> Option<&Ticket> {
        match self {
            Job::Run { ticket, .. } | Job::Panic { ticket } => Some(ticket),
            Job::OpenModel { .. } | Job::SetDevice(_) | Job::SetMemory(_) | Job::Shutdown => None,
        }
    }
}

/// Everything the worker tells the UI.
#[derive(Debug)]
pub enum Event {
    /// A model folder is open and usable.
    ModelReady {
        folder: PathBuf,
        device: String,
        is_gpu: bool,
        /// Why text→image is off (None: on).
        generate_off: Option<String>,
        /// Why the image operations are off (None: on).
        vary_off: Option<String>,
        /// Broken configs or weight files found up front, one line each.
        problems: Vec<String>,
        /// What the model needs with its networks in f32 and in f16.
        memory: [MemoryEstimate; 2],
        /// The folder also has the autoregressive prior.
        ar_prior: bool,
    },
    /// Opening a folder (or choosing a device) failed; the message says why, in one line.
    ModelFailed {
        folder: PathBuf,
        message: String,
    },
    Started {
        id: JobId,
    },
    Progress {
        id: JobId,
        stage: Stage,
        step: usize,
        total: usize,
        preview: Option<Picture>,
    },
    Note {
        id: JobId,
        text: String,
    },
    Finished {
        id: JobId,
        pictures: Vec<Picture>,
        seconds: f32,
    },
    Failed {
        id: JobId,
        message: String,
    },
    Cancelled {
        id: JobId,
    },
    /// The job panicked; the engine was thrown away and re-opened.
    Crashed {
        id: JobId,
        message: String,
    },
}

/// The UI's handle on the worker thread.
pub struct Worker {
    jobs: Sender<Job>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread. `ctx` is woken after every event so the UI repaints promptly
    /// without polling.
    pub fn spawn(ctx: egui::Context) -> Self {
        let (jobs, job_rx) = unbounded::<Job>();
        let (event_tx, events) = unbounded::<Event>();
        let thread = std::thread::Builder::new()
            .name("unclip-worker".into())
            .spawn(move || worker_loop(job_rx, Outbox { tx: event_tx, ctx }))
            .ok();
        Self { jobs, events, thread }
    }

    /// Sends a job; false when the thread is gone (it never should be: panics are caught).
    pub fn send(&self, job: Job) -> bool {
        self.thread.is_some() && self.jobs.send(job).is_ok()
    }

    /// Events that arrived since the last call, without blocking.
    pub fn poll(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.jobs.send(Job::Shutdown);
        if let Some(t) = self.thread.take() {
            // The caller cancels the running job first, so this waits one network call at most.
            let _ = t.join();
        }
    }
}

/// The sending side: every event is followed by a repaint request.
struct Outbox {
    tx: Sender<Event>,
    ctx: egui::Context,
}

impl Outbox {
    fn send(&self, e: Event) {
        let _ = self.tx.send(e);
        self.ctx.request_repaint();
    }
}

/// Precision and stage release, as the app's settings hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    pub half_precision: bool,
    pub release_stages: bool,
}

impl Memory {
    fn apply(self, engine: &mut Engine) {
        let dtype = if self.half_precision { burn::tensor::DType::F16 } else { burn::tensor::DType::F32 };
        if engine.dtype != dtype {
            // Loaded networks are in the old dtype; they load again on next use. The caches
            // hold f32 results (networks return f32), so they stay valid.
            engine.unload();
            engine.dtype = dtype;
        }
        engine.release_stages = self.release_stages;
    }
}

/// What the worker keeps between jobs.
struct State {
    folder: Option<PathBuf>,
    device: DevicePref,
    memory: Memory,
    engine: Option<Engine>,
    /// Why there is no engine, for jobs that arrive anyway.
    missing: String,
}

impl State {
    /// An engine for `folder` on `device` with the current memory settings.
    fn engine_on(&self, folder: &Path, device: burn::tensor::Device) -> Result<Engine, String> {
        let mut engine = Engine::open(folder, device).map_err(|e| e.to_string())?;
        self.memory.apply(&mut engine);
        Ok(engine)
    }

    /// Opens `folder` on `device`, replacing the engine, and says so.
    fn open(&mut self, folder: &Path, device: DevicePref, out: &Outbox) {
        // Recipes record the folder: an absolute path still means something from elsewhere. A
        // repo id is not a path and stays as it is.
        let resolved = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
        let folder = resolved.as_path();
        self.folder = Some(folder.to_path_buf());
        self.device = device;
        self.engine = None;
        let result = choose(device).and_then(|chosen| Ok((self.engine_on(folder, chosen.device.clone())?, chosen)));
        match result {
            Ok((engine, chosen)) => {
                let (generate_off, vary_off) = (engine.folder.why_no_text_to_image(), engine.folder.why_no_image_operations());
                let problems = engine.folder.validate();
                let engine_ar_prior = engine.folder.has_ar_prior();
                let (full, half) =
                    (engine.memory_estimate_at(burn::tensor::DType::F32), engine.memory_estimate_at(burn::tensor::DType::F16));
                self.engine = Some(engine);
                out.send(Event::ModelReady {
                    folder: folder.to_path_buf(),
                    device: chosen.name,
                    is_gpu: chosen.is_gpu,
                    generate_off,
                    vary_off,
                    problems,
                    memory: [full, half],
                    ar_prior: engine_ar_prior,
                });
            }
            Err(message) => {
                self.missing = format!("no model is open ({message})");
                out.send(Event::ModelFailed { folder: folder.to_path_buf(), message });
            }
        }
    }

    /// After a panic the engine may hold half-updated state: drop it and open it again.
    fn reopen_quietly(&mut self) {
        self.engine = None;
        if let Some(folder) = self.folder.clone()
            && let Ok(chosen) = choose(self.device)
        {
            self.engine = self.engine_on(&folder, chosen.device).ok();
        }
    }
}

fn worker_loop(jobs: Receiver<Job>, out: Outbox) {
    let mut state = State {
        folder: None,
        device: DevicePref::Auto,
        memory: Memory::default(),
        engine: None,
        missing: "no model is open".into(),
    };
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Shutdown => break,
            Job::OpenModel { folder, device } => state.open(&folder, device, &out),
            Job::SetDevice(device) => match state.folder.clone() {
                Some(folder) => state.open(&folder, device, &out),
                None => state.device = device,
            },
            Job::SetMemory(memory) => {
                state.memory = memory;
                if let Some(engine) = state.engine.as_mut() {
                    memory.apply(engine);
                }
            }
            job => run_guarded(&mut state, job, &out),
        }
    }
}

/// Runs one operation with panics caught, and reports how it ended.
fn run_guarded(state: &mut State, job: Job, out: &Outbox) {
    let Some(ticket) = job.ticket().cloned() else { return };
    let id = ticket.id;
    if ticket.cancel.load(Ordering::Relaxed) {
        // Cancelled while still waiting in the channel.
        out.send(Event::Cancelled { id });
        return;
    }
    out.send(Event::Started { id });
    let started = Instant::now();
    let outcome = {
        let engine = state.engine.as_mut();
        let missing = state.missing.clone();
        catch_unwind(AssertUnwindSafe(|| match engine {
            Some(engine) => execute(engine, job, &ticket, out),
            None => Err(PipelineError::Input(missing)),
        }))
    };
    match outcome {
        Ok(Ok(pictures)) => out.send(Event::Finished { id, pictures, seconds: started.elapsed().as_secs_f32() }),
        Ok(Err(PipelineError::Cancelled)) => out.send(Event::Cancelled { id }),
        Ok(Err(e)) => out.send(Event::Failed { id, message: one_line(&e.to_string()) }),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            state.reopen_quietly();
            out.send(Event::Crashed {
                id,
                message: format!("internal error: {} (the engine was restarted)", one_line(&what)),
            });
        }
    }
}

/// The operation itself, with progress forwarded as events.
fn execute(engine: &mut Engine, job: Job, ticket: &Ticket, out: &Outbox) -> Result<Vec<Picture>, PipelineError> {
    let id = ticket.id;
    let mut sink = |p: Progress| match p {
        Progress::Step { stage, step, total, preview } => out.send(Event::Progress { id, stage, step, total, preview }),
        Progress::Note(text) => out.send(Event::Note { id, text }),
    };
    let mut ctl = Control::new(ticket.cancel.clone(), &mut sink);
    let generated = match job {
        Job::Run { request, .. } => {
            // Fitted (stages freed) or refused in one line before anything loads, rather than
            // killed part-way.
            if let Some(note) = engine.fit_memory()? {
                ctl.report(Progress::Note(note));
            }
            engine.run(&request, &mut ctl)?
        }
        Job::Panic { .. } => panic!("fault injected by a test"),
        Job::OpenModel { .. } | Job::SetDevice(_) | Job::SetMemory(_) | Job::Shutdown => return Ok(Vec::new()),
    };
    Ok(generated.pictures)
}

/// Banners are one line: the first line of a message, trimmed.
pub fn one_line(s: &str) -> String {
    let first = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if first.chars().count() > 300 { first.chars().take(300).collect::<String>() + "…" } else { first.to_string() }
}
