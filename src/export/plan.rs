//! What an export will write: how each dtype is spelled for torch, which storages hold which
//! bytes, which names view them (tied weights sharing one storage again), in which order.
//!
//! safetensors stores tied tensors once: Hugging Face's `save_pretrained` and its `convert.py`
//! (and ckptscope's `convert`) drop the other name and record `dropped name -> kept name` in
//! `__metadata__`. Those entries, the user's `--tie ALIAS=TARGET`, and tensors whose
//! `data_offsets` are the same non-empty range give one storage viewed by several tensors, as
//! `torch.save` of a tied model writes it (two tensors, one `data/<key>` record).
//!
//! Owns: [`Plan`] and the dtype encodings. Must not import: `write`, `pickle`, `sharded`.
//!
//! `clippy::indexing_slicing` is allowed here: tensor and storage indexes are positions in the
//! plan's own vectors, made as they are filled.

#![allow(clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap};

use super::{ExportError, ExportOptions};
use crate::dtype::DType;
use crate::format::Checkpoint;

/// How a dtype's storage is named in the pickle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// A typed storage class (`torch.FloatStorage`) rebuilt by `_rebuild_tensor_v2`: what every
    /// torch since 1.6 reads (the zip format's first release).
    Typed(&'static str),
    /// `torch.storage.UntypedStorage` (sizes in bytes) and the dtype `torch.<name>`, rebuilt by
    /// `_rebuild_tensor_v3`: torch's own spelling for dtypes that have no storage class (they
    /// exist only in the torch versions that read it).
    Untyped(&'static str),
}

impl Encoding {
    /// Bytes per element of the storage's size field (1 for untyped storages).
    pub fn unit(self, dtype: DType) -> u64 {
        match self {
            Encoding::Typed(_) => dtype.byte_size().unwrap_or(1),
            Encoding::Untyped(_) => 1,
        }
    }
}

/// The torch spelling of a safetensors dtype, or why torch cannot hold it.
pub fn encoding(dtype: DType) -> Result<Encoding, &'static str> {
    use Encoding::{Typed, Untyped};
    Ok(match dtype {
        DType::BOOL => Typed("BoolStorage"),
        DType::U8 => Typed("ByteStorage"),
        DType::I8 => Typed("CharStorage"),
        DType::I16 => Typed("ShortStorage"),
        DType::I32 => Typed("IntStorage"),
        DType::I64 => Typed("LongStorage"),
        DType::F16 => Typed("HalfStorage"),
        DType::BF16 => Typed("BFloat16Storage"),
        DType::F32 => Typed("FloatStorage"),
        DType::F64 => Typed("DoubleStorage"),
        DType::C64 => Typed("ComplexFloatStorage"),
        DType::F8_E4M3 => Untyped("float8_e4m3fn"),
        DType::F8_E5M2 => Untyped("float8_e5m2"),
        DType::F8_E4M3FNUZ => Untyped("float8_e4m3fnuz"),
        DType::F8_E5M2FNUZ => Untyped("float8_e5m2fnuz"),
        DType::F8_E8M0 => Untyped("float8_e8m0fnu"),
        DType::U16 => Untyped("uint16"),
        DType::U32 => Untyped("uint32"),
        DType::U64 => Untyped("uint64"),
        DType::F4 => {
            return Err(
                "torch has no dtype of one FP4 value per element (`torch.float4_e2m1fn_x2` counts packed pairs, so every shape would change)",
            );
        }
        DType::F6_E2M3 | DType::F6_E3M2 => return Err("torch has no 6-bit float dtype"),
    })
}

/// One `data/<key>` record: a byte range of a source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoragePlan {
    /// Record key (`"0"`, `"1"`, ... in the order tensors first name them, as torch numbers
    /// them).
    pub key: String,
    /// Element type of every tensor viewing it.
    pub dtype: DType,
    /// Index into the checkpoint's sources.
    pub source: usize,
    /// Absolute byte range in that source.
    pub range: std::ops::Range<u64>,
}

impl StoragePlan {
    /// Bytes of the record.
    pub fn byte_len(&self) -> u64 {
        self.range.end - self.range.start
    }
}

