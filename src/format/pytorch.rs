//! Pickle-based checkpoints (PyTorch zip, legacy and tar files, raw pickles) opened as a
//! [`Checkpoint`], without executing anything: the one adapter from the pickle engine to the
//! checkpoint model. NumPy files have their own reader, `numpy`, which uses this adapter
//! only for the pickles of object arrays.
//!
//! The pickle engine judges the file and reads the tree of objects; this module maps each tensor
//! to the bytes it views: a storage record of the archive (zip), a raw storage after the pickles
//! (legacy), or a record of the `storages` member (tar). A tensor stays a strided view of its
//! storage, exactly as torch saved it; every view is checked to lie inside its record before it
//! is listed, so later decoding can trust the offsets.

use std::collections::HashMap;
use std::ops::Range;

use crate::error::Error;
use crate::format::derived::Derived;
use crate::format::mapped::MappedFile;
use crate::format::{ByteOrder, Checkpoint, Format, Layout, Source, TensorEntry};
use crate::limits::Limits;
use crate::pickle::policy::Policy;
use crate::pickle::torch::{self, PickledTensor, StorageRef, TorchDType, UnsupportedTensor};
use crate::pickle::torchscript::{self, Code};
use crate::pickle::value::{Arena, Val};
use crate::pickle::{self, Analysis, StreamReport, container};
use crate::verdict::{Finding, Verdict};

/// How a pickle-based file is opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PickleOptions {
    /// The allowlist and the user's additions.
    pub policy: Policy,
    /// Tensors are listed only for files whose verdict is at most this (default: safe only).
    /// Nothing is ever executed either way; this is about what the user chose to look into.
    pub trust: Option<Verdict>,
}

impl PickleOptions {
    fn trusts(&self, verdict: Verdict) -> bool {
        verdict <= self.trust.unwrap_or(Verdict::Safe)
    }
}

/// What the safe pickle engine found in a pickle-based file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PickleReport {
    /// `safe`, `suspicious` or `dangerous`.
    pub verdict: Verdict,
    /// Why, worst first.
    pub findings: Vec<Finding>,
    /// Every pickle stream that was run.
    pub streams: Vec<StreamReport>,
    /// Everything that is not a tensor (epoch, hyper-parameters, optimizer scalars...), with
    /// tensors shown as short descriptions.
    pub objects: serde_json::Value,
    /// Tensors that cannot be read, and why.
    pub unsupported: Vec<UnsupportedTensor>,
    /// True when tensors were not listed because of the verdict.
    pub withheld: bool,
    /// Limits the reading ran into.
    pub notes: Vec<String>,
    /// TorchScript archives: the program's files and flagged lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torchscript: Option<Code>,
    /// Whether `torch.load(weights_only=True)` loads the file: a question apart from the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights_only: Option<crate::pickle::compat::WeightsOnly>,
}

impl PickleReport {
    /// The verdict that decides whether tensors are listed and converted: the scan verdict
    /// without the one finding that says a TorchScript archive is a program. ckptscope never
    /// runs that program and a safetensors export holds none of it, while everything the
    /// program does beyond tensors (files, network, native code) is a finding of its own.
    pub fn read_verdict(&self) -> Verdict {
        let program = self.torchscript.as_ref().and_then(|c| c.program.as_ref());
        Verdict::of(self.findings.iter().filter(|f| Some(*f) != program))
    }
}

/// Opens a mapped pickle-based file.
pub fn open(
    mapped: MappedFile,
    format: Format,
    limits: &Limits,
    options: &PickleOptions,
    progress: Option<&crate::progress::Progress>,
) -> Result<Checkpoint, Error> {
    let analysis = analyze(&mapped, format, &options.policy, limits, progress)?;
    let (report, tensors) = pickled(mapped.bytes(), &analysis, limits, options);
    Ok(checkpoint(mapped, format, tensors, Vec::new(), report))
}

/// Runs the pickle engine over a mapped file; an error only when `progress` cancelled it.
pub(crate) fn analyze(
    mapped: &MappedFile,
    format: Format,
    policy: &Policy,
    limits: &Limits,
    progress: Option<&crate::progress::Progress>,
) -> Result<Analysis, Error> {
    let analysis = pickle::analyze(mapped.bytes(), format, policy, limits, progress);
    if analysis.cancelled {
        return Err(Error::Cancelled {
            path: mapped.path().to_path_buf(),
        });
    }
    Ok(analysis)
}

