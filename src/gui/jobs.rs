//! Background work for the window: every file access, scan, statistic, conversion and diff runs
//! here, never in `ui()`.
//!
//! Owns the job machinery: a [`Job`] is a named thread with its own [`Progress`] (counters and
//! cancel flag) and a one-shot channel that carries `Result<T, JobError>`. Cancelling is typed: a
//! job whose flag was raised reports [`JobError::Cancelled`] whatever its worker returned, so
//! nobody matches error strings. A [`Slot`] holds at most one job of a kind and remembers how
//! the last one ended; cancelling detaches the job at once (its late result is dropped with the
//! channel), so the window never waits for a worker stuck on a hostile file. [`Jobs`] is the
//! app's registry (open, compare, convert, export, set-parent); a document keeps its statistics,
//! heatmap, values and lineage slots of the same type, the folder view its own, and the app
//! answers for every [`JobKind`].
//!
//! Must not import: `app`, `command`, `table`, `inspector`, `metadata`, `pickle`, `code`,
//! `lineage`, `start`, `package` (they all depend on it). Its results are core types.
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
    /// Reading the values grid of a tensor.
    Values,
    /// Comparing two checkpoints.
    Compare,
    /// Converting a pickle to safetensors.
    Convert,
    /// Exporting safetensors as a PyTorch checkpoint.
    Export,
    /// Recording a parent in a safetensors header.
    SetParent,
    /// Reading the family of a checkpoint.
    Lineage,
    /// Opening a model folder as a package.
    OpenFolder,
    /// Converting every pickle of a package.
    ConvertAll,
    /// Writing an inference package.
    Inference,
    /// Comparing consecutive checkpoints of a run.
    RunCompare,
    /// Reading an open package again (after its pickles were converted).
    Reread,
}

