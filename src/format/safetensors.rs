//! The safetensors container: `u64` header length, JSON header, raw little-endian tensor bytes.
//!
//! Validation is the `safetensors` crate's: its `Metadata` deserializer checks dtypes, shapes,
//! overflow and that tensors tile the data section. ckptscope adds what the crate cannot see
//! because it reads the JSON into a `HashMap`: the order of keys in the file (shown to users) and
//! duplicate tensor names (the crate silently keeps the last). When the crate rejects a header, a
//! second, slower pass runs only to explain *which* tensor and *which* offsets are wrong.

use std::collections::HashSet;
use std::fmt;
use std::io::Write as _;

use safetensors::tensor::{Metadata, TensorInfo};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::dtype::DType;
use crate::error::Problem;
use crate::format::TensorEntry;
use crate::limits::Limits;

/// Key that holds the free-form string map in a safetensors header.
pub const METADATA_KEY: &str = "__metadata__";

/// Bytes of the little-endian length that starts a safetensors file.
pub const LENGTH_BYTES: u64 = 8;

/// A parsed and validated safetensors header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Length of the JSON text (the value of the first 8 bytes).
    pub header_size: u64,
    /// `__metadata__`, in file order.
    pub metadata: Vec<(String, String)>,
    /// Tensors in the order their keys appear in the header, contiguous, with source 0 and
    /// file offsets counted from this file's data section.
    pub tensors: Vec<TensorEntry>,
}

impl Header {
    /// Absolute file offset where tensor data begins.
    pub fn data_start(&self) -> u64 {
        LENGTH_BYTES + self.header_size
    }
}

/// Splits a file prefix into the header length and the JSON text, checking both against the file
/// size. `prefix` must hold at least the 8 length bytes and the header (or the whole file).
pub fn split_header<'a>(
    prefix: &'a [u8],
    file_len: u64,
    limits: &Limits,
) -> Result<(u64, &'a [u8]), Problem> {
    let declared = declared_header_len(prefix, file_len)?;
    check_header_len(declared, file_len, limits)?;
    let end = usize::try_from(LENGTH_BYTES + declared).map_err(|_| Problem::HeaderTooLarge {
        declared,
        limit: limits.max_header_bytes,
    })?;
    let json = prefix.get(8..end).ok_or(Problem::HeaderPastEnd {
        declared,
        available: file_len.saturating_sub(LENGTH_BYTES),
    })?;
    Ok((declared, json))
}

/// Reads the header length from the first 8 bytes.
pub fn declared_header_len(prefix: &[u8], file_len: u64) -> Result<u64, Problem> {
    let Some(len_bytes) = prefix.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return Err(Problem::TooSmall { len: file_len });
    };
    Ok(u64::from_le_bytes(len_bytes))
}

/// Checks a declared header length against the limit and the file size.
pub fn check_header_len(declared: u64, file_len: u64, limits: &Limits) -> Result<(), Problem> {
    if declared > limits.max_header_bytes {
        return Err(Problem::HeaderTooLarge {
            declared,
            limit: limits.max_header_bytes,
        });
    }
    let available = file_len.saturating_sub(LENGTH_BYTES);
    if declared > available {
        return Err(Problem::HeaderPastEnd {
            declared,
            available,
        });
    }
    Ok(())
}

