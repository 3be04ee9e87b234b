//! The tar format of torch < 0.4: members `sys_info`, `pickle`, `storages` and `tensors`.
//!
//! `storages` and `tensors` interleave small pickles with raw binary records, so the pickles can
//! only be found by reading the records between them the way `torch.serialization.legacy_load`
//! does. The object pickle refers to tensors by key through persistent ids.

use std::collections::HashMap;
use std::ops::Range;

use crate::pickle::torch::{TorchDType, dtype_from_storage_class};
use crate::pickle::value::Val;
use crate::pickle::vm::Program;

/// A storage record of the `storages` member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarStorage {
    /// Element type.
    pub dtype: TorchDType,
    /// Absolute byte range of its data in the archive.
    pub range: Range<u64>,
}

/// A tensor record of the `tensors` member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarTensor {
    /// Key of the storage it views.
    pub storage: String,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Strides, in elements.
    pub stride: Vec<u64>,
    /// Offset, in elements.
    pub offset: u64,
}

/// What the `storages` and `tensors` members hold.
#[derive(Clone, Debug, Default)]
pub struct TarLayout {
    /// Storages by key.
    pub storages: HashMap<String, TarStorage>,
    /// Storage views: key → (root key, offset in elements, elements).
    pub views: HashMap<String, (String, u64, u64)>,
    /// Tensors by key.
    pub tensors: HashMap<String, TarTensor>,
    /// What could not be read.
    pub problems: Vec<String>,
}

fn key_text(program: &Program, v: Val) -> Option<String> {
    program
        .arena
        .text(v)
        .or_else(|| program.arena.int(v).map(|i| i.to_string()))
}

fn count(program: &Program) -> Option<u64> {
    program
        .root
        .and_then(|r| program.arena.int(r))
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n <= crate::limits::MAX_TAR_RECORDS)
}

/// Reads a count pickle, then that many records, each a pickle followed by raw fields that
/// `body` reads (given the pickle's items and the offset just past it) and returns the offset
/// after. Stops at the first record that cannot be read; returns the offset after the last.
fn for_each_record(
    member: &str,
    layout: &mut TarLayout,
    run: &mut dyn FnMut(usize) -> Program,
    mut body: impl FnMut(&Program, &[Val], usize, &mut TarLayout) -> Option<usize>,
) -> Option<usize> {
    let first = run(0);
    let Some(n) = count(&first) else {
        layout
            .problems
            .push(format!("tar `{member}`: the record count cannot be read"));
        return None;
    };
    let mut at = first.end as usize;
    for _ in 0..n {
        let record = run(at);
        if record.error.is_some() {
            return None;
        }
        let items = record
            .root
            .and_then(|r| record.arena.seq(r).map(<[Val]>::to_vec))
            .unwrap_or_default();
        at = body(&record, &items, record.end as usize, layout)?;
    }
    Some(at)
}

fn i64_at(data: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(
        data.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Reads the `storages` member: a count, then per storage a pickle `(key, location, type)`
/// followed by an 8-byte element count and the raw bytes, then a pickle of storage views.
/// `run(start)` runs (and judges) the pickle starting at `start` in `data`.
pub fn read_storages(
    data: &[u8],
    base: u64,
    layout: &mut TarLayout,
    run: &mut dyn FnMut(usize) -> Program,
) {
    let Some(at) = for_each_record("storages", layout, run, |record, items, at, layout| {
        let key = items.first().and_then(|k| key_text(record, *k));
        let dtype = items
            .get(2)
            .and_then(|t| record.arena.global(*t))
            .and_then(|(_, name)| dtype_from_storage_class(name));
        let (Some(key), Some(dtype)) = (key, dtype) else {
            layout.problems.push(format!(
                "tar `storages`: record at {at} is not (key, location, storage type)"
            ));
            return None;
        };
        let Some(numel) = i64_at(data, at).and_then(|n| u64::try_from(n).ok()) else {
            layout.problems.push(format!(
                "tar `storages`: storage `{key}` has no element count"
            ));
            return None;
        };
        let len = numel.checked_mul(dtype.size())?;
        let start = at + 8;
        let Some(end) = (start as u64)
            .checked_add(len)
            .filter(|&e| e <= data.len() as u64)
        else {
            layout.problems.push(format!(
                "tar `storages`: storage `{key}` runs past the end of the member"
            ));
            return None;
        };
        layout.storages.insert(
            key,
            TarStorage {
                dtype,
                range: base + start as u64..base + end,
            },
        );
        Some(end as usize)
    }) else {
        return;
    };
    let views = run(at);
    if let Some(list) = views
        .root
        .and_then(|r| views.arena.seq(r).map(<[Val]>::to_vec))
    {
        for v in list {
            let Some(items) = views.arena.seq(v) else {
                continue;
            };
            let field = |i: usize| items.get(i).copied();
            let (Some(target), Some(root)) = (
                field(0).and_then(|k| key_text(&views, k)),
                field(1).and_then(|k| key_text(&views, k)),
            ) else {
                continue;
            };
            let offset = field(2)
                .and_then(|x| views.arena.int(x))
                .and_then(|x| u64::try_from(x).ok());
            let numel = field(3)
                .and_then(|x| views.arena.int(x))
                .and_then(|x| u64::try_from(x).ok());
            if let (Some(offset), Some(numel)) = (offset, numel) {
                layout.views.insert(target, (root, offset, numel));
            }
        }
    }
}

/// Reads the `tensors` member: a count, then per tensor a pickle `(key, storage key, type)`
/// followed by `ndim` (i32, plus 4 padding bytes), sizes and strides (i64 each) and the offset.
pub fn read_tensors(data: &[u8], layout: &mut TarLayout, run: &mut dyn FnMut(usize) -> Program) {
    for_each_record("tensors", layout, run, |record, items, mut at, layout| {
        let key = items.first().and_then(|k| key_text(record, *k));
        let storage = items.get(1).and_then(|k| key_text(record, *k));
        let (Some(key), Some(storage)) = (key, storage) else {
            layout.problems.push(format!(
                "tar `tensors`: record at {at} is not (key, storage, type)"
            ));
            return None;
        };
        let Some(ndim) = data
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_le_bytes)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= 64)
        else {
            layout.problems.push(format!(
                "tar `tensors`: tensor `{key}` has a bad dimension count"
            ));
            return None;
        };
        at += 8;
        let read = |at: &mut usize| -> Option<u64> {
            let v = i64_at(data, *at)?;
            *at += 8;
            u64::try_from(v).ok()
        };
        let shape: Option<Vec<u64>> = (0..ndim).map(|_| read(&mut at)).collect();
        let stride: Option<Vec<u64>> = (0..ndim).map(|_| read(&mut at)).collect();
        let offset = read(&mut at);
        let (Some(shape), Some(stride), Some(offset)) = (shape, stride, offset) else {
            layout
                .problems
                .push(format!("tar `tensors`: tensor `{key}` record is truncated"));
            return None;
        };
        layout.tensors.insert(
            key,
            TarTensor {
                storage,
                shape,
                stride,
                offset,
            },
        );
        Some(at)
    });
}
