//! What can be wrong with a GGUF file: the problems the GGUF reader (`format::gguf`) reports.
//!
//! Must not import: `format` (errors are below the readers that raise them).

use crate::dtype::GgmlType;
use crate::limits::MAX_GGUF_DEPTH;

/// Most dimensions a ggml tensor has (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

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
