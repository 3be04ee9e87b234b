//! Why an export did not happen, naming the file and the tensor.
//!
//! Owns: [`ExportError`]. Must not import: `plan`, `write`, `pickle`,
//! `sharded` (the other files of export).

use std::path::PathBuf;

use crate::dtype::DType;
use crate::error::Error;
use crate::pickle::policy::Verdict;

/// Why an export did not happen. Whatever the reason, no output file is left behind.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The input cannot be opened.
    #[error(transparent)]
    Open(#[from] Error),
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
    /// The output exists and `force` was not given.
    #[error("{} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    /// The output is the input.
    #[error("the output {} is the input file; choose another output", .0.display())]
    SameAsInput(PathBuf),
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
    /// Writing failed.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The system's answer.
        error: std::io::Error,
    },
    /// The input changed (or was cut short) while it was being exported.
    #[error("{} changed while it was being exported ({what}); nothing was written", path.display())]
    Changed {
        /// The input.
        path: PathBuf,
        /// What was seen.
        what: String,
    },
    /// The written file did not read back as the source.
    #[error(
        "verification failed: {}{}: {what}; the output was not kept",
        output.display(),
        tensor.as_ref().map(|t| format!(", tensor `{t}`")).unwrap_or_default()
    )]
    Mismatch {
        /// The file written.
        output: PathBuf,
        /// The tensor that differs, when one does.
        tensor: Option<String>,
        /// How it differs.
        what: String,
    },
    /// The written file could not be read back.
    #[error("verification failed: {error}; the output was not kept")]
    ReadBack {
        /// Why (names the file).
        error: Box<Error>,
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
    /// An invariant of the writer did not hold: a bug, reported rather than written.
    #[error(
        "internal error while writing {}: {what}; the output was not kept (please report this)",
        output.display()
    )]
    Internal {
        /// The file being written.
        output: PathBuf,
        /// What did not hold.
        what: String,
    },
    /// The user cancelled.
    #[error("cancelled; no output was written")]
    Cancelled,
    /// The output does not fit on its file system.
    #[error(
        "{} needs {need} bytes but its file system has {available} bytes free; nothing was written",
        path.display()
    )]
    NoSpace {
        /// The output.
        path: PathBuf,
        /// Bytes the output takes.
        need: u64,
        /// Bytes free for this user.
        available: u64,
    },
    /// Sizes add up past what can be counted.
    #[error("{}: {what} overflows 64 bits; the file is corrupt", path.display())]
    TooLarge {
        /// The input.
        path: PathBuf,
        /// Which sum.
        what: String,
    },
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
