//! The measures of a − b and their accumulator: one block's sums, merged across the parallel
//! blocks of a comparison. Kept apart from the pairing and walking of the comparison (`diff`),
//! so the arithmetic is checked on its own.
//!
//! Owns: [`Measures`] and the accumulator. Must not import: `diff`.

use crate::analysis::element::Element;

/// Numeric measures of a − b over elements where both are finite.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Measures {
    /// Elements compared.
    pub count: u64,
    /// Elements whose values differ (NaN against NaN counts as equal).
    pub differing: u64,
    /// Positions where exactly one side is NaN or ±Inf, or both are but differ.
    pub nonfinite_mismatch: u64,
    /// max |a − b|.
    pub max_abs_diff: f64,
    /// mean |a − b|.
    pub mean_abs_diff: f64,
    /// ‖a − b‖ / ‖a‖ (0 when both are zero, +∞ when only a is).
    pub rel_l2: f64,
    /// a·b / (‖a‖‖b‖) (1 when both are zero).
    pub cosine: f64,
    /// Smallest a − b.
    pub min_diff: f64,
    /// Largest a − b.
    pub max_diff: f64,
}

/// Accumulators of one block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Acc {
    count: u64,
    differing: u64,
    nonfinite: u64,
    n: u64,
    max_abs: f64,
    sum_abs: f64,
    sum_d2: f64,
    sum_a2: f64,
    sum_b2: f64,
    sum_ab: f64,
    min_d: f64,
    max_d: f64,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            count: 0,
            differing: 0,
            nonfinite: 0,
            n: 0,
            max_abs: 0.0,
            sum_abs: 0.0,
            sum_d2: 0.0,
            sum_a2: 0.0,
            sum_b2: 0.0,
            sum_ab: 0.0,
            min_d: f64::INFINITY,
            max_d: f64::NEG_INFINITY,
        }
    }
}

impl Acc {
    /// A batch of pairs: the multi-lane kernel, or one pair at a time when NaN/Inf are present.
    pub(crate) fn add_batch<V: Element>(&mut self, xa: &[V], xb: &[V]) {
        let k = V::pairs(xa, xb);
        if k.odd {
            for (&x, &y) in xa.iter().zip(xb) {
                self.add(x.f64(), y.f64());
            }
            return;
        }
        let n = xa.len().min(xb.len()) as u64;
        if n == 0 {
            return;
        }
        *self = self.merge(Acc {
            count: n,
            differing: k.differing,
            nonfinite: 0,
            n,
            max_abs: k.max_abs,
            sum_abs: k.sum_abs,
            sum_d2: k.sum_d2,
            sum_a2: k.sum_a2,
            sum_b2: k.sum_b2,
            sum_ab: k.sum_ab,
            min_d: k.min_d,
            max_d: k.max_d,
        });
    }

    #[inline(always)]
    pub(crate) fn add(&mut self, x: f64, y: f64) {
        self.count += 1;
        if x.is_finite() && y.is_finite() {
            let d = x - y;
            self.n += 1;
            if d != 0.0 {
                self.differing += 1;
            }
            let ad = d.abs();
            self.max_abs = self.max_abs.max(ad);
            self.sum_abs += ad;
            self.sum_d2 += d * d;
            self.sum_a2 += x * x;
            self.sum_b2 += y * y;
            self.sum_ab += x * y;
            self.min_d = self.min_d.min(d);
            self.max_d = self.max_d.max(d);
        } else {
            let same = (x.is_nan() && y.is_nan()) || x == y;
            if !same {
                self.nonfinite += 1;
                self.differing += 1;
            }
        }
    }

    pub(crate) fn merge(mut self, o: Acc) -> Acc {
        self.count += o.count;
        self.differing += o.differing;
        self.nonfinite += o.nonfinite;
        self.n += o.n;
        self.max_abs = self.max_abs.max(o.max_abs);
        self.sum_abs += o.sum_abs;
        self.sum_d2 += o.sum_d2;
        self.sum_a2 += o.sum_a2;
        self.sum_b2 += o.sum_b2;
        self.sum_ab += o.sum_ab;
        self.min_d = self.min_d.min(o.min_d);
        self.max_d = self.max_d.max(o.max_d);
        self
    }

    pub(crate) fn measures(&self) -> Measures {
        let na = self.sum_a2.sqrt();
        let nb = self.sum_b2.sqrt();
        let nd = self.sum_d2.sqrt();
        Measures {
            count: self.count,
            differing: self.differing,
            nonfinite_mismatch: self.nonfinite,
            max_abs_diff: self.max_abs,
            mean_abs_diff: if self.n == 0 {
                0.0
            } else {
                self.sum_abs / self.n as f64
            },
            rel_l2: if na > 0.0 {
                nd / na
            } else if nd == 0.0 {
                0.0
            } else {
                f64::INFINITY
            },
            cosine: if na > 0.0 && nb > 0.0 {
                (self.sum_ab / (na * nb)).clamp(-1.0, 1.0)
            } else if na == 0.0 && nb == 0.0 {
                1.0
            } else {
                0.0
            },
            min_diff: if self.n == 0 { 0.0 } else { self.min_d },
            max_diff: if self.n == 0 { 0.0 } else { self.max_d },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulators_match_hand_computation() {
        let mut acc = Acc::default();
        for (x, y) in [
            (1.0, 1.0),
            (2.0, 1.0),
            (3.0, 5.0),
            (f64::NAN, f64::NAN),
            (f64::INFINITY, 1.0),
        ] {
            acc.add(x, y);
        }
        let m = acc.measures();
        assert_eq!(m.count, 5);
        assert_eq!(m.differing, 3);
        assert_eq!(m.nonfinite_mismatch, 1);
        assert_eq!(m.max_abs_diff, 2.0);
        assert_eq!(m.mean_abs_diff, 1.0);
        assert!((m.rel_l2 - (5f64).sqrt() / (14f64).sqrt()).abs() < 1e-12);
        assert!((m.cosine - 18.0 / ((14f64).sqrt() * (27f64).sqrt())).abs() < 1e-12);
        assert_eq!((m.min_diff, m.max_diff), (-2.0, 1.0));
        let zero = Acc::default().measures();
        assert_eq!((zero.rel_l2, zero.cosine), (0.0, 1.0));
    }
}
