//! Pickle checkpoints to safetensors: streamed, verified, atomic, and never executed.
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

use std::collections::{BTreeMap, HashMap};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::dtype::DType;
use crate::error::Error;
use crate::format::gather;
use crate::format::{Checkpoint, Format, Layout, OpenOptions, PickleOptions, TensorEntry};
use crate::limits::Limits;
use crate::pickle::policy::{Policy, Verdict};
use crate::pickle::torch::UnsupportedTensor;
use crate::progress::Progress;

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
    /// The written file did not read back as the source.
    #[error("verification failed: {0}; the output was not kept")]
    Verify(String),
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
        mismatch: crate::format::zip::CrcMismatch,
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
    let ckpt = open_input(input, options, progress)?;
    check_output(input, &output, options.force)?;
    let plan = plan(&ckpt, options)?;
    write(&ckpt, &plan, &output, options, progress)
}

fn open_input(
    input: &Path,
    options: &ConvertOptions,
    progress: &Progress,
) -> Result<Checkpoint, ConvertError> {
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
        Err(crate::Error::Cancelled { .. }) => return Err(ConvertError::Cancelled),
        other => other?,
    };
    let Some(report) = &ckpt.pickle else {
        return Err(match ckpt.format {
            Format::Safetensors | Format::SafetensorsSharded => {
                ConvertError::AlreadySafetensors(input.to_path_buf())
            }
            Format::Gguf => ConvertError::NoTensors {
                path: input.to_path_buf(),
                hint: crate::format::gguf::convert_refusal(&ckpt),
            },
            _ => ConvertError::NoTensors {
                path: input.to_path_buf(),
                hint: format!(" (it is a {})", ckpt.format.label()),
            },
        });
    };
    if report.read_verdict() > accept {
        let summary = report
            .findings
            .iter()
            .filter(|f| f.risk > crate::pickle::policy::Risk::Info)
            .take(3)
            .map(|f| f.global.clone().unwrap_or_else(|| f.reason.clone()))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ConvertError::Refused {
            path: input.to_path_buf(),
            verdict: report.verdict,
            summary,
        });
    }
    Ok(ckpt)
}

fn check_output(input: &Path, output: &Path, force: bool) -> Result<(), ConvertError> {
    let same = match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(ConvertError::SameAsInput(output.to_path_buf()));
    }
    if output.exists() && !force {
        return Err(ConvertError::Exists(output.to_path_buf()));
    }
    Ok(())
}

/// What will be written.
struct Plan<'a> {
    /// `(output name, tensor)`, in file order.
    tensors: Vec<(String, &'a TensorEntry)>,
    aliases: Vec<(String, String)>,
    skipped: Vec<UnsupportedTensor>,
    exported: Option<String>,
    left_out: Vec<String>,
    metadata: BTreeMap<String, String>,
}

