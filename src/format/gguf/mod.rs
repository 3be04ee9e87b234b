//! The GGUF container of llama.cpp (versions 2 and 3): a binary header of typed metadata and
//! tensor descriptions, then aligned tensor data.
//!
//! ```text
//! "GGUF"  u32 version  u64 tensor_count  u64 kv_count
//! kv_count × (string key, u32 value_type, value)        value: scalars, string, array
//! tensor_count × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml_type, u64 offset)
//! padding to `general.alignment` (default 32), then the data section
//! ```
//!
//! The header is read straight from the mapping with a bounded cursor: every count and length is
//! checked against the bytes that remain *and* against [`Limits`] before anything is allocated,
//! and arrays are not kept, only their length and first items ([`ARRAY_PREVIEW`]): a fixed-width
//! array of a billion values is skipped in O(1), a string array costs one pass over its bytes.
//! So a hostile header costs at most a pass over the file and memory proportional to the keys,
//! names and strings it really holds. The trade-off: the metadata is a summary (tokenizer arrays
//! show their length and first entries), which is what a viewer needs.
//!
//! Dimensions: GGUF stores `ne[0]` first, the fastest-varying dimension (a llama.cpp weight of
//! `ne = [4096, 11008]` is 11008 rows of 4096). Tensors are listed the way PyTorch would show the
//! same array: reversed, `[11008, 4096]`, so element `[r, c]` is value `r·4096 + c` and block
//! rows stay rows.
//!
//! Owns: the header reader and the layout checks. Must not import: `analysis` and above.

mod labels;
mod value;

use crate::dtype::DType;
use crate::dtype::GgmlType;
pub use crate::error::gguf::{GgufProblem, MAX_DIMS};
use crate::error::{Error, Problem};
use crate::format::{Checkpoint, Format, MappedFile, ReadIssue, Severity, Source, TensorEntry};
use crate::limits::{Limits, MAX_GGUF_DEPTH};
use std::collections::HashSet;

use labels::*;
pub use labels::{convert_refusal, key_label, scan_findings};
use value::*;
pub use value::{Value, ValueType};

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";

/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Items of an array kept for display; the rest are counted, not stored.
pub const ARRAY_PREVIEW: usize = 8;

/// Characters of a string kept inside an array preview.
const PREVIEW_CHARS: usize = 80;

/// Smallest encoding of a metadata entry: key length (8), empty key, type (4), a 1-byte value.
const MIN_KV_BYTES: u64 = 13;

/// Smallest encoding of a tensor description: name length (8), dims (4), type (4), offset (8).
const MIN_TENSOR_BYTES: u64 = 24;

/// One tensor description as the file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name.
    pub name: String,
    /// `ne`, fastest dimension first, as stored.
    pub ne: Vec<u64>,
    /// The ggml type.
    pub ggml: GgmlType,
    /// Offset in the data section.
    pub offset: u64,
    /// Bytes of data.
    pub bytes: u64,
}

/// A parsed and validated GGUF header.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensors in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment (`general.alignment` or 32).
    pub alignment: u64,
    /// Bytes of the header proper (up to the end of the tensor descriptions).
    pub header_len: u64,
    /// Absolute offset of the data section (the header rounded up to the alignment).
    pub data_start: u64,
    /// Things that do not stop the file from opening (llama.cpp would refuse gaps, for one).
    pub notes: Vec<String>,
}

/// A cursor over the header bytes that never reads past them.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A read that ran past the end: where, and how much it needed.
struct Short {
    offset: u64,
    need: u64,
    available: u64,
}

