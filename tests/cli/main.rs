//! The CLI run as a user runs it (the real binary, `CARGO_BIN_EXE_ckptscope`), one module per
//! subcommand or theme, linked into one binary. A new file `tests/cli/NAME.rs` is listed here as
//! `mod NAME;` and imports the shared helpers with `use crate::common;`.

#[path = "../common/mod.rs"]
mod common;

mod fail_closed;
mod hostile;
mod info;
mod reference;
mod scan;
mod stats;
