//! Background work for the window: every file access, scan, statistic, conversion and diff runs
//! here, never in `ui()`.
//!
//! A [`Job`] is a named thread with its own [`Progress`] (counters and cancel flag) and a
//! one-shot channel that carries `Result<T, JobError>`. Cancelling is typed: a job whose flag was
//! raised reports [`JobError::Cancelled`] whatever its worker returned, so nobody matches error
//! strings. The app's long jobs (open, compare, convert, set-parent) live in [`Jobs`], one slot
//! per [`JobKind`]; cancelling one detaches it at once (its late result is dropped with the
//! channel), so the window never waits for a worker stuck on a hostile file. The views keep
//! their own jobs (statistics, heatmaps, lineage) with the same type.
//!
//! In tests the app may run jobs inline (`sync`), so a kittest `run()` sees their results in the
//! same frame; tests of cancelling use real threads.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use crate::progress::Progress;

/// What a job does; the key of the app's registry and the name on its progress row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// Opening (and scanning) a file.
    Open,
    /// Statistics of a tensor or a pair of tensors.
    Stats,
    /// A heatmap.
    Heatmap,
    /// Comparing two checkpoints.
    Compare,
    /// Converting a pickle to safetensors.
    Convert,
    /// Recording a parent in a safetensors header.
    SetParent,
    /// Reading the family of a checkpoint.
    Lineage,
}

impl JobKind {
    /// The verb shown on its progress row and on its Cancel button.
    pub fn verb(self) -> &'static str {
        match self {
            JobKind::Open => "opening",
            JobKind::Stats => "statistics",
            JobKind::Heatmap => "heatmap",
            JobKind::Compare => "comparing",
            JobKind::Convert => "converting",
            JobKind::SetParent => "setting the parent",
            JobKind::Lineage => "reading lineage",
        }
    }
}

/// Why a job gave no result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The user cancelled it.
    #[error("cancelled")]
    Cancelled,
    /// The work failed; the message is the core's error, for the user.
    #[error("{0}")]
    Failed(String),
    /// The worker stopped without answering (it panicked or could not be started).
    #[error("{0} stopped unexpectedly")]
    Lost(&'static str),
}

impl JobError {
    /// A failure from any displayable error.
    pub fn failed(e: impl std::fmt::Display) -> JobError {
        JobError::Failed(e.to_string())
    }
}

impl From<crate::Error> for JobError {
    fn from(e: crate::Error) -> JobError {
        match e {
            crate::Error::Cancelled { .. } => JobError::Cancelled,
            e => JobError::failed(e),
        }
    }
}

impl From<crate::convert::ConvertError> for JobError {
    fn from(e: crate::convert::ConvertError) -> JobError {
        match e {
            crate::convert::ConvertError::Cancelled => JobError::Cancelled,
            e => JobError::failed(e),
        }
    }
}

impl From<crate::analysis::StatsError> for JobError {
    fn from(e: crate::analysis::StatsError) -> JobError {
        match e {
            crate::analysis::StatsError::Cancelled => JobError::Cancelled,
            e => JobError::failed(e),
        }
    }
}

/// What a job gives.
pub type JobResult<T> = Result<T, JobError>;

