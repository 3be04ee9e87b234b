//! ONNX models (`.onnx`) opened as a [`Checkpoint`]: the graph's initializers are the tensors
//! (with those of the sub-graphs of `If`, `Loop` and `Scan` nodes, under a dotted scope: see
//! [`proto`]), the model's description and `metadata_props` the metadata.
//!
//! **Why a hand-written wire reader and not `prost`.** A generated `ModelProto` would parse the
//! whole graph into owned structs and copy every `raw_data` out of the file: a 2 GB model would
//! cost 2 GB of memory before its table appears, and the offsets a memory-mapped viewer needs
//! would be lost. The few fields needed here ([`proto`]) are read with the bounded reader of
//! [`crate::archive::protobuf`], which yields each field with its absolute offset and checks
//! every length; the file itself is the schema check (field numbers and wire types). No build
//! step, no `protoc`, no generated code to keep in sync, and nothing in the graph is
//! materialised beyond the initializers' names, dims and byte ranges.
//!
//! Where a tensor's values are, and how they are read:
//!
//! - `raw_data`: a range of the file, viewed in place from the map (zero-copy);
//! - a typed field (`float_data`, `double_data`) written packed in one piece: also a range of
//!   the file, as those are fixed-width little-endian values;
//! - any other typed field (`int32_data`, `int64_data`, `uint64_data` are varints; unpacked or
//!   split fields): decoded on first use into a [`derived`](crate::format::derived) source,
//!   bounded by the exact size the dims need and by `--limit inflated`;
//! - external data (`data_location = EXTERNAL`, the `location`/`offset`/`length` entries): a
//!   range of that file, mapped like a shard. The location must be a relative path that stays
//!   inside the model's folder, symbolic links included ([`external`]); an absolute or escaping
//!   path is never opened and is reported (`onnx.load` of older versions would read that file).
//!   Offsets and lengths are `u64`, so the external files of models over 2 GiB (the protobuf
//!   limit, which is why such models use external data) are addressed like any other.

pub mod external;
pub mod proto;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dtype::DType;
use crate::error::{Error, Problem};
use crate::format::derived::{Budget, Derived, Packing, Recipe};
use crate::format::mapped::{MappedFile, open_regular};
use crate::format::{Checkpoint, Format, ReadIssue, Severity, Source, TensorEntry};
use crate::limits::Limits;
use crate::verdict::Risk;

pub use proto::{Model, Tensor};

/// A tensor that is listed but not read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The tensor.
    pub name: String,
    /// Why, in words.
    pub reason: String,
    /// What it means for loading the model: [`Risk::Info`] for a type or encoding ckptscope
    /// does not read (strings, INT4, segments); [`Risk::Suspicious`] when the file contradicts
    /// itself (sizes that do not add up, a missing external file); [`Risk::Dangerous`] when the
    /// external data location is absolute or leaves the model's folder (loading the model reads
    /// a file its author chose, anywhere on the machine).
    pub risk: Risk,
}

/// Where one initializer's bytes are.
#[derive(Debug)]
enum Place {
    /// A range of the model file.
    Model(std::ops::Range<u64>),
    /// A range of an external file.
    External(PathBuf, u64, std::ops::Range<u64>),
    /// Values to decode from the model file.
    Decode(Recipe),
}

/// An initializer's dtype, shape and place.
type Located = (DType, Vec<u64>, Place);

/// A model, read: its parsed description, and for each initializer its place or why not.
#[derive(Debug)]
pub struct Read {
    /// The parsed model.
    pub model: Model,
    places: Vec<Result<Located, Refused>>,
}

impl Read {
    /// The tensors that are listed but not read.
    pub fn refused(&self) -> impl Iterator<Item = &Refused> {
        self.places.iter().filter_map(|p| p.as_ref().err())
    }
}

/// Parses the model at `path` (whose bytes are `bytes`) and locates every initializer,
/// checking external data files and their sizes, without opening anything that escapes the
/// model's folder.
pub fn read(path: &Path, bytes: &[u8]) -> Result<Read, Problem> {
    let model = proto::parse(bytes)?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut sizes: HashMap<PathBuf, Result<u64, String>> = HashMap::new();
    let places = model
        .initializers
        .iter()
        .map(|t| {
            place(t, bytes.len() as u64, folder, &mut sizes).map_err(|(risk, reason)| Refused {
                name: t.name.clone(),
                reason,
                risk,
            })
        })
        .collect();
    Ok(Read { model, places })
}

