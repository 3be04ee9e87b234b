//! Errors of the core, written for the person who picked the file.
//!
//! Every message names the problem in words (which tensor, which offsets, what was expected) and
//! ends with the file it is about. Fields that carry a cause are not marked `#[source]` on
//! purpose: the cause is already in the message, and `anyhow`'s `{:#}` would print it twice.

use std::path::{Path, PathBuf};

use crate::dtype::DType;

pub mod gguf;

/// Why a checkpoint could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused an operation on the file.
    #[error("cannot {action}: {error} ({})", path.display())]
    Io {
        /// What was being done ("open", "read", "map").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's answer.
        error: std::io::Error,
    },
    /// The file's content is not a valid checkpoint of the kind it appears to be.
    #[error("{problem} ({})", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Problem,
    },
    /// The file is recognised but ckptscope cannot open it this way.
    #[error("{what} ({})", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What it is and what is missing.
        what: String,
    },
    /// The file changed on disk after it was opened; its old layout no longer applies.
    #[error(
        "the file changed on disk while open (it was {expected} bytes, it is now {actual} bytes); reopen it ({})",
        path.display()
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// Size when it was opened.
        expected: u64,
        /// Size now.
        actual: u64,
    },
    /// The user cancelled the operation (opening, hashing).
    #[error("cancelled ({})", path.display())]
    Cancelled {
        /// The file.
        path: PathBuf,
    },
    /// The user asked for a tensor that is not in the checkpoint.
    #[error("no tensor named `{name}` ({})", path.display())]
    NoSuchTensor {
        /// The checkpoint.
        path: PathBuf,
        /// The requested name.
        name: String,
    },
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path, error: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            error,
        }
    }

    pub(crate) fn invalid(path: &Path, problem: Problem) -> Self {
        Error::Invalid {
            path: path.to_path_buf(),
            problem,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::Invalid { path, .. }
            | Error::Unsupported { path, .. }
            | Error::Changed { path, .. }
            | Error::Cancelled { path }
            | Error::NoSuchTensor { path, .. } => path,
        }
    }

    /// The problem with the file's content, if that is what went wrong.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Invalid { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// What is wrong inside a checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Shorter than the 8-byte length that starts every safetensors file.
    #[error(
        "file is only {len} bytes long; a safetensors file starts with an 8-byte header length"
    )]
    TooSmall {
        /// File length.
        len: u64,
    },
    /// The header length field is larger than ckptscope accepts.
    #[error(
        "header length field says {declared} bytes, more than the {limit}-byte limit (is this really a safetensors file?)"
    )]
    HeaderTooLarge {
        /// Declared header length.
        declared: u64,
        /// The limit.
        limit: u64,
    },
    /// The header length field points past the end of the file.
    #[error(
        "header length field says {declared} bytes but only {available} bytes follow it (truncated file?)"
    )]
    HeaderPastEnd {
        /// Declared header length.
        declared: u64,
        /// Bytes after the length field.
        available: u64,
    },
    /// The header is not UTF-8 text.
    #[error("header is not valid UTF-8 text (first bad byte at header offset {offset})")]
    HeaderNotUtf8 {
        /// Offset of the first invalid byte inside the header.
        offset: u64,
    },
    /// The header is not a JSON object.
    #[error("header is not valid JSON: {message}")]
    HeaderNotJson {
        /// serde_json's description, with line and column inside the header.
        message: String,
    },
    /// A tensor name appears twice in the header.
    #[error(
        "tensor `{name}` is listed twice in the header (readers disagree on which entry wins, so the file is rejected)"
    )]
    DuplicateTensor {
        /// The repeated name.
        name: String,
    },
    /// A `__metadata__` key appears twice.
    #[error("metadata key `{key}` is listed twice in `__metadata__`")]
    DuplicateMetadataKey {
        /// The repeated key.
        key: String,
    },
    /// `__metadata__` is not a map of strings to strings.
    #[error("`__metadata__` must map strings to strings: {message}")]
    BadMetadata {
        /// What was found instead.
        message: String,
    },
    /// A tensor entry is not `{"dtype", "shape", "data_offsets"}` with valid values.
    #[error("tensor `{name}` has an invalid entry: {message}")]
    BadTensorEntry {
        /// Tensor name.
        name: String,
        /// What is wrong (unknown dtype, missing field...).
        message: String,
    },
    /// The element count or byte size of a tensor does not fit in 64 bits.
    #[error("tensor `{name}`: shape {shape:?} of {dtype} is too large to address")]
    ShapeOverflow {
        /// Tensor name.
        name: String,
        /// Declared dtype.
        dtype: DType,
        /// Declared shape.
        shape: Vec<u64>,
    },
    /// Sub-byte values that do not end on a byte boundary.
    #[error("tensor `{name}`: {elements} values of {dtype} do not fill a whole number of bytes")]
    SubByteMisaligned {
        /// Tensor name.
        name: String,
        /// Declared dtype.
        dtype: DType,
        /// Element count.
        elements: u64,
    },
    /// `data_offsets` whose end is before their start.
    #[error("tensor `{name}`: data_offsets [{begin}, {end}] end before they begin")]
    OffsetsReversed {
        /// Tensor name.
        name: String,
        /// Start offset.
        begin: u64,
        /// End offset.
        end: u64,
    },
    /// The byte range does not match dtype × shape.
    #[error(
        "tensor `{name}`: {dtype} {shape:?} needs {expected} bytes but data_offsets [{begin}, {end}] cover {}",
        end - begin
    )]
    SizeMismatch {
        /// Tensor name.
        name: String,
        /// Declared dtype.
        dtype: DType,
        /// Declared shape.
        shape: Vec<u64>,
        /// Start offset.
        begin: u64,
        /// End offset.
        end: u64,
        /// Bytes that dtype × shape need.
        expected: u64,
    },
    /// Tensors that leave a hole between them or share bytes.
    #[error(
        "tensor `{name}` starts at data offset {begin} but {} ends at {expected}: tensor bytes must follow each other without gaps or overlaps",
        match previous { Some(p) => format!("the previous tensor `{p}`"), None => "the data section starts at 0 and".to_string() }
    )]
    NotContiguous {
        /// Tensor name.
        name: String,
        /// Its start offset.
        begin: u64,
        /// Where it should start.
        expected: u64,
        /// The tensor before it, by offset.
        previous: Option<String>,
    },
    /// The data section is longer or shorter than the tensors declare.
    #[error(
        "the header declares {declared} bytes of tensor data but the file holds {actual} bytes after the header ({})",
        if actual > declared { "trailing bytes" } else { "truncated file" }
    )]
    DataLength {
        /// Sum of tensor sizes according to the header.
        declared: u64,
        /// Bytes after the header.
        actual: u64,
    },
    /// A sharded index file that cannot be used.
    #[error("index file: {message}")]
    BadIndex {
        /// What is wrong.
        message: String,
    },
    /// A GGUF file that breaks its format's rules.
    #[error("not a valid GGUF file: {0}")]
    Gguf(gguf::GgufProblem),
    /// Any other structural problem, described in words.
    #[error("{0}")]
    Other(String),
}
