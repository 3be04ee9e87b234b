//! What changed between two checkpoints, tensor by tensor.
//!
//! Tensors are matched by name. Equal bytes are detected first with a plain comparison of the
//! two mappings (comparing a file with itself reads it once); only pairs that differ are decoded,
//! in one parallel streaming pass that accumulates every measure at once (max and mean |a−b|,
//! relative L2, cosine, count of differing elements). Pairs of different dtypes but equal shapes
//! are compared by value. The histogram of a−b needs the range first, so it is a second pass,
//! run only for the pair a user looks at.
//!
//! Across formats, a [`Mapping`] pairs tensors by the names llama.cpp gives them and each pair
//! carries how one side's elements are reordered to line up ([`Unpermute`]): the comparison then
//! walks that side through a strided view, so values are compared in PyTorch order.
//!
//! `clippy::indexing_slicing` is allowed here: indexes are positions of a vector within its own
//! length.

#![allow(clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;

use crate::analysis::element::Element;
use crate::analysis::measures::Acc;
pub use crate::analysis::measures::Measures;
use crate::analysis::namemap::Mapping;
pub use crate::analysis::pairs::{Pair, Unpermute, pairs};
use crate::analysis::slice::View;
use crate::analysis::summary::{Elements, Histogram, StatsError};
use crate::dtype::DType;
use crate::format::{ByteOrder, Checkpoint, TensorEntry};
use crate::progress::Progress;

/// How a tensor differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Only in the first checkpoint.
    OnlyInA,
    /// Only in the second.
    OnlyInB,
    /// Different shapes (not compared by value).
    ShapeChanged,
    /// Same shape, different dtype (compared by value).
    DtypeChanged,
    /// Same dtype and shape, different values.
    ValuesChanged,
    /// Byte-for-byte equal.
    Identical,
}

impl Status {
    /// How it is shown.
    pub fn label(self) -> &'static str {
        match self {
            Status::OnlyInA => "only in A",
            Status::OnlyInB => "only in B",
            Status::ShapeChanged => "shape changed",
            Status::DtypeChanged => "dtype changed",
            Status::ValuesChanged => "values changed",
            Status::Identical => "identical",
        }
    }

    /// Every status, in display order.
    pub const ALL: [Status; 6] = [
        Status::ValuesChanged,
        Status::DtypeChanged,
        Status::ShapeChanged,
        Status::OnlyInA,
        Status::OnlyInB,
        Status::Identical,
    ];
}

/// One pair of tensors.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TensorDiff {
    /// The name (in A for renames).
    pub name: String,
    /// How it differs.
    pub status: Status,
    /// Dtype in A.
    pub dtype_a: Option<DType>,
    /// Dtype in B.
    pub dtype_b: Option<DType>,
    /// The stored type in A as shown: the dtype, or the ggml block type (`Q4_K`) of a quantized
    /// GGUF tensor ([`TensorEntry::type_name`]).
    pub type_a: Option<&'static str>,
    /// The stored type in B as shown.
    pub type_b: Option<&'static str>,
    /// Shape in A.
    pub shape_a: Option<Vec<u64>>,
    /// Shape in B.
    pub shape_b: Option<Vec<u64>>,
    /// Measures, for pairs compared by value.
    pub measures: Option<Measures>,
    /// Why the pair could not be compared, if it could not.
    pub error: Option<String>,
    /// The name in B when a [`Mapping`] paired it with a differently named tensor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_b: Option<String>,
    /// The reordering undone to line the two sides up, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpermute: Option<Unpermute>,
}

impl<'c> Pair<'c> {
    /// The pair a finished comparison made: by its names in A and B, with its reordering.
    pub fn of(a: &'c Checkpoint, b: &'c Checkpoint, d: &TensorDiff) -> Pair<'c> {
        let in_a = (d.status != Status::OnlyInB)
            .then(|| a.tensor(&d.name))
            .flatten();
        let name_b = d.name_b.as_deref().unwrap_or(&d.name);
        let in_b = (d.status != Status::OnlyInA)
            .then(|| b.tensor(name_b))
            .flatten();
        Pair {
            a: in_a,
            b: in_b,
            unpermute: d.unpermute,
        }
    }
}

