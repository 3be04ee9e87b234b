//! What every format's reader implements: open a file into a [`Checkpoint`] (whose
//! [`Checkpoint::tensor_bytes`] reads any tensor), and judge it for `scan`.
//!
//! The format registry (`format/registry/`) holds one reader per format it reads; `open_with` and
//! `scan` dispatch through it, so a new format is its folder, its reader and one table entry.
//! A reader judges only what it understands whole: anything else is an error (not scanned),
//! never `safe`.

use std::path::Path;

use super::{Checkpoint, Format, MappedFile, OpenOptions};
use crate::error::Error;
use crate::limits::Limits;
use crate::pickle::StreamReport;
use crate::pickle::policy::{Finding, Policy, Verdict};
use crate::progress::Progress;

/// A file to judge: its path, its bytes (usually a memory map) and the format it was
/// identified as.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// The file (for a zip member, the archive's path).
    pub path: &'a Path,
    /// Its bytes.
    pub bytes: &'a [u8],
    /// Its length on disk (the bytes' length but for a prefix read).
    pub file_len: u64,
    /// What it was identified as.
    pub format: Format,
    /// How pickles are judged.
    pub policy: &'a Policy,
    /// Bounds on what the file may make ckptscope allocate.
    pub limits: &'a Limits,
}

/// A reader's judgement of one file: what `scan` reports.
#[derive(Clone, Debug)]
pub struct Judgement {
    /// `safe`, `suspicious` or `dangerous`.
    pub verdict: Verdict,
    /// Why, worst first.
    pub findings: Vec<Finding>,
    /// The pickle streams that were run.
    pub streams: Vec<StreamReport>,
    /// Whether `torch.load(weights_only=True)` loads it (pickle-based files only).
    pub weights_only: Option<crate::pickle::compat::WeightsOnly>,
}

impl Judgement {
    /// A judgement from findings alone (no pickle was run).
    pub fn of(findings: Vec<Finding>) -> Self {
        Judgement {
            verdict: Verdict::of(&findings),
            findings,
            streams: Vec::new(),
            weights_only: None,
        }
    }
}

/// A format ckptscope reads.
pub trait Reader: Sync {
    /// Opens the mapped file, identified as `format`, listing its tensors without reading them.
    fn open(
        &self,
        mapped: MappedFile,
        format: Format,
        options: &OpenOptions,
        progress: Option<&Progress>,
    ) -> Result<Checkpoint, Error>;

    /// Judges the file for `scan`, reading only what the judgement needs. `Err` says why it
    /// could not be judged (it is then not scanned, never safe).
    fn judge(&self, input: &Input<'_>) -> Result<Judgement, String>;
}
