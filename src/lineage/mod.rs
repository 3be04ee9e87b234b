//! Version lineage: which checkpoint each one came from.
//!
//! There is no single standard, so every convention found in practice is read and normalised
//! into one [`Record`]: ckptscope's own keys (written by the converter and by `set-parent`),
//! ModelSpec, kohya sd-scripts, Hugging Face / PEFT configs beside the file, anemoi-style uuids
//! (also inside JSON-valued metadata), and Lightning's epoch/global_step. A folder is scanned by
//! reading headers only, and parents are linked by file name, path, declared hash, computed hash
//! or uuid into a DAG; a parent that is not found stays as a dangling node with what is known.
//!
//! A checkpoint's content id is the SHA-256 of its tensor data only (for safetensors, the bytes
//! after the header), so editing metadata keeps it. Ids are cached on disk per (path, size,
//! mtime), so a second look is instant.

//!
//! Owns: lineage records, the graph and set-parent. Must not import: `convert`, `scan`,
//! `output`, `gui`.

pub mod graph;
pub mod records;
pub mod set_parent;

pub use graph::{Edge, Graph, LineageOptions, Node, family};
pub use records::{ParentRef, Record, RefKind, read_record, record};
pub use set_parent::{SetParentReport, set_parent};
