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

use std::collections::HashSet;

use crate::dtype::DType;
use crate::error::{Error, Problem};
use crate::format::ggml::GgmlType;
use crate::format::{Checkpoint, Finding, Format, MappedFile, Severity, Source, TensorEntry};
use crate::limits::{Limits, MAX_GGUF_DEPTH};

/// The four bytes every GGUF file starts with.
pub const MAGIC: &[u8; 4] = b"GGUF";

/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Items of an array kept for display; the rest are counted, not stored.
pub const ARRAY_PREVIEW: usize = 8;

/// Characters of a string kept inside an array preview.
const PREVIEW_CHARS: usize = 80;

/// Most dimensions a ggml tensor has (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// Smallest encoding of a metadata entry: key length (8), empty key, type (4), a 1-byte value.
const MIN_KV_BYTES: u64 = 13;
/// Smallest encoding of a tensor description: name length (8), dims (4), type (4), offset (8).
const MIN_TENSOR_BYTES: u64 = 24;

/// What is wrong with a GGUF file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GgufProblem {
    /// Not a GGUF file at all.
    #[error("the file does not start with the GGUF magic bytes")]
    NotGguf,
    /// A version other than 2 or 3.
    #[error("{}", version_message(*version))]
    Version {
        /// The version field.
        version: u32,
    },
    /// The file ends before something it declares.
    #[error(
        "the file ends inside {what}: {need} bytes are needed at offset {offset} but only {available} remain (truncated file?)"
    )]
    Truncated {
        /// What was being read.
        what: String,
        /// Where.
        offset: u64,
        /// Bytes it needs.
        need: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// A count that cannot fit in the bytes that follow.
    #[error(
        "the header declares {count} {what}, which take at least {min_each} bytes each, but only {available} bytes follow"
    )]
    CountPastEnd {
        /// What is counted.
        what: String,
        /// The declared count.
        count: u64,
        /// Smallest encoding of one.
        min_each: u64,
        /// Bytes that follow.
        available: u64,
    },
    /// A count or length above a limit.
    #[error("{what} is {count}, more than the limit of {limit} (raise it with --limit {name}=N)")]
    OverLimit {
        /// What was counted.
        what: String,
        /// The declared number.
        count: u64,
        /// The limit.
        limit: u64,
        /// The limit's name for `--limit`.
        name: &'static str,
    },
    /// A metadata value type id GGUF does not define.
    #[error("{what} has value type {id}, which GGUF does not define (0 to 12)")]
    UnknownValueType {
        /// Which value.
        what: String,
        /// The type id.
        id: u32,
    },
    /// Arrays nested deeper than ckptscope follows.
    #[error("metadata `{key}` nests arrays more than {MAX_GGUF_DEPTH} deep")]
    TooDeep {
        /// The entry.
        key: String,
    },
    /// The same metadata key twice.
    #[error("metadata key `{key}` appears twice (readers disagree on which wins)")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// `general.alignment` that cannot be used.
    #[error("`general.alignment` is {found}; it must be a UINT32 power of two")]
    BadAlignment {
        /// What it holds.
        found: String,
    },
    /// More dimensions than ggml has.
    #[error("tensor `{name}` has {dims} dimensions; ggml tensors have at most {MAX_DIMS}")]
    TooManyDims {
        /// Tensor name.
        name: String,
        /// Declared dimensions.
        dims: u32,
    },
    /// A ggml type id that is unknown (or of a type removed from ggml).
    #[error("tensor `{name}` has ggml type id {id}, which is not a type ckptscope knows")]
    UnknownType {
        /// Tensor name.
        name: String,
        /// The id.
        id: u32,
    },
    /// Element count or byte size that overflows.
    #[error("tensor `{name}`: shape {shape:?} of {ggml} is too large to address")]
    ShapeOverflow {
        /// Tensor name.
        name: String,
        /// The type.
        ggml: GgmlType,
        /// Shape as listed (slowest dimension first).
        shape: Vec<u64>,
    },
    /// Rows that do not hold a whole number of blocks.
    #[error(
        "tensor `{name}`: rows of {row} values are not a whole number of {ggml} blocks ({block} values each)"
    )]
    PartialBlock {
        /// Tensor name.
        name: String,
        /// The type.
        ggml: GgmlType,
        /// Values per row (`ne[0]`).
        row: u64,
        /// Values per block.
        block: u64,
    },
    /// Tensor data not on the file's alignment.
    #[error(
        "tensor `{name}`: data offset {offset} is not a multiple of the file's {alignment}-byte alignment"
    )]
    Misaligned {
        /// Tensor name.
        name: String,
        /// Its offset in the data section.
        offset: u64,
        /// The alignment.
        alignment: u64,
    },
    /// Tensor data past the end of the file.
    #[error(
        "tensor `{name}`: its bytes {begin}..{end} lie past the end of the {file_len}-byte file"
    )]
    OutOfFile {
        /// Tensor name.
        name: String,
        /// Absolute start.
        begin: u64,
        /// Absolute end.
        end: u64,
        /// File length.
        file_len: u64,
    },
    /// Two tensors sharing bytes.
    #[error(
        "tensor `{name}` starts at data offset {begin}, inside tensor `{other}` (which ends at {other_end}): tensors must not overlap"
    )]
    Overlap {
        /// The later tensor.
        name: String,
        /// Its start (data offset).
        begin: u64,
        /// The tensor it overlaps.
        other: String,
        /// Where that one ends (data offset).
        other_end: u64,
    },
    /// The same tensor name twice.
    #[error("tensor `{name}` is listed twice")]
    DuplicateTensor {
        /// The name.
        name: String,
    },
}

