//! Containers of tensors, and the one model of a checkpoint every view works from.
//!
//! Opening reads headers only. Tensor bytes stay in the memory map until something asks for them,
//! and then they are borrowed from it, never copied: listing a 100 GB model costs what reading
//! its header costs.
//!
//! `clippy::indexing_slicing` is allowed here: a fixed 8-byte prefix buffer is split at constant
//! offsets.

#![allow(clippy::indexing_slicing)]

pub mod derived;
pub mod gather;
pub mod gguf;
pub mod mapped;
pub mod numpy;
pub mod onnx;
pub mod pytorch;
pub mod reader;
pub mod readers;
pub mod registry;
pub mod safetensors;
pub mod sharded;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use crate::detect::{Format, detect};
pub use crate::dtype::{GgmlType, ggml};
pub use crate::verdict::{ReadIssue, Severity};
pub use mapped::MappedFile;
pub use pytorch::{PickleOptions, PickleReport};
pub use reader::{Input, Judgement, Reader};

use crate::dtype::DType;
use crate::error::{Error, Problem};
use crate::limits::Limits;

/// A checkpoint, opened: where it is, what it holds, and where each tensor's bytes are.
#[derive(Debug)]
pub struct Checkpoint {
    /// What the user opened: a file, an index file, or a folder.
    pub path: PathBuf,
    /// The container format.
    pub format: Format,
    /// Bytes on disk: the file, or all shards together.
    pub file_size: u64,
    /// Length of the JSON header (summed over shards).
    pub header_size: u64,
    /// Free-form string metadata (`__metadata__`), in file order.
    pub metadata: Vec<(String, String)>,
    /// Every tensor, in file order (shard by shard for sharded checkpoints).
    pub tensors: Vec<TensorEntry>,
    /// The files the bytes live in: one, or one per shard.
    pub sources: Vec<Source>,
    /// Problems that did not prevent opening (index/shard disagreements, unreadable parts):
    /// what was not read, not whether the file is safe (that is [`Checkpoint::pickle`]'s
    /// verdict, or `scan`'s).
    pub issues: Vec<ReadIssue>,
    /// For pickle-based files: the scan verdict, its findings and the non-tensor values.
    pub pickle: Option<Box<PickleReport>>,
    /// Tensor index by name, built on first lookup (listing never needs it).
    by_name: OnceLock<HashMap<String, usize>>,
}

/// One tensor of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// Full name (`model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// Element type; for a block-quantized GGUF tensor, the type its values decode to (F32).
    pub dtype: DType,
    /// The ggml block type of a quantized GGUF tensor (`Q4_K`, `IQ2_XXS`...), whose bytes are
    /// blocks of codes and scales rather than `dtype` values; `None` for every other tensor
    /// (see [`ggml`] for why this is not a `DType`).
    pub quant: Option<GgmlType>,
    /// Dimensions, slowest first as PyTorch writes them (GGUF's fastest-first dimensions are
    /// reversed); empty for a 0-d scalar.
    pub shape: Vec<u64>,
    /// Index into [`Checkpoint::sources`].
    pub source: usize,
    /// The bytes this tensor reads, relative to its source's data section
    /// ([`Source::data_start`]): the tensor itself when [`Layout::Contiguous`], the whole storage
    /// it views when [`Layout::Strided`].
    pub data_offsets: [u64; 2],
    /// Absolute file offset of `data_offsets[0]`.
    pub file_offset: u64,
    /// How elements are placed in those bytes.
    pub layout: Layout,
    /// Byte order of the elements (PyTorch can write big-endian storages).
    pub byte_order: ByteOrder,
    /// Key of the PyTorch storage this tensor views (`"0"`, `"17"`); `None` for safetensors.
    pub storage: Option<String>,
    /// The device a PyTorch tensor was saved from (`cpu`, `cuda:0`), as its storage records it;
    /// `None` for formats that do not say.
    pub device: Option<String>,
    /// For pickles: the top-level entry holding the nested mapping this tensor is in
    /// (`state_dict`, `model`), see [`crate::pickle::torch::PickledTensor::root`].
    pub root: Option<String>,
}

