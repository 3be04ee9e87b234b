//! Packing a tensor's bytes row-major and little-endian, whatever its layout, in bounded chunks.
//!
//! A safetensors tensor already is its packed bytes, so they are handed out as slices of the
//! map. A PyTorch tensor is a strided view (transposed, sliced, expanded) of a storage that may
//! be big-endian; this walks the view with an odometer over all dimensions but the last and
//! copies each innermost run (one `memcpy` when the last stride is 1), swapping bytes if needed.
//! Memory is one chunk, never the tensor.
//!
//! `clippy::indexing_slicing` is allowed here: shape and stride vectors have one entry per
//! dimension (checked at open), and chunk buffers are indexed within their own length.

#![allow(clippy::indexing_slicing)]

use crate::format::{ByteOrder, Layout, TensorEntry};

/// Default chunk size: big enough to amortise calls, small enough to stay in cache.
pub const CHUNK: usize = 1 << 20;

/// Why a tensor's bytes cannot be packed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatherError {
    /// The view reaches outside the bytes it was given (checked at open; here for safety).
    #[error("tensor `{0}` reads past the end of its storage")]
    OutOfRange(String),
    /// Strided views of sub-byte types do not exist in any format ckptscope reads.
    #[error("tensor `{0}`: strided views of sub-byte types are not supported")]
    SubByteView(String),
}

/// Element offsets (offset, strides) of a tensor, contiguous ones included.
pub fn effective_strides(t: &TensorEntry) -> (u64, Vec<u64>) {
    match &t.layout {
        Layout::Strided { offset, strides } => (*offset, strides.clone()),
        Layout::Contiguous => (0, row_major_strides(&t.shape)),
    }
}

/// Row-major strides of `shape`, in elements.
pub fn row_major_strides(shape: &[u64]) -> Vec<u64> {
    let mut strides = vec![1u64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1].saturating_mul(shape[i + 1]);
    }
    strides
}

/// True when the view is the packed row-major block starting at element `offset`.
pub fn is_row_major(shape: &[u64], strides: &[u64]) -> bool {
    let expected = row_major_strides(shape);
    shape
        .iter()
        .zip(strides.iter().zip(&expected))
        .all(|(&n, (&s, &e))| n <= 1 || s == e)
}

