//! The real app driven by egui_kittest, one module per view or theme, linked into one binary
//! (built only with the `gui` feature, see `[[test]]` in Cargo.toml). Snapshots live in
//! `tests/snapshots/`. A new file `tests/gui/NAME.rs` is listed here as `mod NAME;` and imports
//! the shared helpers with `use crate::common;`.

#[path = "../common/mod.rs"]
mod common;

mod app;
mod gguf;
mod package;
mod window;
mod xformat;
