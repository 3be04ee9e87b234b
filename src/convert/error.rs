//! Why a conversion did not happen, naming the file and the tensor.
//!
//! Owns: [`ConvertError`]. Must not import: `plan`, `write`, `verify`,
//! `sharded` (the other files of convert).

use std::path::PathBuf;

use crate::error::Error;
use crate::pickle::policy::Verdict;
use crate::pickle::torch::UnsupportedTensor;

/// Why a conversion did not happen. Whatever the reason, no output file is left behind.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input cannot be opened.
    #[error(transparent)]
    Open(#[from] Error),
    /// The input's verdict is worse than what the user accepted.
    #[error(
        "{} is {verdict} ({summary}); converting never executes it, but confirm first: pass --allow-{verdict} to convert it anyway",
        path.display()
    )]
    Refused {
        /// The input.
        path: PathBuf,
        /// Its verdict.
        verdict: Verdict,
        /// Its worst findings.
        summary: String,
    },
    /// The input is already safetensors.
    #[error("{} is already a safetensors file; there is nothing to convert", .0.display())]
    AlreadySafetensors(PathBuf),
    /// The output exists and `force` was not given.
    #[error("{} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    /// The output is the input.
    #[error("the output {} is the input file; choose another output", .0.display())]
    SameAsInput(PathBuf),
    /// Nothing to export.
    #[error("{} holds no tensor that can be exported{hint}", path.display())]
    NoTensors {
        /// The input.
        path: PathBuf,
        /// Why, when known.
        hint: String,
    },
    /// Two tensors would get the same name.
    #[error(
        "two tensors would both be named `{0}` in the output (dotted paths collide); rename one in the source or use --all"
    )]
    NameClash(String),
    /// Writing failed.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The system's answer.
        error: std::io::Error,
    },
    /// A tensor's bytes could not be read from the input while writing.
    #[error("cannot read tensor `{tensor}` from {}: {reason}; the output was not kept", path.display())]
    Gather {
        /// The input.
        path: PathBuf,
        /// The tensor (its output name).
        tensor: String,
        /// What went wrong.
        reason: String,
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
    /// A tensor is a stride-0 expansion of a much smaller storage.
    #[error(
        "tensor `{name}` holds {logical} bytes of values but its storage is only {storage} bytes (a stride-0 expand, more than {factor}x); writing it would materialize every copy. Nothing was written; pass --materialize-expanded to write it anyway, or raise the factor with --limit expansion=N"
    )]
    Expanded {
        /// The tensor.
        name: String,
        /// Bytes its values take once packed.
        logical: u64,
        /// Bytes of the storage it views.
        storage: u64,
        /// The limit ([`Limits::max_expansion`]).
        factor: u64,
    },
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
    /// Some tensors cannot be read.
    #[error(
        "{} of {}'s tensors cannot be read ({}); nothing was written. Pass --skip-unreadable to convert the others",
        tensors.len(),
        path.display(),
        list_unreadable(tensors)
    )]
    Unreadable {
        /// The input.
        path: PathBuf,
        /// The tensors and why.
        tensors: Vec<UnsupportedTensor>,
    },
    /// An archive member does not match its recorded CRC-32.
    #[error(
        "{} is damaged: {mismatch} (tensors {}); nothing was written",
        path.display(),
        tensors.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
    )]
    Damaged {
        /// The input.
        path: PathBuf,
        /// Which member and both checksums.
        mismatch: crate::archive::zip::CrcMismatch,
        /// The tensors read from it.
        tensors: Vec<String>,
    },
    /// Sizes in the file add up past what can be counted.
    #[error("{} : {what} overflows 64 bits; the file is corrupt", path.display())]
    TooLarge {
        /// The input.
        path: PathBuf,
        /// Which sum.
        what: String,
    },
}

fn list_unreadable(tensors: &[UnsupportedTensor]) -> String {
    let mut text: Vec<String> = tensors
        .iter()
        .take(3)
        .map(|t| format!("`{}`: {}", t.name, t.reason))
        .collect();
    if tensors.len() > 3 {
        text.push(format!("and {} more", tensors.len() - 3));
    }
    text.join("; ")
}