/// Parses and validates a header. `json` is the header text, `data_len` the number of bytes that
/// follow it in the file.
pub fn parse_header(json: &[u8], data_len: u64) -> Result<Header, Problem> {
    let header_size = json.len() as u64;
    let text = std::str::from_utf8(json).map_err(|e| Problem::HeaderNotUtf8 {
        offset: e.valid_up_to() as u64,
    })?;
    // The usual case, one pass: entries read as the crate's own `TensorInfo`, in file order,
    // then validated by the crate's `Metadata::new`. Anything unusual takes the slower path
    // below, whose job is to explain the problem.
    let fast = {
        let mut de = serde_json::Deserializer::from_str(text);
        FastScan(text.len())
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
    };
    match fast {
        Ok(Err(problem)) => return Err(problem),
        Ok(Ok(h)) => {
            let data_start = LENGTH_BYTES + header_size;
            let mut tensors = Vec::with_capacity(h.entries.len());
            for (name, e) in &h.entries {
                let Some(dtype) = DType::from_safetensors_name(e.dtype) else {
                    // An unknown dtype: the slow path names it.
                    return Err(diagnose(text).unwrap_or(Problem::BadTensorEntry {
                        name: name.to_string(),
                        message: format!("unknown dtype {}", e.dtype),
                    }));
                };
                tensors.push(TensorEntry::contiguous(
                    name.to_string(),
                    dtype,
                    e.shape.clone(),
                    0,
                    e.data_offsets,
                    data_start,
                ));
            }
            // The crate's validation (contiguous offsets, sizes, overflow, sub-byte alignment) on
            // the entries in offset order. It never reads the names (only its error text does,
            // and errors are explained by `diagnose`), so they are left empty: no copies. The
            // entry list becomes the crate's list in place (same element size). Each empty name
            // still gets a one-byte buffer: the crate's name index compares every key with the
            // previous one, and with dangling empty strings that comparison (glibc's AVX-512
            // memcmp) measured twice as slow as the allocation it saves.
            let mut entries = h.entries;
            entries.sort_by_key(|(_, e)| e.data_offsets);
            let sorted: Option<Vec<(String, TensorInfo)>> = entries
                .into_iter()
                .map(|(_, e)| {
                    Some((
                        String::with_capacity(1),
                        TensorInfo {
                            dtype: DType::from_safetensors_name(e.dtype)?.to_safetensors(),
                            shape: e
                                .shape
                                .into_iter()
                                .map(|d| usize::try_from(d).ok())
                                .collect::<Option<_>>()?,
                            data_offsets: (
                                usize::try_from(e.data_offsets[0]).ok()?,
                                usize::try_from(e.data_offsets[1]).ok()?,
                            ),
                        },
                    ))
                })
                .collect();
            let Some(sorted) = sorted else {
                return Err(diagnose(text)
                    .unwrap_or(Problem::Other("a size does not fit this machine".into())));
            };
            match Metadata::new(None, sorted) {
                Ok(m) => {
                    let declared = m.data_len() as u64;
                    if declared != data_len {
                        return Err(Problem::DataLength {
                            declared,
                            actual: data_len,
                        });
                    }
                    return Ok(Header {
                        header_size,
                        metadata: h.metadata,
                        tensors,
                    });
                }
                Err(crate_error) => {
                    return Err(diagnose(text).unwrap_or(Problem::Other(crate_error.to_string())));
                }
            }
        }
        Err(_) => {}
    }
    let scan = scan_keys(text)?;

    let metadata: Metadata = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(crate_error) => {
            return Err(diagnose(text).unwrap_or(Problem::Other(crate_error.to_string())));
        }
    };
    let declared = metadata.data_len() as u64;
    if declared != data_len {
        return Err(Problem::DataLength {
            declared,
            actual: data_len,
        });
    }

    let mut tensors = Vec::with_capacity(scan.names.len());
    for name in scan.names {
        let Some(info) = metadata.info(&name) else {
            return Err(Problem::Other(format!(
                "tensor `{name}` is in the header text but the safetensors crate did not read it"
            )));
        };
        let tensor = tensor_from_info(name, info, LENGTH_BYTES + header_size)?;
        tensors.push(tensor);
    }
    Ok(Header {
        header_size,
        metadata: scan.metadata,
        tensors,
    })
}

fn tensor_from_info(
    name: String,
    info: &TensorInfo,
    data_start: u64,
) -> Result<TensorEntry, Problem> {
    let Some(dtype) = DType::from_safetensors(info.dtype) else {
        return Err(Problem::BadTensorEntry {
            message: format!("dtype {} is not supported by ckptscope", info.dtype),
            name,
        });
    };
    Ok(TensorEntry::contiguous(
        name,
        dtype,
        info.shape.iter().map(|&d| d as u64).collect(),
        0,
        [info.data_offsets.0 as u64, info.data_offsets.1 as u64],
        data_start,
    ))
}

/// What the key-order pass finds.
struct KeyScan {
    names: Vec<String>,
    metadata: Vec<(String, String)>,
}

/// One fast pass over the header that records key order and rejects duplicates, skipping tensor
/// entries without building them (the crate builds them).
fn scan_keys(text: &str) -> Result<KeyScan, Problem> {
    let mut de = serde_json::Deserializer::from_str(text);
    let outcome = HeaderScan
        .deserialize(&mut de)
        .and_then(|outcome| de.end().map(|()| outcome))
        .map_err(|e| Problem::HeaderNotJson {
            message: e.to_string(),
        })?;
    match outcome {
        ScanOutcome::Ok(scan) => Ok(scan),
        ScanOutcome::Rejected(problem) => Err(problem),
    }
}

