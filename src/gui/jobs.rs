//! Background work for the window: every file access, scan, statistic, conversion and diff runs
//! here, never in `ui()`.
//!
//! A [`Job`] is a named thread with a [`Progress`] handle and a one-shot channel; the worker asks
//! egui to repaint when it is done, so an idle window uses no CPU. In tests the app runs jobs
//! inline (`sync`), so a kittest `run()` sees their results in the same frame.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use crate::progress::Progress;

/// A computation running on a worker thread.
pub struct Job<T> {
    /// What it does, for the progress line.
    pub label: String,
    /// Its progress and cancel flag.
    pub progress: Arc<Progress>,
    rx: Receiver<T>,
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` on a named thread (or runs it now when `sync`).
    pub fn spawn(
        ctx: &egui::Context,
        label: impl Into<String>,
        sync: bool,
        work: impl FnOnce(&Progress) -> T + Send + 'static,
    ) -> Job<T> {
        let label = label.into();
        let progress = Progress::new();
        let (tx, rx) = channel();
        if sync {
            let _ = tx.send(work(&progress));
        } else {
            let ctx = ctx.clone();
            let p = progress.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ckptscope: {label}"))
                .spawn(move || {
                    let _ = tx.send(work(&p));
                    ctx.request_repaint();
                });
            if let Err(e) = spawned {
                // No thread could be made: nothing will arrive; the job reports itself failed
                // through a closed channel.
                log_error(&format!("cannot start a worker for {label}: {e}"));
            }
        }
        Job {
            label,
            progress,
            rx,
        }
    }

    /// The result, once it is there. `Err(())` when the worker died without answering.
    pub fn poll(&self) -> Option<Result<T, ()>> {
        match self.rx.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(())),
        }
    }

    /// Asks the worker to stop.
    pub fn cancel(&self) {
        self.progress.cancel();
    }
}

fn log_error(message: &str) {
    eprintln!("ckptscope: {message}");
}

/// Polls an optional job: takes its result out and clears the slot when it is done.
pub fn take<T: Send + 'static>(slot: &mut Option<Job<T>>) -> Option<Result<T, ()>> {
    let result = slot.as_ref()?.poll()?;
    *slot = None;
    Some(result)
}