fn version_message(version: u32) -> String {
    match version {
        1 => "GGUF version 1 (2023, before 64-bit counts) is not supported; ckptscope reads versions 2 and 3".into(),
        v if v.swap_bytes() <= 3 && v.swap_bytes() > 0 => format!(
            "GGUF version field reads {v} (that is {} byte-swapped): a big-endian GGUF file, which ckptscope does not read",
            v.swap_bytes()
        ),
        v => format!("GGUF version {v} is not one ckptscope reads (2 or 3)"),
    }
}

/// A metadata value type, as GGUF numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// 0
    U8,
    /// 1
    I8,
    /// 2
    U16,
    /// 3
    I16,
    /// 4
    U32,
    /// 5
    I32,
    /// 6
    F32,
    /// 7
    Bool,
    /// 8
    String,
    /// 9
    Array,
    /// 10
    U64,
    /// 11
    I64,
    /// 12
    F64,
}

impl ValueType {
    fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Bytes of one value, for the fixed-width types.
    fn width(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// Smallest encoding of one value.
    fn min_bytes(self) -> u64 {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            t => t.width().unwrap_or(1),
        }
    }

    /// GGUF's name (`UINT32`), for messages and array summaries.
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "UINT8",
            I8 => "INT8",
            U16 => "UINT16",
            I16 => "INT16",
            U32 => "UINT32",
            I32 => "INT32",
            F32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            U64 => "UINT64",
            I64 => "INT64",
            F64 => "FLOAT64",
        }
    }
}

