//! Why a conversion did not happen, naming the file and the tensor.
//!
//! Owns: [`ConvertError`]. Must not import: `plan`, `write`, `verify`,
//! `sharded` (the other files of convert).
//!
//! The failures every writer shares (the output exists, does not fit, does not read back, the
//! user cancelled) are [`WriteError`]s; the messages name no command-line flag: the CLI adds
//! its hints (`ckptscope::output::convert::error_text`), the window its own words.

use std::path::PathBuf;

use crate::error::Error;
use crate::pickle::policy::Verdict;
use crate::pickle::torch::UnsupportedTensor;
use crate::pipeline::WriteError;

/// Why a conversion did not happen. Whatever the reason, no output file is left behind.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input cannot be opened.
    #[error(transparent)]
    Open(#[from] Error),
    /// Writing the output failed, it did not read back, or the user cancelled.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The input's verdict is worse than what the user accepted.
    #[error(
        "{} is {verdict} ({summary}); converting never executes it, but confirm first",
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
    /// Nothing to export.
    #[error("{} holds no tensor that can be exported{hint}", path.display())]
    NoTensors {
        /// The input.
        path: PathBuf,
        /// Why, when known.
        hint: String,
    },
    /// Block-quantized tensors, and no dequantization asked for.
    #[error(
        "{} holds {quantized} ggml block-quantized tensors of its {tensors} ({}), which safetensors cannot hold: writing them means decoding their values into another dtype; nothing was written",
        path.display(),
        types.join(", ")
    )]
    Quantized {
        /// The input.
        path: PathBuf,
        /// How many tensors are block-quantized.
        quantized: usize,
        /// How many tensors it holds.
        tensors: usize,
        /// Their ggml types, sorted.
        types: Vec<String>,
    },
    /// Two tensors would get the same name.
    #[error(
        "two tensors would both be named `{0}` in the output (dotted paths collide); rename one in the source"
    )]
    NameClash(String),
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
    /// A tensor is a stride-0 expansion of a much smaller storage.
    #[error(
        "tensor `{name}` holds {logical} bytes of values but its storage is only {storage} bytes (a stride-0 expand, more than {factor}x); writing it would materialize every copy. Nothing was written"
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
    /// Some tensors cannot be read.
    #[error(
        "{} of {}'s tensors cannot be read ({}); nothing was written",
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
}

impl ConvertError {
    /// The user cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ConvertError::Write(WriteError::Cancelled))
    }
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
