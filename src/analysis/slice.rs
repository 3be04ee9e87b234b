//! Slices of a tensor (`[3, :, 0:128]`) and the strided views they select.
//!
//! A slice never copies: it is resolved to an element offset, a shape and strides over the bytes
//! the tensor already reads (its safetensors range, or its PyTorch storage). Decoding then
//! touches only the pages of the selected elements.
//!
//! `clippy::indexing_slicing` is allowed here: shapes, strides and the slice spec have one entry
//! per dimension, checked when the view is built.

#![allow(clippy::indexing_slicing)]

use std::fmt;

use crate::format::TensorEntry;
use crate::format::gather::effective_strides;

/// What to take along one dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sel {
    /// One index (the dimension disappears); negative counts from the end.
    Index(i64),
    /// `start:end:step` with Python semantics for missing and negative bounds.
    Range {
        /// First index (default 0).
        start: Option<i64>,
        /// One past the last (default: the size).
        end: Option<i64>,
        /// Step, at least 1.
        step: u64,
    },
    /// The whole dimension (`:`).
    All,
}

/// A selection per leading dimension; missing trailing ones mean `:`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SliceSpec(pub Vec<Sel>);

/// Why a slice cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SliceError {
    /// The text is not a slice.
    #[error("cannot read `{text}` as a slice: {why} (expected something like `[3, :, 0:128]`)")]
    Syntax {
        /// The part that failed.
        text: String,
        /// Why.
        why: String,
    },
    /// More selections than dimensions.
    #[error("{given} selections for a tensor with {dims} dimensions")]
    TooMany {
        /// Selections given.
        given: usize,
        /// Dimensions of the tensor.
        dims: usize,
    },
    /// An index outside its dimension.
    #[error("index {index} is out of range for dimension {dim} of size {size}")]
    OutOfRange {
        /// Dimension.
        dim: usize,
        /// Index given.
        index: i64,
        /// Its size.
        size: u64,
    },
}

impl SliceSpec {
    /// Parses `[3, :, 0:128]`, `3,:,0:128`, `..., -1` is not supported; an empty string or `[]`
    /// selects everything.
    pub fn parse(text: &str) -> Result<SliceSpec, SliceError> {
        let t = text.trim();
        let t = t
            .strip_prefix('[')
            .map(|r| r.strip_suffix(']').unwrap_or(r))
            .unwrap_or(t)
            .trim();
        if t.is_empty() {
            return Ok(SliceSpec::default());
        }
        let syntax = |part: &str, why: &str| SliceError::Syntax {
            text: part.to_string(),
            why: why.to_string(),
        };
        let number = |s: &str, part: &str| -> Result<Option<i64>, SliceError> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<i64>()
                .map(Some)
                .map_err(|_| syntax(part, &format!("`{s}` is not an integer")))
        };
        let mut sels = Vec::new();
        for part in t.split(',') {
            let p = part.trim();
            if p == ":" || p == "::" {
                sels.push(Sel::All);
                continue;
            }
            if p.is_empty() {
                return Err(syntax(part, "empty selection"));
            }
            let pieces: Vec<&str> = p.split(':').collect();
            match pieces.as_slice() {
                [i] => sels.push(Sel::Index(
                    number(i, p)?.ok_or_else(|| syntax(p, "empty index"))?,
                )),
                [a, b] => sels.push(Sel::Range {
                    start: number(a, p)?,
                    end: number(b, p)?,
                    step: 1,
                }),
                [a, b, c] => {
                    let step = number(c, p)?.unwrap_or(1);
                    let step = u64::try_from(step)
                        .ok()
                        .filter(|&s| s >= 1)
                        .ok_or_else(|| syntax(p, "the step must be a positive integer"))?;
                    sels.push(Sel::Range {
                        start: number(a, p)?,
                        end: number(b, p)?,
                        step,
                    });
                }
                _ => return Err(syntax(p, "too many `:`")),
            }
        }
        Ok(SliceSpec(sels))
    }

    /// True when it selects the whole tensor.
    pub fn is_all(&self) -> bool {
        self.0.iter().all(|s| *s == Sel::All)
    }
}

impl fmt::Display for SliceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: &Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|s| match s {
                Sel::Index(i) => i.to_string(),
                Sel::All => ":".into(),
                Sel::Range {
                    start,
                    end,
                    step: 1,
                } => format!("{}:{}", opt(start), opt(end)),
                Sel::Range { start, end, step } => format!("{}:{}:{step}", opt(start), opt(end)),
            })
            .collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

