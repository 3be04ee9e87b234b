//! The two inner loops of statistics, compiled for several instruction sets and picked at run
//! time (baseline x86-64 only has SSE2; most machines have AVX2 or AVX-512). `multiversion`
//! generates the feature detection and dispatch.

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

const LANES: usize = 8;

macro_rules! moments_kernel {
    ($name:ident, $t:ty) => {
        /// Sums of `values` shifted by `shift`, with independent lanes; sets `odd` when a value
        /// is not finite.
        #[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
        pub fn $name(values: &[$t], shift: f64) -> BatchSums {
            let (mut a1, mut a2) = ([0.0f64; LANES], [0.0f64; LANES]);
            let (mut lo, mut hi) = ([<$t>::INFINITY; LANES], [<$t>::NEG_INFINITY; LANES]);
            let mut zeros = [0u32; LANES];
            let mut odd = false;
            let mut chunks = values.chunks_exact(LANES);
            for c in &mut chunks {
                for j in 0..LANES {
                    let x = c[j];
                    odd |= !x.is_finite();
                    lo[j] = if x < lo[j] { x } else { lo[j] };
                    hi[j] = if x > hi[j] { x } else { hi[j] };
                    zeros[j] += u32::from(x == 0.0);
                    let d = f64::from(x) - shift;
                    a1[j] += d;
                    a2[j] += d * d;
                }
            }
            let mut out = BatchSums {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                ..BatchSums::default()
            };
            for &x in chunks.remainder() {
                odd |= !x.is_finite();
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
            out.odd = odd;
            out
        }
    };
}

moments_kernel!(moments_f32, f32);
moments_kernel!(moments_f64, f64);

/// Adds the finite `values` to `counts` (`counts.len()` bins from `lo`, `scale` bins per unit),
/// in `f32` arithmetic.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn bins_f32(values: &[f32], lo: f32, scale: f32, counts: &mut [u64]) {
    let last = counts.len().saturating_sub(1);
    for &v in values {
        if v.is_finite() {
            let i = ((v - lo) * scale) as usize;
            if let Some(c) = counts.get_mut(i.min(last)) {
                *c += 1;
            }
        }
    }
}

/// [`bins_f32`] in `f64` arithmetic.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
pub fn bins_f64(values: &[f64], lo: f64, scale: f64, counts: &mut [u64]) {
    let last = counts.len().saturating_sub(1);
    for &v in values {
        if v.is_finite() {
            let i = ((v - lo) * scale) as usize;
            if let Some(c) = counts.get_mut(i.min(last)) {
                *c += 1;
            }
        }
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
    ($name:ident, $t:ty) => {
        /// Difference measures of `a` against `b` (same length), with independent lanes; sets
        /// `odd` when a value is not finite.
        #[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma", "aarch64+neon"))]
        pub fn $name(a: &[$t], b: &[$t]) -> PairSums {
            const L: usize = 4;
            let mut acc = [[0.0f64; L]; 6];
            let (mut mx, mut lo, mut hi) =
                ([0.0f64; L], [f64::INFINITY; L], [f64::NEG_INFINITY; L]);
            let mut differing = [0u64; L];
            let mut odd = false;
            let n = a.len().min(b.len());
            let (a, b) = (&a[..n], &b[..n]);
            let mut ca = a.chunks_exact(L);
            let mut cb = b.chunks_exact(L);
            for (x, y) in (&mut ca).zip(&mut cb) {
                for j in 0..L {
                    odd |= !x[j].is_finite() | !y[j].is_finite();
                    let (p, q) = (f64::from(x[j]), f64::from(y[j]));
                    let d = p - q;
                    let ad = d.abs();
                    differing[j] += u64::from(d != 0.0);
                    mx[j] = if ad > mx[j] { ad } else { mx[j] };
                    lo[j] = if d < lo[j] { d } else { lo[j] };
                    hi[j] = if d > hi[j] { d } else { hi[j] };
                    acc[0][j] += ad;
                    acc[1][j] += d * d;
                    acc[2][j] += p * p;
                    acc[3][j] += q * q;
                    acc[4][j] += p * q;
                }
            }
            let mut out = PairSums {
                min_d: f64::INFINITY,
                max_d: f64::NEG_INFINITY,
                ..PairSums::default()
            };
            for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
                odd |= !x.is_finite() | !y.is_finite();
                let (p, q) = (f64::from(x), f64::from(y));
                let d = p - q;
                out.differing += u64::from(d != 0.0);
                out.max_abs = out.max_abs.max(d.abs());
                out.min_d = out.min_d.min(d);
                out.max_d = out.max_d.max(d);
                out.sum_abs += d.abs();
                out.sum_d2 += d * d;
                out.sum_a2 += p * p;
                out.sum_b2 += q * q;
                out.sum_ab += p * q;
            }
            out.differing += differing.iter().sum::<u64>();
            out.max_abs = mx.iter().copied().fold(out.max_abs, f64::max);
            out.min_d = lo.iter().copied().fold(out.min_d, f64::min);
            out.max_d = hi.iter().copied().fold(out.max_d, f64::max);
            out.sum_abs += acc[0].iter().sum::<f64>();
            out.sum_d2 += acc[1].iter().sum::<f64>();
            out.sum_a2 += acc[2].iter().sum::<f64>();
            out.sum_b2 += acc[3].iter().sum::<f64>();
            out.sum_ab += acc[4].iter().sum::<f64>();
            out.odd = odd;
            out
        }
    };
}

pairs_kernel!(pairs_f32, f32);
pairs_kernel!(pairs_f64, f64);

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
        assert!(moments_f64(&[1.0, f64::NAN], 0.0).odd);
        let b: Vec<f32> = values.iter().map(|v| v * 0.5).collect();
        let p = pairs_f32(&values, &b);
        let sum_abs: f64 = values
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
            .sum();
        assert!((p.sum_abs - sum_abs).abs() < 1e-9 && !p.odd);
        assert_eq!(
            p.differing,
            values.iter().filter(|&&v| v != 0.0).count() as u64
        );
        assert!(pairs_f64(&[1.0], &[f64::INFINITY]).odd);
        let mut counts = vec![0u64; 4];
        bins_f32(
            &[0.0, 0.24, 0.26, 0.99, 1.0, f32::NAN],
            0.0,
            4.0,
            &mut counts,
        );
        assert_eq!(counts, [2, 1, 0, 2]);
    }
}