impl TensorDiff {
    /// Relative L2 change, for sorting (identical = 0, missing = +∞).
    pub fn change(&self) -> f64 {
        match (&self.measures, self.status) {
            (_, Status::Identical) => 0.0,
            (Some(m), _) if m.rel_l2.is_nan() => f64::INFINITY,
            (Some(m), _) => m.rel_l2,
            _ => f64::INFINITY,
        }
    }
}

/// Metadata keys added, removed and changed from A to B.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetadataDiff {
    /// In B only: `(key, value)`.
    pub added: Vec<(String, String)>,
    /// In A only: `(key, value)`.
    pub removed: Vec<(String, String)>,
    /// In both with different values: `(key, in A, in B)`.
    pub changed: Vec<(String, String, String)>,
}

impl MetadataDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The comparison of two checkpoints.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Diff {
    /// Every pair, largest change first.
    pub tensors: Vec<TensorDiff>,
    /// Tensors only in A that look renamed to one only in B: same dtype, shape and bytes.
    pub renames: Vec<(String, String)>,
    /// Metadata changes (for pickles, their non-tensor values).
    pub metadata: MetadataDiff,
    /// The name mapping tensors were paired by, if any.
    pub mapping: Option<Mapping>,
}

impl Diff {
    /// Pairs per status.
    pub fn counts(&self) -> BTreeMap<Status, usize> {
        let mut c = BTreeMap::new();
        for t in &self.tensors {
            *c.entry(t.status).or_insert(0) += 1;
        }
        c
    }

    /// True when every tensor is identical and the metadata is the same.
    pub fn is_identical(&self) -> bool {
        self.tensors.iter().all(|t| t.status == Status::Identical) && self.metadata.is_empty()
    }
}

/// Compares every tensor of `a` with its namesake in `b`.
pub fn diff(a: &Checkpoint, b: &Checkpoint, progress: &Progress) -> Diff {
    diff_mapped(a, b, None, progress)
}

/// Compares every tensor of `a` with its partner in `b`: the tensor the mapping pairs it with,
/// or its namesake.
pub fn diff_mapped(
    a: &Checkpoint,
    b: &Checkpoint,
    mapping: Option<&Mapping>,
    progress: &Progress,
) -> Diff {
    let pairs = pairs(a, b, mapping);
    let total: u64 = pairs
        .iter()
        .filter_map(|p| Some(p.a?.byte_len().saturating_add(p.b?.byte_len())))
        .fold(0, u64::saturating_add);
    progress.add_total(total);
    let mut tensors: Vec<TensorDiff> = pairs
        .iter()
        .map(|p| compare_pair(a, b, p, progress))
        .collect();
    tensors.sort_by(|x, y| {
        y.change()
            .total_cmp(&x.change())
            .then(x.status.cmp(&y.status))
            .then(x.name.cmp(&y.name))
    });
    let unpaired_a: HashSet<&str> = pairs
        .iter()
        .filter_map(|p| p.a.filter(|_| p.b.is_none()).map(|t| t.name.as_str()))
        .collect();
    let unpaired_b: HashSet<&str> = pairs
        .iter()
        .filter_map(|p| p.b.filter(|_| p.a.is_none()).map(|t| t.name.as_str()))
        .collect();
    Diff {
        renames: renames(a, b, &unpaired_a, &unpaired_b),
        metadata: metadata_diff(&a.metadata_pairs(), &b.metadata_pairs()),
        mapping: mapping.cloned(),
        tensors,
    }
}

/// Compares one pair of namesakes (either side may be missing).
pub fn compare(
    a: &Checkpoint,
    ta: Option<&TensorEntry>,
    b: &Checkpoint,
    tb: Option<&TensorEntry>,
    progress: &Progress,
) -> TensorDiff {
    compare_pair(
        a,
        b,
        &Pair {
            a: ta,
            b: tb,
            unpermute: None,
        },
        progress,
    )
}