/// A metadata value; arrays keep their length and first [`ARRAY_PREVIEW`] items.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Any unsigned integer type.
    Uint(ValueType, u64),
    /// Any signed integer type.
    Int(ValueType, i64),
    /// FLOAT32 or FLOAT64 (FLOAT32 widened exactly).
    Float(ValueType, f64),
    /// BOOL.
    Bool(bool),
    /// STRING (invalid UTF-8 replaced).
    Str(String),
    /// ARRAY.
    Array {
        /// Type of the items.
        item: ValueType,
        /// How many items it holds.
        len: u64,
        /// The first items (strings cut to a preview length).
        first: Vec<Value>,
    },
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(_, v) => Some(v),
            Value::Int(_, v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The text shown for it: scalars as written, strings as they are, arrays as JSON when
    /// whole and small, else `array of N TYPE: [first, ...]`.
    pub fn render(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Array { item, len, first } => {
                let items: Vec<String> = first.iter().map(Value::render_item).collect();
                let whole = *len as usize == first.len();
                if whole {
                    format!("[{}]", items.join(", "))
                } else {
                    format!(
                        "array of {len} {}: [{}, ...]",
                        item_plural(*item),
                        items.join(", ")
                    )
                }
            }
            other => other.render_item(),
        }
    }

    fn render_item(&self) -> String {
        match self {
            Value::Uint(_, v) => v.to_string(),
            Value::Int(_, v) => v.to_string(),
            Value::Float(ValueType::F32, v) => format!("{}", *v as f32),
            Value::Float(_, v) => format!("{v}"),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => serde_json::to_string(s).unwrap_or_default(),
            Value::Array { .. } => {
                let text = self.render();
                if text.starts_with('[') {
                    text
                } else {
                    serde_json::to_string(&text).unwrap_or_default()
                }
            }
        }
    }
}

fn item_plural(t: ValueType) -> String {
    match t {
        ValueType::String => "strings".into(),
        ValueType::Array => "arrays".into(),
        ValueType::Bool => "booleans".into(),
        t => format!("{} values", t.name()),
    }
}

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

/// Reads one value of type `id`; arrays are walked (bounded by the file) and summarised.
fn read_value(
    r: &mut Reader<'_>,
    id: u32,
    key: &str,
    depth: usize,
    limits: &Limits,
) -> Result<Value, GgufProblem> {
    let Some(t) = ValueType::from_id(id) else {
        return Err(GgufProblem::UnknownValueType {
            what: value_name(key, depth),
            id,
        });
    };
    let short = |s: Short| s.inside(value_name(key, depth));
    Ok(match t {
        ValueType::U8 => Value::Uint(t, u64::from(r.array::<1>().map_err(short)?[0])),
        ValueType::I8 => Value::Int(t, i64::from(r.array::<1>().map_err(short)?[0] as i8)),
        ValueType::Bool => Value::Bool(r.array::<1>().map_err(short)?[0] != 0),
        ValueType::U16 => Value::Uint(t, u64::from(u16::from_le_bytes(r.array().map_err(short)?))),
        ValueType::I16 => Value::Int(t, i64::from(i16::from_le_bytes(r.array().map_err(short)?))),
        ValueType::U32 => Value::Uint(t, u64::from(r.u32().map_err(short)?)),
        ValueType::I32 => Value::Int(t, i64::from(i32::from_le_bytes(r.array().map_err(short)?))),
        ValueType::F32 => Value::Float(t, f64::from(f32::from_le_bytes(r.array().map_err(short)?))),
        ValueType::U64 => Value::Uint(t, r.u64().map_err(short)?),
        ValueType::I64 => Value::Int(t, i64::from_le_bytes(r.array().map_err(short)?)),
        ValueType::F64 => Value::Float(t, f64::from_le_bytes(r.array().map_err(short)?)),
        ValueType::String => {
            let raw = r.string(&|| value_name(key, depth), limits.max_gguf_string)?;
            Value::Str(String::from_utf8_lossy(raw).into_owned())
        }
        ValueType::Array => {
            if depth >= MAX_GGUF_DEPTH {
                return Err(GgufProblem::TooDeep { key: key.into() });
            }
            let item_id = r.u32().map_err(short)?;
            let len = r.u64().map_err(short)?;
            let Some(item) = ValueType::from_id(item_id) else {
                return Err(GgufProblem::UnknownValueType {
                    what: value_name(key, depth + 1),
                    id: item_id,
                });
            };
            if len > limits.max_gguf_array {
                return Err(GgufProblem::OverLimit {
                    what: format!("the length of the array {}", value_name(key, depth)),
                    count: len,
                    limit: limits.max_gguf_array,
                    name: "gguf-array",
                });
            }
            check_count(
                &format!("items in the array {}", value_name(key, depth)),
                "",
                len,
                item.min_bytes(),
                r.remaining(),
                u64::MAX,
                "gguf-array",
            )?;
            let mut first = Vec::with_capacity((len as usize).min(ARRAY_PREVIEW));
            for _ in 0..(len as usize).min(ARRAY_PREVIEW) {
                first.push(preview(read_value(r, item_id, key, depth + 1, limits)?));
            }
            let rest = len - first.len() as u64;
            match item.width() {
                // Checked above: `rest` items of this width fit in what remains.
                Some(w) => {
                    r.take(rest * w).map_err(short)?;
                }
                None => {
                    for _ in 0..rest {
                        skip_value(r, item, key, depth + 1, limits)?;
                    }
                }
            }
            Value::Array { item, len, first }
        }
    })
}