/// What the engine's `analysis` of `bytes` gives a checkpoint: the report (verdict, findings,
/// the non-tensor tree), and the tensors of the loader's pickle, listed only when `options`
/// trust its verdict and each viewed inside its storage record.
pub(crate) fn pickled(
    bytes: &[u8],
    analysis: &Analysis,
    limits: &Limits,
    options: &PickleOptions,
) -> (PickleReport, Vec<TensorEntry>) {
    let mut report = PickleReport {
        verdict: analysis.verdict,
        findings: analysis.findings.clone(),
        streams: analysis.streams.clone(),
        objects: serde_json::Value::Null,
        unsupported: Vec::new(),
        withheld: false,
        notes: Vec::new(),
        torchscript: analysis.torchscript.clone(),
        weights_only: analysis.weights_only.clone(),
    };
    let read_verdict = report.read_verdict();
    let mut tensors = Vec::new();
    let byte_order = match &analysis.zip {
        Some(z) if z.big_endian => ByteOrder::Big,
        _ => ByteOrder::Little,
    };

    let tar_tensors = analysis.tar.as_ref().map(tar_tensor_map);
    if let Some(program) = &analysis.object
        && let Some(root) = program.root
    {
        let mut extracted = torch::extract_with(&program.arena, root, tar_tensors.as_ref());
        if let Some(code) = &analysis.torchscript {
            torchscript_state_dict(&program.arena, root, code, &mut extracted);
        }
        report.objects = extracted.objects;
        report.notes = extracted.notes;
        report.unsupported = extracted.unsupported;
        // (A TorchScript module's state dict leaves out tensor attributes on purpose.)
        if analysis.torchscript.is_none()
            && let Some(note) =
                unviewed_storages(&program.arena, &extracted.tensors, &report.unsupported)
        {
            report.notes.push(note);
        }
        if options.trusts(read_verdict) {
            let records = Records::new(bytes, analysis);
            for t in extracted.tensors {
                match entry(&t, &records, byte_order) {
                    Ok(e) => {
                        if e.expansion() > limits.max_expansion {
                            report.notes.push(format!(
                                "`{}` is an expanded view: {} bytes of values read from {} bytes of storage (a stride of 0); convert refuses it unless asked to materialize expanded tensors",
                                e.name,
                                e.byte_len(),
                                e.region_len()
                            ));
                        }
                        tensors.push(e);
                    }
                    Err(reason) => report.unsupported.push(UnsupportedTensor {
                        name: t.name.clone(),
                        reason,
                        root: t.root.clone(),
                    }),
                }
            }
        } else {
            report.withheld = !extracted.tensors.is_empty();
        }
    }
    (report, tensors)
}

/// The checkpoint of one mapped pickle-based file: `tensors` view the file (source 0) or, one
/// each, the `derived` sources made from it.
pub(crate) fn checkpoint(
    mapped: MappedFile,
    format: Format,
    tensors: Vec<TensorEntry>,
    derived: Vec<Derived>,
    report: PickleReport,
) -> Checkpoint {
    let path = mapped.path().to_path_buf();
    let file_size = mapped.len();
    let mut sources = vec![Source::whole_file(path.clone(), file_size, 0).with_map(mapped)];
    sources.extend(
        derived
            .into_iter()
            .map(|d| Source::derived(0, path.clone(), file_size, d)),
    );
    for t in &tensors {
        if let Some(s) = sources.get_mut(t.source) {
            s.tensor_count += 1;
        }
    }
    let mut ckpt = Checkpoint::new(path, format, Vec::new(), tensors, sources, Vec::new());
    ckpt.pickle = Some(Box::new(report));
    ckpt
}

