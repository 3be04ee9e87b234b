//! safetensors back to PyTorch checkpoints, for runtimes that predate safetensors: streamed,
//! verified, atomic, written without Python.
//!
//! A package trained with a new library ships `model.safetensors`; an old `transformers` (before
//! safetensors support, 4.25 and earlier) only loads `pytorch_model.bin`. `export` writes that
//! file as `torch.save` writes it: a zip archive (`<name>/data.pkl`, `<name>/data/<key>`
//! storages stored and 64-byte aligned, `version`, `byteorder`, `.format_version`,
//! `.storage_alignment`, `.data/serialization_id`) whose protocol 2 pickle is an `OrderedDict`
//! of tensors rebuilt by `torch._utils._rebuild_tensor_v2` from typed storages: exactly what
//! `torch.load(weights_only=True)` accepts, and what every torch since 1.6 (the first to read
//! the zip format) unpickles. Tied weights that safetensors stored once view one storage again.
//!
//! The storages are copied from the input with positioned reads (a file cut short mid-way is an
//! error, never SIGBUS through a map) into an unnamed temporary file beside the output, their
//! CRC-32 computed on the way, while a named thread hashes the whole input (its SHA-256 goes
//! into the provenance record `<name>/.data/ckptscope.json`, which torch never reads) and takes
//! a checksum of every storage range. Then the output is reopened with ckptscope's own reader:
//! it must scan `safe`, load with `weights_only=True` by the compat model, and hold every
//! tensor with the name, dtype, shape, sharing and bytes planned. Only then is it linked in.
//!
//! Owns: export to PyTorch. Must not import: `convert`, `scan`, `output`, `gui` (the source
//! hashing pass, the checksum, the temporary file and the shard index are
//! [`crate::pipeline`]'s).

mod error;
mod pickle;
mod plan;
mod sharded;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::format::Format;
use crate::limits::Limits;
use crate::pipeline::WriteError;
use crate::progress::Progress;

pub use error::ExportError;
pub use plan::{Encoding, encoding};

/// What to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A `torch.save` zip checkpoint (`pytorch_model.bin`).
    #[default]
    Pytorch,
}

/// How to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Output file (the index file for a sharded model); default: [`default_output`].
    pub output: Option<PathBuf>,
    /// Replace an existing output.
    pub force: bool,
    /// `(alias, target)`: `alias` views `target`'s storage (restored if the file lacks it,
    /// shared if it holds the same bytes; anything else fails).
    pub ties: Vec<(String, String)>,
    /// A sharded model becomes one `pytorch_model.bin` rather than one `.bin` per shard.
    pub single_file: bool,
    /// Reading limits.
    pub limits: Limits,
    /// The time recorded in the provenance (default: now). The CLI passes
    /// `SOURCE_DATE_EPOCH` here, so a rebuilt export is byte-identical.
    pub exported_at: Option<SystemTime>,
    /// Test hook: fail with an I/O error after writing this many storage bytes.
    #[doc(hidden)]
    pub fail_after: Option<u64>,
    /// Test hook: called with the storage bytes written so far after each chunk.
    #[doc(hidden)]
    pub after_chunk: Option<Hook>,
}

/// A callback for tests ([`ExportOptions::after_chunk`]).
#[derive(Clone)]
pub struct Hook(pub Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

/// What an export did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExportReport {
    /// The safetensors file (or index).
    pub input: PathBuf,
    /// The file written (the index for sharded output).
    pub output: PathBuf,
    /// What was written.
    pub to: Target,
    /// State dict entries written (restored tied names included).
    pub tensors: usize,
    /// Storage records written.
    pub storages: usize,
    /// Bytes of storage data written.
    pub bytes: u64,
    /// `(alias, kept)`: names that view another's storage.
    pub tied: Vec<(String, String)>,
    /// Ties the metadata asked for that were not made, and why.
    pub notes: Vec<String>,
    /// SHA-256 of the input file (of the index for sharded models).
    pub source_sha256: String,
    /// Shard files written, for sharded output.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<PathBuf>,
    /// The output was read back: it scans safe, loads with `weights_only=True` by the compat
    /// model, and every tensor matches the source.
    pub verified: bool,
}

impl ExportReport {
    /// Every file the export wrote: the output and, for sharded output, its shards (what an
    /// Undo removes).
    pub fn written(&self) -> Vec<PathBuf> {
        std::iter::once(self.output.clone())
            .chain(self.shards.iter().cloned())
            .collect()
    }
}

