//! Exact statistics for the dtypes of at most 16 bits (BF16, F16, the F8 and sub-byte floats,
//! 8- and 16-bit integers, BOOL).
//!
//! Such a tensor holds at most 65,536 distinct bit patterns, so one pass that only counts the
//! patterns ("codes") says everything: each distinct code is decoded once afterwards, and the
//! statistics, the histogram and even the percentiles come out exact from the counts. Counting
//! is one table increment per element, with no decoding in the loop, so it runs faster than the
//! two decoding passes the wider types need. Memory is the table: 256 KiB per thread for 16-bit
//! types, 1 KiB for 8-bit ones, whatever the tensor's size.
//!
//! `clippy::indexing_slicing` is allowed here: counting tables are sized by the dtype (every code
//! has a slot) and slices come from `chunks_exact`; file bytes are reached only through ranges
//! checked by the caller.

#![allow(clippy::indexing_slicing)]

use rayon::prelude::*;

use crate::analysis::decode::{decode_at, sub_byte_bits};
use crate::analysis::kernels::{codes_u8, codes_u16};
use crate::analysis::slice::View;
use crate::analysis::summary::{
    Analysis, Elements, Histogram, PERCENTILES, Stats, StatsError, coarsen, fine_bins, range_of,
    scale,
};
use crate::dtype::DType;
use crate::progress::Progress as Control;

/// Elements per parallel block; a block's counts fit `u32`.
const BLOCK: u64 = 1 << 22;

/// Slots of the code table for `dtype`, or `None` when its values are wider than 16 bits.
pub fn table_len(dtype: DType) -> Option<usize> {
    match dtype.bits() {
        0..=8 => Some(1 << 8),
        9..=16 => Some(1 << 16),
        _ => None,
    }
}

/// The code of element `i`: its bytes as a little-endian integer, or its bits for the sub-byte
/// types.
fn code_at(src: &Elements<'_>, i: u64) -> Option<usize> {
    let i = usize::try_from(i).ok()?;
    match src.dtype.byte_size() {
        Some(1) => src.bytes.get(i).map(|&b| usize::from(b)),
        Some(2) => {
            let at = i.checked_mul(2)?;
            let b = src.bytes.get(at..at.checked_add(2)?)?;
            Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
        }
        None => sub_byte_bits(src.dtype, src.bytes, i as u64).map(|c| c as usize),
        Some(_) => None,
    }
}

/// The value a code stands for.
fn value_of(src: &Elements<'_>, code: usize) -> f64 {
    let bytes = [code as u8, (code >> 8) as u8, 0];
    decode_at(src.dtype, src.order, &bytes, 0).unwrap_or(f64::NAN)
}

/// Counts the codes of elements `first, first + step, ...` (`n` of them) into `table`; `false`
/// when one lies outside the bytes.
fn count_run(src: &Elements<'_>, first: u64, n: u64, step: u64, table: &mut [u32]) -> bool {
    if step == 1 {
        let bytes = |size: u64| {
            let start = usize::try_from(first.checked_mul(size)?).ok()?;
            let len = usize::try_from(n.checked_mul(size)?).ok()?;
            src.bytes.get(start..start.checked_add(len)?)
        };
        match src.dtype.byte_size() {
            Some(2) => {
                let (Some(raw), Ok(t16)) = (bytes(2), <&mut [u32; 1 << 16]>::try_from(table))
                else {
                    return false;
                };
                codes_u16(raw, t16);
                return true;
            }
            Some(1) => {
                let (Some(raw), Ok(t8)) = (bytes(1), <&mut [u32; 256]>::try_from(table)) else {
                    return false;
                };
                codes_u8(raw, t8);
                return true;
            }
            _ if src.dtype == DType::F4 && n >= 4 => {
                // Whole bytes hold two codes each (low nibble first): count the bytes, then
                // split; the odd element at either end is counted on its own.
                let (head, tail) = (first % 2, (first + n) % 2);
                let (b0, b1) = ((first + head) / 2, (first + n - tail) / 2);
                let Some(raw) = usize::try_from(b0)
                    .ok()
                    .zip(usize::try_from(b1).ok())
                    .and_then(|(b0, b1)| src.bytes.get(b0..b1))
                else {
                    return false;
                };
                let mut bytes = [0u32; 256];
                codes_u8(raw, &mut bytes);
                for (b, &c) in bytes.iter().enumerate() {
                    table[b & 0x0f] += c;
                    table[b >> 4] += c;
                }
                let ends = [
                    (head == 1).then_some(first),
                    (tail == 1).then(|| first + n - 1),
                ];
                return ends.into_iter().flatten().all(|i| match code_at(src, i) {
                    Some(code) => {
                        table[code] += 1;
                        true
                    }
                    None => false,
                });
            }
            _ => {}
        }
    }
    for k in 0..n {
        match code_at(src, first + k * step) {
            Some(code) if code < table.len() => table[code] += 1,
            _ => return false,
        }
    }
    true
}