/// How a tensor's elements are placed in its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Row-major and packed, as in safetensors: the bytes are exactly the tensor.
    #[default]
    Contiguous,
    /// A view into a larger storage, as in PyTorch: element `[i0, i1, ...]` is storage element
    /// `offset + Σ ik·strides[k]` (strides in elements, one per dimension).
    Strided {
        /// Storage offset, in elements.
        offset: u64,
        /// Step per dimension, in elements (0 for an expanded dimension).
        strides: Vec<u64>,
    },
}

/// Byte order of multi-byte elements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Little-endian: safetensors, and PyTorch on every common machine.
    #[default]
    Little,
    /// Big-endian: PyTorch storages saved on s390x and other big-endian hosts.
    Big,
}

impl TensorEntry {
    /// A contiguous little-endian tensor stored at `data_offsets` of `source`.
    pub fn contiguous(
        name: String,
        dtype: DType,
        shape: Vec<u64>,
        source: usize,
        data_offsets: [u64; 2],
        data_start: u64,
    ) -> Self {
        TensorEntry {
            name,
            dtype,
            quant: None,
            shape,
            source,
            // Saturates: the readers reject offsets past the file before anything is read.
            file_offset: data_start.saturating_add(data_offsets[0]),
            data_offsets,
            layout: Layout::Contiguous,
            byte_order: ByteOrder::Little,
            storage: None,
            device: None,
            root: None,
        }
    }

    /// Number of elements (1 for a scalar, 0 for an empty tensor); saturates at `u64::MAX`
    /// (readers reject shapes whose count overflows, so only a hand-built entry gets there).
    pub fn elements(&self) -> u64 {
        if self.shape.contains(&0) {
            return 0;
        }
        self.shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// Logical bytes over the bytes of the region it reads: 1 for a packed tensor, large for a
    /// stride-0 expand (`x.expand(...)` saved as a view). 0 for an empty region.
    pub fn expansion(&self) -> u64 {
        self.byte_len() / self.region_len().max(1)
    }

    /// Bytes the tensor's values take once packed row-major (what a safetensors file would
    /// store). For a contiguous tensor, its byte range.
    pub fn byte_len(&self) -> u64 {
        match self.quant {
            Some(q) => q.bytes_for(self.elements()),
            None => self.dtype.bytes_for(self.elements()),
        }
        .unwrap_or(u64::MAX)
    }

    /// The stored type's name: the ggml block type of a quantized tensor (`Q4_K`), else the
    /// dtype (`F32`).
    pub fn type_name(&self) -> &'static str {
        match self.quant {
            Some(q) => q.name(),
            None => self.dtype.name(),
        }
    }

    /// Length of the byte range the tensor reads ([`TensorEntry::data_offsets`]).
    pub fn region_len(&self) -> u64 {
        self.data_offsets[1].saturating_sub(self.data_offsets[0])
    }

    /// Absolute byte range this tensor reads in its source file.
    pub fn file_range(&self) -> std::ops::Range<u64> {
        self.file_offset..self.file_offset.saturating_add(self.region_len())
    }

    /// True when the bytes are exactly the tensor, packed row-major, little-endian.
    pub fn is_plain(&self) -> bool {
        self.layout == Layout::Contiguous && self.byte_order == ByteOrder::Little
    }
}

/// A file that holds tensor bytes: the checkpoint itself or one shard.
#[derive(Debug)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// Its size when it was opened.
    pub file_size: u64,
    /// Length of its JSON header.
    pub header_size: u64,
    /// Absolute offset of its data section: after the header for safetensors, 0 for files
    /// whose tensor bytes are found through another index (PyTorch archives).
    pub data_start: u64,
    /// Tensors it holds.
    pub tensor_count: usize,
    mapped: OnceLock<MappedFile>,
    /// For bytes that are not a range of the file (a deflated `.npz` member, an ONNX typed
    /// field): how they are made from it on first use. Tensors of such a source have
    /// `data_offsets` into those bytes.
    derived: Option<(usize, Box<derived::Derived>)>,
}

impl Source {
    pub(crate) fn new(
        path: PathBuf,
        file_size: u64,
        header_size: u64,
        tensor_count: usize,
    ) -> Self {
        Source {
            path,
            file_size,
            header_size,
            data_start: safetensors::LENGTH_BYTES + header_size,
            tensor_count,
            mapped: OnceLock::new(),
            derived: None,
        }
    }