fn plan<'a>(ckpt: &'a Checkpoint, options: &ConvertOptions) -> Result<Plan<'a>, ConvertError> {
    let all = options.all;
    let Some(report) = ckpt.pickle.as_ref() else {
        return Err(ConvertError::NoTensors {
            path: ckpt.path.clone(),
            hint: String::new(),
        });
    };
    // The weights: the first preferred top-level entry that is a nested mapping holding
    // tensors (Lightning's `state_dict`, `{"model": ..., "optimizer": ...}`), unless --all. A
    // flat state dict (`model.embed_tokens.weight`, `lm_head.weight`) keeps every name as is,
    // and so does a TorchScript module's state dict.
    let exported = if all || ckpt.format == Format::Torchscript {
        None
    } else {
        WEIGHT_KEYS
            .iter()
            .find(|k| {
                ckpt.tensors.iter().any(|t| t.root.as_deref() == Some(**k))
                    || report
                        .unsupported
                        .iter()
                        .any(|u| u.root.as_deref() == Some(**k))
            })
            .map(|k| k.to_string())
    };
    let rename = |name: &str, root: Option<&str>| -> Option<String> {
        let out = match &exported {
            Some(k) if root == Some(k.as_str()) => name.strip_prefix(&format!("{k}."))?.to_string(),
            Some(_) => return None,
            None => name.to_string(),
        };
        Some(if out.is_empty() {
            "tensor".to_string()
        } else {
            out
        })
    };
    let mut chosen = Vec::new();
    let mut left_out = Vec::new();
    for t in &ckpt.tensors {
        match rename(&t.name, t.root.as_deref()) {
            Some(name) => chosen.push((name, t)),
            None => left_out.push(t.name.clone()),
        }
    }
    let mut skipped = Vec::new();
    for u in &report.unsupported {
        match rename(&u.name, u.root.as_deref()) {
            Some(name) => skipped.push(UnsupportedTensor {
                name,
                reason: u.reason.clone(),
                root: None,
            }),
            None => left_out.push(u.name.clone()),
        }
    }
    if !skipped.is_empty() && !options.skip_unreadable {
        return Err(ConvertError::Unreadable {
            path: ckpt.path.clone(),
            tensors: skipped,
        });
    }
    if chosen.is_empty() {
        return Err(ConvertError::NoTensors {
            path: ckpt.path.clone(),
            hint: if skipped.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} tensors are not supported: {})",
                    skipped.len(),
                    skipped[0].reason
                )
            },
        });
    }
    for (name, t) in &chosen {
        check_expansion(ckpt, name, t, options)?;
    }
    let mut seen = HashMap::new();
    for (name, _) in &chosen {
        if seen.insert(name.clone(), ()).is_some() {
            return Err(ConvertError::NameClash(name.clone()));
        }
    }

    // Exact aliases (same storage, offset, shape, strides, dtype) are stored once, under the
    // first name in sorted order, like HF's convert; but a tied output head gives way to the
    // embedding it is tied to, since that is the name `transformers` loads and ties back
    // (keeping `lm_head.weight` would leave `embed_tokens` to a fresh initialisation).
    chosen.sort_by(|a, b| (is_tied_head(&a.0), &a.0).cmp(&(is_tied_head(&b.0), &b.0)));
    let mut kept: HashMap<(Option<String>, String, DType, Vec<u64>), String> = HashMap::new();
    let mut aliases = Vec::new();
    let mut tensors = Vec::new();
    for (name, t) in chosen {
        let key = (t.storage.clone(), layout_key(t), t.dtype, t.shape.clone());
        if t.storage.is_some()
            && let Some(first) = kept.get(&key)
        {
            aliases.push((name, first.clone()));
            continue;
        }
        kept.insert(key, name.clone());
        tensors.push((name, t));
    }
    // The safetensors crate's order: descending dtype alignment, then name.
    tensors.sort_by(|(an, a), (bn, b)| b.dtype.cmp(&a.dtype).then(an.cmp(bn)));

    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    if !left_out.is_empty() {
        metadata.insert(
            "ckptscope.left_out".to_string(),
            serde_json::to_string(&left_out).unwrap_or_default(),
        );
    }
    for (dropped, kept) in &aliases {
        metadata.insert(dropped.clone(), kept.clone());
    }
    if !skipped.is_empty() {
        let list: BTreeMap<&str, &str> = skipped
            .iter()
            .map(|u| (u.name.as_str(), u.reason.as_str()))
            .collect();
        metadata.insert(
            "ckptscope.skipped".to_string(),
            serde_json::to_string(&list).unwrap_or_default(),
        );
    }
    // Non-tensor values of the root (epoch, global_step, hyper_parameters...), as JSON.
    if let serde_json::Value::Object(root) = &report.objects {
        for (key, value) in root {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if text.contains("<tensor ") || metadata.contains_key(key) || text.len() > 1 << 20 {
                continue;
            }
            if Some(key) == exported.as_ref() {
                continue;
            }
            metadata.insert(key.clone(), text);
        }
    }
    Ok(Plan {
        tensors,
        aliases,
        skipped,
        exported,
        left_out,
        metadata,
    })
}

/// Names of output heads that models tie to their input embedding (`lm_head.weight`,
/// GPT-NeoX's `embed_out.weight`).
fn is_tied_head(name: &str) -> bool {
    name.split('.')
        .any(|part| part == "lm_head" || part == "embed_out")
}

/// Refuses a tensor whose packed bytes exceed the storage it views by more than the expansion
/// limit, unless the user asked for expanded tensors to be materialized.
fn check_expansion(
    ckpt: &Checkpoint,
    name: &str,
    t: &TensorEntry,
    options: &ConvertOptions,
) -> Result<(), ConvertError> {
    let logical = packed_len(ckpt, t)?;
    let storage = t.data_offsets[1].saturating_sub(t.data_offsets[0]);
    let factor = options.limits.max_expansion.max(1);
    let allowed = storage.saturating_mul(factor);
    if logical > allowed && !options.materialize_expanded {
        return Err(ConvertError::Expanded {
            name: name.to_string(),
            logical,
            storage,
            factor,
        });
    }
    Ok(())
}