/// Walks past a value without keeping it (strings are bounds-checked, not copied).
fn skip_value(
    r: &mut Reader<'_>,
    t: ValueType,
    key: &str,
    depth: usize,
    limits: &Limits,
) -> Result<(), GgufProblem> {
    match t {
        ValueType::String => {
            r.string(&|| value_name(key, depth), limits.max_gguf_string)?;
            Ok(())
        }
        ValueType::Array => read_value(r, 9, key, depth, limits).map(|_| ()),
        t => {
            r.take(t.width().unwrap_or(1))
                .map_err(|s| s.inside(value_name(key, depth)))?;
            Ok(())
        }
    }
}

/// Array items keep a preview only: strings cut, nested arrays already summarised.
fn preview(v: Value) -> Value {
    match v {
        Value::Str(s) if s.chars().count() > PREVIEW_CHARS => {
            let cut: String = s.chars().take(PREVIEW_CHARS).collect();
            Value::Str(format!("{cut}…"))
        }
        v => v,
    }
}

fn value_name(key: &str, depth: usize) -> String {
    if depth == 0 {
        format!("the value of `{key}`")
    } else {
        format!("an item of `{key}` (array depth {depth})")
    }
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
    let mut findings = vec![Finding::new(
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
            .map(|n| Finding::new(Severity::Warning, n.clone())),
    );
    for (key, value) in &header.metadata {
        if let (true, Value::Str(template)) = (is_chat_template(key), value)
            && let Some(reason) = template_risk(template)
        {
            findings.push(Finding::new(
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

/// What `scan` says of a GGUF file: the header is validated first (a file that only starts like
/// GGUF is not vouched for), then one note on what was checked, and a suspicious finding per
/// chat template that reaches Python internals.
pub fn scan_findings(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Vec<crate::pickle::policy::Finding>, GgufProblem> {
    use crate::pickle::policy::{Finding, Risk};
    let h = parse(bytes, limits)?;
    let mut findings = vec![Finding::new(
        Risk::Info,
        None,
        format!(
            "no pickle: data-only format (GGUF v{}: {} metadata entries and {} tensors read; value types, tensor types, shapes, alignment and offsets checked); loading it runs no code",
            h.version,
            h.metadata.len(),
            h.tensors.len()
        ),
    )];
    for (key, value) in &h.metadata {
        if let (true, Value::Str(template)) = (is_chat_template(key), value)
            && let Some(reason) = template_risk(template)
        {
            let mut f = Finding::new(Risk::Suspicious, None, reason);
            f.member = Some(key.clone());
            findings.push(f);
        }
    }
    Ok(findings)
}

/// Why `convert` does not write a GGUF file as safetensors, for its error message: it
/// converts pickles, and quantized blocks would have to be dequantized (not copied) to be
/// written, which would be a different model file, not the same weights.
pub fn convert_refusal(ckpt: &Checkpoint) -> String {
    let mut types: Vec<GgmlType> = ckpt.tensors.iter().filter_map(|t| t.quant).collect();
    let quantized = types.len();
    types.sort();
    types.dedup();
    let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    if quantized == 0 {
        " (it is a GGUF model: `convert` turns pickles into safetensors; GGUF loading runs no code and its tensors are shown as they are)".into()
    } else {
        format!(
            " (it is a GGUF model: `convert` turns pickles into safetensors, and {quantized} of its {} tensors are ggml block-quantized ({}), which safetensors cannot hold without dequantizing them; nothing was written)",
            ckpt.tensors.len(),
            names.join(", ")
        )
    }
}

/// True for `tokenizer.chat_template` and its named variants (`tokenizer.chat_template.tool_use`).
pub fn is_chat_template(key: &str) -> bool {
    key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.")
}

/// Why a chat template is worth a warning, if it is: Jinja that reaches Python internals runs
/// code in a renderer that is not sandboxed (llama-cpp-python before 0.2.72, CVE-2024-34359).
pub fn template_risk(template: &str) -> Option<String> {
    const MARKERS: [&str; 12] = [
        "__class__",
        "__globals__",
        "__subclasses__",
        "__builtins__",
        "__import__",
        "__init__",
        "__mro__",
        "__base__",
        "__getattribute__",
        "_TemplateReference__context",
        "popen",
        "os.system",
    ];
    let found: Vec<&str> = MARKERS
        .iter()
        .copied()
        .filter(|m| template.contains(m))
        .collect();
    (!found.is_empty()).then(|| {
        format!(
            "the chat template reaches Python internals ({}); a Jinja renderer that is not sandboxed runs code from it (CVE-2024-34359)",
            found.join(", ")
        )
    })
}

/// The text shown for a metadata entry: [`Value::render`], with the name of
/// `general.file_type` added.
pub fn render_entry(key: &str, value: &Value) -> String {
    let text = value.render();
    match (key, value.as_u64().and_then(file_type_name)) {
        ("general.file_type", Some(name)) => format!("{text} ({name})"),
        _ => text,
    }
}

/// llama.cpp's `llama_ftype` names (`general.file_type`).
pub fn file_type_name(v: u64) -> Option<&'static str> {
    Some(match v {
        0 => "all F32",
        1 => "mostly F16",
        2 => "mostly Q4_0",
        3 => "mostly Q4_1",
        7 => "mostly Q8_0",
        8 => "mostly Q5_0",
        9 => "mostly Q5_1",
        10 => "mostly Q2_K",
        11 => "mostly Q3_K_S",
        12 => "mostly Q3_K_M",
        13 => "mostly Q3_K_L",
        14 => "mostly Q4_K_S",
        15 => "mostly Q4_K_M",
        16 => "mostly Q5_K_S",
        17 => "mostly Q5_K_M",
        18 => "mostly Q6_K",
        19 => "mostly IQ2_XXS",
        20 => "mostly IQ2_XS",
        21 => "mostly Q2_K_S",
        22 => "mostly IQ3_XS",
        23 => "mostly IQ3_XXS",
        24 => "mostly IQ1_S",
        25 => "mostly IQ4_NL",
        26 => "mostly IQ3_S",
        27 => "mostly IQ3_M",
        28 => "mostly IQ2_S",
        29 => "mostly IQ2_M",
        30 => "mostly IQ4_XS",
        31 => "mostly IQ1_M",
        32 => "mostly BF16",
        36 => "mostly TQ1_0",
        37 => "mostly TQ2_0",
        38 => "mostly MXFP4 (MoE)",
        39 => "mostly NVFP4",
        40 => "mostly Q1_0",
        1024 => "guessed",
        _ => return None,
    })
}

/// A readable label for a GGUF metadata key (`general.*`, `tokenizer.*` and the per-architecture
/// keys such as `llama.context_length`), if it is a known one.
pub fn key_label(key: &str) -> Option<String> {
    let fixed = match key {
        "general.architecture" => "Architecture",
        "general.name" => "Model name",
        "general.basename" => "Base name",
        "general.type" => "Type of file",
        "general.finetune" => "Fine-tune",
        "general.version" => "Version",
        "general.size_label" => "Size",
        "general.author" => "Author",
        "general.organization" => "Organization",
        "general.description" => "Description",
        "general.license" => "License",
        "general.license.name" => "License name",
        "general.license.link" => "License link",
        "general.url" => "URL",
        "general.repo_url" => "Repository",
        "general.source.url" => "Source URL",
        "general.source.repo_url" => "Source repository",
        "general.file_type" => "File type (quantization)",
        "general.quantization_version" => "Quantization format version",
        "general.quantized_by" => "Quantized by",
        "general.alignment" => "Data alignment (bytes)",
        "general.tags" => "Tags",
        "general.languages" => "Languages",
        "general.datasets" => "Datasets",
        "general.base_model.count" => "Base models",
        "tokenizer.ggml.model" => "Tokenizer model",
        "tokenizer.ggml.pre" => "Tokenizer pre-tokenizer",
        "tokenizer.ggml.tokens" => "Tokenizer: tokens",
        "tokenizer.ggml.scores" => "Tokenizer: token scores",
        "tokenizer.ggml.token_type" => "Tokenizer: token types",
        "tokenizer.ggml.merges" => "Tokenizer: BPE merges",
        "tokenizer.ggml.bos_token_id" => "Beginning-of-sequence token id",
        "tokenizer.ggml.eos_token_id" => "End-of-sequence token id",
        "tokenizer.ggml.unknown_token_id" => "Unknown token id",
        "tokenizer.ggml.padding_token_id" => "Padding token id",
        "tokenizer.ggml.separator_token_id" => "Separator token id",
        "tokenizer.ggml.add_bos_token" => "Adds a BOS token",
        "tokenizer.ggml.add_eos_token" => "Adds an EOS token",
        "tokenizer.chat_template" => "Chat template",
        "tokenizer.huggingface.json" => "Hugging Face tokenizer.json",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_string());
    }
    if let Some(name) = key.strip_prefix("tokenizer.chat_template.") {
        return Some(format!("Chat template `{name}`"));
    }
    if let Some(rest) = key.strip_prefix("general.") {
        return Some(format!("General: {}", rest.replace(['_', '.'], " ")));
    }
    let (arch, rest) = key.split_once('.')?;
    if arch == "tokenizer" {
        return None;
    }
    let label = match rest {
        "context_length" => "context length",
        "embedding_length" => "embedding width",
        "block_count" => "layers (blocks)",
        "feed_forward_length" => "feed-forward width",
        "expert_feed_forward_length" => "expert feed-forward width",
        "use_parallel_residual" => "parallel residual",
        "tensor_data_layout" => "tensor data layout",
        "expert_count" => "experts",
        "expert_used_count" => "experts used per token",
        "vocab_size" => "vocabulary size",
        "attention.head_count" => "attention heads",
        "attention.head_count_kv" => "key/value heads",
        "attention.max_alibi_bias" => "maximum ALiBi bias",
        "attention.clamp_kqv" => "KQV clamp",
        "attention.key_length" => "key length per head",
        "attention.value_length" => "value length per head",
        "attention.layer_norm_epsilon" => "layer norm epsilon",
        "attention.layer_norm_rms_epsilon" => "RMS norm epsilon",
        "attention.sliding_window" => "sliding window",
        "rope.dimension_count" => "RoPE dimensions",
        "rope.freq_base" => "RoPE base frequency",
        "rope.scale_linear" => "RoPE linear scale",
        "rope.scaling.type" => "RoPE scaling type",
        "rope.scaling.factor" => "RoPE scaling factor",
        "rope.scaling.original_context_length" => "RoPE original context length",
        "rope.scaling.finetuned" => "RoPE scaling fine-tuned",
        _ => return None,
    };
    Some(format!("{arch}: {label}"))
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