impl Short {
    fn inside(self, what: impl Into<String>) -> GgufProblem {
        GgufProblem::Truncated {
            what: what.into(),
            offset: self.offset,
            need: self.need,
            available: self.available,
        }
    }
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Short> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n));
        match end.and_then(|e| Some((e, self.bytes.get(self.pos..e)?))) {
            Some((e, s)) => {
                self.pos = e;
                Ok(s)
            }
            None => Err(Short {
                offset: self.pos as u64,
                need: n,
                available: self.remaining(),
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let b = self.take(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, Short> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Short> {
        self.array().map(u64::from_le_bytes)
    }

    /// A string's bytes: its u64 length checked against `limit` and the file first.
    fn string(&mut self, what: &dyn Fn() -> String, limit: u64) -> Result<&'a [u8], GgufProblem> {
        let len = self.u64().map_err(|s| s.inside(what()))?;
        if len > limit {
            return Err(GgufProblem::OverLimit {
                what: format!("the length of {}", what()),
                count: len,
                limit,
                name: "gguf-string",
            });
        }
        self.take(len).map_err(|s| s.inside(what()))
    }
}

/// Parses and validates the header of a GGUF file (`bytes` is the whole file).
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Header, GgufProblem> {
    let mut r = Reader { bytes, pos: 0 };
    let magic = r.take(4).map_err(|_| GgufProblem::NotGguf)?;
    if magic != MAGIC {
        return Err(GgufProblem::NotGguf);
    }
    let version = r.u32().map_err(|s| s.inside("the version field"))?;
    if !(2..=3).contains(&version) {
        return Err(GgufProblem::Version { version });
    }
    let tensor_count = r.u64().map_err(|s| s.inside("the tensor count"))?;
    let kv_count = r.u64().map_err(|s| s.inside("the metadata count"))?;
    check_count(
        "metadata entries",
        "the metadata count",
        kv_count,
        MIN_KV_BYTES,
        r.remaining(),
        limits.max_gguf_kvs,
        "gguf-kvs",
    )?;
    check_count(
        "tensors",
        "the tensor count",
        tensor_count,
        MIN_TENSOR_BYTES,
        r.remaining(),
        limits.max_gguf_tensors,
        "gguf-tensors",
    )?;

    // Counts are now bounded by the bytes that follow; reservations are bounded further, so a
    // header that lies about its counts costs only what it really holds.
    let reserve = |n: u64| n.min(4096) as usize;
    let mut metadata: Vec<(String, Value)> = Vec::with_capacity(reserve(kv_count));
    let hasher = ahash::RandomState::new();
    let mut keys: HashSet<String, ahash::RandomState> =
        HashSet::with_capacity_and_hasher(reserve(kv_count), hasher.clone());
    for i in 0..kv_count {
        let raw = r.string(
            &|| format!("the key of metadata entry {i}"),
            limits.max_gguf_string,
        )?;
        let key = String::from_utf8_lossy(raw).into_owned();
        let id = r
            .u32()
            .map_err(|s| s.inside(format!("the value type of `{key}`")))?;
        let value = read_value(&mut r, id, &key, 0, limits)?;
        if !keys.insert(key.clone()) {
            return Err(GgufProblem::DuplicateKey { key });
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, Value::Uint(ValueType::U32, a))) if a.is_power_of_two() => *a,
        Some((_, v)) => {
            return Err(GgufProblem::BadAlignment { found: v.render() });
        }
    };

    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(reserve(tensor_count));
    let mut names: HashSet<String, ahash::RandomState> =
        HashSet::with_capacity_and_hasher(reserve(tensor_count), hasher);
    for i in 0..tensor_count {
        let raw = r.string(
            &|| format!("the name of tensor {i}"),
            limits.max_gguf_string,
        )?;
        let name = String::from_utf8_lossy(raw).into_owned();
        let what = |part: &str| format!("the {part} of tensor `{name}`");
        let dims = r.u32().map_err(|s| s.inside(what("dimension count")))?;
        if dims > MAX_DIMS {
            return Err(GgufProblem::TooManyDims { name, dims });
        }
        let mut ne = Vec::with_capacity(dims as usize);
        for _ in 0..dims {
            ne.push(r.u64().map_err(|s| s.inside(what("dimensions")))?);
        }
        let id = r.u32().map_err(|s| s.inside(what("type")))?;
        let offset = r.u64().map_err(|s| s.inside(what("data offset")))?;
        let Some(ggml) = GgmlType::from_id(id) else {
            return Err(GgufProblem::UnknownType { name, id });
        };
        let torch_shape = || ne.iter().rev().copied().collect::<Vec<u64>>();
        let block = ggml.block_len();
        let row = ne.first().copied().unwrap_or(1);
        if !row.is_multiple_of(block) {
            return Err(GgufProblem::PartialBlock {
                name,
                ggml,
                row,
                block,
            });
        }
        let Some(bytes) = ne
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|n| ggml.bytes_for(n))
        else {
            let shape = torch_shape();
            return Err(GgufProblem::ShapeOverflow { name, ggml, shape });
        };
        if !names.insert(name.clone()) {
            return Err(GgufProblem::DuplicateTensor { name });
        }
        tensors.push(TensorInfo {
            name,
            ne,
            ggml,
            offset,
            bytes,
        });
    }
    let header_len = r.pos as u64;
    let data_start = header_len.next_multiple_of(alignment);
    let file_len = bytes.len() as u64;
    let notes = check_layout(&tensors, alignment, data_start, file_len)?;
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        header_len,
        data_start,
        notes,
    })
}