/// Bytes of a tensor once packed, computed with checked arithmetic from its shape.
fn packed_len(ckpt: &Checkpoint, t: &TensorEntry) -> Result<u64, ConvertError> {
    t.shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .and_then(|n| t.dtype.bytes_for(n))
        .ok_or_else(|| ConvertError::TooLarge {
            path: ckpt.path.clone(),
            what: format!("the size of tensor `{}`", t.name),
        })
}

fn layout_key(t: &TensorEntry) -> String {
    match &t.layout {
        Layout::Contiguous => format!("c{}", t.data_offsets[0]),
        Layout::Strided { offset, strides } => format!("s{offset}:{strides:?}"),
    }
}

/// Header text: `__metadata__` with sorted keys, then tensors in file order, each serialized by
/// the safetensors crate's own `TensorInfo`; spaces pad it to a multiple of 8 bytes.
fn header_json(
    metadata: &BTreeMap<String, String>,
    tensors: &[(String, DType, Vec<u64>, [u64; 2])],
) -> Result<Vec<u8>, ConvertError> {
    let json = |e: serde_json::Error| ConvertError::Verify(e.to_string());
    let mut out = String::from("{\"__metadata__\":");
    out.push_str(&serde_json::to_string(metadata).map_err(json)?);
    for (name, dtype, shape, offsets) in tensors {
        let info = safetensors::tensor::TensorInfo {
            dtype: dtype.to_safetensors(),
            shape: shape.iter().map(|&d| d as usize).collect(),
            data_offsets: (offsets[0] as usize, offsets[1] as usize),
        };
        out.push(',');
        out.push_str(&serde_json::to_string(name).map_err(json)?);
        out.push(':');
        // The crate's own serialization: {"dtype","shape","data_offsets"} in that order.
        out.push_str(&serde_json::to_string(&info).map_err(json)?);
    }
    out.push('}');
    let mut bytes = out.into_bytes();
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    Ok(bytes)
}