enum ScanOutcome {
    Ok(KeyScan),
    /// Valid JSON that breaks a rule the crate does not check.
    Rejected(Problem),
}

struct HeaderScan;

impl<'de> DeserializeSeed<'de> for HeaderScan {
    type Value = ScanOutcome;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<ScanOutcome, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderScan {
    type Value = ScanOutcome;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object mapping tensor names to {dtype, shape, data_offsets}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScanOutcome, A::Error> {
        let mut names: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut metadata: Option<Vec<(String, String)>> = None;
        let mut rejected: Option<Problem> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == METADATA_KEY {
                let value = map.next_value_seed(MetadataScan)?;
                if rejected.is_some() {
                    continue;
                }
                match value {
                    _ if metadata.is_some() => {
                        rejected = Some(Problem::DuplicateTensor { name: key });
                    }
                    Ok(entries) => metadata = Some(entries),
                    Err(problem) => rejected = Some(problem),
                }
            } else {
                map.next_value::<IgnoredAny>()?;
                if rejected.is_none() && !seen.insert(key.clone()) {
                    rejected = Some(Problem::DuplicateTensor { name: key });
                    continue;
                }
                names.push(key);
            }
        }
        Ok(match rejected {
            Some(problem) => ScanOutcome::Rejected(problem),
            None => ScanOutcome::Ok(KeyScan {
                names,
                metadata: metadata.unwrap_or_default(),
            }),
        })
    }
}

/// The fast single pass: key order, duplicates, metadata, and every tensor entry as the
/// crate's `TensorInfo`. Holds the header's length in bytes (to size the entry list).
struct FastScan(usize);

struct FastHeader<'de> {
    entries: Vec<(&'de str, RawEntry<'de>)>,
    metadata: Vec<(String, String)>,
}

/// A tensor entry as written: `{"dtype", "shape", "data_offsets"}`, every field required, no
/// other field (as the crate's `TensorInfo` requires).
struct RawEntry<'de> {
    dtype: &'de str,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

impl<'de> Deserialize<'de> for RawEntry<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("{dtype, shape, data_offsets}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut dtype, mut shape, mut offsets) = (None, None, None);
                while let Some(key) = map.next_key::<&'de str>()? {
                    match key {
                        "dtype" if dtype.is_none() => dtype = Some(map.next_value::<&'de str>()?),
                        "shape" if shape.is_none() => shape = Some(map.next_value::<Vec<u64>>()?),
                        "data_offsets" if offsets.is_none() => {
                            offsets = Some(map.next_value::<[u64; 2]>()?)
                        }
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["dtype", "shape", "data_offsets"],
                            ));
                        }
                    }
                }
                match (dtype, shape, offsets) {
                    (Some(dtype), Some(shape), Some(data_offsets)) => Ok(RawEntry {
                        dtype,
                        shape,
                        data_offsets,
                    }),
                    _ => Err(de::Error::custom("missing field")),
                }
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> DeserializeSeed<'de> for FastScan {
    type Value = Result<FastHeader<'de>, Problem>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FastScan {
    type Value = Result<FastHeader<'de>, Problem>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object mapping tensor names to {dtype, shape, data_offsets}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // A tensor entry takes at least ~48 bytes of JSON: reserve for that many (untouched
        // capacity is only address space), so the list is not copied as it grows.
        let mut entries: Vec<(&'de str, RawEntry<'de>)> =
            Vec::with_capacity(map.size_hint().unwrap_or(self.0 / 48));
        let mut metadata: Option<Vec<(String, String)>> = None;
        // Borrowed keys: a name with JSON escapes fails here and takes the slow path.
        while let Some(key) = map.next_key::<&'de str>()? {
            if key == METADATA_KEY {
                let value = map.next_value_seed(MetadataScan)?;
                if metadata.is_some() {
                    return Ok(Err(Problem::DuplicateTensor {
                        name: key.to_string(),
                    }));
                }
                match value {
                    Ok(m) => metadata = Some(m),
                    Err(problem) => return Ok(Err(problem)),
                }
            } else {
                let entry: RawEntry<'de> = map.next_value()?;
                entries.push((key, entry));
            }
        }
        // Duplicates: a randomly keyed hash (ahash), so crafted names cannot make this
        // quadratic.
        let mut seen: HashSet<&str, ahash::RandomState> =
            HashSet::with_capacity_and_hasher(entries.len(), ahash::RandomState::new());
        if let Some((name, _)) = entries.iter().find(|(k, _)| !seen.insert(k)) {
            return Ok(Err(Problem::DuplicateTensor {
                name: name.to_string(),
            }));
        }
        Ok(Ok(FastHeader {
            entries,
            metadata: metadata.unwrap_or_default(),
        }))
    }
}

