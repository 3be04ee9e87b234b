//! The inner loops of statistics and comparisons, compiled for several instruction sets and
//! picked at run time (baseline x86-64 only has SSE2; most machines have AVX2 or AVX-512).
//! `multiversion` generates the feature detection and dispatch.
//!
//! Every loop is written so the compiler can keep one value per vector lane: fixed-size lane
//! arrays, no early exits, no saturating float-to-int casts (a bin index is read from the
//! mantissa of `floor(t) + 2^23`), and NaN/Inf tested on the exponent bits. A batch holding NaN
//! or Inf only sets a flag; callers redo that (rare) batch one value at a time.
//!
//! `clippy::indexing_slicing` is allowed here: fixed-width lanes over `chunks_exact` slices and
//! bins clamped to the table: every index is in bounds by construction, and the loops must stay
//! branch-free.

#![allow(clippy::indexing_slicing)]

use multiversion::multiversion;

/// Sums of one batch of finite values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchSums {
    /// Σ (v − shift).
    pub s1: f64,
    /// Σ (v − shift)².
    pub s2: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Exact zeros.
    pub zeros: u64,
    /// True when some value was NaN or ±Inf (then the sums are not valid).
    pub odd: bool,
}

/// Lanes of the accumulators: eight `f64`, one AVX-512 register.
const LANES: usize = 8;
/// Elements per lane-counter flush (`u32` lane counters never overflow).
const SPAN: usize = 1 << 24;

macro_rules! moments_kernel {
    ($name:ident, $t:ty, $exp:expr) => {
        /// Sums of `values` shifted by `shift`, with independent lanes; sets `odd` when a value
        /// is not finite.
        #[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
        pub fn $name(values: &[$t], shift: f64) -> BatchSums {
            let mut out = BatchSums {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                ..BatchSums::default()
            };
            for span in values.chunks(SPAN) {
                let (mut a1, mut a2) = ([0.0f64; LANES], [0.0f64; LANES]);
                let (mut lo, mut hi) = ([<$t>::INFINITY; LANES], [<$t>::NEG_INFINITY; LANES]);
                let (mut zeros, mut bad) = ([0u32; LANES], [0u32; LANES]);
                let mut chunks = span.chunks_exact(LANES);
                for c in &mut chunks {
                    let c: &[$t; LANES] = c.try_into().expect("chunks_exact");
                    for j in 0..LANES {
                        let x = c[j];
                        bad[j] |= u32::from((x.to_bits() & $exp) == $exp);
                        lo[j] = lo[j].min(x);
                        hi[j] = hi[j].max(x);
                        zeros[j] += u32::from(x == 0.0);
                        let d = f64::from(x) - shift;
                        a1[j] += d;
                        a2[j] = d.mul_add(d, a2[j]);
                    }
                }
                for &x in chunks.remainder() {
                    out.odd |= !x.is_finite();
                    let d = f64::from(x) - shift;
                    out.s1 += d;
                    out.s2 += d * d;
                    out.min = out.min.min(f64::from(x));
                    out.max = out.max.max(f64::from(x));
                    out.zeros += u64::from(x == 0.0);
                }
                out.s1 += a1.iter().sum::<f64>();
                out.s2 += a2.iter().sum::<f64>();
                out.min = lo.iter().map(|&v| f64::from(v)).fold(out.min, f64::min);
                out.max = hi.iter().map(|&v| f64::from(v)).fold(out.max, f64::max);
                out.zeros += zeros.iter().map(|&z| u64::from(z)).sum::<u64>();
                out.odd |= bad.iter().any(|&b| b != 0);
            }
            out
        }
    };
}

moments_kernel!(moments_f32, f32, 0x7f80_0000u32);
moments_kernel!(moments_f64, f64, 0x7ff0_0000_0000_0000u64);

macro_rules! bins_kernel {
    ($name:ident, $t:ty, $exp:expr, $magic:expr, $mantissa:expr) => {
        /// Counts `values` into `counts`: the first `counts.len() − 1` slots are equal-width bins
        /// from `lo` (`scale` bins per unit; values outside go to the end bins), the last slot
        /// collects NaN and ±Inf.
        #[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
        pub fn $name(values: &[$t], lo: $t, scale: $t, counts: &mut [u32]) {
            let Some(dump) = counts.len().checked_sub(1) else {
                return;
            };
            let last = dump.saturating_sub(1) as $t;
            let mut index = [0u32; 256];
            for c in values.chunks(index.len()) {
                for (slot, &v) in index.iter_mut().zip(c) {
                    // `max` and `min` also turn a NaN `t` into a bin, so `floor + magic` is exact.
                    let t = ((v - lo) * scale).max(0.0).min(last);
                    let bin = ((t.floor() + $magic).to_bits() & $mantissa) as u32;
                    let finite = (v.to_bits() & $exp) != $exp;
                    *slot = if finite { bin } else { dump as u32 };
                }
                for &i in &index[..c.len()] {
                    counts[i as usize] += 1;
                }
            }
        }
    };
}