const PLACEHOLDER_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn write(
    ckpt: &Checkpoint,
    plan: &Plan<'_>,
    output: &Path,
    options: &ConvertOptions,
    progress: &Progress,
) -> Result<ConvertReport, ConvertError> {
    let report = ckpt.pickle.as_ref().expect("pickle checked by open_input");
    let folder = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write_err = |error: std::io::Error| ConvertError::Write {
        path: output.to_path_buf(),
        error,
    };

    let too_large = |what: &str| ConvertError::TooLarge {
        path: ckpt.path.clone(),
        what: what.to_string(),
    };
    let mut offset = 0u64;
    let mut layout: Vec<(String, DType, Vec<u64>, [u64; 2])> =
        Vec::with_capacity(plan.tensors.len());
    for (name, t) in &plan.tensors {
        let len = packed_len(ckpt, t)?;
        let end = offset
            .checked_add(len)
            .ok_or_else(|| too_large("the total size of the tensors"))?;
        layout.push((name.clone(), t.dtype, t.shape.clone(), [offset, end]));
        offset = end;
    }
    let total = offset;
    progress.add_total(total.saturating_mul(2));

    let mut metadata = plan.metadata.clone();
    let source_name = ckpt
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    metadata.insert("ckptscope.source".into(), source_name);
    metadata.insert("ckptscope.source_sha256".into(), PLACEHOLDER_SHA.into());
    metadata.insert(
        "ckptscope.converted_at".into(),
        crate::timefmt::rfc3339_utc(SystemTime::now()),
    );
    metadata.insert("ckptscope.version".into(), env!("CARGO_PKG_VERSION").into());
    metadata.insert(
        "ckptscope.scan_verdict".into(),
        report.verdict.name().into(),
    );
    metadata.insert(
        "ckptscope.exported".into(),
        plan.exported
            .clone()
            .unwrap_or_else(|| "all tensors".into()),
    );
    let placeholder = header_json(&metadata, &layout)?;
    let data_start = 8 + placeholder.len() as u64;
    let need = data_start
        .checked_add(total)
        .ok_or_else(|| too_large("the output size"))?;
    let members = zip_members(ckpt, plan)?;
    let crc_ranges: Vec<std::ops::Range<u64>> = members.iter().map(|m| m.range.clone()).collect();

    let tmp = crate::fsutil::AtomicFile::new(output).map_err(write_err)?;
    let tmp_path = tmp.reopen_path();
    // Where the output really goes (a symbolic link's target may be on another file system).
    let target_folder = tmp
        .target()
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(folder);
    if let Some(available) = crate::fsutil::available_space(target_folder)
        && available < need
    {
        return Err(ConvertError::NoSpace {
            path: output.to_path_buf(),
            need,
            available,
        });
    }
    let read_err = |e: std::io::Error| ConvertError::Open(Error::io("read", &ckpt.path, e));
    let input = std::fs::File::open(&ckpt.path).map_err(read_err)?;
    // Packed tensors are plain byte ranges of the input: the hashing pass checksums them on
    // the way, so verification only has to read the output.
    let plain: Vec<Option<std::ops::Range<u64>>> = plan
        .tensors
        .iter()
        .map(|(_, t)| plain_range(ckpt, t))
        .collect();

    let sha = std::thread::scope(|scope| -> Result<String, ConvertError> {
        // The source's SHA-256 on the other core, with positioned reads (no map: the pages
        // read do not count against this process's memory).
        let hasher = scope.spawn(|| hash_source(&ckpt.path, &plain, &crc_ranges, progress));
        let mut out = tmp.file();
        out.write_all(&(placeholder.len() as u64).to_le_bytes())
            .map_err(write_err)?;
        out.write_all(&placeholder).map_err(write_err)?;
        let mut written = 0u64;
        let mut buf = Vec::with_capacity(gather::CHUNK);
        for (name, t) in &plan.tensors {
            let mut emit = |chunk: &[u8], out: &mut &std::fs::File| -> Result<(), ConvertError> {
                if progress.is_cancelled() {
                    return Err(ConvertError::Cancelled);
                }
                if let Some(limit) = options.fail_after
                    && written + chunk.len() as u64 > limit
                {
                    return Err(write_err(std::io::Error::other("injected write failure")));
                }
                out.write_all(chunk).map_err(write_err)?;
                written += chunk.len() as u64;
                progress.add_done(chunk.len() as u64);
                Ok(())
            };
            match plain_range(ckpt, t) {
                Some(range) if options.fail_after.is_none() => {
                    // In-kernel copy (copy_file_range) of a packed tensor.
                    let mut at = range.start;
                    while at < range.end {
                        if progress.is_cancelled() {
                            return Err(ConvertError::Cancelled);
                        }
                        let n = (range.end - at).min(COPY_CHUNK);
                        let mut src = &input;
                        src.seek(SeekFrom::Start(at)).map_err(read_err)?;
                        let copied =
                            std::io::copy(&mut src.take(n), &mut out).map_err(write_err)?;
                        if copied != n {
                            return Err(ConvertError::Verify(format!(
                                "tensor `{name}`: the input ended early"
                            )));
                        }
                        at += n;
                        written += n;
                        progress.add_done(n);
                    }
                }
                Some(range) => {
                    let mut at = range.start;
                    while at < range.end {
                        let n = (range.end - at).min(gather::CHUNK as u64) as usize;
                        buf.resize(n, 0);
                        read_exact_at(&input, &mut buf, at).map_err(read_err)?;
                        emit(&buf, &mut out)?;
                        at += n as u64;
                    }
                }
                None => {
                    let region = ckpt.tensor_bytes(t)?;
                    gather::for_each_chunk(t, region, gather::CHUNK, &mut |chunk| {
                        emit(chunk, &mut out)
                    })
                    .map_err(|e| ConvertError::Verify(format!("tensor `{name}`: {e}")))??;
                }
            }
        }
        if written != total {
            return Err(ConvertError::Verify(format!(
                "{written} bytes written, {total} expected"
            )));
        }
        // The data goes to disk while it is read back and compared with the source.
        let syncer = scope.spawn(|| tmp.file().sync_data());
        let sums = verify(ckpt, plan, &plain, &tmp_path, data_start, progress);
        let hashed = hasher
            .join()
            .map_err(|_| ConvertError::Verify("the hashing thread failed".into()))?
            .map_err(ConvertError::Open);
        let synced = syncer
            .join()
            .map_err(|_| ConvertError::Verify("the sync thread failed".into()))?;
        let (sha, source_sums, crcs) = hashed?;
        // A damaged member is the most useful thing to report: check it before the copy.
        for (member, crc) in members.iter().zip(&crcs) {
            if !progress.is_cancelled()
                && let Err(mismatch) = crate::format::zip::check_crc(&member.entry, *crc)
            {
                return Err(ConvertError::Damaged {
                    path: ckpt.path.clone(),
                    mismatch,
                    tensors: member.tensors.clone(),
                });
            }
        }
        let sums = sums?;
        for (((name, _), written), read) in plan.tensors.iter().zip(&sums).zip(&source_sums) {
            if written.is_some() && written != read {
                return Err(ConvertError::Verify(format!(
                    "tensor `{name}` differs from the source"
                )));
            }
        }
        synced.map_err(write_err)?;
        Ok(sha)
    })?;
    if progress.is_cancelled() {
        return Err(ConvertError::Cancelled);
    }

    // The real header has the same length as the placeholder.
    metadata.insert("ckptscope.source_sha256".into(), sha.clone());
    let header = header_json(&metadata, &layout)?;
    if header.len() != placeholder.len() {
        return Err(ConvertError::Verify("header length changed".into()));
    }
    let mut file = tmp.file();
    file.seek(SeekFrom::Start(8)).map_err(write_err)?;
    file.write_all(&header).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    // The final header reads back with every key.
    let check = crate::format::open(&tmp_path).map_err(|e| ConvertError::Verify(e.to_string()))?;
    for (k, v) in &metadata {
        if check.metadata_value(k) != Some(v.as_str()) {
            return Err(ConvertError::Verify(format!(
                "metadata `{k}` did not read back"
            )));
        }
    }
    drop(check);

    // Mode (new: 0666 & !umask; replaced: the old file's), sync, link in, sync the folder.
    let replace = if options.force {
        crate::fsutil::Replace::Always
    } else {
        crate::fsutil::Replace::Never
    };
    tmp.commit(replace).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => ConvertError::Exists(output.to_path_buf()),
        _ => write_err(e),
    })?;
    // Lineage links the output back to this input by its hash without reading it again.
    crate::lineage::remember_hash(&ckpt.path, crate::lineage::HashKind::File, &sha);
    Ok(ConvertReport {
        input: ckpt.path.clone(),
        output: output.to_path_buf(),
        verdict: report.verdict,
        exported: plan.exported.clone(),
        left_out: plan.left_out.clone(),
        tensors: plan.tensors.len(),
        bytes: total,
        aliases: plan.aliases.clone(),
        skipped: plan.skipped.clone(),
        source_sha256: sha,
        shards: Vec::new(),
        verified: true,
    })
}