/// Reads `__metadata__` in file order: `null` or an object of strings.
struct MetadataScan;

impl<'de> DeserializeSeed<'de> for MetadataScan {
    type Value = Result<Vec<(String, String)>, Problem>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MetadataScan {
    type Value = Result<Vec<(String, String)>, Problem>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        let mut problem = None;
        while let Some(key) = map.next_key::<String>()? {
            let value: serde_json::Value = map.next_value()?;
            if problem.is_some() {
                continue;
            }
            match value {
                serde_json::Value::String(s) => {
                    if !seen.insert(key.clone()) {
                        problem = Some(Problem::DuplicateMetadataKey { key });
                    } else {
                        entries.push((key, s));
                    }
                }
                other => {
                    problem = Some(Problem::BadMetadata {
                        message: format!("key `{key}` holds {}, not a string", json_kind(&other)),
                    });
                }
            }
        }
        Ok(match problem {
            Some(p) => Err(p),
            None => Ok(entries),
        })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(Problem::BadMetadata {
            message: "found an array".into(),
        }))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(Problem::BadMetadata {
            message: "found a string".into(),
        }))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(Problem::BadMetadata {
            message: "found a boolean".into(),
        }))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(Problem::BadMetadata {
            message: "found a number".into(),
        }))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        self.visit_i64(0)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        self.visit_i64(0)
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Explains why the crate rejected a header, naming the tensor and the offsets. Runs only on the
/// error path; `None` if it finds nothing more precise than the crate's own message.
fn diagnose(text: &str) -> Option<Problem> {
    let entries: Vec<(String, serde_json::Value)> = {
        let mut de = serde_json::Deserializer::from_str(text);
        OrderedEntries.deserialize(&mut de).ok()?
    };
    let mut infos = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if name == METADATA_KEY {
            continue;
        }
        let info = match TensorInfo::deserialize(&value) {
            Ok(info) => info,
            Err(e) => {
                return Some(Problem::BadTensorEntry {
                    name,
                    message: e.to_string(),
                });
            }
        };
        let Some(dtype) = DType::from_safetensors(info.dtype) else {
            return Some(Problem::BadTensorEntry {
                message: format!("dtype {} is not supported", info.dtype),
                name,
            });
        };
        let shape: Vec<u64> = info.shape.iter().map(|&d| d as u64).collect();
        let (begin, end) = (info.data_offsets.0 as u64, info.data_offsets.1 as u64);
        let elements = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let Some(bits) = elements.and_then(|n| n.checked_mul(dtype.bits())) else {
            return Some(Problem::ShapeOverflow { name, dtype, shape });
        };
        if !bits.is_multiple_of(8) {
            return Some(Problem::SubByteMisaligned {
                name,
                dtype,
                elements: elements.unwrap_or_default(),
            });
        }
        if end < begin {
            return Some(Problem::OffsetsReversed { name, begin, end });
        }
        if end - begin != bits / 8 {
            return Some(Problem::SizeMismatch {
                name,
                dtype,
                shape,
                begin,
                end,
                expected: bits / 8,
            });
        }
        infos.push((name, begin, end));
    }
    infos.sort_by_key(|&(_, b, e)| (b, e));
    let mut expected = 0u64;
    let mut previous: Option<String> = None;
    for (name, begin, end) in infos {
        if begin != expected {
            return Some(Problem::NotContiguous {
                name,
                begin,
                expected,
                previous,
            });
        }
        expected = end;
        previous = Some(name);
    }
    None
}

/// Reads a JSON object into `(key, value)` pairs in file order.
struct OrderedEntries;