/// A computation running on a worker thread.
pub struct Job<T> {
    /// What it does.
    pub kind: JobKind,
    /// What it works on, for the progress row ("model.pt").
    pub label: String,
    /// Its progress and cancel flag.
    pub progress: Arc<Progress>,
    rx: Receiver<JobResult<T>>,
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` on a named thread (or runs it now when `sync`).
    pub fn spawn(
        ctx: &egui::Context,
        kind: JobKind,
        label: impl Into<String>,
        sync: bool,
        work: impl FnOnce(&Arc<Progress>) -> JobResult<T> + Send + 'static,
    ) -> Job<T> {
        let label = label.into();
        let progress = Progress::new();
        let (tx, rx) = channel();
        if sync {
            let _ = tx.send(work(&progress));
        } else {
            let ctx = ctx.clone();
            let p = progress.clone();
            // A failed spawn drops `tx`: the job then reports itself lost. The name holds no
            // text from the file: a tensor name with a NUL byte would make the spawn panic.
            let _ = std::thread::Builder::new()
                .name(format!("ckptscope: {}", kind.verb()))
                .spawn(move || {
                    // Nobody listens once the job was cancelled and detached; that is fine.
                    let _ = tx.send(work(&p));
                    ctx.request_repaint();
                });
        }
        Job {
            kind,
            label,
            progress,
            rx,
        }
    }

    /// The outcome, once it is there. A job whose cancel flag was raised is
    /// [`JobError::Cancelled`], whatever its worker answered.
    pub fn poll(&self) -> Option<JobResult<T>> {
        let outcome = match self.rx.try_recv() {
            Ok(v) => v,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => Err(JobError::Lost(self.kind.verb())),
        };
        if self.progress.is_cancelled() {
            return Some(Err(JobError::Cancelled));
        }
        Some(outcome)
    }

    /// Asks the worker to stop.
    pub fn cancel(&self) {
        self.progress.cancel();
    }

    /// The state of its progress row.
    pub fn status(&self) -> JobStatus {
        JobStatus {
            kind: self.kind,
            label: self.label.clone(),
            done: self.progress.done(),
            total: self.progress.total(),
        }
    }
}

/// Polls an optional job: takes its outcome out and clears the slot when it is done.
pub fn take<T: Send + 'static>(slot: &mut Option<Job<T>>) -> Option<JobResult<T>> {
    let result = slot.as_ref()?.poll()?;
    *slot = None;
    Some(result)
}

/// A running job as its progress row shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobStatus {
    /// What it does.
    pub kind: JobKind,
    /// What it works on.
    pub label: String,
    /// Units done.
    pub done: u64,
    /// Units to do (0: unknown, a spinner is shown).
    pub total: u64,
}

impl JobStatus {
    /// "opening model.pt".
    pub fn text(&self) -> String {
        if self.label.is_empty() {
            self.kind.verb().to_string()
        } else {
            format!("{} {}", self.kind.verb(), self.label)
        }
    }

    /// Fraction done, when the total is known.
    pub fn fraction(&self) -> Option<f32> {
        (self.total > 0).then(|| (self.done as f64 / self.total as f64).min(1.0) as f32)
    }
}

/// What an open job gives: the file asked for and its checkpoint.
pub struct Opened {
    /// The file asked for.
    pub path: std::path::PathBuf,
    /// The checkpoint.
    pub ckpt: crate::format::Checkpoint,
}

/// The app's long jobs, one slot per kind. Starting a kind cancels the one it replaces.
#[derive(Default)]
pub struct Jobs {
    /// Opening a file.
    pub open: Option<Job<Opened>>,
    /// Comparing two files.
    pub compare: Option<Job<crate::gui::compare::CompareView>>,
    /// Converting the open pickle.
    pub convert: Option<Job<crate::convert::ConvertReport>>,
    /// Recording a parent for the open file.
    pub set_parent: Option<Job<crate::lineage::SetParentReport>>,
}

impl Jobs {
    /// Puts `job` in `slot`, cancelling (and detaching) the job it replaces.
    pub fn start<T: Send + 'static>(slot: &mut Option<Job<T>>, job: Job<T>) {
        if let Some(old) = slot.replace(job) {
            old.cancel();
        }
    }

    /// Cancels the job of `kind`, if it is one of the app's, and forgets it at once: the window
    /// is free again even if the worker is stuck, and its late result is dropped. True if there
    /// was one.
    pub fn cancel(&mut self, kind: JobKind) -> bool {
        fn detach<T>(slot: &mut Option<Job<T>>) -> bool {
            slot.take().map(|j| j.progress.cancel()).is_some()
        }
        match kind {
            JobKind::Open => detach(&mut self.open),
            JobKind::Compare => detach(&mut self.compare),
            JobKind::Convert => detach(&mut self.convert),
            JobKind::SetParent => detach(&mut self.set_parent),
            JobKind::Stats | JobKind::Heatmap | JobKind::Lineage => false,
        }
    }

    /// The running jobs, in a fixed order.
    pub fn running(&self) -> Vec<JobStatus> {
        let mut v = Vec::new();
        if let Some(j) = &self.open {
            v.push(j.status());
        }
        if let Some(j) = &self.compare {
            v.push(j.status());
        }
        if let Some(j) = &self.convert {
            v.push(j.status());
        }
        if let Some(j) = &self.set_parent {
            v.push(j.status());
        }
        v
    }

    /// True while any runs.
    pub fn busy(&self) -> bool {
        self.open.is_some()
            || self.compare.is_some()
            || self.convert.is_some()
            || self.set_parent.is_some()
    }

    /// The progress handle of a running job of `kind` (tests watch it).
    pub fn progress(&self, kind: JobKind) -> Option<Arc<Progress>> {
        match kind {
            JobKind::Open => self.open.as_ref().map(|j| j.progress.clone()),
            JobKind::Compare => self.compare.as_ref().map(|j| j.progress.clone()),
            JobKind::Convert => self.convert.as_ref().map(|j| j.progress.clone()),
            JobKind::SetParent => self.set_parent.as_ref().map(|j| j.progress.clone()),
            JobKind::Stats | JobKind::Heatmap | JobKind::Lineage => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_job_reports_cancelled_whatever_its_worker_said() {
        let ctx = egui::Context::default();
        let (go, wait) = channel::<()>();
        let job: Job<u32> = Job::spawn(&ctx, JobKind::Stats, "", false, move |_| {
            let _ = wait.recv();
            Ok(7)
        });
        assert!(job.poll().is_none());
        job.cancel();
        go.send(()).unwrap();
        let outcome = loop {
            if let Some(o) = job.poll() {
                break o;
            }
            std::thread::yield_now();
        };
        assert_eq!(outcome, Err(JobError::Cancelled));
    }

    #[test]
    fn cancelling_one_kind_leaves_the_others_running() {
        let ctx = egui::Context::default();
        let mut jobs = Jobs::default();
        Jobs::start(
            &mut jobs.set_parent,
            Job::spawn(&ctx, JobKind::SetParent, "x", true, |_| {
                Err(JobError::failed("no"))
            }),
        );
        Jobs::start(
            &mut jobs.open,
            Job::spawn(&ctx, JobKind::Open, "y", true, |_| {
                Err(JobError::failed("no"))
            }),
        );
        let open = jobs.progress(JobKind::Open).unwrap();
        assert!(jobs.cancel(JobKind::SetParent));
        assert!(!jobs.cancel(JobKind::SetParent), "already gone");
        assert!(jobs.set_parent.is_none());
        assert!(!open.is_cancelled());
        assert_eq!(jobs.running().len(), 1);
    }

    #[test]
    fn core_cancellations_map_to_the_cancelled_variant() {
        let e = crate::Error::Cancelled {
            path: "a.pt".into(),
        };
        assert_eq!(JobError::from(e), JobError::Cancelled);
        assert_eq!(
            JobError::from(crate::convert::ConvertError::Cancelled),
            JobError::Cancelled
        );
    }
}
