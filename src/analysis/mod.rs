//! Numbers out of tensors: decoding every dtype, slicing, statistics, histograms, heatmaps.
//!
//! Everything here reads bytes borrowed from the memory map and decodes only the selected
//! elements; nothing is copied into a whole-tensor buffer.
//!
//! Statistics take one of two sibling paths, chosen here by [`analyze`]: types of at most 16
//! bits are counted by bit pattern ([`codes`]), wider ones in two decoding passes ([`moments`]).
//! Both build the result types of [`summary`].
//!
//! Owns: decoding, slicing, statistics, heatmaps, tensor comparison. Must not import: `hash`,
//! `lineage`, `convert`, `scan`, `output`, `gui`.

pub mod codes;
pub mod decode;
pub mod diff;
pub mod element;
pub mod heatmap;
pub mod kernels;
pub mod measures;
pub mod moments;
pub mod namemap;
pub mod pairs;
pub mod quant;
pub mod report;
pub mod select;
pub mod slice;
pub mod summary;

use crate::error::Error;
use crate::format::{Checkpoint, TensorEntry};

pub use crate::progress::Progress as Control;
pub use slice::{SliceSpec, View};
pub use summary::{Analysis, Elements, FINE_BINS, Histogram, PERCENTILES, Stats, StatsError};

/// The decoding source of a tensor of `ckpt`; an error for a ggml block type that is not
/// decoded ([`quant::supported`]), which is named rather than guessed.
pub fn source<'a>(ckpt: &'a Checkpoint, t: &TensorEntry) -> Result<Elements<'a>, Error> {
    if let Some(q) = t.quant.filter(|&q| !quant::supported(q)) {
        return Err(Error::Unsupported {
            path: ckpt.path.clone(),
            what: format!(
                "statistics not supported for {q}: ckptscope decodes the ggml types F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q8_K, IQ4_NL, IQ4_XS and MXFP4 (tensor `{}`)",
                t.name
            ),
        });
    }
    Ok(Elements {
        bytes: ckpt.tensor_bytes(t)?,
        dtype: t.dtype,
        order: t.byte_order,
        quant: t.quant,
    })
}

/// Histogram bins the window starts with, and `ckptscope stats` without `--bins`.
pub const DEFAULT_BINS: usize = 64;
/// Elements of the first, sampled answer (the window's, and `stats --sample` without a count).
pub const DEFAULT_SAMPLE: u64 = 16_384;

/// The units of work [`analyze`] will count on its [`Control`] for `view`: what a caller
/// [plans](crate::progress::Progress::plan) to show one progress over several analyses.
pub fn work(src: &Elements<'_>, view: &View) -> u64 {
    let n = view.elements();
    if src.quant.is_none() && codes::table_len(src.dtype).is_some() {
        n
    } else {
        n.saturating_mul(2)
    }
}

/// Computes statistics and a `bins`-bin histogram of every selected element, in parallel. Types
/// of at most 16 bits are counted by bit pattern ([`codes`]: one pass, exact percentiles);
/// wider ones take two decoding passes ([`moments`]: moments, then bins) with percentiles read
/// from a fine histogram.
pub fn analyze(
    src: &Elements<'_>,
    view: &View,
    bins: usize,
    control: &Control,
) -> Result<Analysis, StatsError> {
    if src.quant.is_some() {
        // Blocks decode to F32: the two decoding passes.
        moments::analyze::<f32>(src, view, bins, control)
    } else if codes::table_len(src.dtype).is_some() {
        codes::analyze(src, view, bins, control)
    } else if decode::fits_f32(src.dtype) {
        moments::analyze::<f32>(src, view, bins, control)
    } else {
        moments::analyze::<f64>(src, view, bins, control)
    }
}

/// Statistics of about `size` elements spread evenly over the selection: a first answer that
/// costs `size` decodes whatever the tensor's size.
pub fn analyze_sample(
    src: &Elements<'_>,
    view: &View,
    bins: usize,
    size: u64,
) -> Result<Analysis, StatsError> {
    let n = view.elements();
    if n <= size.max(1) {
        // The sample would be every element: the exact analysis costs the same, and gives the
        // exact percentiles of the types counted by bit pattern.
        return analyze(src, view, bins, &Control::default());
    }
    moments::sample(src, view, bins, n, size.max(1))
}