/// Compares one pair (either side may be missing).
pub fn compare_pair(
    a: &Checkpoint,
    b: &Checkpoint,
    pair: &Pair<'_>,
    progress: &Progress,
) -> TensorDiff {
    let (ta, tb) = (pair.a, pair.b);
    let mut d = TensorDiff {
        name: ta.or(tb).map(|t| t.name.clone()).unwrap_or_default(),
        status: Status::Identical,
        dtype_a: ta.map(|t| t.dtype),
        dtype_b: tb.map(|t| t.dtype),
        type_a: ta.map(|t| t.type_name()),
        type_b: tb.map(|t| t.type_name()),
        shape_a: ta.map(|t| t.shape.clone()),
        shape_b: tb.map(|t| t.shape.clone()),
        measures: None,
        error: None,
        name_b: match (ta, tb) {
            (Some(x), Some(y)) if x.name != y.name => Some(y.name.clone()),
            _ => None,
        },
        unpermute: pair.unpermute.filter(|_| ta.is_some() && tb.is_some()),
    };
    let (ta, tb) = match (ta, tb) {
        (Some(x), Some(y)) => (x, y),
        (Some(_), None) => {
            d.status = Status::OnlyInA;
            return d;
        }
        _ => {
            d.status = Status::OnlyInB;
            return d;
        }
    };
    if ta.shape != tb.shape {
        d.status = Status::ShapeChanged;
        return d;
    }
    let max_expansion = crate::limits::Limits::DEFAULT.max_expansion;
    if ta.expansion() > max_expansion || tb.expansion() > max_expansion {
        // A stride-0 view of a small storage (a few bytes can stand for terabytes of values):
        // equal layouts over equal storage bytes are identical; anything else is reported
        // without walking every copy.
        let same = ta.dtype == tb.dtype
            && ta.quant == tb.quant
            && ta.layout == tb.layout
            && ta.byte_order == tb.byte_order
            && matches!(
                (a.tensor_bytes(ta), b.tensor_bytes(tb)),
                (Ok(x), Ok(y)) if x == y
            );
        if !same {
            d.status = Status::ValuesChanged;
            d.error = Some(format!(
                "not measured: an expanded view ({} bytes of values from {} and {} bytes of storage)",
                ta.byte_len(),
                ta.region_len(),
                tb.region_len()
            ));
        }
        return d;
    }
    // A quantized tensor decodes to F32 but is stored otherwise: the same dtype and the same
    // ggml type (or none) are needed for equal bytes to mean equal values.
    let (va, vb) = match pair.views(ta, tb) {
        Ok(v) => v,
        Err(e) => {
            d.status = Status::ValuesChanged;
            d.error = Some(e);
            return d;
        }
    };
    let reordered = pair.unpermute.is_some();
    if ta.dtype == tb.dtype && ta.quant == tb.quant {
        match same_bytes_in(a, ta, &va, b, tb, &vb, reordered) {
            Ok(true) => {
                progress.add_done(ta.byte_len() + tb.byte_len());
                return d;
            }
            Ok(false) => {}
            Err(e) => {
                d.status = Status::ValuesChanged;
                d.error = Some(e);
                return d;
            }
        }
        d.status = Status::ValuesChanged;
    } else {
        d.status = Status::DtypeChanged;
    }
    match measures_in(a, ta, va, b, tb, vb, progress) {
        Ok(m) => d.measures = Some(m),
        Err(e) => d.error = Some(e),
    }
    d
}

/// Byte equality of the packed tensors: a `memcmp` of the two maps when both are plain, a
/// comparison of packed blocks otherwise (memory: two blocks).
pub fn same_bytes(
    a: &Checkpoint,
    ta: &TensorEntry,
    b: &Checkpoint,
    tb: &TensorEntry,
) -> Result<bool, String> {
    let (va, vb) = (View::of(ta).simplified(), View::of(tb).simplified());
    same_bytes_in(a, ta, &va, b, tb, &vb, false)
}