/// Statistics, a `bins`-bin histogram and exact percentiles of every selected element, for a
/// dtype with a [`table_len`]. One parallel counting pass.
pub fn analyze(
    src: &Elements<'_>,
    view: &View,
    bins: usize,
    control: &Control,
) -> Result<Analysis, StatsError> {
    let len = table_len(src.dtype).ok_or(StatsError::OutOfRange)?;
    let view = view.simplified();
    let n = view.elements();
    control.add_total(n);
    let blocks: Vec<(u64, u64)> = (0..n.div_ceil(BLOCK))
        .map(|b| (b * BLOCK, ((b + 1) * BLOCK).min(n)))
        .collect();
    // One shared total; each worker counts a block into its own `u32` table and adds it in.
    // Memory: a table per worker thread plus the total.
    let total = std::sync::Mutex::new(vec![0u64; len]);
    blocks.par_iter().try_for_each_init(
        || vec![0u32; len],
        |block, &(k0, k1)| {
            if control.is_cancelled() {
                return Err(StatsError::Cancelled);
            }
            block.fill(0);
            let mut ok = true;
            view.for_each_run(k0, k1, &mut |first, n, step| {
                ok = count_run(src, first, n, step, block);
                ok
            });
            if !ok {
                return Err(StatsError::OutOfRange);
            }
            let mut total = total.lock().unwrap_or_else(|e| e.into_inner());
            for (t, &c) in total.iter_mut().zip(block.iter()) {
                *t += u64::from(c);
            }
            control.add_done(k1 - k0);
            Ok(())
        },
    )?;
    let counts = total.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(from_counts(&counts, |code| value_of(src, code), bins))
}