/// Bytes copied per `copy_file_range` round (cancel and progress are checked in between).
const COPY_CHUNK: u64 = 64 << 20;

/// The absolute file range of a tensor whose packed bytes are a plain range of its file
/// (row-major, little-endian, whole bytes): most tensors of most checkpoints.
fn plain_range(ckpt: &Checkpoint, t: &TensorEntry) -> Option<std::ops::Range<u64>> {
    let size = t.dtype.byte_size()?;
    if t.byte_order == crate::format::ByteOrder::Big && size > 1 {
        return None;
    }
    let (offset, strides) = gather::effective_strides(t);
    if !gather::is_row_major(&t.shape, &strides) {
        return None;
    }
    let start = t.file_offset.checked_add(offset.checked_mul(size)?)?;
    let end = start.checked_add(t.byte_len())?;
    let source = ckpt.sources.get(t.source)?;
    (t.source == 0 && end <= source.file_size && end <= t.file_range().end).then_some(start..end)
}

fn read_exact_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
    }
    #[cfg(not(unix))]
    {
        let mut f = file;
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(buf)
    }
}

/// Reads every written tensor back: packed ones are checksummed (compared with the checksums
/// the hashing pass took of the source), strided ones compared with the source directly.
/// Memory: one chunk.
fn verify(
    ckpt: &Checkpoint,
    plan: &Plan<'_>,
    plain: &[Option<std::ops::Range<u64>>],
    written: &Path,
    data_start: u64,
    progress: &Progress,
) -> Result<Vec<Option<u64>>, ConvertError> {
    let out = crate::format::open(written).map_err(|e| ConvertError::Verify(e.to_string()))?;
    if out.tensors.len() != plan.tensors.len() {
        return Err(ConvertError::Verify(format!(
            "{} tensors read back, {} written",
            out.tensors.len(),
            plan.tensors.len()
        )));
    }
    let out_file = std::fs::File::open(written).map_err(|e| ConvertError::Verify(e.to_string()))?;
    let mut buf = Vec::with_capacity(gather::CHUNK);
    let mut sums = Vec::with_capacity(plan.tensors.len());
    for ((name, t), plain) in plan.tensors.iter().zip(plain) {
        let o = out
            .require(name)
            .map_err(|e| ConvertError::Verify(e.to_string()))?;
        if o.dtype != t.dtype
            || o.shape != t.shape
            || o.file_offset < data_start
            || o.byte_len() != t.byte_len()
        {
            return Err(ConvertError::Verify(format!(
                "tensor `{name}` reads back as {} {:?}",
                o.dtype, o.shape
            )));
        }
        let mut at = o.file_offset;
        let mut left = o.byte_len();
        let mut read = |n: usize, buf: &mut Vec<u8>| -> Result<(), ConvertError> {
            if progress.is_cancelled() {
                return Err(ConvertError::Cancelled);
            }
            buf.resize(n, 0);
            read_exact_at(&out_file, buf, at).map_err(|e| ConvertError::Verify(e.to_string()))?;
            at += n as u64;
            progress.add_done(n as u64);
            Ok(())
        };
        if plain.is_some() {
            let mut sum = Checksum::default();
            while left > 0 {
                let n = left.min(gather::CHUNK as u64);
                read(n as usize, &mut buf)?;
                sum.update(&buf);
                left -= n;
            }
            sums.push(Some(sum.finish()));
        } else {
            let region = ckpt.tensor_bytes(t)?;
            gather::for_each_chunk(t, region, gather::CHUNK, &mut |chunk| {
                read(chunk.len(), &mut buf)?;
                if buf != chunk {
                    return Err(ConvertError::Verify(format!(
                        "tensor `{name}` differs from the source"
                    )));
                }
                Ok(())
            })
            .map_err(|e| ConvertError::Verify(e.to_string()))??;
            sums.push(None);
        }
    }
    Ok(sums)
}

