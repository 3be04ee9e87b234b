//! # ckptscope
//!
//! The core of a checkpoint explorer for machine-learning weight files. Everything here works
//! without a display and without egui: the GUI (feature `gui`) and the CLI are thin layers over
//! it.
//!
//! - [`format`] opens safetensors files (single or sharded) through a memory map, parsing only
//!   headers, and detects every other checkpoint format by content.
//! - [`package`] sees a model folder (a training run's output) as one package: roles, verdicts,
//!   run timeline, convert-all and the inference package.
//! - [`pipeline`] is how every writer writes: temporary file, space check, verified copies,
//!   atomic placement, shard index.
//! - [`export`] writes safetensors models back as PyTorch checkpoints for old runtimes.
//! - [`dtype`] names the 22 element types of safetensors 0.8.
//!
//! A module imports only the layers below it (checked by `tests/library/layers.rs`). The top one,
//! `cli` (`src/cli/`), is the binary's, not the library's: it parses the command line and
//! launches the window, and nothing here can name it.
//!
//! Layers, bottom to top: `dtype` < `timefmt` < `progress` < `fsutil` < `limits` < `verdict` < `error` < `archive` < `detect` < `pickle` < `format` < `desktop` < `analysis` < `hash` < `pipeline` < `lineage` < `convert` < `export` < `scan` < `package` < `output` < `gui` < `cli`.
//!
//! ```no_run
//! let ckpt = ckptscope::format::open("model.safetensors".as_ref())?;
//! for t in &ckpt.tensors {
//!     println!("{} {} {:?}", t.name, t.dtype, t.shape);
//! }
//! # Ok::<(), ckptscope::Error>(())
//! ```

#![warn(clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::indexing_slicing))]

pub mod analysis;
pub mod archive;
pub mod convert;
pub mod desktop;
pub mod detect;
pub mod dtype;
pub mod error;
pub mod export;
pub mod format;
pub mod fsutil;
#[cfg(feature = "gui")]
pub mod gui;
pub mod hash;
pub mod limits;
pub mod lineage;
pub mod output;
pub mod package;
pub mod pickle;
pub mod pipeline;
pub mod progress;
pub mod scan;
pub mod timefmt;
pub mod verdict;

pub use dtype::DType;
pub use error::{Error, Problem};
pub use format::{Checkpoint, Format, TensorEntry, open};
pub use limits::Limits;