impl JobKind {
    /// The verb shown on its progress row and on its Cancel button.
    pub fn verb(self) -> &'static str {
        match self {
            JobKind::Open => "opening",
            JobKind::Stats => "statistics",
            JobKind::Heatmap => "heatmap",
            JobKind::Values => "reading values of",
            JobKind::Compare => "comparing",
            JobKind::Convert => "converting",
            JobKind::Export => "exporting",
            JobKind::SetParent => "setting the parent",
            JobKind::Lineage => "reading lineage",
            JobKind::OpenFolder => "opening folder",
            JobKind::ConvertAll => "converting all pickles in",
            JobKind::Inference => "writing",
            JobKind::RunCompare => "comparing the run of",
            JobKind::Reread => "reading again",
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
        if e.is_cancelled() {
            JobError::Cancelled
        } else {
            JobError::failed(e)
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

impl From<crate::export::ExportError> for JobError {
    fn from(e: crate::export::ExportError) -> JobError {
        if e.is_cancelled() {
            JobError::Cancelled
        } else {
            JobError::failed(e)
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
        Job::spawn_with(ctx, kind, label, sync, Progress::new(), work)
    }

    /// [`Job::spawn`] with a progress made by the caller (one it shares with the work's own
    /// finer-grained progress, as "convert all" does with its per-file one).
    pub fn spawn_with(
        ctx: &egui::Context,
        kind: JobKind,
        label: impl Into<String>,
        sync: bool,
        progress: Arc<Progress>,
        work: impl FnOnce(&Arc<Progress>) -> JobResult<T> + Send + 'static,
    ) -> Job<T> {
        let label = label.into();
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

/// How a job ended, without its value: what tests and the cancel notice look at.
pub type Ended = Result<(), JobError>;

/// At most one job of a kind, and how the last one ended.
pub struct Slot<T> {
    job: Option<Job<T>>,
    ended: Option<Ended>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            job: None,
            ended: None,
        }
    }
}

impl<T: Send + 'static> Slot<T> {
    /// Runs `job` here, cancelling (and detaching) the job it replaces: that one was superseded,
    /// not stopped by the user, so it leaves no outcome.
    pub fn start(&mut self, job: Job<T>) {
        if let Some(old) = self.job.replace(job) {
            old.cancel();
        }
    }

    /// The outcome of the job, once it is there; the slot is then free.
    pub fn take(&mut self) -> Option<JobResult<T>> {
        let result = self.job.as_ref()?.poll()?;
        self.job = None;
        self.ended = Some(result.as_ref().map(|_| ()).map_err(Clone::clone));
        Some(result)
    }

    /// Cancels the job and forgets it at once: the window is free again even if the worker is
    /// stuck, and its late result is dropped. Its status if there was one.
    pub fn cancel(&mut self) -> Option<JobStatus> {
        let job = self.job.take()?;
        job.cancel();
        self.ended = Some(Err(JobError::Cancelled));
        Some(job.status())
    }

    /// Cancels a job that is no longer wanted (its input changed) without recording an outcome.
    pub fn drop_job(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel();
        }
    }

    /// The running job.
    pub fn job(&self) -> Option<&Job<T>> {
        self.job.as_ref()
    }

    /// True while a job runs here.
    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// The row of the running job.
    pub fn status(&self) -> Option<JobStatus> {
        self.job.as_ref().map(Job::status)
    }

    /// The progress handle of the running job (tests watch it).
    pub fn progress(&self) -> Option<Arc<Progress>> {
        self.job.as_ref().map(|j| j.progress.clone())
    }

    /// How the last job here ended (a cancel counts at once).
    pub fn ended(&self) -> Option<&Ended> {
        self.ended.as_ref()
    }
}

/// What an open job gives: the file asked for and its checkpoint.
pub struct Opened {
    /// The file asked for.
    pub path: std::path::PathBuf,
    /// The checkpoint.
    pub ckpt: crate::format::Checkpoint,
}

/// What a compare job gives: both checkpoints and their comparison.
pub struct Compared {
    /// First checkpoint.
    pub a: Arc<crate::format::Checkpoint>,
    /// Second checkpoint.
    pub b: Arc<crate::format::Checkpoint>,
    /// The comparison.
    pub diff: crate::analysis::diff::Diff,
}

/// The app's long jobs, one slot per kind. Starting a kind cancels the one it replaces.
#[derive(Default)]
pub struct Jobs {
    /// Opening a file.
    pub open: Slot<Opened>,
    /// Comparing two files.
    pub compare: Slot<Compared>,
    /// Converting a pickle.
    pub convert: Slot<crate::convert::ConvertReport>,
    /// Exporting safetensors for PyTorch.
    pub export: Slot<crate::export::ExportReport>,
    /// Recording a parent for a file.
    pub set_parent: Slot<crate::lineage::SetParentReport>,
}

impl Jobs {
    /// Cancels the job of `kind`, if it is one of the app's and runs: its status if so.
    pub fn cancel(&mut self, kind: JobKind) -> Option<JobStatus> {
        match kind {
            JobKind::Open => self.open.cancel(),
            JobKind::Compare => self.compare.cancel(),
            JobKind::Convert => self.convert.cancel(),
            JobKind::Export => self.export.cancel(),
            JobKind::SetParent => self.set_parent.cancel(),
            _ => None,
        }
    }

    /// The running jobs, in a fixed order.
    pub fn running(&self) -> Vec<JobStatus> {
        [
            self.open.status(),
            self.compare.status(),
            self.convert.status(),
            self.export.status(),
            self.set_parent.status(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// True while any runs.
    pub fn busy(&self) -> bool {
        self.open.running()
            || self.compare.running()
            || self.convert.running()
            || self.export.running()
            || self.set_parent.running()
    }

    /// The progress handle of a running job of `kind`.
    pub fn progress(&self, kind: JobKind) -> Option<Arc<Progress>> {
        match kind {
            JobKind::Open => self.open.progress(),
            JobKind::Compare => self.compare.progress(),
            JobKind::Convert => self.convert.progress(),
            JobKind::Export => self.export.progress(),
            JobKind::SetParent => self.set_parent.progress(),
            _ => None,
        }
    }

    /// How the last job of `kind` ended.
    pub fn ended(&self, kind: JobKind) -> Option<&Ended> {
        match kind {
            JobKind::Open => self.open.ended(),
            JobKind::Compare => self.compare.ended(),
            JobKind::Convert => self.convert.ended(),
            JobKind::Export => self.export.ended(),
            JobKind::SetParent => self.set_parent.ended(),
            _ => None,
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
        jobs.set_parent
            .start(Job::spawn(&ctx, JobKind::SetParent, "x", true, |_| {
                Err(JobError::failed("no"))
            }));
        jobs.open
            .start(Job::spawn(&ctx, JobKind::Open, "y", true, |_| {
                Err(JobError::failed("no"))
            }));
        let open = jobs.progress(JobKind::Open).unwrap();
        assert!(jobs.cancel(JobKind::SetParent).is_some());
        assert!(jobs.cancel(JobKind::SetParent).is_none(), "already gone");
        assert!(!jobs.set_parent.running());
        assert_eq!(
            jobs.ended(JobKind::SetParent),
            Some(&Err(JobError::Cancelled))
        );
        assert!(!open.is_cancelled());
        assert_eq!(jobs.ended(JobKind::Open), None, "still running");
        assert_eq!(jobs.running().len(), 1);
    }

    #[test]
    fn a_slot_remembers_how_its_last_job_ended_and_a_superseded_one_leaves_no_outcome() {
        let ctx = egui::Context::default();
        let mut slot: Slot<u32> = Slot::default();
        slot.start(Job::spawn(&ctx, JobKind::Stats, "a", true, |_| Ok(1)));
        assert_eq!(slot.ended(), None, "not collected yet");
        assert_eq!(slot.take(), Some(Ok(1)));
        assert_eq!(slot.ended(), Some(&Ok(())));
        slot.start(Job::spawn(&ctx, JobKind::Stats, "b", true, |_| Ok(2)));
        slot.drop_job();
        assert!(!slot.running());
        assert_eq!(slot.ended(), Some(&Ok(())), "dropping is not cancelling");
        slot.start(Job::spawn(&ctx, JobKind::Stats, "c", true, |_| Ok(3)));
        let status = slot.cancel().expect("it ran");
        assert_eq!(status.text(), "statistics c");
        assert_eq!(slot.ended(), Some(&Err(JobError::Cancelled)));
        assert_eq!(slot.take(), None, "its answer is gone with it");
    }

    #[test]
    fn core_cancellations_map_to_the_cancelled_variant() {
        let e = crate::Error::Cancelled {
            path: "a.pt".into(),
        };
        assert_eq!(JobError::from(e), JobError::Cancelled);
        assert_eq!(
            JobError::from(crate::convert::ConvertError::from(
                crate::pipeline::WriteError::Cancelled
            )),
            JobError::Cancelled
        );
        assert_eq!(
            JobError::from(crate::export::ExportError::from(
                crate::pipeline::WriteError::Cancelled
            )),
            JobError::Cancelled
        );
    }
}
