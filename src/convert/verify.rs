//! Checking a written output against its plan: its header, and the archive members whose
//! CRC-32 the hashing pass checks.
//!
//! Owns: the read-back of the header. Must not import: `write`,
//! `sharded`.

use std::path::Path;

use super::ConvertError;
use super::plan::Plan;
use crate::error::Error;
use crate::format::Checkpoint;
use crate::pipeline::WriteError;

/// Reads the written output's header back: it must list every planned tensor with its dtype,
/// shape and size, inside the data section. The bytes were read back as they were written (packed
/// ranges by checksum, compared with the source's by the caller; gathered and decoded tensors
/// chunk by chunk).
pub(super) fn verify(
    plan: &Plan<'_>,
    output: &Path,
    written: &Path,
    data_start: u64,
) -> Result<(), ConvertError> {
    let mismatch = |tensor: Option<&str>, what: String| {
        ConvertError::from(WriteError::mismatch(output, tensor, what))
    };
    let out = crate::format::open(written).map_err(WriteError::read_back)?;
    if out.tensors.len() != plan.tensors.len() {
        return Err(mismatch(
            None,
            format!(
                "{} tensors read back, {} written",
                out.tensors.len(),
                plan.tensors.len()
            ),
        ));
    }
    for (name, t) in &plan.tensors {
        let o = out
            .tensor(name)
            .ok_or_else(|| mismatch(Some(name), "is missing".into()))?;
        let dtype = plan.dtype_of(name, t);
        let len = match t.quant {
            Some(_) => dtype.bytes_for(t.elements()),
            None => Some(t.byte_len()),
        };
        if o.dtype != dtype
            || o.shape != t.shape
            || o.file_offset < data_start
            || Some(o.byte_len()) != len
        {
            return Err(mismatch(
                Some(name),
                format!("reads back as {} {:?}", o.dtype, o.shape),
            ));
        }
    }
    Ok(())
}

/// A stored zip member that planned tensors are copied from, with its recorded CRC-32.
pub(super) struct Member {
    pub(super) entry: crate::archive::zip::ZipEntry,
    pub(super) range: std::ops::Range<u64>,
    /// Output names of the tensors read from it.
    pub(super) tensors: Vec<String>,
}

/// The archive members the plan reads (none for files that are not zip archives), found by the
/// byte range each tensor's storage occupies.
pub(super) fn zip_members(ckpt: &Checkpoint, plan: &Plan<'_>) -> Result<Vec<Member>, ConvertError> {
    use crate::archive::zip;
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
