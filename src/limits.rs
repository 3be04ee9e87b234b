//! Every bound ckptscope puts on what a file may make it allocate or loop over, in one place.
//!
//! Files are untrusted: a header length, a shape or a pickle opcode count comes from whoever
//! wrote the file. Each reader checks the relevant limit *before* allocating, so opening a hostile
//! file costs at most these amounts, and a legitimate file never comes near them.

/// Bounds applied while reading files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest safetensors JSON header accepted, in bytes (the safetensors crate's own limit).
    pub max_header_bytes: u64,
    /// Largest `*.index.json` of a sharded checkpoint, in bytes.
    pub max_index_bytes: u64,
    /// Most shards one index may name.
    pub max_shards: usize,
    /// Bounds on each pickle stream.
    pub pickle: crate::pickle::vm::PickleLimits,
}

impl Limits {
    /// The limits used unless a caller chooses others.
    pub const DEFAULT: Limits = Limits {
        max_header_bytes: 100_000_000,
        max_index_bytes: 256 * 1024 * 1024,
        max_shards: 100_000,
        pickle: crate::pickle::vm::PickleLimits::DEFAULT,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
