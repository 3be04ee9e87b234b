//! What the CLI prints: human tables and `--json` documents, kept out of `main.rs` so they can be
//! tested and reused (the GUI shows the same numbers with the same units).

pub mod convert;
pub mod diff;
pub mod export;
pub mod human;
pub mod info;
pub mod lineage;
pub mod package;
pub mod scan;
pub mod stats;