/// A note when the pickle names storages that no tensor found views: the file builds some
/// tensors in a way ckptscope does not follow, and a viewer must say so rather than show fewer
/// tensors than the file holds. (Storages inside unsupported tensors, sparse ones say, are not
/// attributed, so the check is skipped when there are any.)
fn unviewed_storages(
    arena: &pickle::value::Arena,
    tensors: &[PickledTensor],
    unsupported: &[UnsupportedTensor],
) -> Option<String> {
    if !unsupported.is_empty() {
        return None;
    }
    let viewed: std::collections::HashSet<&str> = tensors
        .iter()
        .flat_map(|t| {
            [
                Some(t.storage.key.as_str()),
                t.storage.view.as_ref().map(|v| v.0.as_str()),
            ]
        })
        .flatten()
        .collect();
    let mut unviewed: Vec<String> = torch::storage_keys(arena)
        .into_iter()
        .filter(|k| !viewed.contains(k.as_str()))
        .collect();
    if unviewed.is_empty() {
        return None;
    }
    let total = unviewed.len();
    unviewed.truncate(5);
    Some(format!(
        "{total} storage(s) named by the pickle are viewed by no tensor listed here ({}{}): the file builds some tensors in a way ckptscope does not follow, so the list may be incomplete",
        unviewed.join(", "),
        if total > 5 { ", …" } else { "" }
    ))
}

/// Replaces the tensors found by dotted path with the module tree's `state_dict()`, as
/// `torch.jit.load(f).state_dict()` names them (attributes that are neither parameters nor
/// buffers are left out, as torch leaves them out).
fn torchscript_state_dict(arena: &Arena, root: Val, code: &Code, extracted: &mut torch::Extracted) {
    let Some(sd) = torchscript::state_dict(arena, root, code) else {
        extracted.notes.push(
            "the object pickle is not a TorchScript module (no `__torch__` module class at its root): tensors are listed by their pickle paths".into(),
        );
        return;
    };
    extracted.tensors.clear();
    extracted.unsupported.clear();
    extracted.notes.extend(sd.notes);
    for (name, value) in sd.entries {
        let one = torch::extract(arena, value);
        match (
            one.tensors.into_iter().next(),
            one.unsupported.into_iter().next(),
        ) {
            (Some(mut t), _) => {
                t.name = name;
                extracted.tensors.push(t);
            }
            (None, Some(mut u)) => {
                u.name = name;
                extracted.unsupported.push(u);
            }
            (None, None) => extracted.unsupported.push(UnsupportedTensor {
                reason: format!(
                    "listed as a parameter or buffer, but it holds {}",
                    arena.repr(value, 60)
                ),
                name,
                root: None,
            }),
        }
    }
}

/// Tensors of a tar file, by the key its object pickle uses for them.
fn tar_tensor_map(layout: &pickle::tar::TarLayout) -> HashMap<String, PickledTensor> {
    let mut out = HashMap::new();
    for (key, t) in &layout.tensors {
        let (root, view_offset) = match layout.views.get(&t.storage) {
            Some((root, offset, _)) => (root.clone(), *offset),
            None => (t.storage.clone(), 0),
        };
        let Some(storage) = layout.storages.get(&root) else {
            continue;
        };
        out.insert(
            key.clone(),
            PickledTensor {
                name: String::new(),
                dtype: storage.dtype.clone(),
                shape: t.shape.clone(),
                stride: t.stride.clone(),
                offset: t.offset.saturating_add(view_offset),
                storage: StorageRef {
                    key: root,
                    dtype: storage.dtype.clone(),
                    untyped: false,
                    location: String::new(),
                    numel: None,
                    view: None,
                },
                parameter: false,
                node: 0,
                root: None,
            },
        );
    }
    out
}

/// Where each storage's bytes are in the file.
struct Records<'a> {
    bytes: &'a [u8],
    analysis: &'a Analysis,
    legacy: HashMap<String, Result<Range<u64>, String>>,
}

