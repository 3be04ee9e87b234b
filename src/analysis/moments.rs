//! Statistics of the wider types in two decoding passes over the selected elements, each split
//! into blocks run on rayon's pool: the first gathers counts, min, max and moments (combined
//! across blocks with Chan's formula, so the variance stays accurate for billions of values);
//! the second bins the finite values into the requested histogram and into a fine one used for
//! percentiles. Memory is one small decode buffer per thread plus the bins: O(bins), never
//! O(tensor). NaN and ±Inf are counted, never binned.
//!
//! Owns: moments and the two passes. Must not import: `codes` (its sibling path).

use rayon::prelude::*;

use crate::analysis::element::Element;
use crate::analysis::slice::View;
use crate::analysis::summary::{
    Analysis, Elements, Histogram, Stats, StatsError, coarsen, fine_bins, finish, range_of, scale,
};
use crate::progress::Progress as Control;

/// Elements per parallel block (4 MiB of F32).
const BLOCK: u64 = 1 << 20;
/// Elements decoded at once into a thread's buffer.
const BATCH: u64 = 1 << 12;
/// Partial moments of one block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Moments {
    count: u64,
    nan: u64,
    pos_inf: u64,
    neg_inf: u64,
    zeros: u64,
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            count: 0,
            nan: 0,
            pos_inf: 0,
            neg_inf: 0,
            zeros: 0,
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    /// Accumulates a batch: sums shifted by the batch's first finite value (numerically safe),
    /// merged into the running moments. A batch with no NaN or Inf (the usual case) takes a
    /// branch-free path.
    pub(crate) fn add_batch<T: Element>(&mut self, values: &[T]) {
        let mut b = Moments {
            count: values.len() as u64,
            ..Moments::default()
        };
        let shift = values
            .iter()
            .copied()
            .find(|v| v.finite())
            .map_or(0.0, T::f64);
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        // Optimistic pass: no branches, independent lanes; NaN/Inf only set a flag.
        let k = T::sums(values, shift);
        if !k.odd {
            s1 = k.s1;
            s2 = k.s2;
            b.min = k.min;
            b.max = k.max;
            b.zeros = k.zeros;
            b.n = values.len() as u64;
        } else {
            // Rare: a batch holding NaN or Inf is redone one value at a time.
            for &v in values {
                if v.finite() {
                    let v = v.f64();
                    b.n += 1;
                    let d = v - shift;
                    s1 += d;
                    s2 += d * d;
                    b.min = b.min.min(v);
                    b.max = b.max.max(v);
                    b.zeros += u64::from(v == 0.0);
                } else if v.f64().is_nan() {
                    b.nan += 1;
                } else if v.f64() > 0.0 {
                    b.pos_inf += 1;
                } else {
                    b.neg_inf += 1;
                }
            }
        }
        if b.n > 0 {
            let n = b.n as f64;
            b.mean = shift + s1 / n;
            b.m2 = (s2 - s1 * s1 / n).max(0.0);
        }
        self.merge(&b);
    }

    /// Chan et al.'s parallel combination of two sets of moments.
    fn merge(&mut self, o: &Moments) {
        self.count += o.count;
        self.nan += o.nan;
        self.pos_inf += o.pos_inf;
        self.neg_inf += o.neg_inf;
        self.zeros += o.zeros;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            self.n = o.n;
            self.mean = o.mean;
            self.m2 = o.m2;
            return;
        }
        let (na, nb) = (self.n as f64, o.n as f64);
        let n = na + nb;
        let delta = o.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += o.m2 + delta * delta * na * nb / n;
        self.n += o.n;
    }

    pub(crate) fn stats(&self) -> Stats {
        let finite = self.n;
        if finite == 0 {
            return Stats {
                count: self.count,
                nan: self.nan,
                pos_inf: self.pos_inf,
                neg_inf: self.neg_inf,
                min: f64::NAN,
                max: f64::NAN,
                mean: f64::NAN,
                std: f64::NAN,
                rms: f64::NAN,
                ..Stats::default()
            };
        }
        let var = self.m2 / finite as f64;
        Stats {
            count: self.count,
            nan: self.nan,
            pos_inf: self.pos_inf,
            neg_inf: self.neg_inf,
            zeros: self.zeros,
            finite,
            min: self.min,
            max: self.max,
            mean: self.mean,
            std: var.sqrt(),
            rms: (var + self.mean * self.mean).sqrt(),
        }
    }
}