/// One entry of the state dict: a name viewing a whole storage, row-major from offset 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorPlan {
    /// Name in the state dict.
    pub name: String,
    /// Index into [`Plan::storages`].
    pub storage: usize,
    /// Dimensions.
    pub shape: Vec<u64>,
}

/// What will be written.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Storages in record order.
    pub storages: Vec<StoragePlan>,
    /// State dict entries in order: the file's tensors, then restored tied names.
    pub tensors: Vec<TensorPlan>,
    /// `(alias, kept)`: names that view another tensor's storage.
    pub tied: Vec<(String, String)>,
    /// Ties recorded in the metadata that were not made, and why.
    pub notes: Vec<String>,
}

/// Where a tie request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// `--tie`: it must be honoured or the export fails.
    User,
    /// `__metadata__` (`dropped -> kept`): made when it can be, noted when not.
    Metadata,
}

/// Plans the export of every tensor of `ckpt`.
pub fn plan(ckpt: &Checkpoint, options: &ExportOptions) -> Result<Plan, ExportError> {
    let unsupported: Vec<(String, DType)> = ckpt
        .tensors
        .iter()
        .filter(|t| encoding(t.dtype).is_err())
        .map(|t| (t.name.clone(), t.dtype))
        .collect();
    if !unsupported.is_empty() {
        let mut dtypes: Vec<DType> = unsupported.iter().map(|(_, d)| *d).collect();
        dtypes.sort();
        dtypes.dedup();
        let why = dtypes
            .iter()
            .filter_map(|d| encoding(*d).err().map(|w| format!("{d}: {w}")))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ExportError::UnsupportedDtype {
            path: ckpt.path.clone(),
            tensors: unsupported,
            why,
        });
    }

    // One storage per tensor, except that the same non-empty range of the same file is one
    // storage (for the same dtype: torch refuses to save one storage viewed as two dtypes).
    let mut storages: Vec<StoragePlan> = Vec::new();
    let mut tensors: Vec<TensorPlan> = Vec::new();
    let mut by_range: HashMap<(usize, u64, u64, DType), usize> = HashMap::new();
    for t in &ckpt.tensors {
        let range = t.file_range();
        let key = (t.source, range.start, range.end, t.dtype);
        let storage = match by_range.get(&key) {
            Some(&s) if !range.is_empty() => s,
            _ => {
                storages.push(StoragePlan {
                    key: String::new(),
                    dtype: t.dtype,
                    source: t.source,
                    range,
                });
                by_range.insert(key, storages.len() - 1);
                storages.len() - 1
            }
        };
        tensors.push(TensorPlan {
            name: t.name.clone(),
            storage,
            shape: t.shape.clone(),
        });
    }
    let mut tied: Vec<(String, String)> = Vec::new();
    // Names sharing by range are ties too (reported as such).
    let mut first_of: HashMap<usize, String> = HashMap::new();
    for t in &tensors {
        match first_of.get(&t.storage) {
            Some(first) => tied.push((t.name.clone(), first.clone())),
            None => {
                first_of.insert(t.storage, t.name.clone());
            }
        }
    }

    let mut requests: BTreeMap<String, (String, Origin)> = BTreeMap::new();
    let present: HashMap<&str, usize> = tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    for (k, v) in &ckpt.metadata {
        if k != v && present.contains_key(v.as_str()) {
            requests.insert(k.clone(), (v.clone(), Origin::Metadata));
        }
    }
    for (alias, target) in &options.ties {
        if alias == target {
            return Err(ExportError::BadTie {
                alias: alias.clone(),
                target: target.clone(),
                reason: "a tensor cannot be tied to itself".into(),
            });
        }
        requests.insert(alias.clone(), (target.clone(), Origin::User));
    }
    let mut notes = Vec::new();
    // Requests whose target is itself a restored alias wait for it: rounds until none moves.
    let mut pending: Vec<(String, String, Origin)> =
        requests.into_iter().map(|(a, (t, o))| (a, t, o)).collect();
    let mut index: HashMap<String, usize> = tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    loop {
        let before = pending.len();
        let mut waiting = Vec::new();
        for (alias, target, origin) in pending {
            let Some(&ti) = index.get(&target) else {
                waiting.push((alias, target, origin));
                continue;
            };
            let (t_storage, t_shape) = (tensors[ti].storage, tensors[ti].shape.clone());
            match index.get(&alias) {
                None => {
                    tensors.push(TensorPlan {
                        name: alias.clone(),
                        storage: t_storage,
                        shape: t_shape,
                    });
                    index.insert(alias.clone(), tensors.len() - 1);
                    tied.push((alias, target));
                }
                Some(&ai) if tensors[ai].storage == t_storage => {}
                Some(&ai) => {
                    let a = &storages[tensors[ai].storage];
                    let b = &storages[t_storage];
                    let why = if a.dtype != b.dtype {
                        Some(format!(
                            "`{alias}` is {} and `{target}` {}",
                            a.dtype, b.dtype
                        ))
                    } else if a.byte_len() != b.byte_len() {
                        Some(format!(
                            "`{alias}` has {} bytes and `{target}` {}",
                            a.byte_len(),
                            b.byte_len()
                        ))
                    } else if !same_bytes(ckpt, a, b)? {
                        Some("their bytes differ".to_string())
                    } else {
                        None
                    };
                    match (why, origin) {
                        (None, _) => {
                            let old = tensors[ai].storage;
                            for t in tensors.iter_mut().filter(|t| t.storage == old) {
                                t.storage = t_storage;
                            }
                            tied.retain(|(x, _)| *x != alias);
                            tied.push((alias, target));
                        }
                        (Some(reason), Origin::User) => {
                            return Err(ExportError::BadTie {
                                alias,
                                target,
                                reason,
                            });
                        }
                        (Some(reason), Origin::Metadata) => notes.push(format!(
                            "the metadata ties `{alias}` to `{target}`, but {reason}: both written apart"
                        )),
                    }
                }
            }
        }
        pending = waiting;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    for (alias, target, origin) in pending {
        match origin {
            Origin::User => {
                return Err(ExportError::BadTie {
                    alias,
                    target: target.clone(),
                    reason: format!("there is no tensor `{target}`"),
                });
            }
            Origin::Metadata => notes.push(format!(
                "the metadata ties `{alias}` to `{target}`, which is not in the file: not restored"
            )),
        }
    }

    // Keys numbered in the order the state dict first names each storage, unused ones gone.
    let mut renumber: HashMap<usize, usize> = HashMap::new();
    let mut kept: Vec<StoragePlan> = Vec::new();
    for t in &mut tensors {
        let new = *renumber.entry(t.storage).or_insert_with(|| {
            let mut s = storages[t.storage].clone();
            s.key = kept.len().to_string();
            kept.push(s);
            kept.len() - 1
        });
        t.storage = new;
    }
    tied.sort();
    tied.dedup();
    Ok(Plan {
        storages: kept,
        tensors,
        tied,
        notes,
    })
}