/// A strided selection of elements: element `[i0, i1, ...]` is element
/// `offset + Σ ik·strides[k]` of the tensor's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// Selected shape.
    pub shape: Vec<u64>,
    /// Strides in elements.
    pub strides: Vec<u64>,
    /// Offset in elements.
    pub offset: u64,
}

impl View {
    /// The whole tensor.
    pub fn of(t: &TensorEntry) -> View {
        let (offset, strides) = effective_strides(t);
        View {
            shape: t.shape.clone(),
            strides,
            offset,
        }
    }

    /// The part of `t` that `spec` selects.
    pub fn select(t: &TensorEntry, spec: &SliceSpec) -> Result<View, SliceError> {
        let whole = View::of(t);
        if spec.0.len() > whole.shape.len() {
            return Err(SliceError::TooMany {
                given: spec.0.len(),
                dims: whole.shape.len(),
            });
        }
        let mut out = View {
            shape: Vec::new(),
            strides: Vec::new(),
            offset: whole.offset,
        };
        for (dim, (&size, &stride)) in whole.shape.iter().zip(&whole.strides).enumerate() {
            let sel = spec.0.get(dim).unwrap_or(&Sel::All);
            let size_i = i64::try_from(size).unwrap_or(i64::MAX);
            let resolve = |i: i64| if i < 0 { i + size_i } else { i };
            match sel {
                Sel::All => {
                    out.shape.push(size);
                    out.strides.push(stride);
                }
                Sel::Index(i) => {
                    let r = resolve(*i);
                    if r < 0 || r >= size_i {
                        return Err(SliceError::OutOfRange {
                            dim,
                            index: *i,
                            size,
                        });
                    }
                    out.offset += r as u64 * stride;
                }
                Sel::Range { start, end, step } => {
                    let clamp = |i: i64| resolve(i).clamp(0, size_i);
                    let a = start.map(clamp).unwrap_or(0);
                    let b = end.map(clamp).unwrap_or(size_i);
                    let n = if b > a { (b - a) as u64 } else { 0 };
                    out.shape.push(n.div_ceil(*step));
                    out.strides.push(stride * step);
                    if n > 0 {
                        out.offset += a as u64 * stride;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Number of selected elements.
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// The same elements in the same order with dimensions of size 1 dropped and dimensions
    /// that are contiguous with the next one merged: a packed block becomes one dimension, so it
    /// is walked as one run.
    pub fn simplified(&self) -> View {
        let mut shape: Vec<u64> = Vec::new();
        let mut strides: Vec<u64> = Vec::new();
        for (&n, &s) in self.shape.iter().zip(&self.strides) {
            if n == 1 {
                continue;
            }
            if let (Some(last_n), Some(last_s)) = (shape.last_mut(), strides.last_mut())
                && *last_s == s.saturating_mul(n)
            {
                *last_n *= n;
                *last_s = s;
                continue;
            }
            shape.push(n);
            strides.push(s);
        }
        if self.elements() == 0 {
            shape = vec![0];
            strides = vec![1];
        }
        View {
            shape,
            strides,
            offset: self.offset,
        }
    }

    /// Calls `f(first, count, step)` for the runs of elements `k0..k1` (row-major order of the
    /// view): `count` elements at `first`, `first + step`, ... Call on a [`View::simplified`]
    /// view for the longest runs.
    pub fn for_each_run(&self, k0: u64, k1: u64, f: &mut dyn FnMut(u64, u64, u64) -> bool) {
        if k0 >= k1 {
            return;
        }
        let dims = self.shape.len();
        if dims == 0 {
            f(self.offset, 1, 1);
            return;
        }
        let inner_n = self.shape[dims - 1];
        let inner_s = self.strides[dims - 1];
        if inner_n == 0 {
            return;
        }
        let outer_shape = &self.shape[..dims - 1];
        let outer_strides = &self.strides[..dims - 1];
        // Unravel the outer index of k0.
        let mut outer = k0 / inner_n;
        let mut index = vec![0u64; outer_shape.len()];
        for d in (0..outer_shape.len()).rev() {
            index[d] = outer % outer_shape[d];
            outer /= outer_shape[d];
        }
        let mut k = k0;
        let mut inner = k0 % inner_n;
        while k < k1 {
            let base = self.offset
                + index
                    .iter()
                    .zip(outer_strides)
                    .map(|(i, s)| i * s)
                    .sum::<u64>();
            let n = (inner_n - inner).min(k1 - k);
            if !f(base + inner * inner_s, n, inner_s) {
                return;
            }
            k += n;
            inner = 0;
            for d in (0..outer_shape.len()).rev() {
                index[d] += 1;
                if index[d] < outer_shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
    }

    /// The element index of the view's `k`-th element (row-major).
    pub fn element(&self, k: u64) -> u64 {
        let mut rest = k;
        let mut at = self.offset;
        for d in (0..self.shape.len()).rev() {
            let n = self.shape[d].max(1);
            at += (rest % n) * self.strides[d];
            rest /= n;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn tensor(shape: &[u64]) -> TensorEntry {
        TensorEntry::contiguous("t".into(), DType::F32, shape.to_vec(), 0, [0, 0], 0)
    }

    #[test]
    fn parse_and_display() {
        let s = SliceSpec::parse("[3, :, 0:128]").unwrap();
        assert_eq!(
            s.0,
            [
                Sel::Index(3),
                Sel::All,
                Sel::Range {
                    start: Some(0),
                    end: Some(128),
                    step: 1
                }
            ]
        );
        assert_eq!(s.to_string(), "[3, :, 0:128]");
        assert_eq!(
            SliceSpec::parse("-1, ::2").unwrap().to_string(),
            "[-1, ::2]"
        );
        assert!(SliceSpec::parse("").unwrap().is_all());
        assert!(matches!(
            SliceSpec::parse("[1:2:0]"),
            Err(SliceError::Syntax { .. })
        ));
        assert!(matches!(
            SliceSpec::parse("[a]"),
            Err(SliceError::Syntax { .. })
        ));
        assert!(matches!(
            SliceSpec::parse("[1,,2]"),
            Err(SliceError::Syntax { .. })
        ));
    }

    #[test]
    fn select_resolves_offsets_shapes_strides() {
        let t = tensor(&[4, 5, 6]);
        let v = View::select(&t, &SliceSpec::parse("[1, :, 2:5]").unwrap()).unwrap();
        assert_eq!(v.shape, [5, 3]);
        assert_eq!(v.strides, [6, 1]);
        assert_eq!(v.offset, 30 + 2);
        let v = View::select(&t, &SliceSpec::parse("[-1, ::2]").unwrap()).unwrap();
        assert_eq!(
            (v.shape.clone(), v.strides.clone(), v.offset),
            (vec![3, 6], vec![12, 1], 90)
        );
        let v = View::select(&t, &SliceSpec::parse("[:, 10:20]").unwrap()).unwrap();
        assert_eq!(v.elements(), 0);
        assert_eq!(
            View::select(&t, &SliceSpec::parse("[4]").unwrap()),
            Err(SliceError::OutOfRange {
                dim: 0,
                index: 4,
                size: 4
            })
        );
        assert!(matches!(
            View::select(&t, &SliceSpec::parse("[0,0,0,0]").unwrap()),
            Err(SliceError::TooMany { given: 4, dims: 3 })
        ));
    }

    #[test]
    fn runs_cover_the_view_in_order() {
        let t = tensor(&[4, 5, 6]);
        let v = View::select(&t, &SliceSpec::parse("[:, 1:3, ::2]").unwrap()).unwrap();
        let mut visited = Vec::new();
        v.simplified()
            .for_each_run(0, v.elements(), &mut |first, n, step| {
                visited.extend((0..n).map(|i| first + i * step));
                true
            });
        let expected: Vec<u64> = (0..v.elements()).map(|k| v.element(k)).collect();
        assert_eq!(visited, expected);
        // Partial ranges start mid-run.
        let mut part = Vec::new();
        v.simplified().for_each_run(5, 9, &mut |first, n, step| {
            part.extend((0..n).map(|i| first + i * step));
            true
        });
        assert_eq!(part, expected[5..9]);
        // A packed block is one run.
        let whole = View::of(&t).simplified();
        assert_eq!(whole.shape, [120]);
        let mut runs = 0;
        whole.for_each_run(0, 120, &mut |_, _, _| {
            runs += 1;
            true
        });
        assert_eq!(runs, 1);
    }

    #[test]
    fn scalars_and_empty() {
        let t = tensor(&[]);
        let v = View::of(&t);
        assert_eq!(v.elements(), 1);
        let mut seen = Vec::new();
        v.simplified().for_each_run(0, 1, &mut |f, n, _| {
            seen.push((f, n));
            true
        });
        assert_eq!(seen, [(0, 1)]);
        let e = View::of(&tensor(&[0, 7])).simplified();
        assert_eq!(e.elements(), 0);
    }
}