/// A fast 64-bit checksum (four independent multiply-rotate lanes over 8-byte words) for
/// verifying copies: it catches I/O and logic errors, it is not a cryptographic hash.
#[derive(Clone, Debug, Default)]
pub struct Checksum {
    lanes: [u64; 4],
    pending: Vec<u8>,
    len: u64,
}

impl Checksum {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;

    /// Adds bytes; the result does not depend on how the input is split.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.pending.is_empty() {
            let take = (32 - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < 32 {
                return;
            }
            let block: [u8; 32] = self.pending[..32].try_into().unwrap_or([0; 32]);
            self.block(&block);
            self.pending.clear();
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            self.block(b);
        }
        self.pending.extend_from_slice(blocks.remainder());
    }

    #[inline(always)]
    fn block(&mut self, b: &[u8]) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            *lane = (*lane ^ w).wrapping_mul(Self::K).rotate_left(29);
        }
    }

    /// The checksum of everything added.
    pub fn finish(mut self) -> u64 {
        let tail = std::mem::take(&mut self.pending);
        let mut padded = [0u8; 32];
        padded[..tail.len()].copy_from_slice(&tail);
        self.block(&padded);
        let mut h = self.len.wrapping_mul(Self::K);
        for lane in self.lanes {
            h = (h ^ lane).wrapping_mul(Self::K).rotate_left(31);
        }
        h
    }
}

/// A stored zip member that planned tensors are copied from, with its recorded CRC-32.
struct Member {
    entry: crate::format::zip::ZipEntry,
    range: std::ops::Range<u64>,
    /// Output names of the tensors read from it.
    tensors: Vec<String>,
}

/// The archive members the plan reads (none for files that are not zip archives), found by the
/// byte range each tensor's storage occupies.
fn zip_members(ckpt: &Checkpoint, plan: &Plan<'_>) -> Result<Vec<Member>, ConvertError> {
    use crate::format::zip;
    let Some(source) = ckpt.sources.first() else {
        return Ok(Vec::new());
    };
    let bytes = source.mapped()?.bytes();
    if !zip::looks_like_zip(bytes) {
        return Ok(Vec::new());
    }
    let entries = zip::entries(bytes).map_err(|p| Error::invalid(&ckpt.path, p))?;
    let mut members: Vec<Member> = entries
        .into_iter()
        .filter(|e| e.is_stored())
        .filter_map(|entry| {
            let range = zip::data_range(bytes, &entry).ok()?;
            Some(Member {
                entry,
                range,
                tensors: Vec::new(),
            })
        })
        .collect();
    members.sort_by_key(|m| (m.range.start, m.range.end));
    for (name, t) in &plan.tensors {
        if t.source != 0 {
            continue;
        }
        let range = t.file_range();
        // The member whose data holds the tensor's bytes: the last one starting at or before it.
        let i = members.partition_point(|m| m.range.start <= range.start);
        if let Some(m) = i.checked_sub(1).and_then(|i| members.get_mut(i))
            && m.range.end >= range.end
        {
            m.tensors.push(name.clone());
        }
    }
    members.retain(|m| !m.tensors.is_empty());
    Ok(members)
}

