//! What the CLI prints: human tables and `--json` documents, kept out of the binary's `src/cli`
//! so they can be tested and reused (the GUI shows the same numbers with the same units).

pub mod convert;
pub mod desktop;
pub mod diff;
pub mod export;
pub mod human;
pub mod info;
pub mod lineage;
pub mod package;
pub mod scan;
pub mod stats;

/// A write failure as the command line says it: the library's words, and `--force` where it
/// would let the write happen.
pub fn write_error_text(e: &crate::pipeline::WriteError) -> String {
    match e {
        crate::pipeline::WriteError::Exists(_) => format!("{e}; pass --force to replace it"),
        e => e.to_string(),
    }
}