/// [`same_bytes`] of the elements two views walk; `reordered`: the views are not both the
/// natural order, so the plain `memcmp` does not apply.
fn same_bytes_in(
    a: &Checkpoint,
    ta: &TensorEntry,
    va: &View,
    b: &Checkpoint,
    tb: &TensorEntry,
    vb: &View,
    reordered: bool,
) -> Result<bool, String> {
    let ra = a.tensor_bytes(ta).map_err(|e| e.to_string())?;
    let rb = b.tensor_bytes(tb).map_err(|e| e.to_string())?;
    if ta.is_plain() && tb.is_plain() && !reordered {
        // memcmp in 8 MiB pieces on every core; stops early at a difference.
        const PIECE: usize = 8 << 20;
        return Ok(ra.len() == rb.len()
            && ra
                .par_chunks(PIECE)
                .zip(rb.par_chunks(PIECE))
                .all(|(x, y)| x == y));
    }
    if ta.dtype != tb.dtype || ta.quant != tb.quant || ta.shape != tb.shape {
        return Ok(false);
    }
    let (Some(size), n) = (ta.dtype.byte_size(), ta.elements()) else {
        return Err("strided views of sub-byte types are not supported".into());
    };
    let (mut xa, mut xb) = (Vec::new(), Vec::new());
    let mut k = 0;
    while k < n {
        let m = (n - k).min(BLOCK);
        pack_range(ra, va, ta.byte_order, size as usize, k, k + m, &mut xa)?;
        pack_range(rb, vb, tb.byte_order, size as usize, k, k + m, &mut xb)?;
        if xa != xb {
            return Ok(false);
        }
        k += m;
    }
    Ok(true)
}

/// Packs elements `k0..k1` of a view, little-endian, into `out` (cleared first).
fn pack_range(
    bytes: &[u8],
    view: &View,
    order: ByteOrder,
    size: usize,
    k0: u64,
    k1: u64,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    let mut ok = true;
    view.for_each_run(k0, k1, &mut |first, n, step| {
        for i in 0..n {
            let at = (first + i * step) as usize * size;
            match bytes.get(at..at + size) {
                Some(e) => {
                    let start = out.len();
                    out.extend_from_slice(e);
                    if order == ByteOrder::Big {
                        out[start..].reverse();
                    }
                }
                None => {
                    ok = false;
                    return false;
                }
            }
        }
        true
    });
    if ok {
        Ok(())
    } else {
        Err("a view reads outside its storage".into())
    }
}

const BLOCK: u64 = 1 << 20;
const BATCH: u64 = 1 << 14;

/// One side of a comparison: bytes to decode and the elements to take.
struct Side<'a> {
    src: Elements<'a>,
    view: View,
}

/// Walks the elements of two equally shaped views in lockstep, block by block in parallel,
/// handing decoded batches to `f`.
fn lockstep<V: Element, T: Send>(
    a: &Side<'_>,
    b: &Side<'_>,
    progress: &Progress,
    init: impl Fn() -> T + Sync + Send,
    f: impl Fn(&mut T, &[V], &[V]) + Sync + Send,
    merge: impl Fn(T, T) -> T + Sync + Send,
) -> Result<T, StatsError> {
    let (sa, va, sb, vb) = (&a.src, &a.view, &b.src, &b.view);
    let n = va.elements();
    let (va, vb) = (va.clone(), vb.clone());
    let blocks: Vec<(u64, u64)> = (0..n.div_ceil(BLOCK))
        .map(|i| (i * BLOCK, ((i + 1) * BLOCK).min(n)))
        .collect();
    let (ea, eb) = (sa.dtype.bits(), sb.dtype.bits());
    blocks
        .par_iter()
        .map(|&(k0, k1)| {
            if progress.is_cancelled() {
                return Err(StatsError::Cancelled);
            }
            let mut acc = init();
            let (mut xa, mut xb) = (Vec::new(), Vec::new());
            let mut k = k0;
            while k < k1 {
                let m = (k1 - k).min(BATCH);
                let ya = decode_range(sa, &va, k, k + m, &mut xa)?;
                let yb = decode_range(sb, &vb, k, k + m, &mut xb)?;
                f(&mut acc, ya, yb);
                k += m;
            }
            progress.add_done((k1 - k0) * (ea + eb) / 8);
            Ok(acc)
        })
        .try_reduce(&init, |x, y| Ok(merge(x, y)))
}

