//! What a conversion will write: which tensors under which names, which root was taken,
//! what is left out or aliased, and which tensors copy as plain byte ranges.
//!
//! Owns: [`Plan`]. Must not import: `write`, `verify`, `sharded`.
//!
//! `clippy::indexing_slicing` is allowed here: the first skipped tensor is read after checking the
//! list is not empty.

#![allow(clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap};

use super::{ConvertError, ConvertOptions, WEIGHT_KEYS};
use crate::dtype::DType;
use crate::format::gather;
use crate::format::{Checkpoint, Format, GgmlType, Layout, TensorEntry};
use crate::pickle::policy::Verdict;
use crate::pickle::torch::UnsupportedTensor;

/// What will be written.
pub(super) struct Plan<'a> {
    /// `(output name, tensor)`, in file order.
    pub(super) tensors: Vec<(String, &'a TensorEntry)>,
    pub(super) aliases: Vec<(String, String)>,
    pub(super) skipped: Vec<UnsupportedTensor>,
    pub(super) exported: Option<String>,
    pub(super) left_out: Vec<String>,
    pub(super) metadata: BTreeMap<String, String>,
    /// The input's verdict.
    pub(super) verdict: Verdict,
    /// Output name → the dtype a block-quantized tensor's decoded values are written in.
    pub(super) cast: HashMap<String, DType>,
}

impl Plan<'_> {
    /// The dtype `name` is written in.
    pub(super) fn dtype_of(&self, name: &str, t: &TensorEntry) -> DType {
        self.cast.get(name).copied().unwrap_or(t.dtype)
    }
}

pub(super) fn plan<'a>(
    ckpt: &'a Checkpoint,
    verdict: Verdict,
    options: &ConvertOptions,
) -> Result<Plan<'a>, ConvertError> {
    let all = options.all;
    let report = ckpt.pickle.as_deref();
    // A pickle says which tensors it could not rebuild; any other reader says it in its findings.
    let unsupported: Vec<UnsupportedTensor> = match report {
        Some(r) => r.unsupported.clone(),
        None => super::source::unreadable(ckpt),
    };
    // The weights: the first preferred top-level entry that is a nested mapping holding
    // tensors (Lightning's `state_dict`, `{"model": ..., "optimizer": ...}`), unless --all. A
    // flat state dict (`model.embed_tokens.weight`, `lm_head.weight`) keeps every name as is,
    // and so does a TorchScript module's state dict.
    let exported = if all || ckpt.format == Format::Torchscript || report.is_none() {
        None
    } else {
        WEIGHT_KEYS
            .iter()
            .find(|k| {
                ckpt.tensors.iter().any(|t| t.root.as_deref() == Some(**k))
                    || unsupported.iter().any(|u| u.root.as_deref() == Some(**k))
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
    // Block-quantized tensors are written decoded, in the dtype asked for, or not at all.
    let mut cast = HashMap::new();
    let mut undecodable = Vec::new();
    let quantized: Vec<GgmlType> = chosen.iter().filter_map(|(_, t)| t.quant).collect();
    if !quantized.is_empty() {
        let Some(dtype) = options.dequantize else {
            let mut types: Vec<String> = quantized.iter().map(|q| q.name().to_string()).collect();
            types.sort();
            types.dedup();
            return Err(ConvertError::Quantized {
                path: ckpt.path.clone(),
                quantized: quantized.len(),
                tensors: ckpt.tensors.len(),
                types,
            });
        };
        chosen.retain(|(name, t)| match t.quant {
            Some(q) if !crate::analysis::quant::supported(q) => {
                undecodable.push(UnsupportedTensor {
                    name: name.clone(),
                    reason: format!("{} blocks are not decoded by ckptscope", q.name()),
                    root: None,
                });
                false
            }
            Some(_) => {
                cast.insert(name.clone(), dtype);
                true
            }
            None => true,
        });
    }
    let mut skipped = undecodable;
    for u in &unsupported {
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
    for (name, t) in chosen.iter().filter(|(_, t)| t.quant.is_none()) {
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
    let dtype = |name: &str, t: &TensorEntry| cast.get(name).copied().unwrap_or(t.dtype);
    tensors.sort_by(|(an, a), (bn, b)| dtype(bn, b).cmp(&dtype(an, a)).then(an.cmp(bn)));

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
    if report.is_none() {
        let (carried, dropped) = super::source::metadata(ckpt);
        for (k, v) in carried {
            metadata.entry(k).or_insert(v);
        }
        if !dropped.is_empty() {
            metadata.insert(
                "ckptscope.metadata_left_out".into(),
                serde_json::to_string(&dropped).unwrap_or_default(),
            );
        }
    }
    if ckpt.format == Format::Gguf {
        let types: BTreeMap<&str, &str> = tensors
            .iter()
            .map(|(name, t)| (name.as_str(), t.type_name()))
            .collect();
        metadata.insert(
            "ckptscope.ggml_types".into(),
            serde_json::to_string(&types).unwrap_or_default(),
        );
        if let Some(d) = options.dequantize.filter(|_| !cast.is_empty()) {
            metadata.insert(
                "ckptscope.dequantized".into(),
                d.name().to_ascii_lowercase(),
            );
        }
    }
    // Non-tensor values of the root (epoch, global_step, hyper_parameters...), as JSON.
    if let Some(serde_json::Value::Object(root)) = report.map(|r| &r.objects) {
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
        verdict,
        cast,
    })
}

/// Names of output heads that models tie to their input embedding (`lm_head.weight`,
/// GPT-NeoX's `embed_out.weight`).
pub(super) fn is_tied_head(name: &str) -> bool {
    name.split('.')
        .any(|part| part == "lm_head" || part == "embed_out")
}

/// Refuses a tensor whose packed bytes exceed the storage it views by more than the expansion
/// limit, unless the user asked for expanded tensors to be materialized.
pub(super) fn check_expansion(
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
pub(super) fn packed_len(ckpt: &Checkpoint, t: &TensorEntry) -> Result<u64, ConvertError> {
    t.shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .and_then(|n| t.dtype.bytes_for(n))
        .ok_or_else(|| {
            ConvertError::from(crate::pipeline::WriteError::TooLarge {
                path: ckpt.path.clone(),
                what: format!("the size of tensor `{}`", t.name),
            })
        })
}

pub(super) fn layout_key(t: &TensorEntry) -> String {
    match &t.layout {
        Layout::Contiguous => format!("c{}", t.data_offsets[0]),
        Layout::Strided { offset, strides } => format!("s{offset}:{strides:?}"),
    }
}

/// The absolute file range of a tensor whose packed bytes are a plain range of its file
/// (row-major, little-endian, whole bytes): most tensors of most checkpoints.
pub(super) fn plain_range(ckpt: &Checkpoint, t: &TensorEntry) -> Option<std::ops::Range<u64>> {
    if t.quant.is_some() {
        return None;
    }
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
