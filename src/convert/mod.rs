//! Pickle checkpoints to safetensors: streamed, verified, atomic, and never executed. The
//! writing itself is [`crate::pipeline`]'s, shared with `export` and the inference package.
//!
//! The tensors come from the safe pickle engine as strided views of their storages; each is
//! packed row-major and little-endian by [`crate::format::gather`] straight from the input's
//! memory map into a temporary file beside the output, in the order the `safetensors` crate
//! writes them (alignment first, then name). The header is written first with a fixed-length
//! placeholder for the source's SHA-256, which a second thread computes while the data is
//! written; the real header then replaces it. The file is synced, reopened and compared byte for
//! byte with the source, and only then linked in as the output ([`crate::fsutil::AtomicFile`]:
//! an unnamed temporary file, so even a killed conversion leaves no output, or the previous one,
//! and never a partial file). Memory stays at a few buffers whatever the model's size.
//!
//! Nothing damaged is written: the hashing pass also computes the CRC-32 of every archive member
//! a tensor is copied from and compares it with the archive's record, and a tensor whose bytes
//! cannot be read (a file cut short, a missing record) stops the conversion unless the user asks
//! to skip such tensors, in which case the output's metadata and the report name them. A
//! stride-0 expansion that would write far more than the file holds is refused unless asked
//! for, and the output's file system must have room for the whole output before writing starts.
//!
//! Owns: conversion to safetensors. Must not import: `scan`, `output`, `gui`.

mod error;
mod plan;
mod sharded;
mod source;
mod verify;
mod write;

use std::path::{Path, PathBuf};

use crate::dtype::DType;
use crate::format::{Checkpoint, Format, OpenOptions, PickleOptions};
use crate::limits::Limits;
use crate::pickle::policy::{Policy, Verdict};
use crate::pickle::torch::UnsupportedTensor;
use crate::pipeline::WriteError;
use crate::progress::Progress;

pub use error::ConvertError;
use plan::plan;
use sharded::convert_sharded;
pub use sharded::is_sharded_pickle_index;
use write::write;

/// Keys of a checkpoint's root that hold the model weights, in the order they are tried.
pub const WEIGHT_KEYS: [&str; 5] = ["state_dict", "model_state_dict", "model", "module", "state"];

/// How to convert.
#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// Output file; default: [`default_output`].
    pub output: Option<PathBuf>,
    /// Replace an existing output.
    pub force: bool,
    /// Export every tensor (optimizer state included) under its dotted path.
    pub all: bool,
    /// Highest verdict accepted (default: safe only).
    pub accept: Option<Verdict>,
    /// Allowlist additions.
    pub policy: Policy,
    /// Reading limits.
    pub limits: Limits,
    /// Write tensors that are stride-0 expansions of a much smaller storage (more than
    /// [`Limits::max_expansion`] times its bytes) as their full, materialized values.
    pub materialize_expanded: bool,
    /// Convert the other tensors when some cannot be read (a truncated file, a missing or
    /// damaged record); the output's metadata (`ckptscope.skipped`) and the report list them.
    pub skip_unreadable: bool,
    /// Where to remember the input's hash, so lineage links the output back to it without
    /// reading it again (default: nowhere).
    pub cache: crate::hash::CacheDir,
    /// Write the block-quantized tensors of a GGUF file as their decoded values in this dtype
    /// (F32, F16 or BF16); without it such a file is refused. The choice and each tensor's
    /// ggml type are recorded in the output's metadata.
    pub dequantize: Option<DType>,
    /// Test hook: fail with an I/O error after writing this many data bytes.
    #[doc(hidden)]
    pub fail_after: Option<u64>,
}

/// What a conversion did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConvertReport {
    /// The pickle file.
    pub input: PathBuf,
    /// The safetensors file written (the index file for sharded models).
    pub output: PathBuf,
    /// The input's scan verdict.
    pub verdict: Verdict,
    /// The top-level entry whose tensors were exported (`state_dict`), if one was: it is a
    /// nested mapping of tensors, and its key is taken off their names.
    pub exported: Option<String>,
    /// Tensors of the file that are not under that entry (optimizer state...) and were left
    /// out; `--all` keeps them.
    pub left_out: Vec<String>,
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of tensor data written.
    pub bytes: u64,
    /// Exact aliases stored once: `(dropped name, kept name)`.
    pub aliases: Vec<(String, String)>,
    /// Tensors that could not be exported, and why (only with
    /// [`ConvertOptions::skip_unreadable`]: otherwise any such tensor stops the conversion).
    pub skipped: Vec<UnsupportedTensor>,
    /// SHA-256 of the input file.
    pub source_sha256: String,
    /// Shard files written, for sharded models.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<PathBuf>,
    /// Every tensor was read back from the output and matched the source.
    pub verified: bool,
}

impl ConvertReport {
    /// Every file the conversion wrote: the output and, for a sharded model, its shards (what
    /// an Undo removes).
    pub fn written(&self) -> Vec<PathBuf> {
        std::iter::once(self.output.clone())
            .chain(self.shards.iter().cloned())
            .collect()
    }
}

