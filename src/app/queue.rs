//! The job queue, kept on the UI side so it can be reordered and edited while the worker is
//! busy. The worker gets one job at a time: the live frame request (a θ slider) first, then
//! the queue in order.

use eframe::egui;
use std::collections::VecDeque;
use std::time::Instant;

use super::worker::{Job, JobId, Ticket};
use crate::recipe::Operation;

/// Where a job's pictures go when it finishes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Origin {
    /// Saved to the gallery (text → image, variations).
    Gallery,
    /// The frame of an interpolation or text diff at θ; drafts are shown, not kept.
    Frame { theta: f32, draft: bool },
    /// One frame of a rendered filmstrip.
    Strip { theta: f32 },
}

pub struct Pending {
    pub ticket: Ticket,
    /// What the queue list shows.
    pub label: String,
    pub job: Job,
    /// The recipe of its pictures.
    pub op: Operation,
    pub origin: Origin,
}

pub struct Running {
    pub ticket: Ticket,
    pub label: String,
    pub op: Operation,
    pub origin: Origin,
    pub since: Instant,
}

#[derive(Default)]
pub struct Queue {
    pub pending: VecDeque<Pending>,
    /// The latest slider request; a newer one replaces it (latest wins).
    pub live: Option<Pending>,
    pub running: Option<Running>,
    next_id: JobId,
}

impl Queue {
    pub fn ticket(&mut self) -> Ticket {
        self.next_id += 1;
        Ticket::new(self.next_id)
    }

    pub fn push(&mut self, p: Pending) {
        self.pending.push_back(p);
    }

    pub fn set_live(&mut self, p: Pending) {
        self.live = Some(p);
    }

    /// The next job to hand to the worker, if the worker is free.
    pub fn take_next(&mut self) -> Option<Pending> {
        if self.running.is_some() {
            return None;
        }
        self.live.take().or_else(|| self.pending.pop_front())
    }

    pub fn start(&mut self, p: &Pending) {
        self.running = Some(Running {
            ticket: p.ticket.clone(),
            label: p.label.clone(),
            op: p.op.clone(),
            origin: p.origin,
            since: Instant::now(),
        });
    }

    /// Ends the running job if it is `id`, returning it.
    pub fn finish(&mut self, id: JobId) -> Option<Running> {
        if self.running.as_ref().is_some_and(|r| r.ticket.id == id) { self.running.take() } else { None }
    }

    pub fn is_running(&self, id: JobId) -> bool {
        self.running.as_ref().is_some_and(|r| r.ticket.id == id)
    }

    pub fn cancel_running(&self) -> bool {
        match &self.running {
            Some(r) => {
                r.ticket.cancel();
                true
            }
            None => false,
        }
    }

    pub fn move_up(&mut self, i: usize) {
        if i > 0 && i < self.pending.len() {
            self.pending.swap(i, i - 1);
        }
    }

    pub fn move_down(&mut self, i: usize) {
        if i + 1 < self.pending.len() {
            self.pending.swap(i, i + 1);
        }
    }

    pub fn remove(&mut self, i: usize) {
        self.pending.remove(i);
    }

    pub fn clear(&mut self) {
        self.pending.clear();
        self.live = None;
    }

    pub fn busy(&self) -> bool {
        self.running.is_some() || self.live.is_some() || !self.pending.is_empty()
    }

    /// The running job is a draft frame (a newer request may cancel it).
    pub fn running_is_draft(&self) -> bool {
        matches!(self.running.as_ref().map(|r| r.origin), Some(Origin::Frame { draft: true, .. }))
    }
}

/// The queue list in the side panel: the running job, then the waiting jobs with move up /
/// move down / remove. (Cancel sits next to the progress bar.)
pub fn show(ui: &mut egui::Ui, queue: &mut Queue) {
    match &queue.running {
        Some(r) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Running: {}", r.label));
            });
        }
        None => {
            ui.weak("Idle");
        }
    }
    if queue.pending.is_empty() {
        return;
    }
    ui.label(format!("Waiting ({}):", queue.pending.len()));
    let n = queue.pending.len();
    let mut op: Option<(usize, i8)> = None;
    for (i, p) in queue.pending.iter().enumerate() {
        ui.horizontal(|ui| {
            if ui.add_enabled(i > 0, egui::Button::new("Earlier")).on_hover_text("Run earlier").clicked() {
                op = Some((i, -1));
            }
            if ui.add_enabled(i + 1 < n, egui::Button::new("Later")).on_hover_text("Run later").clicked() {
                op = Some((i, 1));
            }
            if ui.button("Remove").on_hover_text("Remove from the queue").clicked() {
                op = Some((i, 0));
            }
            ui.label(format!("{}. {}", i + 1, p.label));
        });
    }
    match op {
        Some((i, -1)) => queue.move_up(i),
        Some((i, 1)) => queue.move_down(i),
        Some((i, _)) => queue.remove(i),
        None => {}
    }
    if ui.button("Clear queue").clicked() {
        queue.clear();
    }
}