/// Hands the view's elements `k0..k1` to `f` batch by batch: read in place when the bytes
/// already are `T` ([`Element::borrow`]), decoded into `buf` otherwise.
fn visit<T: Element>(
    src: &Elements<'_>,
    view: &View,
    k0: u64,
    k1: u64,
    buf: &mut Vec<T>,
    f: &mut dyn FnMut(&[T]),
) -> Result<(), StatsError> {
    let mut ok = true;
    view.for_each_run(k0, k1, &mut |first, n, step| {
        if step == 1
            && let Some(values) = usize::try_from(n)
                .ok()
                .and_then(|n| T::borrow(src, first, n))
        {
            values.chunks(BATCH as usize).for_each(&mut *f);
            return true;
        }
        let mut done = 0;
        while done < n {
            let m = (n - done).min(BATCH);
            buf.clear();
            let start = first + done * step;
            if step == 1 {
                if !T::run(src, start, m as usize, buf) {
                    ok = false;
                    return false;
                }
            } else {
                for i in 0..m {
                    if !T::run(src, start + i * step, 1, buf) {
                        ok = false;
                        return false;
                    }
                }
            }
            f(buf);
            done += m;
        }
        true
    });
    if ok {
        Ok(())
    } else {
        Err(StatsError::OutOfRange)
    }
}

fn blocks(n: u64) -> Vec<(u64, u64)> {
    (0..n.div_ceil(BLOCK))
        .map(|b| (b * BLOCK, ((b + 1) * BLOCK).min(n)))
        .collect()
}

pub(crate) fn analyze<T: Element>(
    src: &Elements<'_>,
    view: &View,
    bins: usize,
    control: &Control,
) -> Result<Analysis, StatsError> {
    let view = view.simplified();
    let n = view.elements();
    control.add_total(n.saturating_mul(2));
    let blocks = blocks(n);

    let moments = blocks
        .par_iter()
        .map_init(Vec::new, |buf, &(k0, k1)| {
            if control.is_cancelled() {
                return Err(StatsError::Cancelled);
            }
            let mut m = Moments::default();
            visit::<T>(src, &view, k0, k1, buf, &mut |batch| m.add_batch(batch))?;
            control.add_done(k1 - k0);
            Ok(m)
        })
        .try_reduce(Moments::default, |mut a, b| {
            a.merge(&b);
            Ok(a)
        })?;
    let stats = moments.stats();

    let (lo, hi) = range_of(&stats);
    let fine_n = fine_bins(bins);
    let fine = blocks
        .par_iter()
        .map_init(
            || (Vec::new(), vec![0u32; fine_n + 1]),
            |(buf, counts), &(k0, k1)| {
                if control.is_cancelled() {
                    return Err(StatsError::Cancelled);
                }
                let mut h = Histogram::new(lo, hi, fine_n);
                if stats.finite > 0 {
                    // A block has at most BLOCK elements: its `u32` counts cannot overflow.
                    counts.fill(0);
                    let scale = scale(&h);
                    visit::<T>(src, &view, k0, k1, buf, &mut |batch| {
                        T::bins(batch, lo, scale, counts)
                    })?;
                    for (total, &c) in h.counts.iter_mut().zip(counts.iter()) {
                        *total = u64::from(c);
                    }
                }
                control.add_done(k1 - k0);
                Ok(h)
            },
        )
        .try_reduce(
            || Histogram::new(lo, hi, fine_n),
            |mut a, b| {
                a.merge(&b);
                Ok(a)
            },
        )?;
    let hist = coarsen(&fine, bins);
    Ok(finish(stats, hist, &fine, None))
}

