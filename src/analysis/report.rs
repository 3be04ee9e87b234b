//! Statistics of many tensors at once, as `ckptscope stats` asks for them: the same slice, bin
//! count and sampling applied to each, through the window's own calls ([`analyze`] and
//! [`analyze_sample`]), one tensor after the other (each is already parallel inside).
//!
//! A tensor that cannot be measured (a ggml type that is not decoded, bytes that cannot be
//! read, a slice that does not fit its shape) gets its reason in its own entry; the others are
//! still measured. The work of every exact analysis is planned on the progress first, so a
//! progress line runs once from 0 to 100% over the whole batch.
//!
//! Owns: the batch and its per-tensor results. Must not import: `output`, `gui`.

use crate::analysis::slice::{SliceSpec, View};
use crate::analysis::summary::Analysis;
use crate::analysis::{Control, analyze, analyze_sample, source, work};
use crate::format::Checkpoint;

/// What to compute for every selected tensor.
#[derive(Clone, Debug)]
pub struct StatsOptions {
    /// The slice taken of each tensor (empty: the whole tensor).
    pub spec: SliceSpec,
    /// Bins of the histogram.
    pub bins: usize,
    /// `Some(n)`: statistics of about `n` evenly spaced elements, marked sampled, instead of
    /// every element.
    pub sample: Option<u64>,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            spec: SliceSpec::default(),
            bins: crate::analysis::DEFAULT_BINS,
            sample: None,
        }
    }
}

/// One tensor's answer.
#[derive(Clone, Debug)]
pub struct TensorStats {
    /// Its name.
    pub name: String,
    /// Its stored type: the ggml block type of a quantized tensor (`Q4_K`), else the dtype.
    pub type_name: &'static str,
    /// Its shape.
    pub shape: Vec<u64>,
    /// The shape of the selection measured (the shape when no slice was given); `None` when
    /// the slice does not apply.
    pub selected: Option<Vec<u64>>,
    /// The statistics, or why there are none.
    pub result: Result<Analysis, String>,
}

/// Measures the tensors `picks` (indices into `ckpt.tensors`) as `options` says, in order.
pub fn stats(
    ckpt: &Checkpoint,
    picks: &[usize],
    options: &StatsOptions,
    progress: &Control,
) -> Vec<TensorStats> {
    let bins = options.bins.max(1);
    // Every view and source first: the plan needs their sizes, and a bad slice is known
    // before any work starts.
    let prepared: Vec<_> = picks
        .iter()
        .filter_map(|&i| ckpt.tensors.get(i))
        .map(|t| {
            let view = View::select(t, &options.spec).map_err(|e| e.to_string());
            let src = view
                .as_ref()
                .map_err(String::clone)
                .and_then(|_| source(ckpt, t).map_err(|e| e.to_string()));
            (t, view, src)
        })
        .collect();
    if options.sample.is_none() {
        for (_, view, src) in &prepared {
            if let (Ok(view), Ok(src)) = (view, src) {
                progress.plan(work(src, view));
            }
        }
    }
    prepared
        .into_iter()
        .map(|(t, view, src)| {
            let selected = view.as_ref().ok().map(|v| v.shape.clone());
            let result = match (view, src) {
                (Err(e), _) | (_, Err(e)) => Err(e),
                (Ok(view), Ok(src)) => match options.sample {
                    Some(n) => analyze_sample(&src, &view, bins, n),
                    None => analyze(&src, &view, bins, progress),
                }
                .map_err(|e| format!("{e} (tensor `{}`)", t.name)),
            };
            TensorStats {
                name: t.name.clone(),
                type_name: t.type_name(),
                shape: t.shape.clone(),
                selected,
                result,
            }
        })
        .collect()
}