impl<'a> Records<'a> {
    fn new(bytes: &'a [u8], analysis: &'a Analysis) -> Self {
        let mut legacy = HashMap::new();
        if let (Some(layout), Some(keys), Some(object)) =
            (&analysis.legacy, &analysis.legacy_keys, &analysis.object)
        {
            let storages = torch::storages(&object.arena);
            let order = keys
                .root
                .and_then(|r| torch::key_list(&keys.arena, r))
                .unwrap_or_default();
            let mut at = layout.storages_start;
            for key in order {
                let Some(storage) = storages.get(&key) else {
                    legacy.insert(
                        key,
                        Err("the storage is listed but never used, so its size is unknown".into()),
                    );
                    break;
                };
                let numel = bytes
                    .get(at as usize..at as usize + 8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(|b| {
                        if layout.little_endian {
                            i64::from_le_bytes(b)
                        } else {
                            i64::from_be_bytes(b)
                        }
                    })
                    .and_then(|n| u64::try_from(n).ok());
                let range = numel
                    .and_then(|n| n.checked_mul(storage.dtype.size()))
                    .and_then(|len| (at + 8).checked_add(len).map(|end| at + 8..end))
                    .filter(|r| r.end <= bytes.len() as u64);
                match range {
                    Some(r) => {
                        at = r.end;
                        legacy.insert(key, Ok(r));
                    }
                    None => {
                        legacy.insert(
                            key,
                            Err("the raw storage runs past the end of the file".into()),
                        );
                        break;
                    }
                }
            }
        }
        Records {
            bytes,
            analysis,
            legacy,
        }
    }

    fn range(&self, key: &str) -> Result<Range<u64>, String> {
        if let Some(zip) = &self.analysis.zip {
            let entry = zip
                .record(key)
                .ok_or_else(|| format!("the archive has no record `data/{key}`"))?;
            return container::stored_range(self.bytes, entry);
        }
        if let Some(tar) = &self.analysis.tar {
            return tar
                .storages
                .get(key)
                .map(|s| s.range.clone())
                .ok_or_else(|| format!("the tar archive has no storage `{key}`"));
        }
        match self.legacy.get(key) {
            Some(r) => r.clone(),
            None => Err(format!(
                "storage `{key}` is not among the file's raw storages"
            )),
        }
    }
}

/// Checks that a strided view lies inside `record_len` bytes and returns the bytes it needs.
pub fn view_extent(shape: &[u64], stride: &[u64], offset: u64, elem_bits: u64) -> Option<u64> {
    if shape.contains(&0) {
        return Some(0);
    }
    let mut last = offset;
    for (&n, &s) in shape.iter().zip(stride) {
        last = last.checked_add(n.checked_sub(1)?.checked_mul(s)?)?;
    }
    last.checked_add(1)?
        .checked_mul(elem_bits)
        .map(|bits| bits.div_ceil(8))
}

fn entry(
    t: &PickledTensor,
    records: &Records<'_>,
    byte_order: ByteOrder,
) -> Result<TensorEntry, String> {
    let TorchDType::Supported(dtype) = t.dtype else {
        return Err(format!(
            "dtype {} has no safetensors equivalent",
            t.dtype.label()
        ));
    };
    let range = records.range(&t.storage.key)?;
    let need = view_extent(&t.shape, &t.stride, t.offset, dtype.bits())
        .ok_or_else(|| "size × stride overflows".to_string())?;
    let have = range.end - range.start;
    if need > have {
        return Err(format!(
            "it reads {need} bytes of storage `{}` but the record holds {have}",
            t.storage.key
        ));
    }
    if t.shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .and_then(|n| dtype.bytes_for(n))
        .is_none()
    {
        return Err("its element count is too large".into());
    }
    Ok(TensorEntry {
        name: t.name.clone(),
        dtype,
        quant: None,
        shape: t.shape.clone(),
        source: 0,
        data_offsets: [range.start, range.end],
        file_offset: range.start,
        layout: Layout::Strided {
            offset: t.offset,
            strides: t.stride.clone(),
        },
        byte_order: if dtype.byte_size() == Some(1) {
            ByteOrder::Little
        } else {
            byte_order
        },
        storage: Some(t.storage.key.clone()),
        device: (!t.storage.location.is_empty()).then(|| t.storage.location.clone()),
        root: t.root.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_extents() {
        // 8x6 transposed view of 48 floats: last element at 7*1 + 5*8 = 47.
        assert_eq!(view_extent(&[8, 6], &[1, 8], 0, 32), Some(48 * 4));
        assert_eq!(view_extent(&[3, 4], &[0, 1], 0, 32), Some(16));
        assert_eq!(view_extent(&[], &[], 5, 32), Some(24));
        assert_eq!(view_extent(&[0, 7], &[7, 1], 0, 32), Some(0));
        assert_eq!(view_extent(&[u64::MAX, 2], &[u64::MAX, 1], 0, 32), None);
    }
}