/// Statistics of `take` elements spread evenly over a selection of `n > take` elements.
pub(crate) fn sample(
    src: &Elements<'_>,
    view: &View,
    bins: usize,
    n: u64,
    take: u64,
) -> Result<Analysis, StatsError> {
    let mut values = Vec::with_capacity(take as usize);
    for i in 0..take {
        // Evenly spaced positions; u128 keeps i·n exact for huge tensors.
        let k = (u128::from(i) * u128::from(n) / u128::from(take)) as u64;
        let v = src.value(view.element(k)).ok_or(StatsError::OutOfRange)?;
        values.push(v);
    }
    let mut m = Moments::default();
    m.add_batch(&values);
    let stats = m.stats();
    let (lo, hi) = range_of(&stats);
    let mut fine = Histogram::new(lo, hi, fine_bins(bins));
    let sf = scale(&fine);
    for &v in values.iter().filter(|v| v.is_finite()) {
        fine.add(v, sf, 1);
    }
    let hist = coarsen(&fine, bins);
    let sampled = Some(take);
    Ok(finish(stats, hist, &fine, sampled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::slice::SliceSpec;
    use crate::analysis::summary::reference_mean_std;
    use crate::analysis::{analyze, analyze_sample};
    use crate::dtype::DType;
    use crate::format::ByteOrder;
    use crate::format::TensorEntry;

    fn f32_tensor(values: &[f32], shape: &[u64]) -> (TensorEntry, Vec<u8>) {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = TensorEntry::contiguous(
            "t".into(),
            DType::F32,
            shape.to_vec(),
            0,
            [0, values.len() as u64 * 4],
            0,
        );
        (t, bytes)
    }

    #[test]
    fn stats_match_direct_computation() {
        let values: Vec<f32> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        let (t, bytes) = f32_tensor(&values, &[100, 100]);
        let src = Elements {
            bytes: &bytes,
            dtype: DType::F32,
            order: ByteOrder::Little,
            quant: None,
        };
        let a = analyze(&src, &View::of(&t), 10, &Control::default()).unwrap();
        let n = values.len() as f64;
        let (mean, std) = reference_mean_std(&values);
        assert_eq!(a.stats.count, 10_000);
        assert!((a.stats.mean - mean).abs() < 1e-9);
        assert!((a.stats.std - std).abs() < 1e-9);
        assert_eq!(a.stats.min, -5.0);
        assert_eq!(a.stats.max, f64::from(9.99f32 - 5.0));
        assert_eq!(a.histogram.counts.iter().sum::<u64>(), 10_000);
        assert_eq!(a.histogram.counts, vec![1000; 10]);
        let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        sorted.sort_by(f64::total_cmp);
        for &(p, est) in &a.percentiles {
            let rank = ((p / 100.0 * n).ceil() as usize).clamp(1, sorted.len());
            let exact = sorted[rank - 1];
            assert!(
                (est - exact).abs() <= a.percentile_resolution,
                "p{p}: {est} vs {exact}"
            );
        }
        assert_eq!(a.sampled, None);
    }

    #[test]
    fn nan_and_inf_are_counted_not_binned() {
        let (t, bytes) = f32_tensor(
            &[1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, 3.0],
            &[6],
        );
        let src = Elements {
            bytes: &bytes,
            dtype: DType::F32,
            order: ByteOrder::Little,
            quant: None,
        };
        let a = analyze(&src, &View::of(&t), 4, &Control::default()).unwrap();
        let s = &a.stats;
        assert_eq!(
            (s.nan, s.pos_inf, s.neg_inf, s.zeros, s.finite),
            (1, 1, 1, 1, 3)
        );
        assert_eq!((s.min, s.max), (0.0, 3.0));
        assert!((s.mean - 4.0 / 3.0).abs() < 1e-12);
        assert_eq!(a.histogram.counts.iter().sum::<u64>(), 3);
    }

    #[test]
    fn slices_and_samples() {
        let values: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let (t, bytes) = f32_tensor(&values, &[2, 3, 4]);
        let src = Elements {
            bytes: &bytes,
            dtype: DType::F32,
            order: ByteOrder::Little,
            quant: None,
        };
        let view = View::select(&t, &SliceSpec::parse("[1, :, 1:3]").unwrap()).unwrap();
        let a = analyze(&src, &view, 3, &Control::default()).unwrap();
        // Elements 13,14,17,18,21,22.
        assert_eq!(a.stats.count, 6);
        assert_eq!((a.stats.min, a.stats.max), (13.0, 22.0));
        assert!((a.stats.mean - 17.5).abs() < 1e-12);
        let s = analyze_sample(&src, &View::of(&t), 4, 6).unwrap();
        assert_eq!(s.sampled, Some(6));
        assert_eq!(s.stats.count, 6);
        let whole = analyze_sample(&src, &View::of(&t), 4, 1000).unwrap();
        assert_eq!(whole.sampled, None);
        assert_eq!(whole.stats.count, 24);
    }

    #[test]
    fn constant_and_empty_tensors() {
        let (t, bytes) = f32_tensor(&[2.0; 5], &[5]);
        let src = Elements {
            bytes: &bytes,
            dtype: DType::F32,
            order: ByteOrder::Little,
            quant: None,
        };
        let a = analyze(&src, &View::of(&t), 8, &Control::default()).unwrap();
        assert_eq!(a.stats.std, 0.0);
        assert_eq!(a.histogram.counts.iter().sum::<u64>(), 5);
        let (e, eb) = f32_tensor(&[], &[0, 3]);
        let src = Elements {
            bytes: &eb,
            dtype: DType::F32,
            order: ByteOrder::Little,
            quant: None,
        };
        let a = analyze(&src, &View::of(&e), 8, &Control::default()).unwrap();
        assert_eq!(a.stats.count, 0);
        assert!(a.stats.mean.is_nan());
    }

    #[test]
    fn cancel_and_out_of_range() {
        // Both paths: two decoding passes (F32) and bit-pattern counting (BF16).
        for dtype in [DType::F32, DType::BF16] {
            let t = TensorEntry::contiguous("t".into(), dtype, vec![16], 0, [0, 16 * 4], 0);
            let bytes = [0u8; 64];
            let size = dtype.byte_size().unwrap() as usize;
            let short = Elements {
                bytes: &bytes[..8 * size],
                dtype,
                order: ByteOrder::Little,
                quant: None,
            };
            assert_eq!(
                analyze(&short, &View::of(&t), 4, &Control::default()),
                Err(StatsError::OutOfRange),
                "{dtype}"
            );
            let control = Control::default();
            control.cancel();
            let whole = Elements {
                bytes: &bytes[..16 * size],
                ..short
            };
            assert_eq!(
                analyze(&whole, &View::of(&t), 4, &control),
                Err(StatsError::Cancelled),
                "{dtype}"
            );
        }
    }
}