/// Calls `sink` with the tensor's packed little-endian bytes, in order, in chunks of at most
/// `chunk` bytes (whole elements). `region` is what [`crate::Checkpoint::tensor_bytes`] returns.
pub fn for_each_chunk<E>(
    t: &TensorEntry,
    region: &[u8],
    chunk: usize,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<Result<(), E>, GatherError> {
    let total = t.byte_len();
    // Quantized GGUF blocks have no element size; like F4/F6 they are handed out as stored.
    let Some(elem) = t.dtype.byte_size().filter(|_| t.quant.is_none()) else {
        // F4/F6: only ever contiguous (safetensors); hand out whole bytes.
        if !matches!(t.layout, Layout::Contiguous) {
            return Err(GatherError::SubByteView(t.name.clone()));
        }
        let bytes = usize::try_from(total)
            .ok()
            .and_then(|len| region.get(..len))
            .ok_or_else(|| GatherError::OutOfRange(t.name.clone()))?;
        for piece in bytes.chunks(chunk.max(1)) {
            if let Err(e) = sink(piece) {
                return Ok(Err(e));
            }
        }
        return Ok(Ok(()));
    };
    let elem = elem as usize;
    let (offset, strides) = effective_strides(t);
    let swap = t.byte_order == ByteOrder::Big && elem > 1;
    let chunk = (chunk.max(elem) / elem) * elem;

    // Fast path: the packed block is a plain byte range.
    if is_row_major(&t.shape, &strides) && !swap {
        let start = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_mul(elem));
        let bytes = start
            .zip(usize::try_from(total).ok())
            .and_then(|(s, len)| region.get(s..s.checked_add(len)?))
            .ok_or_else(|| GatherError::OutOfRange(t.name.clone()))?;
        for piece in bytes.chunks(chunk.max(1)) {
            if let Err(e) = sink(piece) {
                return Ok(Err(e));
            }
        }
        return Ok(Ok(()));
    }

    if t.elements() == 0 {
        return Ok(Ok(()));
    }
    let mut buf: Vec<u8> =
        Vec::with_capacity(chunk.min(usize::try_from(total).unwrap_or(chunk)).max(elem));
    let dims = t.shape.len();
    let (inner_n, inner_s) = if dims == 0 {
        (1u64, 1u64)
    } else {
        (t.shape[dims - 1], strides[dims - 1])
    };
    let outer = &t.shape[..dims.saturating_sub(1)];
    let mut index = vec![0u64; outer.len()];
    let out_of_range = || GatherError::OutOfRange(t.name.clone());
    // Storage element `i` starts at byte `i * elem`; every product and sum below comes from the
    // file, so each is checked (an overflow is a view outside the storage).
    let byte_at = |element: u64| -> Result<usize, GatherError> {
        usize::try_from(element)
            .ok()
            .and_then(|e| e.checked_mul(elem))
            .ok_or_else(out_of_range)
    };
    loop {
        let base = index
            .iter()
            .zip(&strides)
            .try_fold(offset, |acc, (i, s)| acc.checked_add(i.checked_mul(*s)?))
            .ok_or_else(out_of_range)?;
        // One innermost run, possibly split over chunks.
        let mut done = 0u64;
        while done < inner_n {
            let room = ((chunk - buf.len()) / elem).max(1) as u64;
            let n = room.min(inner_n - done);
            let first = done
                .checked_mul(inner_s)
                .and_then(|d| base.checked_add(d))
                .ok_or_else(out_of_range)?;
            if inner_s == 1 {
                let s = byte_at(first)?;
                let run = byte_at(n)
                    .ok()
                    .and_then(|len| region.get(s..s.checked_add(len)?))
                    .ok_or_else(out_of_range)?;
                buf.extend_from_slice(run);
            } else {
                for k in 0..n {
                    let element = k
                        .checked_mul(inner_s)
                        .and_then(|d| first.checked_add(d))
                        .ok_or_else(out_of_range)?;
                    let s = byte_at(element)?;
                    let e = region
                        .get(s..s.checked_add(elem).ok_or_else(out_of_range)?)
                        .ok_or_else(out_of_range)?;
                    buf.extend_from_slice(e);
                }
            }
            if swap {
                let start = buf.len() - n as usize * elem;
                // A complex value is two floats, each in the stored byte order.
                let unit = if t.dtype == crate::dtype::DType::C64 {
                    4
                } else {
                    elem
                };
                for e in buf[start..].chunks_exact_mut(unit) {
                    e.reverse();
                }
            }
            done += n;
            if buf.len() + elem > chunk {
                if let Err(e) = sink(&buf) {
                    return Ok(Err(e));
                }
                buf.clear();
            }
        }
        // Odometer over the outer dimensions.
        let mut d = outer.len();
        loop {
            if d == 0 {
                if !buf.is_empty()
                    && let Err(e) = sink(&buf)
                {
                    return Ok(Err(e));
                }
                return Ok(Ok(()));
            }
            d -= 1;
            index[d] += 1;
            if index[d] < outer[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

/// The tensor's packed bytes in one vector (tests and small tensors).
pub fn to_vec(t: &TensorEntry, region: &[u8]) -> Result<Vec<u8>, GatherError> {
    // Reserved up to a chunk: the length comes from the file, the bytes have to exist.
    let mut out = Vec::with_capacity(usize::try_from(t.byte_len()).unwrap_or(0).min(CHUNK));
    for_each_chunk::<()>(t, region, CHUNK, &mut |c| {
        out.extend_from_slice(c);
        Ok(())
    })?
    .ok();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn strided(shape: &[u64], strides: &[u64], offset: u64, order: ByteOrder) -> TensorEntry {
        TensorEntry {
            name: "t".into(),
            dtype: DType::U16,
            quant: None,
            shape: shape.to_vec(),
            source: 0,
            data_offsets: [0, 0],
            file_offset: 0,
            layout: Layout::Strided {
                offset,
                strides: strides.to_vec(),
            },
            byte_order: order,
            storage: None,
            device: None,
            root: None,
        }
    }

    fn storage(n: u16) -> Vec<u8> {
        (0..n).flat_map(|v| v.to_le_bytes()).collect()
    }

    fn values(bytes: &[u8]) -> Vec<u16> {
        bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn transposed_sliced_expanded_scalar() {
        let s = storage(12);
        // 3x4 row-major storage, transposed to 4x3.
        let t = strided(&[4, 3], &[1, 4], 0, ByteOrder::Little);
        assert_eq!(
            values(&to_vec(&t, &s).unwrap()),
            [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
        );
        // Row 1, columns 1..3.
        let t = strided(&[2], &[1], 5, ByteOrder::Little);
        assert_eq!(values(&to_vec(&t, &s).unwrap()), [5, 6]);
        // Stride-0 expand of a 3-vector to 2x3.
        let t = strided(&[2, 3], &[0, 1], 0, ByteOrder::Little);
        assert_eq!(values(&to_vec(&t, &s).unwrap()), [0, 1, 2, 0, 1, 2]);
        // 0-d scalar at offset 7, and an empty tensor.
        assert_eq!(
            values(&to_vec(&strided(&[], &[], 7, ByteOrder::Little), &s).unwrap()),
            [7]
        );
        assert!(
            to_vec(&strided(&[0, 3], &[3, 1], 0, ByteOrder::Little), &s)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn big_endian_is_swapped_and_chunks_split_runs() {
        let s: Vec<u8> = (0..6u16).flat_map(|v| v.to_be_bytes()).collect();
        let t = strided(&[2, 3], &[3, 1], 0, ByteOrder::Big);
        let mut chunks = Vec::new();
        for_each_chunk::<()>(&t, &s, 4, &mut |c| {
            chunks.push(values(c));
            Ok(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(chunks, [vec![0, 1], vec![2, 3], vec![4, 5]]);
    }

    #[test]
    fn big_endian_complex_swaps_each_float_not_the_pair() {
        let stored: Vec<u8> = [1.5f32, -2.0, 3.0, 0.25]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let mut t = strided(&[2], &[1], 0, ByteOrder::Big);
        t.dtype = crate::dtype::DType::C64;
        let packed = to_vec(&t, &stored).unwrap();
        let floats: Vec<f32> = packed
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(floats, [1.5, -2.0, 3.0, 0.25]);
    }

    #[test]
    fn out_of_range_is_an_error() {
        let t = strided(&[4], &[1], 10, ByteOrder::Little);
        assert_eq!(
            to_vec(&t, &storage(12)),
            Err(GatherError::OutOfRange("t".into()))
        );
    }

    #[test]
    fn strides_that_overflow_are_out_of_range_not_a_panic() {
        // Strides and offsets near 2^64 wrap in unchecked arithmetic and would land inside the
        // storage; checked, they are outside it.
        let region = storage(12);
        let wrap = u64::MAX / 2 + 1;
        for t in [
            strided(&[2, 2], &[wrap, 1], 0, ByteOrder::Little),
            strided(&[2, 3], &[1, wrap], 0, ByteOrder::Little),
            strided(&[2, 2], &[1, 3], u64::MAX, ByteOrder::Big),
            strided(&[3], &[1], u64::MAX / 2, ByteOrder::Little),
        ] {
            let mut calls = 0;
            let r = for_each_chunk::<()>(&t, &region, 4, &mut |_| {
                calls += 1;
                Ok(())
            });
            assert_eq!(
                r,
                Err(GatherError::OutOfRange("t".into())),
                "{:?}",
                t.layout
            );
        }
    }
}