bins_kernel!(
    bins_f32,
    f32,
    0x7f80_0000u32,
    8_388_608.0f32,
    0x007f_ffffu32
);
bins_kernel!(
    bins_f64,
    f64,
    0x7ff0_0000_0000_0000u64,
    4_503_599_627_370_496.0f64,
    0x000f_ffff_ffff_ffffu64
);

/// Counts the little-endian 16-bit codes of `raw` (pairs of bytes) into `counts` (65,536
/// slots); a trailing odd byte is ignored.
pub fn codes_u16(raw: &[u8], counts: &mut [u32; 1 << 16]) {
    for c in raw.chunks_exact(2) {
        counts[usize::from(u16::from_le_bytes([c[0], c[1]]))] += 1;
    }
}

/// Counts the bytes of `raw` into `counts` (256 slots).
pub fn codes_u8(raw: &[u8], counts: &mut [u32; 256]) {
    for &b in raw {
        counts[usize::from(b)] += 1;
    }
}

/// Sums of one batch of value pairs (a, b), all finite.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairSums {
    /// Pairs whose values differ.
    pub differing: u64,
    /// max |a − b|.
    pub max_abs: f64,
    /// Σ |a − b|.
    pub sum_abs: f64,
    /// Σ (a − b)².
    pub sum_d2: f64,
    /// Σ a².
    pub sum_a2: f64,
    /// Σ b².
    pub sum_b2: f64,
    /// Σ a·b.
    pub sum_ab: f64,
    /// min (a − b).
    pub min_d: f64,
    /// max (a − b).
    pub max_d: f64,
    /// True when some value was NaN or ±Inf (then the sums are not valid).
    pub odd: bool,
}

macro_rules! pairs_kernel {
    ($name:ident, $t:ty, $exp:expr) => {
        /// Difference measures of `a` against `b` (the shorter length), in `f64`, with
        /// independent lanes; sets `odd` when a value is not finite.
        #[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
        pub fn $name(a: &[$t], b: &[$t]) -> PairSums {
            let n = a.len().min(b.len());
            let mut out = PairSums {
                min_d: f64::INFINITY,
                max_d: f64::NEG_INFINITY,
                ..PairSums::default()
            };
            for (sa, sb) in a[..n].chunks(SPAN).zip(b[..n].chunks(SPAN)) {
                let (mut s_abs, mut s_d2) = ([0.0f64; LANES], [0.0f64; LANES]);
                let (mut s_a2, mut s_b2, mut s_ab) =
                    ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
                let (mut mx, mut lo, mut hi) = (
                    [0.0f64; LANES],
                    [f64::INFINITY; LANES],
                    [f64::NEG_INFINITY; LANES],
                );
                let (mut differing, mut bad) = ([0u32; LANES], [0u32; LANES]);
                let mut ca = sa.chunks_exact(LANES);
                let mut cb = sb.chunks_exact(LANES);
                for (x, y) in (&mut ca).zip(&mut cb) {
                    let x: &[$t; LANES] = x.try_into().expect("chunks_exact");
                    let y: &[$t; LANES] = y.try_into().expect("chunks_exact");
                    for j in 0..LANES {
                        bad[j] |= u32::from((x[j].to_bits() & $exp) == $exp)
                            | u32::from((y[j].to_bits() & $exp) == $exp);
                        differing[j] += u32::from(x[j] != y[j]);
                        let (p, q) = (f64::from(x[j]), f64::from(y[j]));
                        let d = p - q;
                        let ad = d.abs();
                        mx[j] = mx[j].max(ad);
                        lo[j] = lo[j].min(d);
                        hi[j] = hi[j].max(d);
                        s_abs[j] += ad;
                        s_d2[j] = d.mul_add(d, s_d2[j]);
                        s_a2[j] = p.mul_add(p, s_a2[j]);
                        s_b2[j] = q.mul_add(q, s_b2[j]);
                        s_ab[j] = p.mul_add(q, s_ab[j]);
                    }
                }
                for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
                    out.odd |= !x.is_finite() | !y.is_finite();
                    let (p, q) = (f64::from(x), f64::from(y));
                    let d = p - q;
                    out.differing += u64::from(x != y);
                    out.max_abs = out.max_abs.max(d.abs());
                    out.min_d = out.min_d.min(d);
                    out.max_d = out.max_d.max(d);
                    out.sum_abs += d.abs();
                    out.sum_d2 += d * d;
                    out.sum_a2 += p * p;
                    out.sum_b2 += q * q;
                    out.sum_ab += p * q;
                }
                out.differing += differing.iter().map(|&c| u64::from(c)).sum::<u64>();
                out.max_abs = mx.iter().copied().fold(out.max_abs, f64::max);
                out.min_d = lo.iter().copied().fold(out.min_d, f64::min);
                out.max_d = hi.iter().copied().fold(out.max_d, f64::max);
                out.sum_abs += s_abs.iter().sum::<f64>();
                out.sum_d2 += s_d2.iter().sum::<f64>();
                out.sum_a2 += s_a2.iter().sum::<f64>();
                out.sum_b2 += s_b2.iter().sum::<f64>();
                out.sum_ab += s_ab.iter().sum::<f64>();
                out.odd |= bad.iter().any(|&b| b != 0);
            }
            out
        }
    };
}