/// The output name transformers looks for: `model.safetensors` becomes `pytorch_model.bin`,
/// `model-00001-of-00002.safetensors` `pytorch_model-00001-of-00002.bin`,
/// `model.safetensors.index.json` `pytorch_model.bin.index.json`; any other `X.safetensors`
/// becomes `X.bin` (diffusers' `diffusion_pytorch_model.safetensors` gives its `.bin` name).
pub fn default_output(input: &Path, single_file: bool) -> PathBuf {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = input.parent().unwrap_or(Path::new(""));
    let renamed = |stem: &str| -> String {
        if stem == "model" {
            "pytorch_model".to_string()
        } else if let Some(rest) = stem.strip_prefix("model-") {
            format!("pytorch_model-{rest}")
        } else {
            stem.to_string()
        }
    };
    if let Some(stem) = name.strip_suffix(".safetensors.index.json") {
        let stem = renamed(stem);
        return if single_file {
            folder.join(format!("{stem}.bin"))
        } else {
            folder.join(format!("{stem}.bin.index.json"))
        };
    }
    let stem = name.strip_suffix(".safetensors").unwrap_or(
        input
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("archive"),
    );
    folder.join(format!("{}.bin", renamed(stem)))
}

/// Every file an export of `ckpt` to `output` writes: `output`, and for a sharded model exported
/// shard by shard the shard files beside it (named as [`default_output`] names each shard). The
/// window checks them all before it writes, so a one-click export never replaces a file, and its
/// Undo removes them all.
pub fn outputs(ckpt: &crate::Checkpoint, output: &Path, single_file: bool) -> Vec<PathBuf> {
    let mut files = vec![output.to_path_buf()];
    if ckpt.format == Format::SafetensorsSharded && !single_file {
        let folder = output.parent().unwrap_or(Path::new(""));
        files.extend(
            ckpt.sources
                .iter()
                .map(|s| sharded::shard_output(folder, &s.path)),
        );
    }
    files
}

/// Exports `input` (a safetensors file, a `*.safetensors.index.json` or a folder holding one)
/// as `options` say, reporting progress (bytes written, then bytes verified) and stopping when
/// it is cancelled.
pub fn export(
    input: &Path,
    options: &ExportOptions,
    progress: &Progress,
) -> Result<ExportReport, ExportError> {
    let open = crate::format::OpenOptions {
        limits: options.limits.clone(),
        ..Default::default()
    };
    let ckpt = match crate::format::open_watched(input, &open, Some(progress)) {
        Err(crate::Error::Cancelled { .. }) => return Err(WriteError::Cancelled.into()),
        other => other?,
    };
    match ckpt.format {
        Format::Safetensors => {}
        Format::SafetensorsSharded if !options.single_file => {
            return sharded::export_shards(&ckpt, options, progress);
        }
        Format::SafetensorsSharded => {}
        other => {
            return Err(ExportError::NotSafetensors {
                path: input.to_path_buf(),
                what: other.label().to_string(),
            });
        }
    }
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| default_output(&ckpt.path, options.single_file));
    check_output(&ckpt, &output, options.force)?;
    let plan = plan::plan(&ckpt, options)?;
    write::write(&ckpt, &plan, &output, options, progress)
}

/// Refuses an output that is one of the input's files, or that exists without `force`.
fn check_output(ckpt: &crate::Checkpoint, output: &Path, force: bool) -> Result<(), ExportError> {
    let inputs =
        std::iter::once(ckpt.path.as_path()).chain(ckpt.sources.iter().map(|s| s.path.as_path()));
    crate::pipeline::check_output(inputs, output, crate::pipeline::replace_if(force))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_output_names() {
        let d = |p: &str| default_output(Path::new(p), false);
        assert_eq!(d("a/model.safetensors"), Path::new("a/pytorch_model.bin"));
        assert_eq!(
            d("model-00001-of-00002.safetensors"),
            Path::new("pytorch_model-00001-of-00002.bin")
        );
        assert_eq!(
            d("m/model.safetensors.index.json"),
            Path::new("m/pytorch_model.bin.index.json")
        );
        assert_eq!(
            default_output(Path::new("m/model.safetensors.index.json"), true),
            Path::new("m/pytorch_model.bin")
        );
        assert_eq!(
            d("unet/diffusion_pytorch_model.safetensors"),
            Path::new("unet/diffusion_pytorch_model.bin")
        );
        assert_eq!(d("x.st"), Path::new("x.bin"));
    }
}
