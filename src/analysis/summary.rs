//! What an analysis answers: statistics, histograms and percentiles, and the helpers both
//! counting paths (bit patterns in `codes`, two passes in `moments`) build them with.
//!
//! Owns: the result types. Must not import: `codes`, `moments` (the counting paths;
//! they import it).
//!
//! `clippy::indexing_slicing` is allowed here: the bin index is clamped to the last bin.

#![allow(clippy::indexing_slicing)]

use crate::dtype::DType;
use crate::format::ByteOrder;

/// Bins of the fine histogram percentiles are read from.
pub const FINE_BINS: usize = 4096;
/// Percentiles reported.
pub const PERCENTILES: [f64; 7] = [1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0];

/// Why a computation did not finish.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// Cancelled by the user.
    #[error("cancelled")]
    Cancelled,
    /// The view reaches outside the tensor's bytes.
    #[error("the selection reads outside the tensor's bytes")]
    OutOfRange,
}

/// What is being measured: a tensor's elements as stored (its bytes, dtype, byte order and
/// block type), and how to decode them. (The file the bytes come from is a
/// [`crate::format::Source`].)
#[derive(Clone, Copy, Debug)]
pub struct Elements<'a> {
    /// The bytes the tensor reads ([`crate::Checkpoint::tensor_bytes`]).
    pub bytes: &'a [u8],
    /// Element type.
    pub dtype: DType,
    /// Byte order.
    pub order: ByteOrder,
    /// The ggml block type when the bytes are quantized blocks ([`crate::TensorEntry::quant`]);
    /// `dtype` is then F32, the type they decode to.
    pub quant: Option<crate::format::GgmlType>,
}

impl Elements<'_> {
    /// Element `i`, decoded; `None` when it lies outside the bytes.
    pub fn value(&self, i: u64) -> Option<f64> {
        match self.quant {
            Some(q) => crate::analysis::quant::value_at(q, self.bytes, i).map(f64::from),
            None => crate::analysis::decode::decode_at(self.dtype, self.order, self.bytes, i),
        }
    }

    /// Element `i` as exact text ([`crate::analysis::decode::element_text`]).
    pub fn text(&self, i: u64) -> Option<String> {
        match self.quant {
            Some(q) => crate::analysis::quant::value_at(q, self.bytes, i)
                .map(|v| crate::analysis::decode::format_float(f64::from(v))),
            None => crate::analysis::decode::element_text(self.dtype, self.order, self.bytes, i),
        }
    }
}

/// Summary statistics of the finite values, and counts of the others.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Elements examined.
    pub count: u64,
    /// NaNs.
    pub nan: u64,
    /// +Inf.
    pub pos_inf: u64,
    /// -Inf.
    pub neg_inf: u64,
    /// Exact zeros (±0).
    pub zeros: u64,
    /// Finite values.
    pub finite: u64,
    /// Smallest finite value (NaN when none).
    pub min: f64,
    /// Largest finite value (NaN when none).
    pub max: f64,
    /// Mean of the finite values.
    pub mean: f64,
    /// Population standard deviation of the finite values.
    pub std: f64,
    /// Root mean square of the finite values.
    pub rms: f64,
}

/// A histogram over `[lo, hi]` with equal-width bins.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub lo: f64,
    /// Right edge of the last bin.
    pub hi: f64,
    /// Count per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Width of one bin (0 when all values are equal).
    pub fn width(&self) -> f64 {
        if self.counts.is_empty() {
            0.0
        } else {
            (self.hi - self.lo) / self.counts.len() as f64
        }
    }

    /// Centre of bin `i`.
    pub fn center(&self, i: usize) -> f64 {
        self.lo + (i as f64 + 0.5) * self.width()
    }

    pub(crate) fn new(lo: f64, hi: f64, bins: usize) -> Histogram {
        Histogram {
            lo,
            hi,
            counts: vec![0; bins.max(1)],
        }
    }

    /// Adds `count` times a finite value; values outside `[lo, hi]` go to the end bins.
    #[inline(always)]
    pub(crate) fn add(&mut self, v: f64, scale: f64, count: u64) {
        let last = self.counts.len() - 1;
        let i = ((v - self.lo) * scale) as usize;
        self.counts[i.min(last)] += count;
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// The value below which `p` percent of the counted values fall, interpolated inside its
    /// bin (exact to one bin width).
    pub fn percentile(&self, p: f64) -> f64 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return f64::NAN;
        }
        let rank = p / 100.0 * total as f64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            if c > 0 && (seen + c) as f64 >= rank {
                let within = ((rank - seen as f64) / c as f64).clamp(0.0, 1.0);
                return self.lo + (i as f64 + within) * self.width();
            }
            seen += c;
        }
        self.hi
    }
}

/// The result of analysing a selection.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Analysis {
    /// Summary statistics.
    pub stats: Stats,
    /// The requested histogram of finite values over `[min, max]`.
    pub histogram: Histogram,
    /// Approximate percentiles `(p, value)`, read from a fine histogram.
    pub percentiles: Vec<(f64, f64)>,
    /// Resolution of the percentiles (one fine bin).
    pub percentile_resolution: f64,
    /// `Some(n)` when computed from a strided sample of `n` elements, not from all of them.
    pub sampled: Option<u64>,
}

/// Bins of the fine histogram: at least [`FINE_BINS`], and a multiple of `bins` so the requested
/// histogram is exactly a sum of fine bins (one bin update per element, not two).
pub(crate) fn fine_bins(bins: usize) -> usize {
    let bins = bins.max(1);
    bins * FINE_BINS.div_ceil(bins)
}

/// The `bins`-bin histogram made of a fine one whose bin count is a multiple of `bins`.
pub(crate) fn coarsen(fine: &Histogram, bins: usize) -> Histogram {
    let bins = bins.max(1);
    let per = (fine.counts.len() / bins).max(1);
    Histogram {
        lo: fine.lo,
        hi: fine.hi,
        counts: fine.counts.chunks(per).map(|c| c.iter().sum()).collect(),
    }
}

pub(crate) fn range_of(stats: &Stats) -> (f64, f64) {
    if stats.finite == 0 {
        (0.0, 1.0)
    } else if stats.min == stats.max {
        // One value: a bin of width 1 centred on it.
        (stats.min - 0.5, stats.max + 0.5)
    } else {
        (stats.min, stats.max)
    }
}

pub(crate) fn scale(h: &Histogram) -> f64 {
    let w = h.hi - h.lo;
    if w > 0.0 {
        h.counts.len() as f64 / w
    } else {
        0.0
    }
}

pub(crate) fn finish(
    stats: Stats,
    histogram: Histogram,
    fine: &Histogram,
    sampled: Option<u64>,
) -> Analysis {
    let percentiles = PERCENTILES
        .iter()
        .map(|&p| (p, fine.percentile(p)))
        .collect();
    Analysis {
        stats,
        percentile_resolution: fine.width(),
        histogram,
        percentiles,
        sampled,
    }
}

/// Mean and population standard deviation computed directly in `f64`, for tests to check the
/// streamed figures against.
#[cfg(test)]
pub(crate) fn reference_mean_std(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}