pairs_kernel!(pairs_f32, f32, 0x7f80_0000u32);
pairs_kernel!(pairs_f64, f64, 0x7ff0_0000_0000_0000u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_plain_loops() {
        let values: Vec<f32> = (0..1003).map(|i| (i as f32 * 0.37).sin()).collect();
        let s = moments_f32(&values, 0.1);
        let s1: f64 = values.iter().map(|&v| f64::from(v) - 0.1).sum();
        let s2: f64 = values.iter().map(|&v| (f64::from(v) - 0.1).powi(2)).sum();
        assert!((s.s1 - s1).abs() < 1e-9 && (s.s2 - s2).abs() < 1e-9);
        assert!(!s.odd);
        assert_eq!(s.zeros, 1);
        let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!((s.min, s.max), (f64::from(lo), f64::from(hi)));
        assert!(moments_f64(&[1.0, f64::NAN], 0.0).odd);
        // A NaN or Inf in the lane part (not only the remainder) is seen.
        let mut with_inf = values.clone();
        with_inf[3] = f32::NEG_INFINITY;
        assert!(moments_f32(&with_inf, 0.0).odd);
        let b: Vec<f32> = values.iter().map(|v| v * 0.5).collect();
        let p = pairs_f32(&values, &b);
        let sum_abs: f64 = values
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
            .sum();
        let sum_ab: f64 = values
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        assert!((p.sum_abs - sum_abs).abs() < 1e-9 && !p.odd);
        assert!((p.sum_ab - sum_ab).abs() < 1e-9);
        assert_eq!(
            p.differing,
            values.iter().filter(|&&v| v != 0.0).count() as u64
        );
        assert!(pairs_f64(&[1.0], &[f64::INFINITY]).odd);
        let mut nan_b = b.clone();
        nan_b[8] = f32::NAN;
        assert!(pairs_f32(&values, &nan_b).odd);
    }

    #[test]
    fn bins_clamp_and_set_aside_non_finite() {
        let mut counts = vec![0u32; 5];
        bins_f32(
            &[
                0.0,
                0.24,
                0.26,
                0.99,
                1.0,
                f32::NAN,
                -0.5,
                7.0,
                f32::INFINITY,
            ],
            0.0,
            4.0,
            &mut counts,
        );
        assert_eq!(counts, [3, 1, 0, 3, 2]);
        let mut counts = vec![0u32; 3];
        bins_f64(
            &[-1.0, -0.01, 0.0, 0.99, f64::NEG_INFINITY],
            -1.0,
            1.0,
            &mut counts,
        );
        assert_eq!(counts, [2, 2, 1]);
        // Many values: the chunked index buffer is refilled correctly.
        let many: Vec<f32> = (0..1024).map(|i| i as f32 / 1024.0).collect();
        let mut counts = vec![0u32; 9];
        bins_f32(&many, 0.0, 8.0, &mut counts);
        assert_eq!(&counts[..8], &[128; 8]);
        assert_eq!(counts[8], 0);
    }

    #[test]
    fn codes_are_counted() {
        let mut c16 = Box::new([0u32; 1 << 16]);
        codes_u16(&[0x80, 0x3f, 0x80, 0x3f, 0x00, 0x00, 0xff], &mut c16);
        assert_eq!((c16[0x3f80], c16[0], c16.iter().sum::<u32>()), (2, 1, 3));
        let mut c8 = [0u32; 256];
        codes_u8(&[1, 1, 255], &mut c8);
        assert_eq!((c8[1], c8[255]), (2, 1));
    }
}
