//! Numbers out of tensors: decoding every dtype, slicing, statistics, histograms, heatmaps.
//!
//! Everything here reads bytes borrowed from the memory map and decodes only the selected
//! elements; nothing is copied into a whole-tensor buffer.

pub mod codes;
pub mod decode;
pub mod diff;
pub mod heatmap;
pub mod kernels;
pub mod slice;
pub mod stats;

use crate::error::Error;
use crate::format::{Checkpoint, TensorEntry};

pub use crate::progress::Progress as Control;
pub use slice::{SliceSpec, View};
pub use stats::{Analysis, Histogram, Source, Stats};

/// The decoding source of a tensor of `ckpt`.
pub fn source<'a>(ckpt: &'a Checkpoint, t: &TensorEntry) -> Result<Source<'a>, Error> {
    Ok(Source {
        bytes: ckpt.tensor_bytes(t)?,
        dtype: t.dtype,
        order: t.byte_order,
    })
}