/// Opens a mapped ONNX model.
pub fn open(mapped: MappedFile, limits: &Limits) -> Result<Checkpoint, Error> {
    let path = mapped.path().to_path_buf();
    let read = read(&path, mapped.bytes()).map_err(|p| Error::invalid(&path, p))?;
    let file_size = mapped.len();
    let mut sources = vec![Source::whole_file(path.clone(), file_size, 0).with_map(mapped)];
    let mut external: HashMap<PathBuf, usize> = HashMap::new();
    let budget: Arc<Budget> = Budget::new(limits.max_inflated_bytes);
    let mut tensors = Vec::new();
    let mut findings = Vec::new();
    for (t, place) in read.model.initializers.iter().zip(read.places) {
        let (dtype, shape, place) = match place {
            Ok(p) => p,
            Err(r) => {
                findings.push(ReadIssue::new(
                    Severity::of_unread(r.risk),
                    format!("`{}` not read: {}", r.name, r.reason),
                ));
                continue;
            }
        };
        let (source, offsets) = match place {
            Place::Model(range) => (0, [range.start, range.end]),
            Place::External(file, size, range) => {
                let index = *external.entry(file.clone()).or_insert_with(|| {
                    sources.push(Source::whole_file(file, size, 0));
                    sources.len() - 1
                });
                (index, [range.start, range.end])
            }
            Place::Decode(recipe) => {
                let d = Derived::new(recipe, budget.clone());
                let len = d.size();
                sources.push(Source::derived(0, path.clone(), file_size, d));
                (sources.len() - 1, [0, len])
            }
        };
        let mut entry = TensorEntry::contiguous(t.name.clone(), dtype, shape, source, offsets, 0);
        if sources
            .get(source)
            .is_some_and(|s| s.derivation().is_some())
        {
            // Decoded values have no place in the file; point at the tensor's message.
            entry.file_offset = t.message.start;
        }
        tensors.push(entry);
    }
    for name in &read.model.sparse {
        findings.push(ReadIssue::new(
            Severity::Warning,
            format!("`{name}` not read: sparse initializers are not supported"),
        ));
    }
    if read.model.too_deep > 0 {
        findings.push(ReadIssue::new(
            Severity::Warning,
            format!(
                "{} sub-graphs nested deeper than {} levels not read (their initializers are not listed)",
                read.model.too_deep,
                crate::limits::MAX_ONNX_GRAPH_DEPTH
            ),
        ));
    }
    if let (n @ 1.., Some(first)) = &read.model.unreadable_nodes {
        findings.push(ReadIssue::new(
            Severity::Warning,
            format!(
                "{n} nodes could not be read in search of sub-graphs (initializers of theirs are not listed): {first}"
            ),
        ));
    }
    for s in &mut sources {
        s.tensor_count = 0;
    }
    for t in &tensors {
        if let Some(s) = sources.get_mut(t.source) {
            s.tensor_count += 1;
        }
    }
    let metadata = metadata(&read.model);
    Ok(Checkpoint::new(
        path,
        Format::Onnx,
        metadata,
        tensors,
        sources,
        findings,
    ))
}

/// The model's description as metadata pairs: `onnx.*` keys for the fields of `ModelProto`,
/// then `metadata_props` under their own keys.
pub fn metadata(m: &Model) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push((format!("onnx.{k}"), v));
        }
    };
    put("ir_version", m.ir_version.map(|v| v.to_string()));
    put("producer_name", m.producer_name.clone());
    put("producer_version", m.producer_version.clone());
    put("domain", m.domain.clone());
    put("model_version", m.model_version.map(|v| v.to_string()));
    put("doc_string", m.doc_string.clone());
    put(
        "opset_import",
        (!m.opsets.is_empty()).then(|| {
            m.opsets
                .iter()
                .map(|(d, v)| format!("{}={v}", if d.is_empty() { "ai.onnx" } else { d.as_str() }))
                .collect::<Vec<_>>()
                .join(", ")
        }),
    );
    put("graph_name", m.graph_name.clone());
    put("nodes", Some(m.nodes.to_string()));
    if m.subgraphs > 0 {
        put("subgraphs", Some(m.subgraphs.to_string()));
    }
    if m.functions > 0 {
        put("functions", Some(m.functions.to_string()));
    }
    out.extend(m.metadata.iter().cloned());
    out
}

/// The ckptscope dtype of an ONNX `data_type`, or why there is none.
pub fn dtype(data_type: i64) -> Result<DType, String> {
    Ok(match data_type {
        1 => DType::F32,
        2 => DType::U8,
        3 => DType::I8,
        4 => DType::U16,
        5 => DType::I16,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::BOOL,
        10 => DType::F16,
        11 => DType::F64,
        12 => DType::U32,
        13 => DType::U64,
        14 => DType::C64,
        16 => DType::BF16,
        17 => DType::F8_E4M3,
        18 => DType::F8_E4M3FNUZ,
        19 => DType::F8_E5M2,
        20 => DType::F8_E5M2FNUZ,
        23 => DType::F4,
        24 => DType::F8_E8M0,
        27 => DType::F6_E2M3,
        28 => DType::F6_E3M2,
        0 => return Err("its data_type is UNDEFINED".into()),
        8 => return Err("STRING tensors hold text, not numbers".into()),
        15 => return Err("COMPLEX128 has no ckptscope dtype".into()),
        21 | 22 => return Err("4-bit integers (UINT4, INT4) have no ckptscope dtype".into()),
        25 | 26 => return Err("2-bit integers (UINT2, INT2) have no ckptscope dtype".into()),
        n => return Err(format!("data_type {n} is unknown")),
    })
}

