//! Progress and cancellation shared between a worker and whoever watches it (the GUI, a CLI
//! progress line): counters of work done and to do, and a flag the worker polls between blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Work done, work to do, and a cancel flag.
#[derive(Debug, Default)]
pub struct Progress {
    cancel: AtomicBool,
    done: AtomicU64,
    total: AtomicU64,
    planned: AtomicU64,
}

impl Progress {
    /// A fresh handle.
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    /// Asks the worker to stop at its next check.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Fraction done, 0 to 1.
    pub fn fraction(&self) -> f32 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        (self.done() as f64 / total as f64).min(1.0) as f32
    }

    /// Units done.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Units to do: what the workers added so far, or what was planned when that is more.
    pub fn total(&self) -> u64 {
        self.total
            .load(Ordering::Relaxed)
            .max(self.planned.load(Ordering::Relaxed))
    }

    /// Announces `n` units of work before the workers that will do them start (and add them
    /// with [`Progress::add_total`] themselves): a batch of tasks then shows one fraction over
    /// all of them instead of one that jumps back as each task begins.
    pub fn plan(&self, n: u64) {
        self.planned.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds to the work to do.
    pub fn add_total(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds to the work done.
    pub fn add_done(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}
