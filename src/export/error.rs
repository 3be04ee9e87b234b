//! Why an export did not happen, naming the file and the tensor.
//!
//! Owns: [`ExportError`]. Must not import: `plan`, `write`, `pickle`,
//! `sharded` (the other files of export).
//!
//! The failures every writer shares are [`WriteError`]s, with no command-line flag in their
//! words: the CLI adds its hints (`ckptscope::output::export::error_text`).

use std::path::PathBuf;

use crate::dtype::DType;
use crate::error::Error;
use crate::pickle::policy::Verdict;
use crate::pipeline::WriteError;

/// Why an export did not happen. Whatever the reason, no output file is left behind.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The input cannot be opened.
    #[error(transparent)]
    Open(#[from] Error),
    /// Writing the output failed, it did not read back, or the user cancelled.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The input is not a safetensors file or sharded safetensors model.
    #[error(
        "{} is a {what}, not safetensors; `export --to pytorch` writes safetensors models as PyTorch checkpoints (use `convert` for the other way)",
        path.display()
    )]
    NotSafetensors {
        /// The input.
        path: PathBuf,
        /// What it is.
        what: String,
    },
    /// Some tensors have a dtype torch cannot hold.
    #[error(
        "{} has {} tensors whose dtype torch cannot hold ({}: {why}); nothing was written",
        path.display(),
        tensors.len(),
        list_dtypes(tensors)
    )]
    UnsupportedDtype {
        /// The input.
        path: PathBuf,
        /// The tensors and their dtypes.
        tensors: Vec<(String, DType)>,
        /// Why torch cannot hold each dtype met.
        why: String,
    },
    /// A tie the user asked for cannot be made.
    #[error("cannot tie `{alias}` to `{target}`: {reason}; nothing was written")]
    BadTie {
        /// The name that should view the other's storage.
        alias: String,
        /// The tensor whose storage it views.
        target: String,
        /// Why not.
        reason: String,
    },
    /// The input changed (or was cut short) while it was being exported.
    #[error("{} changed while it was being exported ({what}); nothing was written", path.display())]
    Changed {
        /// The input.
        path: PathBuf,
        /// What was seen.
        what: String,
    },
    /// The written file does not scan as safe or would not load with `weights_only=True`: a
    /// bug of the writer, reported rather than kept.
    #[error(
        "verification failed: {} scans as {verdict} ({what}); the output was not kept (please report this)",
        output.display()
    )]
    NotSafe {
        /// The file written.
        output: PathBuf,
        /// Its verdict.
        verdict: Verdict,
        /// The findings or the weights-only answer.
        what: String,
    },
}

impl ExportError {
    /// The user cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ExportError::Write(WriteError::Cancelled))
    }
}

fn list_dtypes(tensors: &[(String, DType)]) -> String {
    let mut text: Vec<String> = tensors
        .iter()
        .take(3)
        .map(|(name, dtype)| format!("`{name}` is {dtype}"))
        .collect();
    if tensors.len() > 3 {
        text.push(format!("and {} more", tensors.len() - 3));
    }
    text.join(", ")
}