/// The typed field ONNX stores `dtype` in, the bytes written per value, how many values the
/// tensor takes, and how they pack.
fn typed_field(dtype: DType, elements: u64) -> Option<(u32, usize, u64, Packing)> {
    Some(match dtype {
        DType::F32 => (4, 4, elements, Packing::Whole),
        DType::C64 => (4, 4, elements.checked_mul(2)?, Packing::Whole),
        DType::F64 => (10, 8, elements, Packing::Whole),
        DType::I64 => (7, 8, elements, Packing::Whole),
        DType::U32 => (11, 4, elements, Packing::Whole),
        DType::U64 => (11, 8, elements, Packing::Whole),
        DType::I32 => (5, 4, elements, Packing::Whole),
        DType::I16 | DType::U16 | DType::F16 | DType::BF16 => (5, 2, elements, Packing::Whole),
        DType::BOOL
        | DType::U8
        | DType::I8
        | DType::F8_E4M3
        | DType::F8_E4M3FNUZ
        | DType::F8_E5M2
        | DType::F8_E5M2FNUZ
        | DType::F8_E8M0 => (5, 1, elements, Packing::Whole),
        // Two 4-bit values per int32, in its low byte.
        DType::F4 => (5, 1, elements.div_ceil(2), Packing::Whole),
        DType::F6_E2M3 | DType::F6_E3M2 => (5, 1, elements, Packing::Six),
    })
}

type Placed = Result<Located, (Risk, String)>;

fn place(
    t: &Tensor,
    file_len: u64,
    folder: &Path,
    sizes: &mut HashMap<PathBuf, Result<u64, String>>,
) -> Placed {
    let unsupported = |why: String| (Risk::Info, why);
    let malformed = |why: String| (Risk::Suspicious, why);
    let dtype = dtype(t.data_type).map_err(unsupported)?;
    if t.segment {
        return Err(unsupported(
            "it is a segment of a larger tensor (TensorProto.segment), which is not supported"
                .into(),
        ));
    }
    let shape: Vec<u64> = t
        .dims
        .iter()
        .map(|&d| u64::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| malformed(format!("its dims {:?} hold a negative size", t.dims)))?;
    let elements = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| malformed(format!("its dims {shape:?} overflow 64 bits")))?;
    let len = dtype.bytes_for(elements).ok_or_else(|| {
        if dtype.byte_size().is_none() {
            unsupported(format!(
                "{elements} values of {dtype} end inside a byte (a padded last byte is not supported)"
            ))
        } else {
            malformed(format!("its dims {shape:?} overflow 64 bits of bytes"))
        }
    })?;
    if t.location_external {
        let (file, size, range) = external::locate(t, folder, len, sizes)?;
        return Ok((dtype, shape, Place::External(file, size, range)));
    }
    if let Some(raw) = &t.raw {
        let have = raw.end - raw.start;
        if have != len {
            return Err(malformed(format!(
                "its raw_data holds {have} bytes but {dtype} {shape:?} needs {len}"
            )));
        }
        return Ok((dtype, shape, Place::Model(raw.clone())));
    }
    let Some((field, width, count, packing)) = typed_field(dtype, elements) else {
        return Err(malformed(format!("its dims {shape:?} overflow 64 bits")));
    };
    if let Some(other) = t.typed.iter().find(|x| x.field != field) {
        return Err(malformed(format!(
            "its values are in field {} but ONNX stores {dtype} in field {field}",
            other.field
        )));
    }
    let Some(typed) = t.typed.iter().find(|x| x.field == field) else {
        if elements == 0 {
            return Ok((dtype, shape, Place::Model(t.message.end..t.message.end)));
        }
        return Err(malformed(
            "it holds no values (no raw_data, no typed field, no external data)".into(),
        ));
    };
    // One packed piece of fixed-width values is already the little-endian tensor.
    if let (1, 0, Some(r), 4 | 10) = (typed.packed, typed.unpacked, &typed.first_packed, field)
        && packing == Packing::Whole
        && r.end - r.start == len
        && r.end <= file_len
    {
        return Ok((dtype, shape, Place::Model(r.clone())));
    }
    Ok((
        dtype,
        shape,
        Place::Decode(Recipe::Protobuf {
            range: t.message.clone(),
            field,
            width,
            count,
            packing,
        }),
    ))
}

/// Opens `path` as a regular file and returns its size (external data files).
fn regular_size(path: &Path) -> Result<u64, String> {
    open_regular(path)
        .map(|(_, meta)| meta.len())
        .map_err(|e| e.to_string())
}
