//! The library's integration tests, one module per former `tests/*.rs` file, linked into one
//! binary so a fresh build links the library (and the GUI stack it pulls in with `gui`) once
//! instead of once per file. A new test file `tests/library/NAME.rs` is listed here as `mod NAME;`
//! and imports the shared helpers with `use crate::common;`.

#[path = "../common/mod.rs"]
mod common;

mod analysis_fixtures;
mod compat;
mod convert;
mod convert_formats;
mod diff;
mod export;
mod gguf;
mod hostile;
mod layers;
mod lineage;
mod numpy;
mod onnx;
mod package;
mod pickle_attacks;
mod pickle_fixtures;
mod safetensors_open;
mod sharded;
mod torchscript;
mod writers;
mod xformat;
mod zoo;