/// Everything the analysis reports, from how many elements hold each code.
fn from_counts(counts: &[u64], value: impl Fn(usize) -> f64, bins: usize) -> Analysis {
    let mut stats = Stats::default();
    // (value, count) of the finite codes, in value order.
    let mut finite: Vec<(f64, u64)> = Vec::new();
    for (code, &c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let v = value(code);
        stats.count += c;
        if v.is_nan() {
            stats.nan += c;
        } else if v == f64::INFINITY {
            stats.pos_inf += c;
        } else if v == f64::NEG_INFINITY {
            stats.neg_inf += c;
        } else {
            finite.push((v, c));
        }
    }
    finite.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Codes of equal value (+0 and -0, FNUZ zeros, BOOL bytes) become one entry.
    finite.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    let n: u64 = finite.iter().map(|&(_, c)| c).sum();
    stats.finite = n;
    if let (Some(&(min, _)), Some(&(max, _))) = (finite.first(), finite.last()) {
        let total = n as f64;
        let mean = finite.iter().map(|&(v, c)| v * c as f64).sum::<f64>() / total;
        let m2: f64 = finite
            .iter()
            .map(|&(v, c)| (v - mean) * (v - mean) * c as f64)
            .sum();
        let var = m2 / total;
        stats.min = min;
        stats.max = max;
        stats.mean = mean;
        stats.std = var.sqrt();
        stats.rms = (var + mean * mean).sqrt();
        stats.zeros = finite
            .iter()
            .filter(|&&(v, _)| v == 0.0)
            .map(|&(_, c)| c)
            .sum();
    } else {
        stats.min = f64::NAN;
        stats.max = f64::NAN;
        stats.mean = f64::NAN;
        stats.std = f64::NAN;
        stats.rms = f64::NAN;
    }

    let (lo, hi) = range_of(&stats);
    let mut fine = Histogram::new(lo, hi, fine_bins(bins));
    let per_unit = scale(&fine);
    for &(v, c) in &finite {
        fine.add(v, per_unit, c);
    }
    let histogram = coarsen(&fine, bins);

    // Nearest-rank percentiles, exact: the smallest value with at least p% of values at or
    // below it.
    let percentiles = PERCENTILES
        .iter()
        .map(|&p| {
            let rank = ((p / 100.0 * n as f64).ceil() as u64).clamp(1, n.max(1));
            let mut seen = 0;
            let v = finite
                .iter()
                .find(|&&(_, c)| {
                    seen += c;
                    seen >= rank
                })
                .map_or(f64::NAN, |&(v, _)| v);
            (p, v)
        })
        .collect();
    Analysis {
        stats,
        histogram,
        percentiles,
        percentile_resolution: 0.0,
        sampled: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::slice::SliceSpec;
    use crate::format::{ByteOrder, TensorEntry};

    fn entry(dtype: DType, shape: &[u64], bytes: usize) -> TensorEntry {
        TensorEntry::contiguous("t".into(), dtype, shape.to_vec(), 0, [0, bytes as u64], 0)
    }

    fn run(dtype: DType, order: ByteOrder, bytes: &[u8], shape: &[u64], bins: usize) -> Analysis {
        let t = entry(dtype, shape, bytes.len());
        let src = Elements {
            bytes,
            dtype,
            order,
            quant: None,
        };
        analyze(&src, &View::of(&t), bins, &Control::default()).unwrap()
    }

    /// Every 16-bit BF16 pattern once: the stats must equal a direct f64 computation over the
    /// decoded values.
    #[test]
    fn every_bf16_pattern() {
        let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|c| c.to_le_bytes()).collect();
        let a = run(DType::BF16, ByteOrder::Little, &bytes, &[65536], 64);
        let values: Vec<f64> = (0..=u16::MAX)
            .map(|c| f64::from(half::bf16::from_bits(c).to_f32()))
            .collect();
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let s = &a.stats;
        assert_eq!(s.count, 65536);
        assert_eq!(s.nan, values.iter().filter(|v| v.is_nan()).count() as u64);
        assert_eq!((s.pos_inf, s.neg_inf, s.zeros), (1, 1, 2));
        assert_eq!(s.finite, finite.len() as u64);
        assert_eq!(s.min, finite.iter().copied().fold(f64::INFINITY, f64::min));
        assert_eq!(
            s.max,
            finite.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
        // Symmetric set: mean 0 to rounding of the ±3.4e38 terms.
        assert!(s.mean.abs() < 1e24, "{}", s.mean);
        assert_eq!(a.histogram.counts.iter().sum::<u64>(), s.finite);
        assert_eq!(a.percentile_resolution, 0.0);
    }

    #[test]
    fn matches_the_decoding_path_on_f16_and_ints() {
        let values: Vec<f32> = (0..5000)
            .map(|i| ((i * 37) % 211) as f32 / 8.0 - 9.0)
            .collect();
        let f16: Vec<u8> = values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        let a = run(DType::F16, ByteOrder::Little, &f16, &[50, 100], 16);
        let n = values.len() as f64;
        let (mean, std) = crate::analysis::summary::reference_mean_std(&values);
        assert!((a.stats.mean - mean).abs() < 1e-12);
        assert!((a.stats.std - std).abs() < 1e-12);
        let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        sorted.sort_by(f64::total_cmp);
        for &(p, v) in &a.percentiles {
            let rank = ((p / 100.0 * n).ceil() as usize).clamp(1, sorted.len());
            assert_eq!(v, sorted[rank - 1], "p{p}");
        }
        // The same histogram as bins computed directly.
        let (lo, hi) = (a.stats.min, a.stats.max);
        let mut direct = vec![0u64; 16];
        for &v in &sorted {
            let i = (((v - lo) * (4096.0 / (hi - lo))) as usize).min(4095) / 256;
            direct[i] += 1;
        }
        assert_eq!(a.histogram.counts, direct);

        // Big-endian I16 and a strided slice of it.
        let ints: Vec<i16> = (-6..6).collect();
        let be: Vec<u8> = ints.iter().flat_map(|v| v.to_be_bytes()).collect();
        let a = run(DType::I16, ByteOrder::Big, &be, &[3, 4], 4);
        assert_eq!((a.stats.min, a.stats.max, a.stats.zeros), (-6.0, 5.0, 1));
        let t = entry(DType::I16, &[3, 4], be.len());
        let src = Elements {
            bytes: &be,
            dtype: DType::I16,
            order: ByteOrder::Big,
            quant: None,
        };
        let view = View::select(&t, &SliceSpec::parse("[:, 1]").unwrap()).unwrap();
        let a = analyze(&src, &view, 4, &Control::default()).unwrap();
        // Column 1: -5, -1, 3.
        assert_eq!((a.stats.count, a.stats.min, a.stats.max), (3, -5.0, 3.0));
        assert!((a.stats.mean - (-1.0)).abs() < 1e-12);
    }

    /// Every narrow dtype, on pseudo-random bytes in both byte orders: counts, extremes and
    /// the mean match a direct decoding of each element.
    #[test]
    fn every_narrow_dtype_matches_direct_decoding() {
        let mut state = 0x9e37_79b9u32;
        let bytes: Vec<u8> = (0..3000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        for dtype in DType::ALL.into_iter().filter(|d| table_len(*d).is_some()) {
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let n = (bytes.len() as u64 * 8 / dtype.bits()) / 4 * 4;
                let a = run(dtype, order, &bytes, &[n], 32);
                let values: Vec<f64> = (0..n)
                    .map(|i| decode_at(dtype, order, &bytes, i).unwrap())
                    .collect();
                let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
                let what = format!("{dtype} {order:?}");
                assert_eq!(a.stats.count, n, "{what}");
                assert_eq!(a.stats.finite, finite.len() as u64, "{what}");
                assert_eq!(
                    a.stats.nan,
                    values.iter().filter(|v| v.is_nan()).count() as u64,
                    "{what}"
                );
                let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
                let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                assert_eq!((a.stats.min, a.stats.max), (min, max), "{what}");
                let mean = finite.iter().sum::<f64>() / finite.len() as f64;
                assert!(
                    (a.stats.mean - mean).abs() <= 1e-9 * mean.abs().max(1.0),
                    "{what}: {} vs {mean}",
                    a.stats.mean
                );
                assert_eq!(
                    a.histogram.counts.iter().sum::<u64>(),
                    a.stats.finite,
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn f4_runs_at_any_parity_and_bool() {
        // 7 bytes = 14 F4 codes: 0..=13.
        let bytes: Vec<u8> = (0..7u8).map(|i| (2 * i) | ((2 * i + 1) << 4)).collect();
        let t = entry(DType::F4, &[14], bytes.len());
        let src = Elements {
            bytes: &bytes,
            dtype: DType::F4,
            order: ByteOrder::Little,
            quant: None,
        };
        for spec in ["[:]", "[1:]", "[1:13]", "[0:13]", "[3:9]"] {
            let view = View::select(&t, &SliceSpec::parse(spec).unwrap()).unwrap();
            let exact = analyze(&src, &view, 8, &Control::default()).unwrap();
            let decoded: Vec<f64> = (0..view.elements())
                .map(|k| decode_at(DType::F4, ByteOrder::Little, &bytes, view.element(k)).unwrap())
                .collect();
            let sum: f64 = decoded.iter().sum();
            assert_eq!(exact.stats.count, decoded.len() as u64, "{spec}");
            assert!(
                (exact.stats.mean - sum / decoded.len() as f64).abs() < 1e-12,
                "{spec}"
            );
        }
        let a = run(DType::BOOL, ByteOrder::Little, &[0, 1, 2, 0], &[4], 2);
        assert_eq!((a.stats.zeros, a.stats.mean), (2, 0.5));
        assert_eq!(a.histogram.counts, [2, 2]);
    }
}