impl<'de> DeserializeSeed<'de> for OrderedEntries {
    type Value = Vec<(String, serde_json::Value)>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OrderedEntries {
    type Value = Vec<(String, serde_json::Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(entry) = map.next_entry()? {
            out.push(entry);
        }
        Ok(out)
    }
}

/// Replaces a single safetensors file's `__metadata__` (tensor entries unchanged, data bytes
/// copied), atomically, after verifying the new file opens with the same data section.
pub fn rewrite_metadata(
    ckpt: &super::Checkpoint,
    metadata: &[(String, String)],
) -> Result<(), crate::Error> {
    let path = &ckpt.path;
    let source = ckpt
        .sources
        .first()
        .ok_or_else(|| crate::Error::invalid(path, Problem::Other("no source".into())))?;
    let bytes = source.mapped()?.bytes();
    let header_end = usize::try_from(source.header_size)
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| crate::Error::invalid(path, Problem::Other("header out of range".into())))?;
    let old_header = bytes.get(8..header_end).unwrap_or_default();
    let old: serde_json::Value = serde_json::from_slice(old_header).map_err(|e| {
        crate::Error::invalid(
            path,
            Problem::HeaderNotJson {
                message: e.to_string(),
            },
        )
    })?;
    let mut text = String::from("{\"__metadata__\":{");
    for (i, (k, v)) in metadata.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(k).unwrap_or_default());
        text.push(':');
        text.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
    text.push('}');
    for t in &ckpt.tensors {
        if let Some(entry) = old.get(&t.name) {
            text.push(',');
            text.push_str(&serde_json::to_string(&t.name).unwrap_or_default());
            text.push(':');
            text.push_str(&entry.to_string());
        }
    }
    text.push('}');
    let mut header = text.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let data = bytes.get(header_end..).unwrap_or_default();
    let werr = |e: std::io::Error| crate::Error::io("write", path, e);
    // A symbolic link (the Hugging Face cache's snapshots/<rev>/x -> ../../blobs/<sha>) stays a
    // link: its target is rewritten, keeping its mode.
    let mut tmp = crate::fsutil::AtomicFile::new(path).map_err(werr)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 22, tmp.file_mut());
        w.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(werr)?;
        w.write_all(&header).map_err(werr)?;
        w.write_all(data).map_err(werr)?;
        w.flush().map_err(werr)?;
    }
    tmp.file().sync_all().map_err(werr)?;
    // Verify before replacing: the new file opens and its data section is the old one.
    let check = super::open(&tmp.reopen_path())?;
    let new_source = check
        .sources
        .first()
        .ok_or_else(|| crate::Error::invalid(path, Problem::Other("no source".into())))?;
    let new_bytes = new_source.mapped()?.bytes();
    if new_bytes.get(8 + header.len()..) != Some(data) || check.tensors.len() != ckpt.tensors.len()
    {
        return Err(crate::Error::invalid(
            path,
            Problem::Other("the rewritten file did not verify; the original is unchanged".into()),
        ));
    }
    drop(check);
    tmp.commit(crate::fsutil::Replace::Always).map_err(werr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, data_len: u64) -> Result<Header, Problem> {
        parse_header(json.as_bytes(), data_len)
    }

    #[test]
    fn keeps_file_order_of_tensors_and_metadata() {
        let h = parse(
            r#"{"z":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"__metadata__":{"b":"1","a":"2"},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
            8,
        )
        .unwrap();
        let names: Vec<_> = h.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["z", "a"]);
        assert_eq!(
            h.metadata,
            [("b".into(), "1".into()), ("a".into(), "2".into())]
        );
    }

    #[test]
    fn explains_gaps_with_both_tensor_names() {
        let err = parse(
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}}"#,
            10,
        )
        .unwrap_err();
        assert_eq!(
            err,
            Problem::NotContiguous {
                name: "b".into(),
                begin: 6,
                expected: 4,
                previous: Some("a".into())
            }
        );
        assert!(
            err.to_string().contains("previous tensor `a` ends at 4"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_metadata_block_is_rejected() {
        let err = parse(r#"{"__metadata__":{},"__metadata__":{}}"#, 0).unwrap_err();
        assert!(matches!(err, Problem::DuplicateTensor { .. }));
    }

    #[test]
    fn null_metadata_is_empty() {
        let h = parse(r#"{"__metadata__":null}"#, 0).unwrap();
        assert!(h.metadata.is_empty() && h.tensors.is_empty());
    }
}