fn check_count(
    what: &str,
    field: &str,
    count: u64,
    min_each: u64,
    available: u64,
    limit: u64,
    name: &'static str,
) -> Result<(), GgufProblem> {
    if count > limit {
        return Err(GgufProblem::OverLimit {
            what: field.into(),
            count,
            limit,
            name,
        });
    }
    if count > available / min_each {
        return Err(GgufProblem::CountPastEnd {
            what: what.into(),
            count,
            min_each,
            available,
        });
    }
    Ok(())
}

/// Checks that tensors are aligned, inside the file and apart; notes the layouts llama.cpp
/// would refuse (gaps, another order) without refusing them.
fn check_layout(
    tensors: &[TensorInfo],
    alignment: u64,
    data_start: u64,
    file_len: u64,
) -> Result<Vec<String>, GgufProblem> {
    let mut notes = Vec::new();
    let mut expected = 0u64;
    let mut strict = true;
    for t in tensors {
        if !t.offset.is_multiple_of(alignment) {
            return Err(GgufProblem::Misaligned {
                name: t.name.clone(),
                offset: t.offset,
                alignment,
            });
        }
        let begin = data_start.checked_add(t.offset);
        let end = begin.and_then(|b| b.checked_add(t.bytes));
        if !matches!(end, Some(e) if e <= file_len) {
            return Err(GgufProblem::OutOfFile {
                name: t.name.clone(),
                begin: begin.unwrap_or(u64::MAX),
                end: end.unwrap_or(u64::MAX),
                file_len,
            });
        }
        if strict && t.offset != expected {
            strict = false;
            notes.push(format!(
                "tensor `{}` is at data offset {} where llama.cpp expects {} (it loads only tensors packed in order); ckptscope reads it where it is",
                t.name, t.offset, expected
            ));
        }
        // Bounded: every end is within the file, checked above.
        expected = (t.offset + t.bytes).next_multiple_of(alignment);
    }
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().filter(|t| t.bytes > 0).collect();
    by_offset.sort_by_key(|t| t.offset);
    for pair in by_offset.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let a_end = a.offset + a.bytes;
        if b.offset < a_end {
            return Err(GgufProblem::Overlap {
                name: b.name.clone(),
                begin: b.offset,
                other: a.name.clone(),
                other_end: a_end,
            });
        }
    }
    Ok(notes)
}

/// Opens a GGUF file that is already mapped.
pub fn open(mapped: MappedFile, limits: &Limits) -> Result<Checkpoint, Error> {
    let path = mapped.path().to_path_buf();
    let header =
        parse(mapped.bytes(), limits).map_err(|p| Error::invalid(&path, Problem::Gguf(p)))?;
    let tensors: Vec<TensorEntry> = header.tensors.iter().map(|t| entry(t, &header)).collect();
    let mut findings = vec![ReadIssue::new(
        Severity::Info,
        format!(
            "GGUF v{}, {}-byte alignment; shapes are listed slowest dimension first, as PyTorch shows them (GGUF stores them fastest first)",
            header.version, header.alignment
        ),
    )];
    findings.extend(
        header
            .notes
            .iter()
            .map(|n| ReadIssue::new(Severity::Warning, n.clone())),
    );
    for (key, value) in &header.metadata {
        if let (true, Value::Str(template)) = (is_chat_template(key), value)
            && let Some(reason) = template_risk(template)
        {
            findings.push(ReadIssue::new(
                Severity::Warning,
                format!("`{key}`: {reason}"),
            ));
        }
    }
    let metadata = header
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), render_entry(k, v)))
        .collect();
    let mut source = Source::new(path.clone(), mapped.len(), header.header_len, tensors.len());
    source.data_start = header.data_start;
    let mut ckpt = Checkpoint::new(
        path,
        Format::Gguf,
        metadata,
        tensors,
        vec![source.with_map(mapped)],
        findings,
    );
    ckpt.header_size = header.header_len;
    Ok(ckpt)
}