/// `IN` with its extension replaced by `.safetensors` (`pytorch_model.bin` becomes
/// `model.safetensors`, the name transformers looks for; `pytorch_model.bin.index.json` becomes
/// `model.safetensors.index.json`).
pub fn default_output(input: &Path) -> PathBuf {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = input.parent().unwrap_or(Path::new(""));
    if name.ends_with(".bin.index.json") {
        let stem = name.trim_end_matches(".bin.index.json");
        let stem = if stem == "pytorch_model" {
            "model"
        } else {
            stem
        };
        return folder.join(format!("{stem}.safetensors.index.json"));
    }
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match stem.as_str() {
        "pytorch_model" => "model".to_string(),
        s if s.starts_with("pytorch_model-") => s.replacen("pytorch_model-", "model-", 1),
        s => s.to_string(),
    };
    folder.join(format!("{stem}.safetensors"))
}

/// Converts `input` as `options` say, reporting progress (bytes written, then bytes verified)
/// and stopping when it is cancelled.
pub fn convert(
    input: &Path,
    options: &ConvertOptions,
    progress: &Progress,
) -> Result<ConvertReport, ConvertError> {
    if is_sharded_pickle_index(input) {
        return convert_sharded(input, options, progress);
    }
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| default_output(input));
    // Opening reads headers and the pickle only; it says what the input is before anything else.
    let (ckpt, verdict) = open_input(input, options, progress)?;
    check_output(input, &output, options.force)?;
    let plan = plan(&ckpt, verdict, options)?;
    write(&ckpt, &plan, &output, options, progress)
}

fn open_input(
    input: &Path,
    options: &ConvertOptions,
    progress: &Progress,
) -> Result<(Checkpoint, Verdict), ConvertError> {
    let accept = options.accept.unwrap_or(Verdict::Safe);
    let open = OpenOptions {
        limits: options.limits.clone(),
        pickle: PickleOptions {
            policy: options.policy.clone(),
            trust: Some(accept),
        },
        progress: None,
    };
    let ckpt = match crate::format::open_watched(input, &open, Some(progress)) {
        Err(crate::Error::Cancelled { .. }) => return Err(WriteError::Cancelled.into()),
        other => other?,
    };
    let (verdict, read_verdict, summary) = match &ckpt.pickle {
        _ if matches!(
            ckpt.format,
            Format::Safetensors | Format::SafetensorsSharded
        ) =>
        {
            return Err(ConvertError::AlreadySafetensors(input.to_path_buf()));
        }
        Some(report) => {
            let summary = report
                .findings
                .iter()
                .filter(|f| f.risk > crate::pickle::policy::Risk::Info)
                .take(3)
                .map(|f| f.global.clone().unwrap_or_else(|| f.reason.clone()))
                .collect::<Vec<_>>()
                .join(", ");
            (report.verdict, report.read_verdict(), summary)
        }
        // Every other reader: the tensors it lists, judged by its own findings.
        None if !ckpt.tensors.is_empty() || !source::unreadable(&ckpt).is_empty() => {
            let (verdict, summary) = source::verdict(&ckpt);
            (verdict, verdict, summary)
        }
        None => {
            return Err(ConvertError::NoTensors {
                path: input.to_path_buf(),
                hint: format!(" (it is a {})", ckpt.format.label()),
            });
        }
    };
    if read_verdict > accept {
        return Err(ConvertError::Refused {
            path: input.to_path_buf(),
            verdict,
            summary,
        });
    }
    Ok((ckpt, verdict))
}

fn check_output(input: &Path, output: &Path, force: bool) -> Result<(), ConvertError> {
    crate::pipeline::check_output([input], output, crate::pipeline::replace_if(force))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_output_names() {
        assert_eq!(
            default_output(Path::new("a/model.pt")),
            Path::new("a/model.safetensors")
        );
        assert_eq!(
            default_output(Path::new("x.ckpt")),
            Path::new("x.safetensors")
        );
        assert_eq!(
            default_output(Path::new("d/pytorch_model.bin")),
            Path::new("d/model.safetensors")
        );
        assert_eq!(
            default_output(Path::new("pytorch_model-00001-of-00002.bin")),
            Path::new("model-00001-of-00002.safetensors")
        );
        assert_eq!(
            default_output(Path::new("d/pytorch_model.bin.index.json")),
            Path::new("d/model.safetensors.index.json")
        );
    }

    #[test]
    fn verification_errors_name_the_file_and_the_tensor() {
        let e = ConvertError::from(WriteError::mismatch(
            "out.safetensors",
            Some("w"),
            "differs from the source",
        ));
        assert_eq!(
            e.to_string(),
            "verification failed: out.safetensors, tensor `w`: differs from the source; the output was not kept"
        );
        let e = ConvertError::Gather {
            path: "in.pt".into(),
            tensor: "w".into(),
            reason: "the input ended early".into(),
        };
        assert!(
            e.to_string()
                .starts_with("cannot read tensor `w` from in.pt")
        );
    }
}