    /// A file whose tensors are located by absolute offsets (a PyTorch archive): no header
    /// section, data section = the whole file.
    pub(crate) fn whole_file(path: PathBuf, file_size: u64, tensor_count: usize) -> Self {
        Source {
            data_start: 0,
            ..Source::new(path, file_size, 0, tensor_count)
        }
    }

    /// Bytes derived by `derived`, when first asked for, from the file of source `parent` (at
    /// `path`, `file_size` bytes long), whose map they share.
    pub(crate) fn derived(
        parent: usize,
        path: PathBuf,
        file_size: u64,
        derived: derived::Derived,
    ) -> Self {
        Source {
            derived: Some((parent, Box::new(derived))),
            ..Source::whole_file(path, file_size, 1)
        }
    }

    /// How this source's bytes are made, when they are not a range of its file.
    pub fn derivation(&self) -> Option<&derived::Derived> {
        self.derived.as_ref().map(|(_, d)| &**d)
    }

    /// How the source is named to users: its file name, and what is derived from it.
    pub fn label(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.derivation() {
            Some(d) => format!("{name} ({})", d.describe()),
            None => name,
        }
    }

    pub(crate) fn with_map(mut self, map: MappedFile) -> Self {
        self.mapped = OnceLock::from(map);
        self
    }

    /// The source's memory map, created on first use and checked against the size at open.
    pub fn mapped(&self) -> Result<&MappedFile, Error> {
        if let Some(m) = self.mapped.get() {
            m.check_unchanged()?;
            return Ok(m);
        }
        let m = MappedFile::open(&self.path)?;
        if m.len() != self.file_size {
            return Err(Error::Changed {
                path: self.path.clone(),
                expected: self.file_size,
                actual: m.len(),
            });
        }
        Ok(self.mapped.get_or_init(|| m))
    }

    /// True once the file has been mapped.
    pub fn is_mapped(&self) -> bool {
        self.mapped.get().is_some()
    }
}