/// Elements `k0..k1` of a view (row-major): read in place when they are one contiguous run
/// already of type `V`, decoded into `out` otherwise.
fn decode_range<'s, V: Element>(
    src: &Elements<'s>,
    view: &View,
    k0: u64,
    k1: u64,
    out: &'s mut Vec<V>,
) -> Result<&'s [V], StatsError> {
    let mut single = None;
    view.for_each_run(k0, k1, &mut |first, n, step| {
        single = (n == k1 - k0 && step == 1).then_some(first);
        false
    });
    if let Some(first) = single
        && let Some(values) = usize::try_from(k1 - k0)
            .ok()
            .and_then(|n| V::borrow(src, first, n))
    {
        return Ok(values);
    }
    out.clear();
    let mut ok = true;
    view.for_each_run(k0, k1, &mut |first, n, step| {
        if step == 1 {
            ok = V::run(src, first, n as usize, out);
        } else {
            for i in 0..n {
                match V::at(src, first + i * step) {
                    Some(v) => out.push(v),
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
        }
        ok
    });
    if ok {
        Ok(out)
    } else {
        Err(StatsError::OutOfRange)
    }
}

/// True when both sides decode exactly to `f32`.
fn both_f32(a: &Side<'_>, b: &Side<'_>) -> bool {
    crate::analysis::decode::fits_f32(a.src.dtype) && crate::analysis::decode::fits_f32(b.src.dtype)
}

fn sides<'a>(
    a: &'a Checkpoint,
    ta: &TensorEntry,
    va: View,
    b: &'a Checkpoint,
    tb: &TensorEntry,
    vb: View,
) -> Result<(Side<'a>, Side<'a>), String> {
    if va.elements() != vb.elements() {
        return Err(format!(
            "`{}` has {} elements and `{}` {}",
            ta.name,
            va.elements(),
            tb.name,
            vb.elements()
        ));
    }
    Ok((
        Side {
            src: crate::analysis::source(a, ta).map_err(|e| e.to_string())?,
            view: va,
        },
        Side {
            src: crate::analysis::source(b, tb).map_err(|e| e.to_string())?,
            view: vb,
        },
    ))
}

/// Measures of a − b for two tensors of the same shape, in one parallel pass.
pub fn measures(
    a: &Checkpoint,
    ta: &TensorEntry,
    b: &Checkpoint,
    tb: &TensorEntry,
    progress: &Progress,
) -> Result<Measures, String> {
    let (va, vb) = (View::of(ta).simplified(), View::of(tb).simplified());
    measures_in(a, ta, va, b, tb, vb, progress)
}

/// [`measures`] of the elements two views walk.
fn measures_in(
    a: &Checkpoint,
    ta: &TensorEntry,
    va: View,
    b: &Checkpoint,
    tb: &TensorEntry,
    vb: View,
    progress: &Progress,
) -> Result<Measures, String> {
    let (sa, sb) = sides(a, ta, va, b, tb, vb)?;
    let result = if both_f32(&sa, &sb) {
        accumulate::<f32>(&sa, &sb, progress)
    } else {
        accumulate::<f64>(&sa, &sb, progress)
    };
    result.map(|acc| acc.measures()).map_err(|e| e.to_string())
}

/// The one pass of [`measures`], decoding to `V`.
fn accumulate<V: Element>(
    sa: &Side<'_>,
    sb: &Side<'_>,
    progress: &Progress,
) -> Result<Acc, StatsError> {
    lockstep::<V, _>(
        sa,
        sb,
        progress,
        Acc::default,
        |acc, xa, xb| acc.add_batch(xa, xb),
        Acc::merge,
    )
}

/// Histogram of a − b over `[min_diff, max_diff]` (finite pairs only); the second pass.
pub fn diff_histogram(
    a: &Checkpoint,
    ta: &TensorEntry,
    b: &Checkpoint,
    tb: &TensorEntry,
    m: &Measures,
    bins: usize,
    progress: &Progress,
) -> Result<Histogram, String> {
    let pair = Pair {
        a: Some(ta),
        b: Some(tb),
        unpermute: None,
    };
    pair_histogram(a, b, &pair, m, bins, progress)
}

/// [`diff_histogram`] of a pair, lined up as the comparison lined it up.
pub fn pair_histogram(
    a: &Checkpoint,
    b: &Checkpoint,
    pair: &Pair<'_>,
    m: &Measures,
    bins: usize,
    progress: &Progress,
) -> Result<Histogram, String> {
    let (Some(ta), Some(tb)) = (pair.a, pair.b) else {
        return Err("a histogram of a − b needs both tensors".into());
    };
    let (va, vb) = pair.views(ta, tb)?;
    let (sa, sb) = sides(a, ta, va, b, tb, vb)?;
    let (lo, hi) = if m.min_diff == m.max_diff {
        (m.min_diff - 0.5, m.max_diff + 0.5)
    } else {
        (m.min_diff, m.max_diff)
    };
    let bins = bins.max(1);
    let scale = bins as f64 / (hi - lo);
    let counts = if both_f32(&sa, &sb) {
        diff_counts::<f32>(&sa, &sb, lo, scale, bins, progress)
    } else {
        diff_counts::<f64>(&sa, &sb, lo, scale, bins, progress)
    }
    .map_err(|e| e.to_string())?;
    Ok(Histogram { lo, hi, counts })
}