fn entry(t: &TensorInfo, header: &Header) -> TensorEntry {
    let (dtype, quant) = match t.ggml.element() {
        Some(d) => (d, None),
        None => (DType::F32, Some(t.ggml)),
    };
    let mut e = TensorEntry::contiguous(
        t.name.clone(),
        dtype,
        t.ne.iter().rev().copied().collect(),
        0,
        // Bounded by the file length (checked in `check_layout`).
        [t.offset, t.offset + t.bytes],
        header.data_start,
    );
    e.quant = quant;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    /// A minimal v3 file: one U32 entry and one F32 tensor of 4 values.
    fn tiny() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        string(&mut b, "answer");
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&42u32.to_le_bytes());
        string(&mut b, "w");
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.resize(b.len().next_multiple_of(32), 0);
        for v in [1.0f32, 2.0, 3.0, 4.0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_a_minimal_file() {
        let h = parse(&tiny(), &Limits::DEFAULT).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(
            h.metadata,
            [("answer".into(), Value::Uint(ValueType::U32, 42))]
        );
        assert_eq!(h.tensors[0].ne, [2, 2]);
        assert_eq!(h.tensors[0].bytes, 16);
        assert_eq!(h.data_start % 32, 0);
        assert!(h.notes.is_empty());
    }

    #[test]
    fn every_prefix_is_a_clear_error() {
        let file = tiny();
        for n in 0..file.len() - 16 {
            let err = parse(&file[..n], &Limits::DEFAULT).unwrap_err();
            assert!(
                matches!(
                    err,
                    GgufProblem::NotGguf
                        | GgufProblem::Truncated { .. }
                        | GgufProblem::CountPastEnd { .. }
                        | GgufProblem::OutOfFile { .. }
                ),
                "{n}: {err}"
            );
        }
    }

    #[test]
    fn renders_values() {
        let arr = Value::Array {
            item: ValueType::String,
            len: 3,
            first: vec![Value::Str("a".into()), Value::Str("b\"".into())],
        };
        assert_eq!(arr.render(), r#"array of 3 strings: ["a", "b\"", ...]"#);
        let whole = Value::Array {
            item: ValueType::I32,
            len: 2,
            first: vec![
                Value::Int(ValueType::I32, -1),
                Value::Int(ValueType::I32, 2),
            ],
        };
        assert_eq!(whole.render(), "[-1, 2]");
        assert_eq!(
            Value::Float(ValueType::F32, f64::from(0.1f32)).render(),
            "0.1"
        );
        assert_eq!(
            render_entry("general.file_type", &Value::Uint(ValueType::U32, 15)),
            "15 (mostly Q4_K_M)"
        );
    }

    #[test]
    fn labels() {
        assert_eq!(key_label("general.name").as_deref(), Some("Model name"));
        assert_eq!(
            key_label("llama.attention.head_count_kv").as_deref(),
            Some("llama: key/value heads")
        );
        assert_eq!(key_label("llama.unknown_thing"), None);
        assert_eq!(key_label("tokenizer.ggml.whatever"), None);
    }

    #[test]
    fn chat_template_risks() {
        assert_eq!(template_risk("{{ messages[0]['content'] }}"), None);
        let bad =
            "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}";
        assert!(template_risk(bad).unwrap().contains("__globals__"));
    }
}