/// Feeds `chunk` (file bytes from `at`) to the sorted `ranges` it overlaps, from `first` on.
fn feed_ranges(
    ranges: &[std::ops::Range<u64>],
    order: &[usize],
    first: &mut usize,
    at: u64,
    chunk: &[u8],
    mut feed: impl FnMut(usize, &[u8]),
) {
    let end = at.saturating_add(chunk.len() as u64);
    while let Some(r) = order.get(*first).and_then(|&i| ranges.get(i))
        && r.end <= at
    {
        *first += 1;
    }
    for &i in order.get(*first..).unwrap_or(&[]) {
        let Some(r) = ranges.get(i) else { continue };
        if r.start >= end {
            break;
        }
        let (s, e) = (r.start.max(at), r.end.min(end));
        if s < e
            && let (Ok(s), Ok(e)) = (usize::try_from(s - at), usize::try_from(e - at))
            && let Some(piece) = chunk.get(s..e)
        {
            feed(i, piece);
        }
    }
}

/// What the hashing pass computes: the source's SHA-256 (hex), a checksum per packed tensor
/// range, a CRC-32 per archive member.
type SourceHashes = (String, Vec<Option<u64>>, Vec<u32>);

/// One pass over the source: its SHA-256, the checksum of each packed tensor's range, and the
/// CRC-32 of each archive member in `crc_ranges` (CRC and SHA share the read; the CRC kernel
/// costs a small fraction of the SHA).
fn hash_source(
    path: &Path,
    ranges: &[Option<std::ops::Range<u64>>],
    crc_ranges: &[std::ops::Range<u64>],
    progress: &Progress,
) -> Result<SourceHashes, Error> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = f.metadata().map_err(|e| Error::io("read", path, e))?.len();
    let mut sha = Sha256::new();
    let mut sums: Vec<Option<Checksum>> = ranges
        .iter()
        .map(|r| r.as_ref().map(|_| Checksum::default()))
        .collect();
    // Ranges by start, to feed each chunk only to the tensors it overlaps.
    let flat: Vec<std::ops::Range<u64>> =
        ranges.iter().map(|r| r.clone().unwrap_or(0..0)).collect();
    let mut order: Vec<usize> = (0..ranges.len()).filter(|&i| ranges[i].is_some()).collect();
    order.sort_by_key(|&i| flat[i].start);
    let mut crcs: Vec<crate::format::zip::Crc32> = vec![Default::default(); crc_ranges.len()];
    let mut crc_order: Vec<usize> = (0..crc_ranges.len()).collect();
    crc_order.sort_by_key(|&i| crc_ranges[i].start);
    let mut crc_first = 0usize;
    let mut buf = vec![0u8; 1 << 22];
    let mut at = 0u64;
    let mut first = 0usize;
    while at < len {
        if progress.is_cancelled() {
            break;
        }
        let n = (len - at).min(buf.len() as u64) as usize;
        read_exact_at(&f, &mut buf[..n], at).map_err(|e| Error::io("read", path, e))?;
        let chunk = &buf[..n];
        sha.update(chunk);
        feed_ranges(&flat, &order, &mut first, at, chunk, |i, piece| {
            if let Some(Some(sum)) = sums.get_mut(i) {
                sum.update(piece);
            }
        });
        feed_ranges(
            crc_ranges,
            &crc_order,
            &mut crc_first,
            at,
            chunk,
            |i, piece| {
                if let Some(crc) = crcs.get_mut(i) {
                    crc.update(piece);
                }
            },
        );
        at += n as u64;
    }
    Ok((
        hex(&sha.finalize()),
        sums.into_iter().map(|s| s.map(Checksum::finish)).collect(),
        crcs.into_iter()
            .map(crate::format::zip::Crc32::finish)
            .collect(),
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a whole file, read in 4 MiB chunks.
pub fn file_sha256(path: &Path) -> Result<String, Error> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 22];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

// ---- sharded pickle models ---------------------------------------------------------------------

fn is_sharded_pickle_index(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.ends_with(".bin.index.json")
        || name.ends_with(".pt.index.json")
        || name.ends_with(".pth.index.json")
}

#[derive(serde::Deserialize)]
struct PickleIndex {
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
    weight_map: BTreeMap<String, String>,
}

/// `pytorch_model.bin.index.json` + shards → `model.safetensors.index.json` + one safetensors
/// file per shard, with the same split. Shards already converted stay if a later one fails;
/// the index is written last, so a failure leaves no index.
fn convert_sharded(
    index: &Path,
    options: &ConvertOptions,
    progress: &Progress,
) -> Result<ConvertReport, ConvertError> {
    let out_index = options
        .output
        .clone()
        .unwrap_or_else(|| default_output(index));
    check_output(index, &out_index, options.force)?;
    let text = std::fs::read(index).map_err(|e| Error::io("read", index, e))?;
    let parsed: PickleIndex = serde_json::from_slice(&text).map_err(|e| {
        Error::invalid(
            index,
            crate::error::Problem::BadIndex {
                message: format!("expected {{\"weight_map\": {{tensor: shard}}}}: {e}"),
            },
        )
    })?;
    let folder = index.parent().unwrap_or(Path::new(""));
    let out_folder = out_index.parent().unwrap_or(Path::new(""));
    let mut shards: Vec<&String> = parsed.weight_map.values().collect();
    shards.sort();
    shards.dedup();
    let mut renamed: HashMap<String, String> = HashMap::new();
    let mut total = ConvertReport {
        input: index.to_path_buf(),
        output: out_index.clone(),
        verdict: Verdict::Safe,
        exported: None,
        left_out: Vec::new(),
        tensors: 0,
        bytes: 0,
        aliases: Vec::new(),
        skipped: Vec::new(),
        source_sha256: file_sha256(index)?,
        shards: Vec::new(),
        verified: true,
    };
    for shard in shards {
        let input = folder.join(shard);
        let out_name = default_output(Path::new(shard));
        let output = out_folder.join(out_name.file_name().unwrap_or_default());
        let shard_options = ConvertOptions {
            output: Some(output.clone()),
            // A shard holds a flat state dict: every tensor under its own name.
            all: true,
            ..options.clone()
        };
        let r = convert(&input, &shard_options, progress)?;
        renamed.insert(
            shard.clone(),
            output
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        total.verdict = total.verdict.max(r.verdict);
        total.tensors += r.tensors;
        total.bytes = total
            .bytes
            .checked_add(r.bytes)
            .ok_or_else(|| ConvertError::TooLarge {
                path: index.to_path_buf(),
                what: "the total size of the shards".into(),
            })?;
        total.aliases.extend(r.aliases);
        total.skipped.extend(r.skipped);
        total.shards.push(r.output);
    }
    let weight_map: BTreeMap<&String, &String> = parsed
        .weight_map
        .iter()
        .filter_map(|(t, s)| renamed.get(s).map(|n| (t, n)))
        .collect();
    let mut metadata = parsed.metadata.clone();
    metadata.insert("total_size".into(), serde_json::Value::from(total.bytes));
    let json = serde_json::json!({ "metadata": metadata, "weight_map": weight_map });
    let replace = if options.force {
        crate::fsutil::Replace::Always
    } else {
        crate::fsutil::Replace::Never
    };
    crate::fsutil::atomic_write(&out_index, replace, |f| {
        serde_json::to_writer_pretty(&mut *f, &json).map_err(std::io::Error::from)
    })
    .map_err(|error| match error.kind() {
        std::io::ErrorKind::AlreadyExists => ConvertError::Exists(out_index.clone()),
        _ => ConvertError::Write {
            path: out_index.clone(),
            error,
        },
    })?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_does_not_depend_on_how_data_is_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Checksum::default();
        whole.update(&data);
        let expected = whole.finish();
        for split in [1, 7, 31, 32, 33, 500] {
            let mut c = Checksum::default();
            for piece in data.chunks(split) {
                c.update(piece);
            }
            assert_eq!(c.finish(), expected, "split {split}");
        }
        let mut other = data.clone();
        other[999] ^= 1;
        let mut c = Checksum::default();
        c.update(&other);
        assert_ne!(c.finish(), expected);
        let mut shorter = Checksum::default();
        shorter.update(&data[..999]);
        assert_ne!(shorter.finish(), expected);
    }

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
}