/// A count of tensors, elements and bytes for one dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DTypeTotal {
    /// The dtype.
    pub dtype: DType,
    /// The ggml block type, for quantized GGUF tensors (counted apart from plain F32).
    pub quant: Option<GgmlType>,
    /// Tensors of that dtype.
    pub tensors: usize,
    /// Their elements.
    pub elements: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Checkpoint {
    pub(crate) fn new(
        path: PathBuf,
        format: Format,
        metadata: Vec<(String, String)>,
        tensors: Vec<TensorEntry>,
        sources: Vec<Source>,
        issues: Vec<ReadIssue>,
    ) -> Self {
        Checkpoint {
            // Derived sources are made from a file already counted.
            file_size: sources
                .iter()
                .filter(|s| s.derived.is_none())
                .map(|s| s.file_size)
                .sum(),
            header_size: sources.iter().map(|s| s.header_size).sum(),
            path,
            format,
            metadata,
            tensors,
            sources,
            issues,
            pickle: None,
            by_name: OnceLock::new(),
        }
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorEntry> {
        let index = self.by_name.get_or_init(|| {
            self.tensors
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), i))
                .collect()
        });
        index.get(name).and_then(|&i| self.tensors.get(i))
    }

    /// The tensor called `name`, or an error that names it.
    pub fn require(&self, name: &str) -> Result<&TensorEntry, Error> {
        self.tensor(name).ok_or_else(|| Error::NoSuchTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })
    }

    /// Key/value pairs as metadata is compared and searched: safetensors `__metadata__`, then
    /// for pickle files their non-tensor values flattened to dotted keys (at most 10,000).
    pub fn metadata_pairs(&self) -> Vec<(String, String)> {
        let mut out = self.metadata.clone();
        if let Some(report) = &self.pickle {
            out.extend(crate::pickle::value_leaves(&report.objects, 10_000));
        }
        out
    }

    /// A metadata value.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Total number of elements (parameters) over all tensors.
    pub fn parameters(&self) -> u64 {
        self.tensors
            .iter()
            .fold(0u64, |a, t| a.saturating_add(t.elements()))
    }

    /// Total tensor bytes.
    pub fn tensor_bytes_total(&self) -> u64 {
        self.tensors
            .iter()
            .fold(0u64, |a, t| a.saturating_add(t.byte_len()))
    }

    /// Tensors, elements and bytes per dtype, largest byte count first.
    pub fn dtype_totals(&self) -> Vec<DTypeTotal> {
        let mut totals: Vec<DTypeTotal> = Vec::new();
        for t in &self.tensors {
            match totals
                .iter_mut()
                .find(|d| d.dtype == t.dtype && d.quant == t.quant)
            {
                Some(d) => {
                    d.tensors += 1;
                    d.elements = d.elements.saturating_add(t.elements());
                    d.bytes = d.bytes.saturating_add(t.byte_len());
                }
                None => totals.push(DTypeTotal {
                    dtype: t.dtype,
                    quant: t.quant,
                    tensors: 1,
                    elements: t.elements(),
                    bytes: t.byte_len(),
                }),
            }
        }
        totals.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then(a.dtype.cmp(&b.dtype))
                .then(a.quant.cmp(&b.quant))
        });
        totals
    }

    /// The bytes `tensor` reads ([`TensorEntry::data_offsets`]), borrowed from the memory map
    /// (mapping its shard on first use).
    pub fn tensor_bytes(&self, tensor: &TensorEntry) -> Result<&[u8], Error> {
        let source = self.sources.get(tensor.source).ok_or_else(|| {
            Error::invalid(
                &self.path,
                Problem::Other(format!(
                    "tensor `{}` refers to a missing shard",
                    tensor.name
                )),
            )
        })?;
        let (data, range) = match &source.derived {
            None => (source.mapped()?.bytes(), tensor.file_range()),
            Some((parent, d)) => {
                let file = self
                    .sources
                    .get(*parent)
                    .filter(|p| p.derived.is_none())
                    .ok_or_else(|| {
                        Error::invalid(
                            &self.path,
                            Problem::Other(format!(
                                "tensor `{}` is derived from a missing source",
                                tensor.name
                            )),
                        )
                    })?
                    .mapped()?;
                let made = d.bytes(file.bytes()).map_err(|e| {
                    Error::invalid(
                        &source.path,
                        Problem::Other(format!("tensor `{}`: {e}", tensor.name)),
                    )
                })?;
                (made, tensor.data_offsets[0]..tensor.data_offsets[1])
            }
        };
        let bytes = usize::try_from(range.start)
            .ok()
            .zip(usize::try_from(range.end).ok())
            .and_then(|(s, e)| data.get(s..e));
        bytes.ok_or_else(|| {
            Error::invalid(
                &source.path,
                Problem::Other(format!(
                    "tensor `{}` bytes {}..{} lie outside the {} bytes of {}",
                    tensor.name,
                    range.start,
                    range.end,
                    data.len(),
                    source.label()
                )),
            )
        })
    }
}

/// How to open a checkpoint.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Bounds on what a file may make ckptscope allocate.
    pub limits: Limits,
    /// How pickle-based files are judged and read.
    pub pickle: PickleOptions,
    /// Watched while opening: the pickle engine reports the bytes it has gone through and stops
    /// with [`Error::Cancelled`] soon after the flag is raised.
    pub progress: Option<std::sync::Arc<crate::progress::Progress>>,
}

/// Opens a checkpoint: a file of any supported format, a sharded index, or a folder holding one.
pub fn open(path: &Path) -> Result<Checkpoint, Error> {
    open_with(path, &OpenOptions::default())
}

/// [`open`] with chosen limits.
pub fn open_with_limits(path: &Path, limits: &Limits) -> Result<Checkpoint, Error> {
    open_with(
        path,
        &OpenOptions {
            limits: limits.clone(),
            ..OpenOptions::default()
        },
    )
}

/// [`open`] with chosen options.
pub fn open_with(path: &Path, options: &OpenOptions) -> Result<Checkpoint, Error> {
    open_watched(path, options, options.progress.as_deref())
}

/// [`open_with`], watched by `progress` (which takes the place of `options.progress`): for a
/// caller that holds its progress by reference, such as `convert`.
pub fn open_watched(
    path: &Path,
    options: &OpenOptions,
    progress: Option<&crate::progress::Progress>,
) -> Result<Checkpoint, Error> {
    let limits = &options.limits;
    if path.is_dir() {
        return open_folder(path, options);
    }
    let mapped = MappedFile::open(path)?;
    let format = registry::identify(path, mapped.bytes());
    match registry::lookup(format).reader {
        _ if format == Format::Unknown && has_extension(path, "safetensors") => {
            open_safetensors(mapped, limits)
        }
        _ if format == Format::Unknown => Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: registry::unrecognised(path, &registry::first_bytes(mapped.bytes())),
        }),
        Some(reader) => reader.open(mapped, format, options, progress),
        None => Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: registry::not_read(format),
        }),
    }
}