/// True when two storages of the same length hold the same bytes (compared through the map).
fn same_bytes(ckpt: &Checkpoint, a: &StoragePlan, b: &StoragePlan) -> Result<bool, ExportError> {
    let bytes = |s: &StoragePlan| -> Result<&[u8], ExportError> {
        let source = ckpt.sources.get(s.source).ok_or_else(|| {
            crate::pipeline::WriteError::internal(&ckpt.path, "a storage names a missing shard")
        })?;
        let map = source.mapped()?.bytes();
        usize::try_from(s.range.start)
            .ok()
            .zip(usize::try_from(s.range.end).ok())
            .and_then(|(x, y)| map.get(x..y))
            .ok_or_else(|| ExportError::Changed {
                path: source.path.clone(),
                what: "a tensor lies outside the file".into(),
            })
    };
    Ok(bytes(a)? == bytes(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_has_an_encoding_or_a_reason() {
        for d in DType::ALL {
            match encoding(d) {
                Ok(Encoding::Typed(class)) => assert!(class.ends_with("Storage")),
                Ok(Encoding::Untyped(name)) => assert!(!name.is_empty()),
                Err(why) => assert!(
                    matches!(d, DType::F4 | DType::F6_E2M3 | DType::F6_E3M2),
                    "{why}"
                ),
            }
        }
        assert_eq!(encoding(DType::F32).unwrap().unit(DType::F32), 4);
        assert_eq!(encoding(DType::U16).unwrap().unit(DType::U16), 1);
    }
}
