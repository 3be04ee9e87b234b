//! Numbers out of tensors: decoding every dtype, slicing, statistics, histograms, heatmaps.
//!
//! Everything here reads bytes borrowed from the memory map and decodes only the selected
//! elements; nothing is copied into a whole-tensor buffer.

pub mod codes;
pub mod decode;
pub mod diff;
pub mod heatmap;
pub mod kernels;
pub mod quant;
pub mod slice;
pub mod stats;

use crate::error::Error;
use crate::format::{Checkpoint, TensorEntry};

pub use crate::progress::Progress as Control;
pub use slice::{SliceSpec, View};
pub use stats::{Analysis, Histogram, Source, Stats};

/// The decoding source of a tensor of `ckpt`; an error for a ggml block type that is not
/// decoded ([`quant::supported`]), which is named rather than guessed.
pub fn source<'a>(ckpt: &'a Checkpoint, t: &TensorEntry) -> Result<Source<'a>, Error> {
    if let Some(q) = t.quant.filter(|&q| !quant::supported(q)) {
        return Err(Error::Unsupported {
            path: ckpt.path.clone(),
            what: format!(
                "statistics not supported for {q}: ckptscope decodes the ggml types F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q8_K, IQ4_NL, IQ4_XS and MXFP4 (tensor `{}`)",
                t.name
            ),
        });
    }
    Ok(Source {
        bytes: ckpt.tensor_bytes(t)?,
        dtype: t.dtype,
        order: t.byte_order,
        quant: t.quant,
    })
}