impl DTypeTotal {
    /// The stored type's name (`Q4_K`, `F32`).
    pub fn name(&self) -> &'static str {
        match self.quant {
            Some(q) => q.name(),
            None => self.dtype.name(),
        }
    }
}

/// Opens a single safetensors file that is already mapped.
pub fn open_safetensors(mapped: MappedFile, limits: &Limits) -> Result<Checkpoint, Error> {
    let path = mapped.path().to_path_buf();
    let header = read_header(mapped.bytes(), mapped.len(), limits)
        .map_err(|problem| Error::invalid(&path, problem))?;
    let tensors = header.tensors;
    let source = Source::new(
        path.clone(),
        mapped.len(),
        header.header_size,
        tensors.len(),
    )
    .with_map(mapped);
    Ok(Checkpoint::new(
        path,
        Format::Safetensors,
        header.metadata,
        tensors,
        vec![source],
        Vec::new(),
    ))
}

/// Parses and validates the header of a safetensors file from a prefix of it (the whole map, or
/// the first `8 + header_size` bytes read from disk).
pub fn read_header(
    prefix: &[u8],
    file_len: u64,
    limits: &Limits,
) -> Result<safetensors::Header, Problem> {
    let (declared, json) = safetensors::split_header(prefix, file_len, limits)?;
    let data_len = file_len - safetensors::LENGTH_BYTES - declared;
    safetensors::parse_header(json, data_len)
}

/// Reads and validates only the header of a safetensors file, with plain reads (no map): what
/// sharded opening and folder scans need.
pub fn read_header_file(path: &Path, limits: &Limits) -> Result<(u64, safetensors::Header), Error> {
    use std::io::Read;
    let (mut file, meta) = mapped::open_regular(path)?;
    let file_len = meta.len();
    let mut len_bytes = [0u8; 8];
    if file_len < safetensors::LENGTH_BYTES {
        return Err(Error::invalid(path, Problem::TooSmall { len: file_len }));
    }
    file.read_exact(&mut len_bytes)
        .map_err(|e| Error::io("read", path, e))?;
    let declared = u64::from_le_bytes(len_bytes);
    safetensors::check_header_len(declared, file_len, limits)
        .map_err(|p| Error::invalid(path, p))?;
    // Bounded by the limit and by the file's size, both checked above.
    let prefix_len = usize::try_from(declared + safetensors::LENGTH_BYTES).map_err(|_| {
        Error::invalid(
            path,
            Problem::HeaderTooLarge {
                declared,
                limit: limits.max_header_bytes,
            },
        )
    })?;
    let mut prefix = vec![0u8; prefix_len];
    prefix[..8].copy_from_slice(&len_bytes);
    file.read_exact(&mut prefix[8..])
        .map_err(|e| Error::io("read", path, e))?;
    let header = read_header(&prefix, file_len, limits).map_err(|p| Error::invalid(path, p))?;
    Ok((file_len, header))
}

fn open_folder(path: &Path, options: &OpenOptions) -> Result<Checkpoint, Error> {
    let limits = &options.limits;
    if registry::is_saved_model(path) {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: registry::saved_model_not_read(),
        });
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io("list", path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    let name_of = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let indexes: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| name_of(p).ends_with(".safetensors.index.json"))
        .collect();
    if let [index] = indexes.as_slice() {
        return sharded::open_index(index, limits);
    }
    let singles: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| has_extension(p, "safetensors"))
        .collect();
    match (indexes.len(), singles.as_slice()) {
        (0, [single]) => open_with(single, options),
        (0, []) => Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: "this folder holds no safetensors file and no model.safetensors.index.json"
                .into(),
        }),
        _ => Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: format!(
                "this folder holds several checkpoints ({}); open one of them",
                indexes
                    .iter()
                    .copied()
                    .chain(singles.iter().copied())
                    .map(name_of)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

pub(crate) fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}
