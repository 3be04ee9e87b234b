//! Heatmaps of 2-D slices and the grid of first values, for the inspector.
//!
//! A heatmap pixel is the mean of the block of elements it covers, so a 4096×11008 matrix shown
//! in 512×512 pixels still shows every element's contribution (one parallel pass over the rows);
//! a point-sampled preview from [`heatmap_preview`] costs only the pixels.
//!
//! `clippy::indexing_slicing` is allowed here: pixel indexes are clamped to the bins before use.

#![allow(clippy::indexing_slicing)]

use rayon::prelude::*;

use crate::analysis::slice::View;
use crate::analysis::{Elements, StatsError};
use crate::progress::Progress as Control;

/// A downsampled image of a 2-D selection.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    /// Pixels across.
    pub width: usize,
    /// Pixels down.
    pub height: usize,
    /// Row-major pixel values (NaN where a block holds no finite value).
    pub values: Vec<f32>,
    /// Smallest pixel value.
    pub lo: f32,
    /// Largest pixel value.
    pub hi: f32,
    /// Elements per pixel, down and across.
    pub block: (u64, u64),
    /// True for a point-sampled preview.
    pub sampled: bool,
}

/// Rows and columns of a selection seen as a matrix: the last dimension across, all others
/// flattened down (a 1-D selection is one row).
pub fn matrix_shape(view: &View) -> (u64, u64) {
    match view.shape.as_slice() {
        [] => (1, 1),
        [n] => (1, *n),
        [rest @ .., n] => (rest.iter().product(), *n),
    }
}

fn grid(rows: u64, cols: u64, max_w: usize, max_h: usize) -> (usize, usize, u64, u64) {
    let fy = rows.div_ceil(max_h.max(1) as u64).max(1);
    let fx = cols.div_ceil(max_w.max(1) as u64).max(1);
    (
        cols.div_ceil(fx) as usize,
        rows.div_ceil(fy) as usize,
        fy,
        fx,
    )
}

fn finish(
    width: usize,
    height: usize,
    values: Vec<f32>,
    block: (u64, u64),
    sampled: bool,
) -> Heatmap {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in values.iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    Heatmap {
        width,
        height,
        values,
        lo,
        hi,
        block,
        sampled,
    }
}

/// Block means of every element, at most `max_w`×`max_h` pixels.
pub fn heatmap(
    src: &Elements<'_>,
    view: &View,
    max_w: usize,
    max_h: usize,
    control: &Control,
) -> Result<Heatmap, StatsError> {
    let (rows, cols) = matrix_shape(view);
    block_means(rows, cols, max_w, max_h, control, |k| {
        src.value(view.element(k))
    })
}

/// Block means of a − b for two selections of the same shape.
pub fn diff_heatmap(
    a: (&Elements<'_>, &View),
    b: (&Elements<'_>, &View),
    max_w: usize,
    max_h: usize,
    control: &Control,
) -> Result<Heatmap, StatsError> {
    let (rows, cols) = matrix_shape(a.1);
    block_means(rows, cols, max_w, max_h, control, |k| {
        let x = a.0.value(a.1.element(k))?;
        let y = b.0.value(b.1.element(k))?;
        Some(x - y)
    })
}

/// One parallel pass over the rows: each pixel is the mean of the finite values of its block.
/// `value(k)` is the k-th element in row-major order (`None`: outside the bytes).
fn block_means(
    rows: u64,
    cols: u64,
    max_w: usize,
    max_h: usize,
    control: &Control,
    value: impl Fn(u64) -> Option<f64> + Sync,
) -> Result<Heatmap, StatsError> {
    let (width, height, fy, fx) = grid(rows, cols, max_w, max_h);
    let pixel_rows: Vec<Vec<f32>> = (0..height as u64)
        .into_par_iter()
        .map(|py| {
            if control.is_cancelled() {
                return Err(StatsError::Cancelled);
            }
            let mut sums = vec![0f64; width];
            let mut counts = vec![0u32; width];
            for r in py * fy..((py + 1) * fy).min(rows) {
                for c in 0..cols {
                    let v = value(r * cols + c).ok_or(StatsError::OutOfRange)?;
                    if v.is_finite() {
                        let px = (c / fx) as usize;
                        sums[px] += v;
                        counts[px] += 1;
                    }
                }
            }
            Ok(sums
                .iter()
                .zip(&counts)
                .map(|(s, &c)| {
                    if c == 0 {
                        f32::NAN
                    } else {
                        (s / f64::from(c)) as f32
                    }
                })
                .collect())
        })
        .collect::<Result<_, _>>()?;
    Ok(finish(width, height, pixel_rows.concat(), (fy, fx), false))
}

/// One element per pixel (the block's first): instant, for the first frame.
pub fn heatmap_preview(
    src: &Elements<'_>,
    view: &View,
    max_w: usize,
    max_h: usize,
) -> Result<Heatmap, StatsError> {
    let (rows, cols) = matrix_shape(view);
    let (width, height, fy, fx) = grid(rows, cols, max_w, max_h);
    let mut values = Vec::with_capacity(width * height);
    for py in 0..height as u64 {
        for px in 0..width as u64 {
            let k = (py * fy) * cols + px * fx;
            let v = src.value(view.element(k)).ok_or(StatsError::OutOfRange)?;
            values.push(v as f32);
        }
    }
    Ok(finish(width, height, values, (fy, fx), fy > 1 || fx > 1))
}

/// Exact text of the elements in rows `r0..r0+nr` and columns `c0..c0+nc` of the selection seen
/// as a matrix.
pub fn values_grid(
    src: &Elements<'_>,
    view: &View,
    r0: u64,
    nr: u64,
    c0: u64,
    nc: u64,
) -> Vec<Vec<String>> {
    let (rows, cols) = matrix_shape(view);
    (r0..(r0 + nr).min(rows))
        .map(|r| {
            (c0..(c0 + nc).min(cols))
                .map(|c| {
                    src.text(view.element(r * cols + c))
                        .unwrap_or_else(|| "?".into())
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::format::{ByteOrder, TensorEntry};

    #[test]
    fn block_means_and_preview() {
        let values: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = TensorEntry::contiguous("t".into(), DType::F32, vec![4, 4], 0, [0, 64], 0);
        let src = Elements {
            bytes: &bytes,
            dtype: DType::F32,
            order: ByteOrder::Little,
            quant: None,
        };
        let h = heatmap(&src, &View::of(&t), 2, 2, &Control::default()).unwrap();
        assert_eq!((h.width, h.height, h.block), (2, 2, (2, 2)));
        // Top-left block: 0,1,4,5 → 2.5.
        assert_eq!(h.values, [2.5, 4.5, 10.5, 12.5]);
        assert_eq!((h.lo, h.hi), (2.5, 12.5));
        let p = heatmap_preview(&src, &View::of(&t), 2, 2).unwrap();
        assert_eq!(p.values, [0.0, 2.0, 8.0, 10.0]);
        assert!(p.sampled);
        let g = values_grid(&src, &View::of(&t), 1, 2, 2, 5);
        assert_eq!(g, [vec!["6", "7"], vec!["10", "11"]]);
    }
}
