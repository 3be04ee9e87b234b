//! What a data-only input (ONNX, GGUF, and any format whose reader is not a pickle) brings to a
//! conversion, read from the [`Checkpoint`] every reader gives: its verdict, the tensors its
//! reader could not read, and its metadata under the mapping below.
//!
//! Metadata mapping (into the output's `__metadata__`):
//! - ONNX: every pair the reader gives, under its own key: the `ModelProto` fields as
//!   `onnx.ir_version`, `onnx.producer_name`, `onnx.opset_import`..., then `metadata_props`
//!   under their own keys.
//! - GGUF: every metadata key under its own name (`general.architecture`), its value as text
//!   (strings as they are, numbers in decimal, booleans `true`/`false`, whole numeric arrays as
//!   `[a, b, ...]`). Arrays of strings (the tokenizer's vocabulary) are not carried: the reader
//!   keeps only their first items; they are named in `ckptscope.metadata_left_out`.
//! - Any format: a key `format` or `ckptscope.*` from the file is not carried (those are the
//!   converter's), nor a value over 1 MiB; both are named in `ckptscope.metadata_left_out`.
//!
//! Owns: the data-only route's verdict, unreadable list and metadata. Must not import: `write`,
//! `verify`, `sharded`, `plan`.

use std::collections::BTreeMap;

use crate::format::{Checkpoint, Format, Severity};
use crate::pickle::policy::{Risk, Verdict};
use crate::pickle::torch::UnsupportedTensor;

/// Values longer than this are not carried into the output's metadata.
const MAX_VALUE: usize = 1 << 20;

/// The input's verdict and its worst findings, judged as `scan` judges the format: a GGUF file
/// by its chat templates, an ONNX model by its external data locations, any other data-only
/// file by whether its reader found parts it could not read.
pub(super) fn verdict(ckpt: &Checkpoint) -> (Verdict, String) {
    let bytes = ckpt
        .sources
        .first()
        .and_then(|s| s.mapped().ok())
        .map(|m| m.bytes());
    let mut risks: Vec<(Risk, String)> = Vec::new();
    // The format's own judgement, as `scan` gives it (the registry's reader).
    if let (Some(reader), Some(bytes), Some(path)) = (
        crate::format::registry::lookup(ckpt.format).reader,
        bytes,
        ckpt.sources.first().map(|s| s.path.as_path()),
    ) {
        let judged = reader.judge(&crate::format::Input {
            path,
            bytes,
            file_len: bytes.len() as u64,
            format: ckpt.format,
            policy: &crate::pickle::policy::Policy::default(),
            limits: &crate::Limits::DEFAULT,
        });
        if let Ok(judged) = judged {
            risks.extend(judged.findings.into_iter().map(|f| (f.risk, f.reason)));
        }
    }
    risks.extend(
        ckpt.issues
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (Risk::Suspicious, f.message.clone())),
    );
    let verdict = risks
        .iter()
        .map(|(r, _)| match r {
            Risk::Info => Verdict::Safe,
            Risk::Suspicious => Verdict::Suspicious,
            Risk::Dangerous => Verdict::Dangerous,
        })
        .max()
        .unwrap_or(Verdict::Safe);
    risks.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
    let summary = risks
        .iter()
        .filter(|(r, _)| *r > Risk::Info)
        .take(3)
        .map(|(_, why)| why.clone())
        .collect::<Vec<_>>()
        .join(", ");
    (verdict, summary)
}

/// The tensors the reader listed as not read (its findings `` `name` not read: why ``), and
/// any other part it says it did not read (sub-graphs too deep), under the name `(file)`.
pub(super) fn unreadable(ckpt: &Checkpoint) -> Vec<UnsupportedTensor> {
    ckpt.issues
        .iter()
        .filter(|f| f.severity >= Severity::Warning && f.message.contains(" not read"))
        .map(|f| {
            let named = f
                .message
                .strip_prefix('`')
                .and_then(|rest| rest.split_once("` not read: "));
            match named {
                Some((name, reason)) => UnsupportedTensor {
                    name: name.to_string(),
                    reason: reason.to_string(),
                    root: None,
                },
                None => UnsupportedTensor {
                    name: "(file)".into(),
                    reason: f.message.clone(),
                    root: None,
                },
            }
        })
        .collect()
}

/// The input's metadata as the output carries it, and the keys left out.
pub(super) fn metadata(ckpt: &Checkpoint) -> (BTreeMap<String, String>, Vec<String>) {
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    match ckpt.format {
        Format::Gguf => {
            let bytes = ckpt
                .sources
                .first()
                .and_then(|s| s.mapped().ok())
                .map(|m| m.bytes());
            if let Some(Ok(header)) =
                bytes.map(|b| crate::format::gguf::parse(b, &crate::Limits::DEFAULT))
            {
                for (key, value) in &header.metadata {
                    pairs.push((key.clone(), gguf_text(value)));
                }
            }
        }
        _ => pairs.extend(
            ckpt.metadata
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone()))),
        ),
    }
    let mut carried = BTreeMap::new();
    let mut left_out = Vec::new();
    for (key, value) in pairs {
        match value {
            Some(v)
                if key != "format"
                    && !key.starts_with("ckptscope.")
                    && v.len() <= MAX_VALUE
                    && !carried.contains_key(&key) =>
            {
                carried.insert(key, v);
            }
            _ => left_out.push(key),
        }
    }
    (carried, left_out)
}

/// A GGUF value as text, when the reader holds all of it.
fn gguf_text(value: &crate::format::gguf::Value) -> Option<String> {
    use crate::format::gguf::Value;
    match value {
        Value::Array { item, len, first } => {
            let numeric = !matches!(
                item,
                crate::format::gguf::ValueType::String | crate::format::gguf::ValueType::Array
            );
            (numeric && u64::try_from(first.len()).ok() == Some(*len)).then(|| value.render())
        }
        other => Some(other.render()),
    }
}
