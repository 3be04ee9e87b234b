//! A decoded element type (`f32` or `f64`) and how to read, decode and measure it: shared by
//! the two-pass statistics and the comparison of two tensors.
//!
//! Owns: the [`Element`] trait and its kernels' choice. Must not import: `moments`, `diff`.

use crate::analysis::decode::{decode_at, decode_run};
use crate::analysis::kernels;
use crate::analysis::quant;
use crate::analysis::summary::Elements;
use crate::dtype::DType;
use crate::format::ByteOrder;

/// A decoded element: `f32` for the dtypes that fit it exactly (half the memory traffic), `f64`
/// otherwise. Statistics and comparisons (`diff`) share it: how to decode,
/// how to read in place, and which kernels to run.
pub(crate) trait Element: Copy + Send + Sync + 'static {
    fn f64(self) -> f64;
    fn finite(self) -> bool;
    /// Decodes `n` consecutive elements from element `first`, appending to `out`; `false` when
    /// they do not all lie inside the bytes.
    fn run(src: &Elements<'_>, first: u64, n: usize, out: &mut Vec<Self>) -> bool;
    /// Element `i`, decoded.
    fn at(src: &Elements<'_>, i: u64) -> Option<Self>;
    /// Elements `first..first + n` read in place, without decoding, when the bytes already are
    /// this type in native order and suitably aligned.
    fn borrow<'a>(src: &Elements<'a>, first: u64, n: usize) -> Option<&'a [Self]>;
    /// The moment kernel for this type.
    fn sums(values: &[Self], shift: f64) -> kernels::BatchSums;
    /// The histogram kernel for this type (`counts`: bins, then one slot for NaN/Inf).
    fn bins(values: &[Self], lo: f64, scale: f64, counts: &mut [u32]);
    /// The comparison kernel for this type.
    fn pairs(a: &[Self], b: &[Self]) -> kernels::PairSums;
}

/// Elements `first..first + n` of `src` read in place as `T`, when `src` holds `dtype` (which
/// is `T`) in native byte order and its bytes are aligned for `T`.
fn borrow_native<'a, T: bytemuck::Pod>(
    src: &Elements<'a>,
    dtype: DType,
    first: u64,
    n: usize,
) -> Option<&'a [T]> {
    let native = if cfg!(target_endian = "little") {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    if src.dtype != dtype || src.order != native || src.quant.is_some() {
        return None;
    }
    let size = std::mem::size_of::<T>();
    let start = usize::try_from(first).ok()?.checked_mul(size)?;
    let bytes = src
        .bytes
        .get(start..start.checked_add(n.checked_mul(size)?)?)?;
    bytemuck::try_cast_slice(bytes).ok()
}

impl Element for f32 {
    #[inline(always)]
    fn f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn run(src: &Elements<'_>, first: u64, n: usize, out: &mut Vec<Self>) -> bool {
        match src.quant {
            Some(q) => quant::run_f32(q, src.bytes, first, n, out),
            None => crate::analysis::decode::decode_run_f32(
                src.dtype, src.order, src.bytes, first, n, out,
            ),
        }
    }
    fn at(src: &Elements<'_>, i: u64) -> Option<Self> {
        match src.quant {
            Some(q) => quant::value_at(q, src.bytes, i),
            None => decode_at(src.dtype, src.order, src.bytes, i).map(|v| v as f32),
        }
    }
    fn borrow<'a>(src: &Elements<'a>, first: u64, n: usize) -> Option<&'a [Self]> {
        borrow_native(src, DType::F32, first, n)
    }
    fn sums(values: &[Self], shift: f64) -> kernels::BatchSums {
        kernels::moments_f32(values, shift)
    }
    fn bins(values: &[Self], lo: f64, scale: f64, counts: &mut [u32]) {
        kernels::bins_f32(values, lo as f32, scale as f32, counts);
    }
    fn pairs(a: &[Self], b: &[Self]) -> kernels::PairSums {
        kernels::pairs_f32(a, b)
    }
}

impl Element for f64 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn run(src: &Elements<'_>, first: u64, n: usize, out: &mut Vec<Self>) -> bool {
        if let Some(q) = src.quant {
            let mut values = Vec::with_capacity(n);
            if !quant::run_f32(q, src.bytes, first, n, &mut values) {
                return false;
            }
            out.extend(values.into_iter().map(f64::from));
            return true;
        }
        decode_run(src.dtype, src.order, src.bytes, first, n, out)
    }
    fn at(src: &Elements<'_>, i: u64) -> Option<Self> {
        src.value(i)
    }
    fn borrow<'a>(src: &Elements<'a>, first: u64, n: usize) -> Option<&'a [Self]> {
        borrow_native(src, DType::F64, first, n)
    }
    fn sums(values: &[Self], shift: f64) -> kernels::BatchSums {
        kernels::moments_f64(values, shift)
    }
    fn bins(values: &[Self], lo: f64, scale: f64, counts: &mut [u32]) {
        kernels::bins_f64(values, lo, scale, counts);
    }
    fn pairs(a: &[Self], b: &[Self]) -> kernels::PairSums {
        kernels::pairs_f64(a, b)
    }
}