/// Counts of the finite a − b in `bins` bins from `lo`; the differences are taken in `f64`
/// (two `f32` values can differ by less than an `f32` resolves) and binned by the kernel.
fn diff_counts<V: Element>(
    sa: &Side<'_>,
    sb: &Side<'_>,
    lo: f64,
    scale: f64,
    bins: usize,
    progress: &Progress,
) -> Result<Vec<u64>, StatsError> {
    // Per block: totals, and scratch for one batch (its differences, its `u32` counts).
    type State = (Vec<u64>, Vec<f64>, Vec<u32>);
    let (totals, _, _) = lockstep::<V, State>(
        sa,
        sb,
        progress,
        || (vec![0u64; bins], Vec::new(), vec![0u32; bins + 1]),
        |(totals, diffs, scratch), xa, xb| {
            diffs.clear();
            diffs.extend(xa.iter().zip(xb).map(|(&x, &y)| x.f64() - y.f64()));
            scratch.fill(0);
            crate::analysis::kernels::bins_f64(diffs, lo, scale, scratch);
            for (t, &c) in totals.iter_mut().zip(scratch.iter()) {
                *t += u64::from(c);
            }
        },
        |(mut x, d, s), (y, _, _)| {
            for (p, q) in x.iter_mut().zip(y) {
                *p += q;
            }
            (x, d, s)
        },
    )?;
    Ok(totals)
}

fn renames(
    a: &Checkpoint,
    b: &Checkpoint,
    unpaired_a: &HashSet<&str>,
    unpaired_b: &HashSet<&str>,
) -> Vec<(String, String)> {
    let only_a: Vec<&TensorEntry> = a
        .tensors
        .iter()
        .filter(|t| unpaired_a.contains(t.name.as_str()))
        .collect();
    let mut only_b: HashMap<(DType, Vec<u64>), Vec<&TensorEntry>> = HashMap::new();
    for t in b
        .tensors
        .iter()
        .filter(|t| unpaired_b.contains(t.name.as_str()))
    {
        only_b
            .entry((t.dtype, t.shape.clone()))
            .or_default()
            .push(t);
    }
    let mut out = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for ta in only_a {
        let Some(candidates) = only_b.get(&(ta.dtype, ta.shape.clone())) else {
            continue;
        };
        // Bounded: a model has few tensors of one shape among the unmatched ones.
        for tb in candidates.iter().take(64) {
            if taken.contains(&tb.name) {
                continue;
            }
            if same_bytes(a, ta, b, tb) == Ok(true) {
                taken.insert(tb.name.clone());
                out.push((ta.name.clone(), tb.name.clone()));
                break;
            }
        }
    }
    out
}

/// Keys added, removed and changed.
pub fn metadata_diff(a: &[(String, String)], b: &[(String, String)]) -> MetadataDiff {
    let ma: BTreeMap<&str, &str> = a.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mb: BTreeMap<&str, &str> = b.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut d = MetadataDiff::default();
    for (k, va) in &ma {
        match mb.get(k) {
            None => d.removed.push((k.to_string(), va.to_string())),
            Some(vb) if vb != va => d
                .changed
                .push((k.to_string(), va.to_string(), vb.to_string())),
            _ => {}
        }
    }
    for (k, vb) in &mb {
        if !ma.contains_key(k) {
            d.added.push((k.to_string(), vb.to_string()));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_changes() {
        let a = vec![
            ("k".to_string(), "1".to_string()),
            ("gone".into(), "x".into()),
        ];
        let b = vec![
            ("k".to_string(), "2".to_string()),
            ("new".into(), "y".into()),
        ];
        let d = metadata_diff(&a, &b);
        assert_eq!(d.added, [("new".to_string(), "y".to_string())]);
        assert_eq!(d.removed, [("gone".to_string(), "x".to_string())]);
        assert_eq!(
            d.changed,
            [("k".to_string(), "1".to_string(), "2".to_string())]
        );
    }
}
